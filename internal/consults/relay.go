package consults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"duikou/consult"
	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/queue"
	"duikou/internal/sqldb"
	"duikou/internal/store"
)

// RelayStore is what the relay needs of storage; store.Consults implements
// it.
type RelayStore interface {
	TakeOutbox(ctx context.Context, topic string, limit int) ([]store.OutboxMessage, error)
	MarkPublished(ctx context.Context, ids []int64, at time.Time) error
	Session(ctx context.Context, id string) (consult.Session, error)
}

var _ RelayStore = (*store.Consults)(nil)

// Publisher is the per-hospital session channel; queue.Referrals implements
// it.
type Publisher interface {
	PublishSession(ctx context.Context, hospitalID string, n queue.SessionNotice) error
}

// relayBatch bounds the outbox rows one transaction takes.
const relayBatch = 500

// Relay announces remote-session changes and escalations from the outbox,
// after their transaction committed: a change to every hospital taking part
// (requesting, target, invited), an escalation to the target hospital, whose
// specialists must answer and whose supervisors are told. Every instance may
// run it: on PostgreSQL a batch's rows stay locked while it is announced and
// other relays skip them. Each batch is marked published in the transaction
// that took it, so every row is announced at least once and none piles up.
type Relay struct {
	db  sqldb.DB
	st  RelayStore
	pub Publisher
	log *slog.Logger
	now func() time.Time
}

// NewRelay builds the relay.
func NewRelay(db sqldb.DB, st RelayStore, pub Publisher, log *slog.Logger) *Relay {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Relay{db: db, st: st, pub: pub, log: log, now: sqldb.Now}
}

// Flush announces unpublished changes, then escalations, until none is left
// and returns how many rows it took.
func (r *Relay) Flush(ctx context.Context) (int, error) {
	total := 0
	for _, t := range []struct {
		topic string
		apply func(context.Context, store.OutboxMessage) error
	}{{TopicChanged, r.applyChange}, {TopicEscalated, r.applyEscalation}} {
		for {
			n, err := r.flushBatch(ctx, t.topic, t.apply)
			total += n
			if err != nil {
				return total, err
			}
			if n < relayBatch {
				break
			}
		}
	}
	return total, nil
}

func (r *Relay) flushBatch(ctx context.Context, topic string, apply func(context.Context, store.OutboxMessage) error) (int, error) {
	n := 0
	err := r.db.InTx(ctx, func(ctx context.Context) error {
		msgs, err := r.st.TakeOutbox(ctx, topic, relayBatch)
		if err != nil {
			return err
		}
		ids := make([]int64, 0, len(msgs))
		for _, m := range msgs {
			if err := apply(ctx, m); err != nil {
				return err
			}
			ids = append(ids, m.ID)
		}
		n = len(msgs)
		return r.st.MarkPublished(ctx, ids, r.now())
	})
	if err != nil {
		return 0, fmt.Errorf("session relay: %w", err)
	}
	return n, nil
}

// applyChange tells every hospital taking part that the session changed. A
// message that does not decode is logged and passed over: retrying it would
// hold up every change behind it. A lost notice costs a screen one refresh,
// so a failed publish is logged and passed over too; only a failure to read
// storage keeps the batch for another attempt.
func (r *Relay) applyChange(ctx context.Context, m store.OutboxMessage) error {
	var c Change
	if err := json.Unmarshal([]byte(m.Payload), &c); err != nil {
		r.log.ErrorContext(ctx, "outbox message does not decode; skipped", "outbox_id", m.ID, "err", err)
		return nil
	}
	attendees := c.AttendeeHospitalIDs
	if attendees == nil && c.Kind == consult.TeachingRound {
		// Written before changes named the invited hospitals: read them.
		x, err := r.st.Session(ctx, c.ID)
		switch {
		case errors.Is(err, apperr.ErrNotFound):
		case err != nil:
			return err
		default:
			attendees = x.AttendeeHospitalIDs
		}
	}
	n := queue.SessionNotice{Type: queue.SessionChanged, ID: c.ID, Kind: c.Kind, Urgency: c.Urgency, Status: c.Status,
		Version: c.Version, At: r.now()}
	if c.Status == consult.Requested {
		n.RespondBy = c.RespondBy
	}
	for _, h := range parties(c.RequestingHospitalID, c.TargetHospitalID, attendees) {
		if err := r.pub.PublishSession(ctx, h, n); err != nil {
			r.warn(ctx, "publishing a session change notice", err)
		}
	}
	return nil
}

