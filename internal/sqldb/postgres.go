package sqldb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

type pgDB struct {
	pool *pgxpool.Pool
	// side serves detached statements (see Detached). Its own few
	// connections mean a transaction holding one of the main pool's never
	// waits for another of the same pool: with every main connection inside
	// a transaction that wants a side statement, a shared pool would
	// deadlock.
	side *pgxpool.Pool
}

// OpenPostgres connects a pgx pool to url (postgres://…).
func OpenPostgres(ctx context.Context, url string) (DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", redactErr(err))
	}
	if cfg.MaxConns < 16 {
		cfg.MaxConns = 16
	}
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect postgres: %w", redactErr(err))
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect postgres: %w", redactErr(err))
	}
	sideCfg := cfg.Copy()
	sideCfg.MaxConns, sideCfg.MinConns = 4, 0
	side, err := pgxpool.NewWithConfig(ctx, sideCfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect postgres: %w", redactErr(err))
	}
	return &pgDB{pool: pool, side: side}, nil
}

// redactErr drops the connection string that pgx may echo in parse errors:
// it can carry a password, and secrets never reach the logs.
func redactErr(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return errors.New("invalid connection string")
	}
	return err
}

type pgQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (d *pgDB) q(ctx context.Context) pgQuerier {
	if tx, ok := ctx.Value(txKey{}).(*pgTx); ok {
		return tx
	}
	if detached(ctx) {
		return d.side
	}
	return d.pool
}

func (d *pgDB) Dialect() Dialect               { return Postgres }
func (d *pgDB) Ping(ctx context.Context) error { return d.pool.Ping(ctx) }
func (d *pgDB) Close()                         { d.pool.Close(); d.side.Close() }

func (d *pgDB) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	tag, err := d.q(ctx).Exec(ctx, sql, args...)
	if err != nil {
		return 0, pgErr(err)
	}
	return tag.RowsAffected(), nil
}

func (d *pgDB) Query(ctx context.Context, sql string, args ...any) (Rows, error) {
	rows, err := d.q(ctx).Query(ctx, sql, args...)
	if err != nil {
		return nil, pgErr(err)
	}
	return pgRows{rows}, nil
}

func (d *pgDB) QueryRow(ctx context.Context, sql string, args ...any) Row {
	return pgRow{d.q(ctx).QueryRow(ctx, sql, args...)}
}

// ExecLater queues sql to go to the server with the transaction's next
// statement (see pgTx); outside a transaction it runs at once.
func (d *pgDB) ExecLater(ctx context.Context, check func(rows int64) error, sql string, args ...any) error {
	t, ok := ctx.Value(txKey{}).(*pgTx)
	if !ok {
		n, err := d.Exec(ctx, sql, args...)
		if err == nil && check != nil {
			err = check(n)
		}
		return err
	}
	t.pending = append(t.pending, pendingStmt{sql: sql, args: args, check: check})
	return nil
}

func (d *pgDB) InTx(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	if t, ok := ctx.Value(txKey{}).(*pgTx); ok {
		return savepoint(ctx, t, fn)
	}
	pool := d.pool
	if detached(ctx) {
		pool = d.side
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return pgErr(err)
	}
	// BEGIN waits for the transaction's first statement.
	t := &pgTx{conn: conn, pending: []pendingStmt{{sql: "begin"}}}
	defer func() {
		p := recover()
		if p != nil || err != nil {
			t.rollback(context.WithoutCancel(ctx))
		}
		// A connection left inside a transaction or mid-answer (a failed
		// rollback, a cancelled context) is closed by the pool, not reused.
		conn.Release()
		if p != nil {
			panic(p)
		}
	}()
	ctx, hooks := withHooks(ctx)
	if err = fn(context.WithValue(ctx, txKey{}, t)); err != nil {
		return err
	}
	if err = t.commit(ctx); err != nil {
		return pgErr(err)
	}
	hooks.run()
	return nil
}

