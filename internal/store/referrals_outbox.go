package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"duikou/internal/sqldb"
	"duikou/referral"
)

// TakeOutbox returns up to limit pending messages of topic (neither
// published nor given up) in the order written, for the transaction in ctx
// to publish and mark. On PostgreSQL the rows stay locked until that
// transaction ends and rows another relay holds are skipped, so relays on
// several instances share the work instead of repeating it. SQLite has a
// single writer already.
func (s *Referrals) TakeOutbox(ctx context.Context, topic string, limit int) ([]OutboxMessage, error) {
	q := `SELECT id, topic, key, payload, created_at, published_at
		FROM outbox WHERE ` + outboxPending + ` AND topic = $1 ORDER BY id LIMIT $2`
	if s.db.Dialect() == sqldb.Postgres {
		q += ` FOR UPDATE SKIP LOCKED`
	}
	return dirQueryAll(ctx, s.db, q, []any{topic, limit}, func(r sqldb.Rows) (OutboxMessage, error) {
		var m OutboxMessage
		err := r.Scan(&m.ID, &m.Topic, &m.Key, &m.Payload, &m.CreatedAt, &m.PublishedAt)
		return m, err
	})
}

// outboxPending selects the messages still to deliver: neither published
// nor given up (FailOutbox). It is the predicate of the outbox_pending
// index (migration 0018), which PostgreSQL uses only for a query whose
// WHERE implies it, so every read of pending messages says all of it.
const outboxPending = `published_at IS NULL AND failed_at IS NULL`

// MarkPublished records that the messages with ids were delivered at.
// A message already marked keeps its first delivery time.
func (s *Referrals) MarkPublished(ctx context.Context, ids []int64, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, at)
	marks := make([]string, len(ids))
	for i, id := range ids {
		args = append(args, id)
		marks[i] = fmt.Sprintf("$%d", i+2)
	}
	_, err := s.db.Exec(ctx, `UPDATE outbox SET published_at = $1 WHERE published_at IS NULL AND id IN (`+
		strings.Join(marks, ", ")+`)`, args...)
	return err
}

// OutboxPurgeStep is what one call of PurgeOutbox did.
type OutboxPurgeStep struct {
	Deleted int64 // messages deleted
	// Last is the highest id the call examined: the next call starts after
	// it.
	Last int64
	// Done: the call reached messages too recent to purge, or the end of the
	// table; nothing further can be purged yet.
	Done bool
}

// PurgeOutbox examines the next window messages after the id after, in id
// order, and deletes those published before before. Unpublished messages
// (waiting, being retried, or given up) are never deleted, whatever their
// age. Each call is two short statements outside any transaction, so a
// purge never holds many rows or a long transaction: the caller walks the
// table window by window from after 0.
//
// The walk goes by primary key rather than by an index on published_at,
// which every relay batch would have to maintain on the hot path: a
// message is written with its created_at in about id order and published
// after it, so once a window holds a message created at or after before,
// everything beyond is too recent (Done). A purge thus reads what it
// deletes, what is kept below it (messages not yet published), and one
// window more.
func (s *Referrals) PurgeOutbox(ctx context.Context, after int64, before time.Time, window int) (OutboxPurgeStep, error) {
	var step OutboxPurgeStep
	var examined, recent int64
	err := s.db.QueryRow(ctx, `SELECT count(*), COALESCE(max(id), 0), count(CASE WHEN created_at >= $3 THEN 1 END)
		FROM (SELECT id, created_at FROM outbox WHERE id > $1 ORDER BY id LIMIT $2) w`,
		after, window, before).Scan(&examined, &step.Last, &recent)
	if err != nil {
		return step, err
	}
	if examined == 0 {
		step.Last, step.Done = after, true
		return step, nil
	}
	// A message not published (NULL) is never older than the cutoff.
	step.Deleted, err = s.db.Exec(ctx, `DELETE FROM outbox
		WHERE id > $1 AND id <= $2 AND published_at IS NOT NULL AND published_at < $3`, after, step.Last, before)
	step.Done = examined < int64(window) || recent > 0
	return step, err
}

// queuedCols are what a desk queue needs of a ticket: reading only these
// keeps a rebuild of many thousand tickets quick.
const queuedCols = `id, number, status, version, receiving_hospital_id, receiving_department_id,
	priority, green_channel, green_category, submitted_at, queued_at, claimed_by, claim_by, decide_by`

// ForEachQueued calls fn with every ticket waiting in a desk queue
// (submitted, or claimed and held by a desk member), oldest first. Only the
// queue's fields are filled in.
func (s *Referrals) ForEachQueued(ctx context.Context, fn func(referral.Referral) error) error {
	rows, err := s.db.Query(ctx, `SELECT `+queuedCols+` FROM referrals WHERE status IN ($1, $2) ORDER BY id`,
		string(referral.Submitted), string(referral.Claimed))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var r referral.Referral
		var number, hospital, department, claimedBy *string
		var status, priority, category string
		if err := rows.Scan(&r.ID, &number, &status, &r.Version, &hospital, &department,
			&priority, &r.GreenChannel, &category, &r.SubmittedAt, &r.QueuedAt, &claimedBy, &r.ClaimBy, &r.DecideBy); err != nil {
			return err
		}
		r.Number, r.ReceivingHospitalID, r.ReceivingDepartmentID, r.ClaimedBy = refStr(number), refStr(hospital), refStr(department), refStr(claimedBy)
		r.Status, r.Priority, r.GreenCategory = referral.Status(status), referral.Priority(priority), referral.Category(category)
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}
