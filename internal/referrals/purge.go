package referrals

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"duikou/internal/sqldb"
	"duikou/internal/store"
)

// PurgeStore is what the outbox purge needs of storage; store.Referrals
// implements it.
type PurgeStore interface {
	PurgeOutbox(ctx context.Context, after int64, before time.Time, window int) (store.OutboxPurgeStep, error)
}

var _ PurgeStore = (*store.Referrals)(nil)

// PurgeOptions tune the outbox purge; zero values take the defaults.
type PurgeOptions struct {
	// Retention is how long a published message is kept (default
	// DefaultOutboxRetention).
	Retention time.Duration
	// Every is the time between runs (default an hour).
	Every time.Duration
	// Batch is the number of messages one statement examines, and so the
	// most it deletes (default 5,000).
	Batch int
	// MaxBatches bounds the statements of one run (default 20); a run that
	// stops there goes on at the next tick.
	MaxBatches int
	Now        func() time.Time // default sqldb.Now
	Log        *slog.Logger
}

// DefaultOutboxRetention is how long published outbox messages are kept
// by default.
const DefaultOutboxRetention = 7 * 24 * time.Hour

// OutboxPurge deletes outbox messages published longer ago than the
// retention: relayed referral and session changes, escalations pushed to
// the desks, webhook deliveries, all in the one outbox table. Every reader
// of the outbox (the relays, the webhook) reads only unpublished messages,
// and a rebuild of the queues reads the tickets, so a published message is
// kept only for whoever looks into a recent delivery. Messages not
// published are never deleted, whatever their age: a change still to relay,
// a delivery being retried, or one the webhook gave up (kept with its
// error).
//
// It is a Source of the deadline watcher, so only the holder of its lease
// purges; a run on two instances at once would still be harmless (each
// statement deletes only what is past the retention). A run deletes in
// bounded statements (see store.Referrals.PurgeOutbox) and at most
// MaxBatches of them, so it never holds a long transaction or keeps the
// deadlines waiting for long; a backlog (an installation that never purged)
// is worked off over successive ticks.
type OutboxPurge struct {
	st  PurgeStore
	opt PurgeOptions
	// next is when the next run is due; resume is where a run cut short by
	// MaxBatches goes on. Both only save work: a new leader starts afresh.
	next   time.Time
	resume int64
}

// NewOutboxPurge builds the purge.
func NewOutboxPurge(st PurgeStore, opt PurgeOptions) *OutboxPurge {
	if opt.Retention <= 0 {
		opt.Retention = DefaultOutboxRetention
	}
	if opt.Every <= 0 {
		opt.Every = time.Hour
	}
	if opt.Batch <= 0 {
		opt.Batch = 5000
	}
	if opt.MaxBatches <= 0 {
		opt.MaxBatches = 20
	}
	if opt.Now == nil {
		opt.Now = sqldb.Now
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	return &OutboxPurge{st: st, opt: opt}
}

var _ Source = (*OutboxPurge)(nil)

// Name names the purge in the log.
func (p *OutboxPurge) Name() string { return "outbox purge" }

// Lead needs nothing: a new leader purges when its own schedule says so.
func (p *OutboxPurge) Lead(context.Context) error { return nil }

// Tick runs the purge when a run is due and reports no escalations.
func (p *OutboxPurge) Tick(ctx context.Context) (int, error) {
	now := p.opt.Now()
	if now.Before(p.next) {
		return 0, nil
	}
	_, err := p.Run(ctx, now)
	return 0, err
}

// Run deletes, in at most MaxBatches statements, the messages published
// before now less the retention, and returns how many it deleted.
func (p *OutboxPurge) Run(ctx context.Context, now time.Time) (int64, error) {
	before := now.Add(-p.opt.Retention)
	var deleted int64
	after, done := p.resume, false
	for i := 0; i < p.opt.MaxBatches && !done; i++ {
		step, err := p.st.PurgeOutbox(ctx, after, before, p.opt.Batch)
		deleted += step.Deleted
		if err != nil {
			// Try again in a while rather than at every tick; what was
			// deleted stays deleted.
			p.next, p.resume = now.Add(min(p.opt.Every, time.Minute)), 0
			return deleted, fmt.Errorf("outbox purge: %w", err)
		}
		after, done = step.Last, step.Done
	}
	if done {
		p.next, p.resume = now.Add(p.opt.Every), 0
	} else {
		// More is left: go on from here at the next tick.
		p.next, p.resume = now, after
	}
	if deleted > 0 {
		p.opt.Log.InfoContext(ctx, "published outbox messages purged", "count", deleted,
			"published_before", before.Format(time.RFC3339), "more", !done)
	}
	return deleted, nil
}
