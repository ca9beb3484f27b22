package referrals

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"duikou/internal/audit"
	"duikou/internal/sqldb"
	"duikou/internal/store"
	"duikou/referral"
)

// Outbox topics of escalations: TopicEscalated feeds the relay (desk and
// supervisor push, queue marks); TopicEscalationWebhook feeds the webhook,
// written only when one is configured.
const (
	TopicEscalated         = "referral.escalated"
	TopicEscalationWebhook = "referral.escalated.webhook"
)

// ActionEscalate is the audit action of a raised escalation.
const ActionEscalate = "referral.escalate"

// WatcherStore is what the deadline watcher needs of storage;
// store.Referrals implements it.
type WatcherStore interface {
	DueTickets(ctx context.Context, now time.Time, limit int) ([]referral.Referral, error)
	GetForUpdate(ctx context.Context, id string) (referral.Referral, error)
	AddEscalation(ctx context.Context, e referral.Escalation) (bool, error)
	EnqueueOutbox(ctx context.Context, topic, key, payload string, at time.Time) error
	Unstamped(ctx context.Context, limit int) ([]string, error)
	SetDeadlines(ctx context.Context, id string, claimBy, decideBy *time.Time) error
}

var _ WatcherStore = (*store.Referrals)(nil)

// Leader is the election the watcher runs under; kv.Lease implements it.
type Leader interface {
	Hold(ctx context.Context) (bool, error)
	Release(ctx context.Context) error
}

// Escalated is the message of a raised escalation, in the outbox and, as it
// is, the webhook's body. It names the ticket, never the patient.
type Escalated struct {
	// ID is the escalation's id: every delivery of it carries the same, so
	// receivers drop repeats (delivery is at least once).
	ID            string              `json:"id"`
	Event         string              `json:"event"` // always referral.escalated
	ReferralID    string              `json:"referral_id"`
	Number        string              `json:"number"`
	HospitalID    string              `json:"hospital_id"` // the receiving hospital, whose desk must act
	DepartmentID  string              `json:"department_id"`
	Kind          referral.BreachKind `json:"kind"`
	Due           time.Time           `json:"due"`
	RaisedAt      time.Time           `json:"raised_at"`
	Priority      referral.Priority   `json:"priority"`
	GreenChannel  bool                `json:"green_channel"`
	GreenCategory referral.Category   `json:"green_category,omitempty"`
	Status        referral.Status     `json:"status"`
}

// Source is another domain's deadlines, watched under the same lease as the
// referrals' (remote sessions: consults.Watcher). One leader loop serves
// every domain, so one instance watches at a time and a new domain adds a
// tick, not another election. A source keeps the watcher's rules: it keeps
// no state between ticks, raises each breach once on a unique key, and
// writes its escalation, outbox and audit rows in one transaction.
//
// Housekeeping that one instance should do at a time is a source too
// (OutboxPurge): its Tick does what is due, raises nothing, and is bounded
// so the deadlines are not kept waiting; what state it keeps only saves
// work, and a new leader does without it.
type Source interface {
	// Name says which deadlines a failure is about, in the log.
	Name() string
	// Lead prepares a new leadership: called once when this instance takes
	// the lease (and again after a lost one), before the first Tick, e.g. to
	// stamp deadlines on rows written before they were stored.
	Lead(ctx context.Context) error
	// Tick raises every breach due now that has not been raised (or does
	// the housekeeping due now), and returns how many escalations this call
	// raised.
	Tick(ctx context.Context) (int, error)
}

// WatcherOptions tune the watcher; zero values take the defaults.
type WatcherOptions struct {
	// Webhook: also write each escalation for the webhook.
	Webhook bool
	// Sources are further domains ticked by the leader after the referrals.
	Sources []Source
	// Batch bounds the tickets one query reads (default 200).
	Batch int
	// Now is the clock (default sqldb.Now).
	Now func() time.Time
	Log *slog.Logger
}

