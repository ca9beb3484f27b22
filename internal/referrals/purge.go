package referrals

import (
	"context"
	"time"

	"duikou/internal/purge"
	"duikou/internal/sqldb"
	"duikou/internal/store"
)

// PurgeStore is what the outbox purge needs of storage; store.Referrals
// implements it.
type PurgeStore interface {
	PurgeOutbox(ctx context.Context, after int64, before time.Time, window int) (store.OutboxPurgeStep, error)
}

var _ PurgeStore = (*store.Referrals)(nil)

// PurgeOptions tune the outbox purge (default retention
// DefaultOutboxRetention).
type PurgeOptions = purge.Options

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
// purges; the schedule and bounds are package purge's, each statement the
// window of store.Referrals.PurgeOutbox.
type OutboxPurge = purge.Purge

// NewOutboxPurge builds the purge.
func NewOutboxPurge(st PurgeStore, opt PurgeOptions) *OutboxPurge {
	if opt.Now == nil {
		opt.Now = sqldb.Now
	}
	return purge.New("outbox purge", DefaultOutboxRetention,
		func(ctx context.Context, after int64, before time.Time, batch int) (purge.Batch, error) {
			s, err := st.PurgeOutbox(ctx, after, before, batch)
			return purge.Batch{Deleted: s.Deleted, Last: s.Last, Done: s.Done}, err
		}, opt)
}

var _ Source = (*OutboxPurge)(nil)
