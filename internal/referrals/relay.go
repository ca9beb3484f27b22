package referrals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/queue"
	"duikou/internal/sqldb"
	"duikou/internal/store"
	"duikou/referral"
)

// RelayStore is what the relay needs of storage; store.Referrals implements
// it.
type RelayStore interface {
	TakeOutbox(ctx context.Context, topic string, limit int) ([]store.OutboxMessage, error)
	MarkPublished(ctx context.Context, ids []int64, at time.Time) error
	ForEachQueued(ctx context.Context, fn func(referral.Referral) error) error
	OpenEscalations(ctx context.Context) (map[string][]referral.BreachKind, error)
}

var _ RelayStore = (*store.Referrals)(nil)

// relayBatch bounds the outbox rows one transaction takes.
const relayBatch = 500

// Relay feeds the desk queues from the outbox: every state change reaches
// Redis at least once, after its transaction committed. The queue applies a
// change only when it is newer than what it holds, so a change delivered
// twice, or by two instances at once, does no harm.
type Relay struct {
	db        sqldb.DB
	st        RelayStore
	q         *queue.Referrals
	deadlines referral.Deadlines
	log       *slog.Logger
	now       func() time.Time
	// wake asks Run for a round now; one pending wake is enough.
	wake chan struct{}
	// lost is set when Redis may have lost the queues (a batch found the
	// rebuild marker gone, or the connection to Redis was re-established):
	// Run then checks the marker and rebuilds.
	lost atomic.Bool
}

// NewRelay builds the relay. deadlines must be the referral service's, so
// rebuilt entries carry the same deadlines as relayed ones.
func NewRelay(db sqldb.DB, st RelayStore, q *queue.Referrals, deadlines referral.Deadlines, log *slog.Logger) *Relay {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Relay{db: db, st: st, q: q, deadlines: deadlines, log: log, now: sqldb.Now, wake: make(chan struct{}, 1)}
}

