package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"duikou/internal/audit"
	"duikou/internal/sqldb"
)

// AuditLog keeps the hash-chained audit log in audit_log, with each chain's
// last chain_seq and hash in audit_heads. It is the audit.Store of the
// platform database.
type AuditLog struct {
	db sqldb.DB
	// walkPage is how many rows Walk reads per query.
	walkPage int
}

var _ audit.Store = (*AuditLog)(nil)

// NewAuditLog returns the audit log kept in db.
func NewAuditLog(db sqldb.DB) *AuditLog {
	return &AuditLog{db: db, walkPage: 1000}
}

const auditColumns = `seq, chain, chain_seq, at, actor_id, actor_hospital_id, action, resource_type,
	resource_id, patient_id, outcome, request_id, client_addr, detail, prev_hash, hash`

func scanAuditEntry(row sqldb.Row, e *audit.Entry) error {
	return row.Scan(&e.Seq, &e.Chain, &e.ChainSeq, &e.At, &e.ActorID, &e.ActorHospitalID, &e.Action,
		&e.ResourceType, &e.ResourceID, &e.PatientID, (*string)(&e.Outcome), &e.RequestID, &e.ClientAddr,
		&e.Detail, &e.PrevHash, &e.Hash)
}

// appendRow is the PostgreSQL append: one statement claims a chain's head,
// moves it, and inserts the row linked to the row before it, hashing in the
// database. $1 is the preferred chain, $2 the entry's content encoding
// (audit.ContentEncoding), $3… the row's fields.
//
// The head is the first chain, starting at the preferred one, that no other
// transaction holds (SKIP LOCKED); rows this transaction already locked are
// not skipped, so a transaction that appends again keeps to its chain. When
// every chain is held by others it waits for the preferred one: it then
// holds no head itself, or one would have been found, so waiting cannot
// close a cycle of appends. Under READ COMMITTED the UPDATE works on the
// head's latest committed version once it holds the lock, so the link and
// the hash follow the row committed last, whatever the statement's
// snapshot saw. The chain is picked in a materialized CTE joined to the
// UPDATE, not in a subquery of its WHERE: when the head had moved since the
// statement's snapshot, PostgreSQL rechecks the UPDATE's condition on the
// latest version, and with the pick inside that condition the recheck
// could pick again, land on another chain and update nothing (seen with 32
// concurrent appenders). The hash is audit.ChainHash: SHA-256 over the previous
// hash, chain and chain_seq (each as a 4-byte big-endian length and its
// digits, as LinkEncoding writes them) and the content encoding.
//
// The row's chain, chain_seq and hashes are read from the moved head by
// scalar subqueries, so a missing head (migration 0004 seeds every one)
// fails the statement on their NOT NULL columns instead of dropping the
// row.
var appendRow = fmt.Sprintf(`WITH pick AS MATERIALIZED (
	SELECT COALESCE((SELECT chain FROM audit_heads WHERE chain >= 0 AND chain < %[1]d
		ORDER BY (chain - $1 + %[1]d) %% %[1]d LIMIT 1 FOR UPDATE SKIP LOCKED), $1) AS chain
), moved AS (
	UPDATE audit_heads h SET chain_seq = h.chain_seq + 1, prev_hash = h.hash,
		hash = sha256(h.hash
			|| int4send(octet_length(h.chain::text)) || convert_to(h.chain::text, 'UTF8')
			|| int4send(octet_length((h.chain_seq + 1)::text)) || convert_to((h.chain_seq + 1)::text, 'UTF8')
			|| $2::bytea)
	FROM pick WHERE h.chain = pick.chain
	RETURNING h.chain, h.chain_seq, h.prev_hash, h.hash
)
INSERT INTO audit_log (chain, chain_seq, at, actor_id, actor_hospital_id, action, resource_type, resource_id,
	patient_id, outcome, request_id, client_addr, detail, prev_hash, hash)
VALUES ((SELECT chain FROM moved), (SELECT chain_seq FROM moved), $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
	(SELECT prev_hash FROM moved), (SELECT hash FROM moved))`, audit.Chains)

// Append writes e as the next row of a chain inside ctx's transaction, or
// its own. The chain's head row is locked until the transaction ends, so
// rows of one chain are numbered and linked one after another.
//
// On PostgreSQL the append is one statement that nobody waits for: it goes
// to the server with the transaction's next statement or its commit, and
// the database picks the chain and computes the hash (appendRow), so e's
// Seq, Chain, ChainSeq and hashes are not known here. SQLite write
// transactions are exclusive already, so there the preferred chain is used
// as it is, hashed here.
func (s *AuditLog) Append(ctx context.Context, e *audit.Entry) error {
	// Inside the caller's transaction the row needs no savepoint of its own:
	// it commits or rolls back with the change it records.
	inTx := s.db.InTx
	if sqldb.InTransaction(ctx) {
		inTx = func(ctx context.Context, fn func(context.Context) error) error { return fn(ctx) }
	}
	return inTx(ctx, func(ctx context.Context) error {
		if s.db.Dialect() == sqldb.Postgres {
			if err := s.db.ExecLater(ctx, nil, appendRow, e.Chain, audit.ContentEncoding(*e), e.At, e.ActorID,
				e.ActorHospitalID, e.Action, e.ResourceType, e.ResourceID, e.PatientID, string(e.Outcome), e.RequestID,
				e.ClientAddr, e.Detail); err != nil {
				return fmt.Errorf("append audit row: %w", err)
			}
			return nil
		}
		head, err := s.lockHead(ctx, e.Chain)
		if err != nil {
			return fmt.Errorf("lock audit chain head: %w", err)
		}
		e.Chain = head.Chain
		e.ChainSeq = head.ChainSeq + 1
		e.PrevHash = head.Hash
		e.Hash = audit.ChainHash(e.PrevHash, *e)
		if err := s.insert(ctx, e); err != nil {
			return fmt.Errorf("insert audit row: %w", err)
		}
		return nil
	})
}

