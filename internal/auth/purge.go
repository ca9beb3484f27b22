package auth

import (
	"context"
	"time"

	"duikou/internal/purge"
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

// PurgeOptions tune the session purge (default retention
// SessionRetention).
type PurgeOptions = purge.Options

// SessionPurge deletes login sessions that ended longer ago than the
// retention. Sessions end by logout, revocation, the idle timeout or their
// absolute expiry, the last of which comes no later than the others, so
// the purge goes by expires_at alone: a session whose absolute expiry is
// older than the retention has certainly ended that long ago, and one that
// ended early (most end idle) is kept at most its absolute lifetime (12 h
// by default) beyond the retention. Live sessions are never touched.
//
// It is a source of the deadline watcher (it satisfies referrals.Source),
// so only the holder of its lease purges; the schedule and bounds are
// package purge's. It is built here rather than with the wiring because
// what "ended" means is the session rules of this package; it reaches
// storage only through PurgeStore, like Service through Store.
type SessionPurge = purge.Purge

// NewSessionPurge builds the purge.
func NewSessionPurge(st PurgeStore, opt PurgeOptions) *SessionPurge {
	return purge.New("session purge", SessionRetention,
		func(ctx context.Context, _ int64, before time.Time, batch int) (purge.Batch, error) {
			n, err := st.PurgeSessions(ctx, before, batch)
			return purge.Batch{Deleted: n, Done: n < int64(batch)}, err
		}, opt)
}
