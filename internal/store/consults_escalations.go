package store

import (
	"context"
	"time"

	"duikou/consult"
	"duikou/internal/sqldb"
)

// Remote sessions' response deadlines and escalations (migration 0011), and
// the shared outbox as the session relay reads it: the same shapes as the
// referral store's, for the same watcher and relay patterns.

// waitingSession is the one state in which a session's response deadline
// runs, as an SQL literal matching the partial index of migration 0011 and
// the rule of consult.Deadlines.Breaches.
const waitingSession = `'` + string(consult.Requested) + `'`

// DueSessions returns the ids of up to limit requests still waiting for an
// answer whose stamped deadline passed before now and that have no
// escalation for it yet. The partial index on respond_by finds them without
// reading the other open requests, and a breach already raised is left out,
// so a watcher's tick costs what is newly due. The caller judges each
// session again under its lock: this only narrows the search.
func (c *Consults) DueSessions(ctx context.Context, now time.Time, limit int) ([]string, error) {
	return dirQueryAll(ctx, c.db, `SELECT s.id FROM consult_sessions s
		WHERE s.status = `+waitingSession+` AND s.respond_by < $1 AND NOT EXISTS (SELECT 1 FROM session_escalations e
			WHERE e.session_id = s.id AND e.kind = 'respond' AND e.due_at = s.respond_by)
		ORDER BY s.id LIMIT $2`, []any{now, limit},
		func(rows sqldb.Rows) (string, error) {
			var id string
			err := rows.Scan(&id)
			return id, err
		})
}

// AddSessionEscalation records e unless its deadline (session, kind, due)
// already has one; added says whether this call recorded it. Concurrent
// callers on PostgreSQL wait for each other on the unique key, so exactly
// one adds it.
func (c *Consults) AddSessionEscalation(ctx context.Context, e consult.Escalation) (added bool, err error) {
	n, err := c.db.Exec(ctx, `INSERT INTO session_escalations (id, session_id, kind, due_at, raised_at, status)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (session_id, kind, due_at) DO NOTHING`,
		e.ID, e.SessionID, string(e.Kind), e.Due, e.RaisedAt, string(e.Status))
	return n == 1, err
}

// SessionEscalations returns the session's escalations in the order raised.
func (c *Consults) SessionEscalations(ctx context.Context, sessionID string) ([]consult.Escalation, error) {
	return dirQueryAll(ctx, c.db, `SELECT id, session_id, kind, due_at, raised_at, status
		FROM session_escalations WHERE session_id = $1 ORDER BY raised_at, id`, []any{sessionID},
		func(rows sqldb.Rows) (consult.Escalation, error) {
			var e consult.Escalation
			var kind, status string
			err := rows.Scan(&e.ID, &e.SessionID, &kind, &e.Due, &e.RaisedAt, &status)
			e.Kind, e.Status = consult.BreachKind(kind), consult.Status(status)
			return e, err
		})
}

// UnstampedSessions returns up to limit waiting requests without a stamped
// deadline: requests made before deadlines were stored on the row. A booked
// expert clinic has none to stamp and is left out.
func (c *Consults) UnstampedSessions(ctx context.Context, limit int) ([]string, error) {
	return dirQueryAll(ctx, c.db, `SELECT id FROM consult_sessions
		WHERE status = `+waitingSession+` AND respond_by IS NULL AND kind <> '`+string(consult.ExpertClinic)+`'
		ORDER BY id LIMIT $1`, []any{limit},
		func(rows sqldb.Rows) (string, error) {
			var id string
			err := rows.Scan(&id)
			return id, err
		})
}

// SetRespondBy writes the session's stamped deadline and nothing else: it
// is derived from the request's time and urgency, so the version stays.
func (c *Consults) SetRespondBy(ctx context.Context, id string, respondBy *time.Time) error {
	_, err := c.db.Exec(ctx, `UPDATE consult_sessions SET respond_by = $2 WHERE id = $1`, id, respondBy)
	return err
}

// TakeOutbox returns up to limit unpublished outbox messages of topic for
// the transaction in ctx to publish and mark (see Referrals.TakeOutbox: the
// outbox is one table).
func (c *Consults) TakeOutbox(ctx context.Context, topic string, limit int) ([]OutboxMessage, error) {
	return NewReferrals(c.db).TakeOutbox(ctx, topic, limit)
}

// MarkPublished records that the outbox messages with ids were delivered.
func (c *Consults) MarkPublished(ctx context.Context, ids []int64, at time.Time) error {
	return NewReferrals(c.db).MarkPublished(ctx, ids, at)
}