// Watcher raises an escalation for every deadline a ticket overruns.
//
// Exactly one instance watches at a time: Run holds a Redis lease (see
// kv.Lease) and only its holder ticks. A Redis lease rather than a
// PostgreSQL advisory lock, because it works the same on the embedded
// default (SQLite has no advisory locks; the embedded Redis is the same code
// path as real Redis) and because a session advisory lock needs a connection
// pinned for the life of the leadership, which the pooled sqldb.DB does not
// expose. The lease does not fence a paused leader, so correctness does not
// rest on it: an escalation's deadline (ticket, kind, due) is a unique key,
// inserted with ON CONFLICT DO NOTHING, and its outbox and audit rows are
// written only by the transaction whose insert took effect. Two watchers
// ticking at once therefore still raise each breach once; the lease only
// saves the duplicate work.
//
// The watcher keeps no state of its own: each tick asks the database for
// deadlines passed and not yet escalated, so a watcher stopped for a while
// (or a new leader after a crash) raises what was missed on its first tick
// and never repeats what was raised. A breach never changes the ticket: the
// watcher writes escalations, outbox rows and audit rows only.
type Watcher struct {
	db        sqldb.DB
	st        WatcherStore
	audit     audit.Recorder
	leader    Leader
	deadlines referral.Deadlines
	opt       WatcherOptions
	stamped   bool // old tickets' deadlines stamped since this watcher led
}

// NewWatcher builds the watcher. deadlines must be the service's: they
// stamp tickets queued before deadlines were stored.
func NewWatcher(db sqldb.DB, st WatcherStore, rec audit.Recorder, leader Leader, deadlines referral.Deadlines, opt WatcherOptions) *Watcher {
	if opt.Batch <= 0 {
		opt.Batch = 200
	}
	if opt.Now == nil {
		opt.Now = sqldb.Now
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{db: db, st: st, audit: rec, leader: leader, deadlines: deadlines, opt: opt}
}

// NewInstanceID names one running instance, e.g. as a lease owner.
func NewInstanceID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Step takes or renews the lease and, when this instance holds it, ticks
// the referrals and then every further source. A source that fails does not
// keep the others from ticking; its error is returned with theirs.
func (w *Watcher) Step(ctx context.Context) (leader bool, raised int, err error) {
	leader, err = w.leader.Hold(ctx)
	if err != nil || !leader {
		w.stamped = false // a later leadership stamps again: another leader may have run meanwhile
		return false, 0, err
	}
	if !w.stamped {
		errs := []error{w.StampOld(ctx)}
		for _, src := range w.opt.Sources {
			if err := src.Lead(ctx); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", src.Name(), err))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return true, 0, err
		}
		w.stamped = true
	}
	raised, err = w.Tick(ctx)
	errs := []error{err}
	for _, src := range w.opt.Sources {
		n, err := src.Tick(ctx)
		raised += n
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", src.Name(), err))
		}
	}
	return true, raised, errors.Join(errs...)
}