// Wake asks the running relay for a round now instead of at its next poll:
// the service calls it once a change has committed, so a ticket reaches the
// desks in a round trip rather than a poll period. It never blocks; wakes
// that arrive during a round are merged into one more round. Changes
// committed through other instances are delivered by their own relays, or
// by this one at its next poll.
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Flush delivers unpublished changes, then escalations, until none is left
// and returns how many it delivered. Each batch is marked published in the
// transaction that took it, after the queue accepted it, so a failure leaves
// the batch for the next attempt. Changes go first: an escalation's ticket
// is then on the board to be marked.
func (r *Relay) Flush(ctx context.Context) (int, error) {
	total := 0
	for _, t := range []struct {
		topic string
		apply func(context.Context, *queue.Batch, store.OutboxMessage) error
	}{{TopicChanged, r.apply}, {TopicEscalated, r.applyEscalation}} {
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

// flushBatch takes a batch of the topic's outbox rows and applies them to
// Redis in one pipeline (queue.Batch): one round trip, however many rows.
// The same pipeline tells whether the queues' rebuild marker is there; when
// it is not, Redis lost its data and the relay's next step is a rebuild.
func (r *Relay) flushBatch(ctx context.Context, topic string, apply func(context.Context, *queue.Batch, store.OutboxMessage) error) (int, error) {
	n := 0
	err := r.db.InTx(ctx, func(ctx context.Context) error {
		msgs, err := r.st.TakeOutbox(ctx, topic, relayBatch)
		if err != nil {
			return err
		}
		b := r.q.NewBatch()
		ids := make([]int64, 0, len(msgs))
		for _, m := range msgs {
			if err := apply(ctx, b, m); err != nil {
				return err
			}
			ids = append(ids, m.ID)
		}
		built, err := b.Exec(ctx)
		if err != nil {
			return err
		}
		if !built {
			r.lost.Store(true)
		}
		n = len(msgs)
		return r.st.MarkPublished(ctx, ids, r.now())
	})
	if err != nil {
		return 0, fmt.Errorf("outbox relay: %w", err)
	}
	return n, nil
}

// apply adds one change to the batch. A message that can never be applied
// (it does not decode, or names no desk) is logged and passed over: retrying
// it would hold up every change behind it.
func (r *Relay) apply(ctx context.Context, b *queue.Batch, m store.OutboxMessage) error {
	var c Change
	if err := json.Unmarshal([]byte(m.Payload), &c); err != nil {
		r.log.ErrorContext(ctx, "outbox message does not decode; skipped", "outbox_id", m.ID, "err", err)
		return nil
	}
	if err := r.applyQueue(ctx, b, m, c); err != nil {
		return err
	}
	r.notify(ctx, b, c)
	return nil
}

func (r *Relay) applyQueue(ctx context.Context, b *queue.Batch, m store.OutboxMessage, c Change) error {
	if !c.Status.InQueue() {
		// The change names the desk the ticket was at, so the removal
		// needs no look-up.
		_, err := b.Remove(c.ID, c.Version, c.ReceivingHospitalID, c.ReceivingDepartmentID)
		return err
	}
	if c.ReceivingHospitalID == "" || c.ReceivingDepartmentID == "" {
		r.log.ErrorContext(ctx, "queued ticket names no receiving desk; skipped", "outbox_id", m.ID, "referral_id", c.ID)
		return nil
	}
	_, err := b.Upsert(changeEntry(c))
	return err
}

// notify tells both parties' screens that the ticket changed. The receiving
// hospital hears of a ticket only once it was sent (a draft cancelled before
// submission was never its business). Notices are sent after the ticket's
// own transaction committed and before the outbox row is marked, so a change
// may be announced twice but never before it is visible; a lost notice costs
// a screen one refresh, so a notice that fails does not fail the batch.
func (r *Relay) notify(ctx context.Context, b *queue.Batch, c Change) {
	n := queue.Notice{ID: c.ID, Number: c.Number, Status: c.Status, Version: c.Version, At: r.now()}
	parties := []string{c.ReferringHospitalID}
	if c.SubmittedAt != nil && c.ReceivingHospitalID != c.ReferringHospitalID {
		parties = append(parties, c.ReceivingHospitalID)
	}
	for _, h := range parties {
		if h == "" {
			continue // written before changes named the referring hospital
		}
		if err := b.PublishChange(h, n); err != nil {
			r.warn(ctx, "publishing a referral change notice", err)
		}
	}
}

// applyEscalation marks the breach on the ticket's queue entry and pushes
// it to the receiving hospital's channel, which its desk screens and its
// supervisors watch. Delivered at least once: a repeated push carries the
// same escalation id, and marking again changes nothing.
func (r *Relay) applyEscalation(ctx context.Context, b *queue.Batch, m store.OutboxMessage) error {
	var e Escalated
	if err := json.Unmarshal([]byte(m.Payload), &e); err != nil {
		r.log.ErrorContext(ctx, "outbox message does not decode; skipped", "outbox_id", m.ID, "err", err)
		return nil
	}
	if e.HospitalID == "" {
		r.log.ErrorContext(ctx, "escalation names no receiving hospital; skipped", "outbox_id", m.ID, "referral_id", e.ReferralID)
		return nil
	}
	if _, err := b.MarkBreached(e.ReferralID, e.Kind, e.Due); err != nil {
		return err
	}
	due := e.Due
	return b.Publish(e.HospitalID, queue.Event{Type: queue.EventEscalated, ID: e.ReferralID, DepartmentID: e.DepartmentID,
		EscalationID: e.ID, Kind: e.Kind, Due: &due, Number: e.Number, Supervisors: true, At: e.RaisedAt})
}

// changeEntry is the board entry of a relayed change.
func changeEntry(c Change) queue.Entry {
	e := queue.Entry{ID: c.ID, Version: c.Version, HospitalID: c.ReceivingHospitalID, DepartmentID: c.ReceivingDepartmentID,
		Number: c.Number, Priority: c.Priority, Green: c.GreenChannel, Category: c.GreenCategory}
	if c.SubmittedAt != nil {
		e.WaitingSince = *c.SubmittedAt
	}
	if c.QueuedAt != nil {
		e.QueuedAt = *c.QueuedAt
	}
	if c.ClaimBy != nil {
		e.ClaimBy = *c.ClaimBy
	}
	if c.DecideBy != nil {
		e.DecideBy = *c.DecideBy
	}
	if c.Status == referral.Claimed {
		// The claim's lease belongs to the desk member who holds the ticket.
		e.Holder = c.ClaimedBy
	}
	return e
}

// ForEachQueued is the database's view of the queues, for a rebuild: the
// tickets with the deadlines stamped on them and the ones escalated.
func (r *Relay) ForEachQueued(ctx context.Context, fn func(queue.Entry) error) error {
	escalated, err := r.st.OpenEscalations(ctx)
	if err != nil {
		return err
	}
	return r.st.ForEachQueued(ctx, func(t referral.Referral) error {
		e := queue.Entry{ID: t.ID, Version: t.Version, HospitalID: t.ReceivingHospitalID, DepartmentID: t.ReceivingDepartmentID,
			Number: t.Number, Priority: t.Priority, Green: t.GreenChannel, Category: t.GreenCategory}
		if t.SubmittedAt != nil {
			e.WaitingSince = *t.SubmittedAt
		}
		if t.QueuedAt != nil {
			e.QueuedAt = *t.QueuedAt
		}
		if t.ClaimBy != nil && t.DecideBy != nil {
			e.ClaimBy, e.DecideBy = *t.ClaimBy, *t.DecideBy
		} else {
			e.ClaimBy, e.DecideBy = r.deadlines.Due(t) // not stamped yet: the watcher stamps it soon
		}
		e.Breached = escalated[t.ID]
		if t.Status == referral.Claimed {
			e.Holder = t.ClaimedBy
		}
		if e.HospitalID == "" || e.DepartmentID == "" {
			r.log.ErrorContext(ctx, "queued ticket names no receiving desk; left out of the queue", "referral_id", t.ID)
			return nil
		}
		return fn(e)
	})
}

var _ queue.OpenTickets = (*Relay)(nil)

// EnsureBuilt rebuilds the queues from the database when Redis lost them.
func (r *Relay) EnsureBuilt(ctx context.Context) (bool, error) {
	return r.q.EnsureBuilt(ctx, r)
}

// Run relays every period (and whenever woken) until ctx ends. It rebuilds
// the queues when Redis lost them: a restarted server shows when the queue's
// watch on Redis reconnects (queue.WatchConnection), a flushed one when a
// batch finds the rebuild marker gone, and every rebuildEvery the marker is
// checked in case neither happened. Relaying and rebuilding run in this one
// goroutine, so an instance never rebuilds while it is relaying.
func (r *Relay) Run(ctx context.Context, period, rebuildEvery time.Duration) {
	check := func() {
		if rebuilt, err := r.EnsureBuilt(ctx); err != nil {
			r.warn(ctx, "rebuilding the referral queues", err)
			r.lost.Store(true) // again at the next round
		} else if rebuilt {
			r.log.InfoContext(ctx, "referral queues rebuilt from the database")
		}
	}
	r.lost.Store(false) // what Flush saw before Run, the first check covers
	check()
	go r.q.WatchConnection(ctx, func() {
		r.lost.Store(true)
		r.Wake()
	})
	round := func() {
		if r.lost.Swap(false) {
			check()
		}
		if _, err := r.Flush(ctx); err != nil {
			r.warn(ctx, "relaying referral changes", err)
		}
		if r.lost.Swap(false) {
			check()
		}
	}
	tick, rebuild := time.NewTicker(period), time.NewTicker(rebuildEvery)
	defer tick.Stop()
	defer rebuild.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-rebuild.C:
			check()
		case <-tick.C:
			round()
		case <-r.wake:
			round()
		}
	}
}