// parties are the hospitals taking part, each once.
func parties(requesting, target string, attendees []string) []string {
	var out []string
	seen := map[string]bool{"": true}
	for _, h := range append([]string{requesting, target}, attendees...) {
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}

// applyEscalation pushes the breach to the target hospital's channel, which
// its specialists' and supervisors' screens watch. A repeated push carries
// the same escalation id.
func (r *Relay) applyEscalation(ctx context.Context, m store.OutboxMessage) error {
	var e Escalated
	if err := json.Unmarshal([]byte(m.Payload), &e); err != nil {
		r.log.ErrorContext(ctx, "outbox message does not decode; skipped", "outbox_id", m.ID, "err", err)
		return nil
	}
	if e.HospitalID == "" {
		r.log.ErrorContext(ctx, "session escalation names no target hospital; skipped", "outbox_id", m.ID, "session_id", e.SessionID)
		return nil
	}
	due := e.Due
	if err := r.pub.PublishSession(ctx, e.HospitalID, queue.SessionNotice{Type: queue.SessionEscalated, ID: e.SessionID,
		Kind: e.SessionKind, Urgency: e.Urgency, Status: e.Status, EscalationID: e.ID, Breach: e.Kind, Due: &due,
		At: e.RaisedAt}); err != nil {
		r.warn(ctx, "publishing a session escalation", err)
	}
	return nil
}

// Run relays every period until ctx ends.
func (r *Relay) Run(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := r.Flush(ctx); err != nil {
				r.warn(ctx, "relaying session changes", err)
			}
		}
	}
}

// warn logs a failure unless the instance is stopping, which fails rounds
// on purpose.
func (r *Relay) warn(ctx context.Context, what string, err error) {
	if ctx.Err() == nil {
		r.log.WarnContext(ctx, what, "err", err)
	}
}

// Subscriber is the per-hospital session channel's receiving side;
// queue.Referrals implements it.
type Subscriber interface {
	SubscribeSessions(ctx context.Context, hospitalID string) (<-chan queue.SessionNotice, func(), error)
}

// ActionWatch is the audit action of opening a session stream: recorded
// once, when it opens, since what it carries names no patient.
const ActionWatch = "consult.watch"

// Changes streams the notices of the sessions a caller's hospital takes
// part in, and the escalations it must answer.
type Changes struct {
	svc *Service
	sub Subscriber
}

// NewChanges builds the session stream on the service (for its audit log
// and clock) and the per-hospital channel.
func NewChanges(svc *Service, sub Subscriber) *Changes { return &Changes{svc: svc, sub: sub} }

// Watch opens the stream of p's own hospital. Only hospital staff in
// clinical roles watch sessions: the notices name no patient, but they tell
// a hospital's consultation traffic.
func (c *Changes) Watch(ctx context.Context, p auth.Principal) (<-chan queue.SessionNotice, func(), error) {
	if p.HospitalID == "" || !p.Has(auth.ClinicalRoles...) {
		return nil, nil, apperr.Forbidden("only clinical staff of a hospital watch its remote sessions")
	}
	if err := c.svc.record(ctx, p, ActionWatch, "consult_stream", p.HospitalID, "", audit.Success, "live stream opened"); err != nil {
		return nil, nil, err
	}
	return c.sub.SubscribeSessions(ctx, p.HospitalID)
}
