// Package purge runs the periodic, bounded deletion of rows kept only for a
// while (published outbox messages, ended login sessions) as a source of
// the deadline watcher's leader loop, so that one instance deletes. What
// counts as old, and how one bounded batch is deleted, is the caller's Step;
// the schedule, the bounds and the resumption are here, once.
package purge

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Options tune a purge; zero values take the defaults.
type Options struct {
	// Retention is how long a row is kept (default: the purge's own).
	Retention time.Duration
	// Every is the time between runs (default an hour).
	Every time.Duration
	// Batch bounds the rows one statement examines, and so the most it
	// deletes (default 5,000).
	Batch int
	// MaxBatches bounds the statements of one run (default 20); a run that
	// stops there goes on at the next tick.
	MaxBatches int
	Now        func() time.Time // default time.Now
	Log        *slog.Logger
}

// Batch is what one Step did.
type Batch struct {
	Deleted int64 // rows deleted
	// Last is where the next step goes on (a key the step examined up to);
	// steps that need no position leave it 0.
	Last int64
	// Done: nothing further can be purged yet.
	Done bool
}

// Step deletes, in one bounded statement, up to batch rows older than
// before, going on after position after.
type Step func(ctx context.Context, after int64, before time.Time, batch int) (Batch, error)

// Purge is one periodic purge. A run deletes in bounded statements and at
// most MaxBatches of them, so it never holds a long transaction or keeps the
// watcher's deadlines waiting; a backlog (an installation that never
// purged) is worked off over successive ticks. Two runs at once (two
// leaders for a moment) are harmless: each row is deleted once.
type Purge struct {
	name string
	step Step
	opt  Options
	// next is when the next run is due; resume is where a run cut short by
	// MaxBatches goes on. Both only save work: a new leader starts afresh.
	next   time.Time
	resume int64
}

// New builds the purge called name (for the log), deleting through step
// what is older than opt.Retention, or retention when that is not set.
func New(name string, retention time.Duration, step Step, opt Options) *Purge {
	if opt.Retention <= 0 {
		opt.Retention = retention
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
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	return &Purge{name: name, step: step, opt: opt}
}

// Name names the purge in the log.
func (p *Purge) Name() string { return p.name }

// Lead needs nothing: a new leader purges when its own schedule says so.
func (p *Purge) Lead(context.Context) error { return nil }

// Tick runs the purge when a run is due and reports no escalations.
func (p *Purge) Tick(ctx context.Context) (int, error) {
	now := p.opt.Now()
	if now.Before(p.next) {
		return 0, nil
	}
	_, err := p.Run(ctx, now)
	return 0, err
}

// Run deletes, in at most MaxBatches statements, the rows older than now
// less the retention, and returns how many it deleted.
func (p *Purge) Run(ctx context.Context, now time.Time) (int64, error) {
	before := now.Add(-p.opt.Retention)
	var deleted int64
	after, done := p.resume, false
	for i := 0; i < p.opt.MaxBatches && !done; i++ {
		b, err := p.step(ctx, after, before, p.opt.Batch)
		deleted += b.Deleted
		if err != nil {
			// Try again in a while rather than at every tick; what was
			// deleted stays deleted.
			p.next, p.resume = now.Add(min(p.opt.Every, time.Minute)), 0
			return deleted, fmt.Errorf("%s: %w", p.name, err)
		}
		after, done = b.Last, b.Done
	}
	if done {
		p.next, p.resume = now.Add(p.opt.Every), 0
	} else {
		// More is left: go on from here at the next tick.
		p.next, p.resume = now, after
	}
	if deleted > 0 {
		p.opt.Log.InfoContext(ctx, p.name+": rows deleted", "count", deleted,
			"older_than", before.Format(time.RFC3339), "more", !done)
	}
	return deleted, nil
}