// warn logs a failed round unless the instance is stopping, which fails
// rounds on purpose.
func (r *Relay) warn(ctx context.Context, what string, err error) {
	if ctx.Err() == nil {
		r.log.WarnContext(ctx, what, "err", err)
	}
}

// Desks serves the receiving desks' queues: who may see and work a
// hospital's queue, and claiming the next ticket from it against the
// database.
type Desks struct {
	svc *Service
	q   *queue.Referrals
}

// NewDesks builds the desk service on the referral service and the queues.
func NewDesks(svc *Service, q *queue.Referrals) *Desks { return &Desks{svc: svc, q: q} }

// resourceQueue is the audited resource type of a desk queue.
const resourceQueue = "referral_queue"

// deskOf checks that p may work (or, with supervisors, watch) the queue of
// hospitalID. Another hospital's queue is not found, and the attempt is
// recorded.
func (d *Desks) deskOf(ctx context.Context, p auth.Principal, hospitalID, departmentID string, supervisors bool) error {
	if !p.Has(auth.ReferralDesk) && !(supervisors && p.Supervisor) {
		return apperr.Forbidden("only the referral desk works the referral queue")
	}
	if hospitalID != p.HospitalID {
		src := audit.SourceFrom(ctx)
		if err := d.svc.audit.Record(ctx, audit.Entry{
			At: d.svc.now(), ActorID: p.UserID, ActorHospitalID: p.HospitalID, Action: audit.AccessDenied,
			ResourceType: resourceQueue, ResourceID: hospitalID, Outcome: audit.Denied,
			RequestID: src.RequestID, ClientAddr: src.ClientAddr, Detail: "not the caller's hospital",
		}); err != nil {
			return err
		}
		return apperr.ErrNotFound
	}
	if departmentID != "" && !apperr.IsID(departmentID) {
		return apperr.Field("department_id", "must be an id")
	}
	return nil
}

