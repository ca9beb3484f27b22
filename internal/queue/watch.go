package queue

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// WatchConnection calls connected each time this instance's own subscription
// to Redis is established: once at the start, then after every reconnection.
// A Redis server that restarted (and so, without persistence, lost the
// queues) closes every connection, and this one, unlike the pool's, is always
// open and reading, so the loss shows within the reconnection's back-off even
// on an idle instance: no key has to be polled. It runs until ctx ends.
func (q *Referrals) WatchConnection(ctx context.Context, connected func()) {
	ps := q.conn.Subscribe(ctx, q.conn.Key("q", "watch"))
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	defer stop()
	defer ps.Close()
	const first, most = 50 * time.Millisecond, time.Second
	wait := first
	for ctx.Err() == nil {
		msg, err := ps.Receive(ctx)
		if err != nil {
			// The subscription reconnects on its next Receive; back off
			// while the server is away.
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, most)
			continue
		}
		wait = first
		if _, ok := msg.(*redis.Subscription); ok {
			connected()
		}
	}
}
