package auth

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// SessionRetention is how long a login session is kept after it ended.
// An ended session authenticates nothing, but an audit investigation (whose
// login did this, from which address and client, when did it end) reads
// it alongside the audit log, and such questions come weeks after the
// fact; past that the row is only growth.
const SessionRetention = 30 * 24 * time.Hour

// PurgeStore is what the session purge needs of storage; store.Users
// implements it.
type PurgeStore interface {
	// PurgeSessions deletes up to limit sessions whose absolute expiry is
	// before before, in one statement, and returns how many it deleted.
	PurgeSessions(ctx context.Context, before time.Time, limit int) (int64, error)
}

// PurgeOptions tune the session purge; zero values take the defaults.
type PurgeOptions struct {
	// Retention is how long an ended session is kept (default
	// SessionRetention).
	Retention time.Duration
	// Every is the time between runs (default an hour).
	Every time.Duration
	// Batch bounds the sessions one statement deletes (default 5,000).
	Batch int
	// MaxBatches bounds the statements of one run (default 20); a run that
	// stops there goes on at the next tick.
	MaxBatches int
	Now        func() time.Time // default time.Now
	Log        *slog.Logger
}

// SessionPurge deletes login sessions that ended longer ago than the
// retention. Sessions end by logout, revocation, the idle timeout or their
// absolute expiry, the last of which comes no later than the others, so
// the purge goes by expires_at alone: a session whose absolute expiry is
// older than the retention has certainly ended that long ago, and one that
// ended early (most end idle) is kept at most its absolute lifetime (12 h
// by default) beyond the retention. Live sessions are never touched.
//
// It is a source of the deadline watcher (it satisfies referrals.Source),
// so only the holder of its lease purges; two runs at once would still be
// harmless, each row being deleted once. A run deletes in bounded
// statements and at most MaxBatches of them, so it never holds a long
// transaction or keeps the deadlines waiting; a backlog (an installation
// that never purged) is worked off over successive ticks.
//
// It lives here rather than with the wiring because what "ended" means is
// the session rules of this package; it reaches storage only through
// PurgeStore, like Service through Store.
type SessionPurge struct {
	st  PurgeStore
	opt PurgeOptions
	// next is when the next run is due; it only saves work, and a new
	// leader starts afresh.
	next time.Time
}

// NewSessionPurge builds the purge.
func NewSessionPurge(st PurgeStore, opt PurgeOptions) *SessionPurge {
	if opt.Retention <= 0 {
		opt.Retention = SessionRetention
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
	return &SessionPurge{st: st, opt: opt}
}

// Name names the purge in the log.
func (p *SessionPurge) Name() string { return "session purge" }

// Lead needs nothing: a new leader purges when its own schedule says so.
func (p *SessionPurge) Lead(context.Context) error { return nil }

// Tick runs the purge when a run is due and reports no escalations.
func (p *SessionPurge) Tick(ctx context.Context) (int, error) {
	now := p.opt.Now()
	if now.Before(p.next) {
		return 0, nil
	}
	_, err := p.Run(ctx, now)
	return 0, err
}

// Run deletes, in at most MaxBatches statements, the sessions whose
// absolute expiry is before now less the retention, and returns how many
// it deleted.
func (p *SessionPurge) Run(ctx context.Context, now time.Time) (int64, error) {
	before := now.Add(-p.opt.Retention)
	var deleted int64
	done := false
	for i := 0; i < p.opt.MaxBatches && !done; i++ {
		n, err := p.st.PurgeSessions(ctx, before, p.opt.Batch)
		deleted += n
		if err != nil {
			// Try again in a while rather than at every tick; what was
			// deleted stays deleted.
			p.next = now.Add(min(p.opt.Every, time.Minute))
			return deleted, fmt.Errorf("session purge: %w", err)
		}
		done = n < int64(p.opt.Batch)
	}
	if done {
		p.next = now.Add(p.opt.Every)
	} else {
		// More is left: go on at the next tick.
		p.next = now
	}
	if deleted > 0 {
		p.opt.Log.InfoContext(ctx, "ended sessions purged", "count", deleted,
			"expired_before", before.Format(time.RFC3339), "more", !done)
	}
	return deleted, nil
}