// pgTx is a transaction on one connection of the pool. Statements whose
// answer nobody waits for (BEGIN, SAVEPOINT, RELEASE, and writes queued by
// ExecLater) are held back and sent in one pipeline with the next statement
// that is waited for, or with COMMIT. A request's transaction then costs a
// round trip per read rather than per statement: on a machine where the
// database shares the cores, each round trip is two process wake-ups, and
// those, not the rows, bound how many transactions a second it commits.
//
// The price is where errors show: a held-back statement's error (or its
// check's) is returned by the call that sent it, or by the commit. That is
// why ExecLater is only for writes whose failure fails the transaction.
//
// A savepoint costs two statements and makes the writes inside it a
// subtransaction, which the server numbers and tracks apart; most are
// released without ever being needed. So SAVEPOINT stays held back while
// only reads follow it: a SELECT that is waited for goes to the server
// ahead of it, as a statement of the enclosing transaction (reads change
// nothing a rollback would undo; row locks they take stay to the
// transaction's end). A savepoint released while its SAVEPOINT is still
// held back never reaches the server: its writes, held back after it, are
// sent as the enclosing transaction's. Only a savepoint rolled back after
// its writes went out costs a SAVEPOINT and a ROLLBACK TO on the server.
type pgTx struct {
	conn    *pgxpool.Conn
	pending []pendingStmt
}

type pendingStmt struct {
	sql   string
	args  []any
	check func(rows int64) error
	// savepoint names the savepoint a SAVEPOINT statement opens.
	savepoint string
}

// send pipelines the held-back statements and then sql (when not empty),
// judging each held-back answer. It returns the batch positioned at sql's
// answer; the caller closes it.
func (t *pgTx) send(ctx context.Context, sql string, args []any) (pgx.BatchResults, error) {
	pending, held := t.pending, []pendingStmt(nil)
	if isRead(sql) {
		// SAVEPOINTs with nothing after them wait for a write (see pgTx).
		n := len(pending)
		for n > 0 && pending[n-1].savepoint != "" {
			n--
		}
		pending, held = pending[:n], append(held, pending[n:]...)
	}
	t.pending = held
	b := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, len(pending)+1)}
	for _, p := range pending {
		b.Queue(p.sql, p.args...)
	}
	if sql != "" {
		b.Queue(sql, args...)
	}
	br := t.conn.SendBatch(ctx, b)
	for _, p := range pending {
		tag, err := br.Exec()
		if err == nil && p.check != nil {
			err = p.check(tag.RowsAffected())
		}
		if err != nil {
			br.Close()
			return nil, err
		}
	}
	return br, nil
}

