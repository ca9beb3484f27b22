package consults

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"duikou/consult"
	"duikou/internal/audit"
	"duikou/internal/sqldb"
	"duikou/internal/store"
)

// Outbox topics of session escalations: TopicEscalated feeds the relay (the
// push to the target hospital); TopicEscalationWebhook feeds the escalation
// webhook, written only when one is configured.
const (
	TopicEscalated         = "consult.escalated"
	TopicEscalationWebhook = "consult.escalated.webhook"
)

// ActionEscalate is the audit action of a raised session escalation.
const ActionEscalate = "consult.escalate"

// WatcherStore is what the deadline watcher needs of storage;
// store.Consults implements it.
type WatcherStore interface {
	DueSessions(ctx context.Context, now time.Time, limit int) ([]string, error)
	SessionForUpdate(ctx context.Context, id string) (consult.Session, error)
	AddSessionEscalation(ctx context.Context, e consult.Escalation) (bool, error)
	EnqueueOutbox(ctx context.Context, topic, key, payload string, at time.Time) error
	UnstampedSessions(ctx context.Context, limit int) ([]string, error)
	SetRespondBy(ctx context.Context, id string, respondBy *time.Time) error
}

var _ WatcherStore = (*store.Consults)(nil)

// Escalated is the message of a raised session escalation, in the outbox
// and, as it is, the webhook's body. It names the session and the hospitals,
// never the patient, the question or the clinical summary.
type Escalated struct {
	// ID is the escalation's id: every delivery of it carries the same, so
	// receivers drop repeats (delivery is at least once).
	ID        string `json:"id"`
	Event     string `json:"event"` // always consult.escalated
	SessionID string `json:"session_id"`
	// HospitalID is the target hospital, whose specialists must answer.
	HospitalID           string             `json:"hospital_id"`
	DepartmentIDs        []string           `json:"department_ids"`
	RequestingHospitalID string             `json:"requesting_hospital_id"`
	SessionKind          consult.Kind       `json:"session_kind"`
	Urgency              consult.Urgency    `json:"urgency"`
	Kind                 consult.BreachKind `json:"kind"`
	Due                  time.Time          `json:"due"`
	RaisedAt             time.Time          `json:"raised_at"`
	Status               consult.Status     `json:"status"`
}

// WatcherOptions tune the watcher; zero values take the defaults.
type WatcherOptions struct {
	// Webhook: also write each escalation for the webhook.
	Webhook bool
	// Batch bounds the sessions one query reads (default 200).
	Batch int
	// Now is the clock (default sqldb.Now).
	Now func() time.Time
	Log *slog.Logger
}

// Watcher raises an escalation for every remote-session request left
// unanswered past its response deadline. It is a source of the deadline
// watcher (referrals.Watcher, which satisfies referrals.Source): the leader
// of that one Redis lease ticks it, so there is one election for every
// domain's deadlines.
//
// As with referrals, correctness does not rest on the lease: an
// escalation's deadline (session, kind, due) is a unique key inserted with
// ON CONFLICT DO NOTHING, and only the transaction whose insert took effect
// writes the outbox and audit rows. Two watchers ticking at once still raise
// a breach once, and the watcher keeps no state: a watcher stopped for a
// while raises what it missed on its first tick, and never repeats. A breach
// never changes the session.
type Watcher struct {
	db        sqldb.DB
	st        WatcherStore
	audit     audit.Recorder
	deadlines consult.Deadlines
	opt       WatcherOptions
}

