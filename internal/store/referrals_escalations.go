package store

import (
	"context"
	"sort"
	"strings"
	"time"

	"duikou/internal/sqldb"
	"duikou/referral"
)

// DueTickets returns up to limit open tickets with a deadline stamped before
// now that has no escalation yet: waiting unclaimed past claim_by, or
// undecided past decide_by. The partial indexes on the deadlines find them
// without reading the other open tickets, and a breach already raised is
// left out, so a watcher's tick costs what is newly due. The caller judges
// each ticket again under its lock (referral.Deadlines.Breaches): this only
// narrows the search. Only the queue's fields and the deadlines are filled
// in.
func (s *Referrals) DueTickets(ctx context.Context, now time.Time, limit int) ([]referral.Referral, error) {
	cols := `r.id, r.number, r.status, r.version, r.receiving_hospital_id, r.receiving_department_id,
	r.priority, r.green_channel, r.green_category, r.submitted_at, r.queued_at, r.claimed_by, r.claim_by, r.decide_by`
	// The statuses are literals, as in the partial indexes' predicates: a
	// parameter would keep the planner (PostgreSQL's generic plan of a
	// prepared statement, SQLite's) from proving the index applies.
	q := `SELECT ` + cols + ` FROM referrals r
		WHERE r.status = ` + waitingUnclaimed + ` AND r.claim_by < $1 AND NOT EXISTS (SELECT 1 FROM referral_escalations e
			WHERE e.referral_id = r.id AND e.kind = 'claim' AND e.due_at = r.claim_by)
		UNION
		SELECT ` + cols + ` FROM referrals r
		WHERE r.status IN ` + undecided + ` AND r.decide_by < $1 AND NOT EXISTS (SELECT 1 FROM referral_escalations e
			WHERE e.referral_id = r.id AND e.kind = 'decide' AND e.due_at = r.decide_by)
		ORDER BY id LIMIT $2`
	return dirQueryAll(ctx, s.db, q, []any{now, limit},
		func(rows sqldb.Rows) (referral.Referral, error) {
			var r referral.Referral
			var number, hospital, department, claimedBy *string
			var status, priority, category string
			err := rows.Scan(&r.ID, &number, &status, &r.Version, &hospital, &department,
				&priority, &r.GreenChannel, &category, &r.SubmittedAt, &r.QueuedAt, &claimedBy, &r.ClaimBy, &r.DecideBy)
			r.Number, r.ReceivingHospitalID, r.ReceivingDepartmentID, r.ClaimedBy = refStr(number), refStr(hospital), refStr(department), refStr(claimedBy)
			r.Status, r.Priority, r.GreenCategory = referral.Status(status), referral.Priority(priority), referral.Category(category)
			return r, err
		})
}

// The states in which a deadline runs, as SQL literals matching the partial
// indexes of migration 0008 and the rule of referral.Deadlines.Breaches.
const (
	waitingUnclaimed = `'` + string(referral.Submitted) + `'`
	undecided        = `('` + string(referral.Submitted) + `', '` + string(referral.Claimed) + `')`
)

// AddEscalation records e unless its deadline (ticket, kind, due) already
// has one; added says whether this call recorded it. Concurrent callers on
// PostgreSQL wait for each other on the unique key, so exactly one adds it.
func (s *Referrals) AddEscalation(ctx context.Context, e referral.Escalation) (added bool, err error) {
	n, err := s.db.Exec(ctx, `INSERT INTO referral_escalations (id, referral_id, kind, due_at, raised_at, status)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (referral_id, kind, due_at) DO NOTHING`,
		e.ID, e.ReferralID, string(e.Kind), e.Due, e.RaisedAt, string(e.Status))
	return n == 1, err
}

// Escalations returns the ticket's escalations in the order raised.
func (s *Referrals) Escalations(ctx context.Context, referralID string) ([]referral.Escalation, error) {
	return dirQueryAll(ctx, s.db, `SELECT id, referral_id, kind, due_at, raised_at, status
		FROM referral_escalations WHERE referral_id = $1 ORDER BY raised_at, id`, []any{referralID},
		func(rows sqldb.Rows) (referral.Escalation, error) {
			var e referral.Escalation
			var kind, status string
			err := rows.Scan(&e.ID, &e.ReferralID, &kind, &e.Due, &e.RaisedAt, &status)
			e.Kind, e.Status = referral.BreachKind(kind), referral.Status(status)
			return e, err
		})
}