// Queue lists the first limit tickets of the hospital's desk view, or of one
// department, in serving order.
func (d *Desks) Queue(ctx context.Context, p auth.Principal, hospitalID, departmentID string, limit int) ([]queue.Item, error) {
	if err := d.deskOf(ctx, p, hospitalID, departmentID, true); err != nil {
		return nil, err
	}
	return d.q.List(ctx, hospitalID, departmentID, limit)
}

// ClaimNext claims the next ticket of the hospital's queue (or of one
// department) for p. The claim is made in the database through the state
// machine, so a stale queue entry (a ticket claimed, decided or cancelled
// meanwhile) is passed over and never handed out twice. ok is false when
// nothing can be claimed.
func (d *Desks) ClaimNext(ctx context.Context, p auth.Principal, hospitalID, departmentID string) (_ referral.Referral, ok bool, _ error) {
	if err := d.deskOf(ctx, p, hospitalID, departmentID, false); err != nil {
		return referral.Referral{}, false, err
	}
	var got referral.Referral
	confirm := func(ctx context.Context, id string) (bool, error) {
		cur, err := d.svc.store.Get(ctx, id)
		if errors.Is(err, apperr.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if cur.ReceivingHospitalID != hospitalID {
			return false, nil
		}
		var in referral.ActionInput
		switch {
		case cur.Status == referral.Submitted:
		case cur.Status == referral.Claimed && cur.ClaimedBy != p.UserID && cur.ClaimedAt != nil &&
			d.svc.now().Sub(*cur.ClaimedAt) >= d.q.Lease():
			// The queue hands out only tickets without a live lease, and this
			// claim is older than a lease: its holder stopped renewing it, so
			// the ticket is back in the queue for a colleague to take over.
			// (A younger claim may simply not be relayed yet.)
			in.LeaseLapsed = true
		default:
			return false, nil
		}
		r, err := d.svc.Act(ctx, p, id, cur.Version, referral.Claim, in)
		if errors.Is(err, apperr.ErrStale) || errors.Is(err, apperr.ErrConflict) || errors.Is(err, apperr.ErrNotFound) {
			return false, nil // changed since it was read: the entry is stale
		}
		if err != nil {
			return false, err
		}
		if r.Status != referral.Claimed || r.ClaimedBy != p.UserID {
			return false, nil
		}
		got = r
		return true, nil
	}
	if _, err := d.q.Claim(ctx, hospitalID, departmentID, p.UserID, confirm); err != nil {
		if errors.Is(err, queue.ErrEmpty) {
			return referral.Referral{}, false, nil
		}
		return referral.Referral{}, false, err
	}
	return got, true, nil
}

// RenewLease extends p's lease on a ticket p has claimed, so a colleague's
// claim does not take it over while p is still working on it (finding a bed
// can take longer than a lease). A desk screen renews while the ticket is
// open. It fails with a conflict when p no longer holds the claim or the
// lease has lapsed: p must then claim the ticket again.
func (d *Desks) RenewLease(ctx context.Context, p auth.Principal, hospitalID, id string) (time.Time, error) {
	if err := d.deskOf(ctx, p, hospitalID, "", false); err != nil {
		return time.Time{}, err
	}
	if !apperr.IsID(id) {
		return time.Time{}, apperr.ErrNotFound
	}
	cur, err := d.svc.store.Get(ctx, id)
	if err != nil {
		return time.Time{}, err
	}
	if cur.ReceivingHospitalID != hospitalID {
		return time.Time{}, apperr.ErrNotFound
	}
	if cur.Status != referral.Claimed || cur.ClaimedBy != p.UserID {
		return time.Time{}, apperr.Conflict("you do not hold the claim on this referral")
	}
	if err := d.q.Renew(ctx, id, p.UserID); err != nil {
		if errors.Is(err, queue.ErrNotHolder) {
			return time.Time{}, apperr.Conflict("your lease on this referral has lapsed; claim it again")
		}
		return time.Time{}, err
	}
	return d.svc.now().Add(d.q.Lease()), nil
}