// lockHead reads the head of chain on SQLite, creating it should it be
// missing.
func (s *AuditLog) lockHead(ctx context.Context, chain int) (audit.Head, error) {
	var h audit.Head
	const read = `SELECT chain, chain_seq, hash FROM audit_heads WHERE chain = $1`
	err := s.db.QueryRow(ctx, read, chain).Scan(&h.Chain, &h.ChainSeq, &h.Hash)
	if !errors.Is(err, sqldb.ErrNoRows) {
		return h, err
	}
	// Migration 0004 seeds every head; create one that is missing rather
	// than fail. Should rows of the chain exist, the insert that follows
	// fails on (chain, chain_seq) and Verify reports the missing head.
	if _, err := s.db.Exec(ctx, `INSERT INTO audit_heads (chain, chain_seq, hash) VALUES ($1, 0, $2)
		ON CONFLICT (chain) DO NOTHING`, chain, audit.GenesisHash()); err != nil {
		return h, err
	}
	err = s.db.QueryRow(ctx, read, chain).Scan(&h.Chain, &h.ChainSeq, &h.Hash)
	return h, err
}

// insert writes e and moves its chain's head (SQLite).
func (s *AuditLog) insert(ctx context.Context, e *audit.Entry) error {
	if err := s.db.QueryRow(ctx, `INSERT INTO audit_log (chain, chain_seq, at, actor_id, actor_hospital_id, action,
		resource_type, resource_id, patient_id, outcome, request_id, client_addr, detail, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING seq`,
		e.Chain, e.ChainSeq, e.At, e.ActorID, e.ActorHospitalID, e.Action, e.ResourceType, e.ResourceID, e.PatientID,
		string(e.Outcome), e.RequestID, e.ClientAddr, e.Detail, e.PrevHash, e.Hash).Scan(&e.Seq); err != nil {
		return err
	}
	_, err := s.db.Exec(ctx, `UPDATE audit_heads SET chain_seq = $2, prev_hash = $3, hash = $4 WHERE chain = $1`,
		e.Chain, e.ChainSeq, e.PrevHash, e.Hash)
	return err
}

// Search returns up to p.Limit+1 rows matching f, newest first.
func (s *AuditLog) Search(ctx context.Context, f audit.Filter, p audit.Page) ([]audit.Entry, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	for _, c := range []struct {
		column string
		value  string
	}{
		{"actor_id", f.ActorID}, {"actor_hospital_id", f.ActorHospitalID}, {"patient_id", f.PatientID},
		{"action", f.Action}, {"resource_type", f.ResourceType}, {"resource_id", f.ResourceID},
		{"outcome", string(f.Outcome)},
	} {
		if c.value != "" {
			add(c.column+" = ?", c.value)
		}
	}
	// Lets the planner use the partial indexes on these columns.
	if f.PatientID != "" {
		where = append(where, "patient_id <> ''")
	}
	if f.ResourceID != "" {
		where = append(where, "resource_id <> ''")
	}
	if !f.From.IsZero() {
		add("at >= ?", f.From)
	}
	if !f.To.IsZero() {
		add("at < ?", f.To)
	}
	if p.BeforeSeq > 0 {
		add("seq < ?", p.BeforeSeq)
	}
	q := `SELECT ` + auditColumns + ` FROM audit_log`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, p.Limit+1)
	q += ` ORDER BY seq DESC LIMIT $` + strconv.Itoa(len(args))
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []audit.Entry
	for rows.Next() {
		var e audit.Entry
		if err := scanAuditEntry(rows, &e); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Heads returns every chain's recorded head.
func (s *AuditLog) Heads(ctx context.Context) ([]audit.Head, error) {
	rows, err := s.db.Query(ctx, `SELECT chain, chain_seq, hash FROM audit_heads ORDER BY chain`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []audit.Head
	for rows.Next() {
		var h audit.Head
		if err := rows.Scan(&h.Chain, &h.ChainSeq, &h.Hash); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// Walk calls fn for every row in (chain, chain_seq) order. It reads a page
// at a time, continuing after the last key seen, so memory stays flat and no
// statement stays open for the whole walk (which would hold back SQLite's
// checkpoints and a PostgreSQL connection).
func (s *AuditLog) Walk(ctx context.Context, fn func(audit.Entry) error) error {
	first := `SELECT ` + auditColumns + ` FROM audit_log ORDER BY chain, chain_seq LIMIT $1`
	next := `SELECT ` + auditColumns + ` FROM audit_log
		WHERE (chain, chain_seq) > ($2, $3) ORDER BY chain, chain_seq LIMIT $1`
	var last *audit.Entry
	for {
		var rows sqldb.Rows
		var err error
		if last == nil {
			rows, err = s.db.Query(ctx, first, s.walkPage)
		} else {
			rows, err = s.db.Query(ctx, next, s.walkPage, last.Chain, last.ChainSeq)
		}
		if err != nil {
			return err
		}
		page := make([]audit.Entry, 0, s.walkPage)
		for rows.Next() {
			var e audit.Entry
			if err := scanAuditEntry(rows, &e); err != nil {
				rows.Close()
				return err
			}
			page = append(page, e)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return err
		}
		for _, e := range page {
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(page) < s.walkPage {
			return nil
		}
		last = &page[len(page)-1]
	}
}