// NewWatcher builds the watcher. deadlines must be the service's: they stamp
// requests made before deadlines were stored.
func NewWatcher(db sqldb.DB, st WatcherStore, rec audit.Recorder, deadlines consult.Deadlines, opt WatcherOptions) *Watcher {
	if opt.Batch <= 0 {
		opt.Batch = 200
	}
	if opt.Now == nil {
		opt.Now = sqldb.Now
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{db: db, st: st, audit: rec, deadlines: deadlines, opt: opt}
}

// Name names the watcher's deadlines in the log.
func (w *Watcher) Name() string { return "remote-session deadlines" }

// Lead stamps requests made before deadlines were stored, so the watcher
// finds them too.
func (w *Watcher) Lead(ctx context.Context) error { return w.StampOld(ctx) }

// Tick raises every breach due at now that has not been raised, and returns
// how many this call raised.
func (w *Watcher) Tick(ctx context.Context) (int, error) {
	now := w.opt.Now()
	total := 0
	seen := map[string]bool{}
	for {
		due, err := w.st.DueSessions(ctx, now, w.opt.Batch)
		if err != nil {
			return total, fmt.Errorf("session deadline watcher: %w", err)
		}
		fresh := 0
		for _, id := range due {
			if seen[id] {
				continue // judged already in this tick: its deadline is not breached under its lock
			}
			seen[id], fresh = true, fresh+1
			n, err := w.escalate(ctx, id, now)
			if err != nil {
				return total, fmt.Errorf("session deadline watcher: session %s: %w", id, err)
			}
			total += n
		}
		if len(due) < w.opt.Batch || fresh == 0 {
			return total, nil
		}
	}
}

// escalate judges one session under its row lock, so the status recorded is
// the one it had when the breach was raised, and raises each new breach with
// its outbox and audit rows in one transaction.
func (w *Watcher) escalate(ctx context.Context, id string, now time.Time) (int, error) {
	n := 0
	err := w.db.InTx(ctx, func(ctx context.Context) error {
		n = 0
		x, err := w.st.SessionForUpdate(ctx, id)
		if err != nil {
			return err
		}
		for _, b := range w.deadlines.Breaches(x, now) {
			e := consult.Escalation{ID: newID(), SessionID: x.ID, Kind: b.Kind, Due: b.Due, RaisedAt: now, Status: x.Status}
			added, err := w.st.AddSessionEscalation(ctx, e)
			if err != nil {
				return err
			}
			if !added {
				continue // raised already, by another watcher or before a restart
			}
			depts := x.TargetDepartmentIDs
			if depts == nil {
				depts = []string{}
			}
			msg, err := json.Marshal(Escalated{ID: e.ID, Event: TopicEscalated, SessionID: x.ID,
				HospitalID: x.TargetHospitalID, DepartmentIDs: depts, RequestingHospitalID: x.RequestingHospitalID,
				SessionKind: x.Kind, Urgency: x.Urgency, Kind: e.Kind, Due: e.Due, RaisedAt: now, Status: x.Status})
			if err != nil {
				return err
			}
			if err := w.st.EnqueueOutbox(ctx, TopicEscalated, x.ID, string(msg), now); err != nil {
				return err
			}
			if w.opt.Webhook {
				if err := w.st.EnqueueOutbox(ctx, TopicEscalationWebhook, x.ID, string(msg), now); err != nil {
					return err
				}
			}
			if err := w.audit.Record(ctx, audit.Entry{
				At: now, ActorID: "system", ActorHospitalID: x.TargetHospitalID, Action: ActionEscalate,
				ResourceType: "consult_session", ResourceID: x.ID, PatientID: x.PatientID, Outcome: audit.Success,
				Detail: fmt.Sprintf("%s deadline %s passed while %s", e.Kind, e.Due.UTC().Format(time.RFC3339), x.Status),
			}); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// StampOld writes the response deadline on waiting requests made before it
// was stored on the row (an installation upgraded with requests waiting).
// It reads only waiting requests without one.
func (w *Watcher) StampOld(ctx context.Context) error {
	for {
		ids, err := w.st.UnstampedSessions(ctx, w.opt.Batch)
		if err != nil {
			return fmt.Errorf("stamping session deadlines: %w", err)
		}
		stamped := 0
		for _, id := range ids {
			err := w.db.InTx(ctx, func(ctx context.Context) error {
				x, err := w.st.SessionForUpdate(ctx, id)
				if err != nil || x.RespondBy != nil {
					return err
				}
				x = w.deadlines.Stamp(x)
				if x.RespondBy != nil {
					stamped++
				}
				return w.st.SetRespondBy(ctx, x.ID, x.RespondBy)
			})
			if err != nil {
				return fmt.Errorf("stamping the deadline of session %s: %w", id, err)
			}
		}
		// A batch none of which could be stamped would come back whole:
		// stop rather than loop on it.
		if len(ids) < w.opt.Batch || stamped == 0 {
			return nil
		}
	}
}
