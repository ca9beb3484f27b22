package queue

import (
	"context"
	"time"
)

// WatchConnection calls connected each time this instance's listening
// connection to Redis is established: once at the start, then after every
// reconnection. A Redis server that restarted (and so, without persistence,
// lost the queues) closes every connection, and this one, unlike the pool's,
// is always open and reading (kv.Conn.Listen), so the loss shows within the
// reconnection's back-off even on an idle instance: no key has to be polled.
// It runs until ctx ends.
func (q *Referrals) WatchConnection(ctx context.Context, connected func()) {
	const first, most = 50 * time.Millisecond, time.Second
	wait := first
	for ctx.Err() == nil {
		in, stop, err := q.conn.Listen(ctx, q.conn.Key("q", "watch"))
		if err == nil {
			wait = first
			connected()
			for range in {
			}
			stop()
		}
		// Listen again once the server may be back.
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, most)
	}
}