func (t *pgTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if len(t.pending) == 0 {
		return t.conn.Exec(ctx, sql, args...)
	}
	br, err := t.send(ctx, sql, args)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

func (t *pgTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if len(t.pending) == 0 {
		return t.conn.Query(ctx, sql, args...)
	}
	br, err := t.send(ctx, sql, args)
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

func (t *pgTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if len(t.pending) == 0 {
		return t.conn.QueryRow(ctx, sql, args...)
	}
	rows, err := t.Query(ctx, sql, args...)
	if err != nil {
		return errRow{err}
	}
	return rowOf{rows}
}

// commit sends what is held back with COMMIT. A held-back write with a
// check goes first on its own: its verdict must come before COMMIT does.
func (t *pgTx) commit(ctx context.Context) error {
	if len(t.pending) == 1 && t.pending[0].sql == "begin" {
		t.pending = nil // nothing was asked of the database
		return nil
	}
	for _, p := range t.pending {
		if p.check != nil {
			br, err := t.send(ctx, "", nil)
			if err != nil {
				return err
			}
			if err := br.Close(); err != nil {
				return err
			}
			break
		}
	}
	br, err := t.send(ctx, "commit", nil)
	if err != nil {
		return err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil && tag.String() != "COMMIT" {
		// The server answers ROLLBACK to COMMIT in a failed transaction.
		err = pgx.ErrTxCommitRollback
	}
	return err
}

// rollback drops what is held back and ends the transaction on the server
// if it began there.
func (t *pgTx) rollback(ctx context.Context) {
	t.pending = nil
	if t.conn.Conn().PgConn().TxStatus() != 'I' {
		_, _ = t.conn.Exec(ctx, "rollback")
	}
}

func (t *pgTx) openSavepoint(_ context.Context, name string) error {
	t.pending = append(t.pending, pendingStmt{sql: "SAVEPOINT " + name, savepoint: name})
	return nil
}

// releaseSavepoint ends the savepoint keeping its work. One whose
// SAVEPOINT is still held back never reaches the server (see pgTx).
func (t *pgTx) releaseSavepoint(_ context.Context, name string) error {
	if i := t.heldSavepoint(name); i >= 0 {
		t.pending = append(t.pending[:i], t.pending[i+1:]...)
		return nil
	}
	t.pending = append(t.pending, pendingStmt{sql: "RELEASE SAVEPOINT " + name})
	return nil
}

// heldSavepoint is the index in pending of the SAVEPOINT that opened name,
// or -1 when it was sent. A savepoint's name is its depth, so the search
// goes from the end, where the one opened last is.
func (t *pgTx) heldSavepoint(name string) int {
	for i := len(t.pending) - 1; i >= 0; i-- {
		if t.pending[i].savepoint == name {
			return i
		}
	}
	return -1
}

// errAbortedBeforeSavepoint: a statement failed on the server while the
// savepoint to roll back to had not reached it, so the failure aborted the
// enclosing transaction, which no savepoint can restore.
var errAbortedBeforeSavepoint = errors.New("sqldb: a statement failed before its savepoint reached the server; the transaction is aborted")

// rollbackToSavepoint undoes the savepoint's work. Held back since it
// opened, that work never reached the server and is simply dropped.
func (t *pgTx) rollbackToSavepoint(ctx context.Context, name string) error {
	if i := t.heldSavepoint(name); i >= 0 {
		t.pending = t.pending[:i]
		// Only reads went out ahead of the SAVEPOINT; if one of them failed,
		// the server aborted the whole transaction.
		if t.conn.Conn().PgConn().TxStatus() == 'E' {
			return errAbortedBeforeSavepoint
		}
		return nil
	}
	// Everything held back came after the savepoint was sent: it belongs
	// to the work being undone.
	t.pending = nil
	_, err := t.conn.Exec(ctx, "ROLLBACK TO SAVEPOINT "+name)
	return err
}

// batchRows are the rows of a pipelined statement: closing them finishes
// the pipeline so the connection can be used again.
type batchRows struct {
	pgx.Rows
	br pgx.BatchResults
}

func (r *batchRows) Close() {
	r.Rows.Close()
	if r.br != nil {
		r.br.Close()
		r.br = nil
	}
}

// rowOf is the first row of rows, as pgx.Conn.QueryRow gives it.
type rowOf struct{ rows pgx.Rows }

func (r rowOf) Scan(dest ...any) error {
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

type pgRows struct{ pgx.Rows }

func (r pgRows) Scan(dest ...any) error {
	if err := r.Rows.Scan(dest...); err != nil {
		return pgErr(err)
	}
	utc(dest)
	return nil
}

type pgRow struct{ pgx.Row }

func (r pgRow) Scan(dest ...any) error {
	if err := r.Row.Scan(dest...); err != nil {
		return pgErr(err)
	}
	utc(dest)
	return nil
}

// utc normalises scanned instants: pgx returns timestamptz in the local zone.
func utc(dest []any) {
	for _, d := range dest {
		switch t := d.(type) {
		case *time.Time:
			*t = t.UTC()
		case **time.Time:
			if *t != nil {
				u := (*t).UTC()
				*t = &u
			}
		}
	}
}

func pgErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNoRows
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505":
			return fmt.Errorf("%w: %s", ErrUniqueViolation, pe.ConstraintName)
		case "40001", "40P01":
			return fmt.Errorf("%w: %s", ErrSerialization, pe.Message)
		case "DK412":
			return fmt.Errorf("%w: %s", ErrRowChanged, pe.Message)
		}
	}
	return err
}

// isRead reports whether sql is a plain SELECT, which a held-back SAVEPOINT
// may let go ahead of it. Anything else (a CTE that writes, an INSERT …
// RETURNING) keeps its place after it.
func isRead(sql string) bool {
	sql = strings.TrimLeft(sql, " \t\r\n(")
	return len(sql) >= 6 && strings.EqualFold(sql[:6], "select")
}
