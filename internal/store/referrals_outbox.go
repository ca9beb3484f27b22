package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"duikou/internal/sqldb"
	"duikou/referral"
)

// TakeOutbox returns up to limit unpublished messages of topic in the order
// written, for the transaction in ctx to publish and mark. On PostgreSQL the
// rows stay locked until that transaction ends and rows another relay holds
// are skipped, so relays on several instances share the work instead of
// repeating it. SQLite has a single writer already.
func (s *Referrals) TakeOutbox(ctx context.Context, topic string, limit int) ([]OutboxMessage, error) {
	q := `SELECT id, topic, key, payload, created_at, published_at
		FROM outbox WHERE published_at IS NULL AND topic = $1 ORDER BY id LIMIT $2`
	if s.db.Dialect() == sqldb.Postgres {
		q += ` FOR UPDATE SKIP LOCKED`
	}
	return dirQueryAll(ctx, s.db, q, []any{topic, limit}, func(r sqldb.Rows) (OutboxMessage, error) {
		var m OutboxMessage
		err := r.Scan(&m.ID, &m.Topic, &m.Key, &m.Payload, &m.CreatedAt, &m.PublishedAt)
		return m, err
	})
}

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