// OpenEscalations lists, per open ticket, the kinds of its current deadlines
// (the ones stamped on it now) that have been escalated: what a rebuilt
// queue marks as breached.
func (s *Referrals) OpenEscalations(ctx context.Context) (map[string][]referral.BreachKind, error) {
	type pair struct{ id, kind string }
	ps, err := dirQueryAll(ctx, s.db, `SELECT r.id, e.kind FROM referrals r
		JOIN referral_escalations e ON e.referral_id = r.id
		WHERE r.status IN `+undecided+` AND ((e.kind = 'claim' AND e.due_at = r.claim_by) OR (e.kind = 'decide' AND e.due_at = r.decide_by))`,
		nil,
		func(rows sqldb.Rows) (pair, error) {
			var p pair
			err := rows.Scan(&p.id, &p.kind)
			return p, err
		})
	if err != nil {
		return nil, err
	}
	out := map[string][]referral.BreachKind{}
	for _, p := range ps {
		out[p.id] = append(out[p.id], referral.BreachKind(p.kind))
	}
	for _, ks := range out {
		sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	}
	return out, nil
}

// Unstamped returns up to limit open tickets without stamped deadlines:
// tickets queued before the deadlines were stored on the row.
func (s *Referrals) Unstamped(ctx context.Context, limit int) ([]string, error) {
	return dirQueryAll(ctx, s.db, `SELECT id FROM referrals
		WHERE status IN `+undecided+` AND decide_by IS NULL AND queued_at IS NOT NULL ORDER BY id LIMIT $1`,
		[]any{limit},
		func(rows sqldb.Rows) (string, error) {
			var id string
			err := rows.Scan(&id)
			return id, err
		})
}

// SetDeadlines writes the ticket's stamped deadlines and nothing else: they
// are derived from its queue time and band, so the version stays.
func (s *Referrals) SetDeadlines(ctx context.Context, id string, claimBy, decideBy *time.Time) error {
	_, err := s.db.Exec(ctx, `UPDATE referrals SET claim_by = $2, decide_by = $3 WHERE id = $1`, id, claimBy, decideBy)
	return err
}

// ClaimOutbox takes up to limit unpublished messages of topic that are due
// for an attempt at now (and were not given up: FailOutbox), and holds them
// until hold: another consumer (on
// any instance) skips them meanwhile, and a consumer that dies mid-delivery
// leaves them to be tried again after hold. It counts the attempt. It runs
// in its own short transaction, so the delivery itself (an HTTP call) holds
// no database lock.
func (s *Referrals) ClaimOutbox(ctx context.Context, topic string, limit int, now, hold time.Time) ([]OutboxMessage, error) {
	lock := ""
	if s.db.Dialect() == sqldb.Postgres {
		lock = ` FOR UPDATE SKIP LOCKED`
	}
	ms, err := dirQueryAll(ctx, s.db, `UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $3
		WHERE id IN (SELECT id FROM outbox WHERE `+outboxPending+` AND topic = $1
			AND (next_attempt_at IS NULL OR next_attempt_at <= $2) ORDER BY id LIMIT $4`+lock+`)
		RETURNING id, topic, key, payload, created_at, published_at, attempts`,
		[]any{topic, now, hold, limit}, func(r sqldb.Rows) (OutboxMessage, error) {
			var m OutboxMessage
			err := r.Scan(&m.ID, &m.Topic, &m.Key, &m.Payload, &m.CreatedAt, &m.PublishedAt, &m.Attempts)
			return m, err
		})
	sort.Slice(ms, func(i, j int) bool { return ms[i].ID < ms[j].ID })
	return ms, err
}

// RetryOutbox leaves a message whose delivery failed for another attempt at
// at, noting why it failed.
func (s *Referrals) RetryOutbox(ctx context.Context, id int64, at time.Time, reason string) error {
	_, err := s.db.Exec(ctx, `UPDATE outbox SET next_attempt_at = $2, last_error = $3 WHERE id = $1 AND published_at IS NULL`,
		id, at, outboxReason(reason))
	return err
}

// FailOutbox gives up a message whose delivery failed for the last time:
// it is never claimed again, and it stays in the outbox with when it was
// given up, its attempts and why the last one failed (unpublished, so no
// purge deletes it). A message delivered meanwhile stays delivered.
func (s *Referrals) FailOutbox(ctx context.Context, id int64, at time.Time, reason string) error {
	_, err := s.db.Exec(ctx, `UPDATE outbox SET failed_at = $2, next_attempt_at = NULL, last_error = $3
		WHERE id = $1 AND published_at IS NULL`, id, at, outboxReason(reason))
	return err
}

// outboxReason bounds a failure's text as stored.
func outboxReason(reason string) string {
	if len(reason) > 500 {
		reason = strings.ToValidUTF8(reason[:500], "")
	}
	return reason
}
