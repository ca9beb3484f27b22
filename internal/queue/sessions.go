package queue

import (
	"context"
	"encoding/json"
	"time"

	"duikou/consult"
)

// SessionNotice tells a hospital that a remote session it takes part in
// changed, or that a request it must answer passed its deadline. Like
// Notice it carries no patient data, only what a screen needs to show the
// new state or decide to read the session again.
type SessionNotice struct {
	Type    string          `json:"type"` // SessionChanged or SessionEscalated
	ID      string          `json:"id"`
	Kind    consult.Kind    `json:"kind"`
	Urgency consult.Urgency `json:"urgency,omitempty"`
	Status  consult.Status  `json:"status"`
	Version int             `json:"version,omitempty"`
	// RespondBy is the request's response deadline while it waits.
	RespondBy *time.Time `json:"respond_by,omitempty"`
	// EscalationID and Due name the breach of an escalated notice; a
	// screen drops a repeat by its id (delivery is at least once).
	EscalationID string             `json:"escalation_id,omitempty"`
	Breach       consult.BreachKind `json:"breach,omitempty"`
	Due          *time.Time         `json:"due,omitempty"`
	At           time.Time          `json:"at"`
}

// Session notice types.
const (
	SessionChanged   = "changed"
	SessionEscalated = "escalated"
)

// sessionsChannel is the hospital's session-change channel, beside its
// referral channels: the same per-hospital pub/sub, so a screen subscribes
// to what it shows only.
func (q *Referrals) sessionsChannel(hospitalID string) string {
	return q.conn.Key("q", "sc", hospitalID)
}

// PublishSession tells every screen watching hospitalID's remote sessions,
// on any instance, that one changed. At most once per call, like
// PublishChange: a screen that misses a notice sees the state on its next
// read, and the same change may be published twice (clients compare
// versions).
func (q *Referrals) PublishSession(ctx context.Context, hospitalID string, n SessionNotice) error {
	if n.Type == "" {
		n.Type = SessionChanged
	}
	if n.At.IsZero() {
		n.At = time.Now().UTC()
	}
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	return q.conn.Publish(ctx, q.sessionsChannel(hospitalID), b).Err()
}

// SubscribeSessions delivers the session notices of hospitalID until stop
// is called or ctx ends, like Subscribe.
func (q *Referrals) SubscribeSessions(ctx context.Context, hospitalID string) (<-chan SessionNotice, func(), error) {
	return subscribe[SessionNotice](ctx, q.conn, q.sessionsChannel(hospitalID))
}