// Run steps every period until ctx ends, then gives the lease up so that
// another instance takes over without waiting for it to expire.
func (w *Watcher) Run(ctx context.Context, period time.Duration) {
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := w.leader.Release(rctx); err != nil {
			w.opt.Log.Warn("releasing the deadline watcher's lease", "err", err)
		}
	}()
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		if _, n, err := w.Step(ctx); err != nil && ctx.Err() == nil {
			w.opt.Log.WarnContext(ctx, "watching deadlines", "err", err)
		} else if n > 0 {
			w.opt.Log.InfoContext(ctx, "deadlines escalated", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick raises every breach due at now that has not been raised, and returns
// how many this call raised.
func (w *Watcher) Tick(ctx context.Context) (int, error) {
	now := w.opt.Now()
	total := 0
	seen := map[string]bool{}
	for {
		due, err := w.st.DueTickets(ctx, now, w.opt.Batch)
		if err != nil {
			return total, fmt.Errorf("deadline watcher: %w", err)
		}
		fresh := 0
		for _, r := range due {
			if seen[r.ID] {
				continue // judged already in this tick: it changed under us
			}
			seen[r.ID], fresh = true, fresh+1
			n, err := w.escalate(ctx, r.ID, now)
			if err != nil {
				return total, fmt.Errorf("deadline watcher: referral %s: %w", r.ID, err)
			}
			total += n
		}
		if len(due) < w.opt.Batch || fresh == 0 {
			return total, nil
		}
	}
}

// escalate judges one ticket under its row lock, so the status recorded is
// the one it had when the breach was raised, and raises each new breach
// with its outbox and audit rows in one transaction.
func (w *Watcher) escalate(ctx context.Context, id string, now time.Time) (int, error) {
	n := 0
	err := w.db.InTx(ctx, func(ctx context.Context) error {
		n = 0
		r, err := w.st.GetForUpdate(ctx, id)
		if err != nil {
			return err
		}
		for _, b := range w.deadlines.Breaches(r, now) {
			e := referral.Escalation{ID: newID(), ReferralID: r.ID, Kind: b.Kind, Due: b.Due, RaisedAt: now, Status: r.Status}
			added, err := w.st.AddEscalation(ctx, e)
			if err != nil {
				return err
			}
			if !added {
				continue // raised already, by another watcher or before a restart
			}
			msg, err := json.Marshal(Escalated{ID: e.ID, Event: TopicEscalated, ReferralID: r.ID, Number: r.Number,
				HospitalID: r.ReceivingHospitalID, DepartmentID: r.ReceivingDepartmentID, Kind: e.Kind, Due: e.Due,
				RaisedAt: now, Priority: r.Priority, GreenChannel: r.GreenChannel, GreenCategory: r.GreenCategory, Status: r.Status})
			if err != nil {
				return err
			}
			if err := w.st.EnqueueOutbox(ctx, TopicEscalated, r.ID, string(msg), now); err != nil {
				return err
			}
			if w.opt.Webhook {
				if err := w.st.EnqueueOutbox(ctx, TopicEscalationWebhook, r.ID, string(msg), now); err != nil {
					return err
				}
			}
			if err := w.audit.Record(ctx, audit.Entry{
				At: now, ActorID: "system", ActorHospitalID: r.ReceivingHospitalID, Action: ActionEscalate,
				ResourceType: "referral", ResourceID: r.ID, PatientID: r.PatientID, Outcome: audit.Success,
				Detail: fmt.Sprintf("%s deadline %s passed while %s", e.Kind, e.Due.UTC().Format(time.RFC3339), r.Status),
			}); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// StampOld writes the deadlines on open tickets queued before they were
// stored on the row (an installation upgraded with tickets waiting), so the
// watcher finds them too. It reads only open tickets without deadlines.
func (w *Watcher) StampOld(ctx context.Context) error {
	for {
		ids, err := w.st.Unstamped(ctx, w.opt.Batch)
		if err != nil {
			return fmt.Errorf("stamping deadlines: %w", err)
		}
		for _, id := range ids {
			err := w.db.InTx(ctx, func(ctx context.Context) error {
				r, err := w.st.GetForUpdate(ctx, id)
				if err != nil || r.DecideBy != nil {
					return err
				}
				r = w.deadlines.Stamp(r)
				return w.st.SetDeadlines(ctx, r.ID, r.ClaimBy, r.DecideBy)
			})
			if err != nil {
				return fmt.Errorf("stamping deadlines of %s: %w", id, err)
			}
		}
		if len(ids) < w.opt.Batch {
			return nil
		}
	}
}

// escalationID reads the id and event of an escalation message (a
// referral's Escalated or another source's of the same shape), or "".
func escalationID(payload []byte) (id, event string) {
	var e struct {
		ID    string `json:"id"`
		Event string `json:"event"`
	}
	if json.Unmarshal(payload, &e) != nil {
		return "", ""
	}
	return e.ID, e.Event
}
