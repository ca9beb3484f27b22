package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"duikou/internal/kv"
	"duikou/referral"
)

// Notice tells a hospital that one of the tickets it is a party to changed.
// It carries no patient data, only what a screen needs to show the new state
// or decide to read the ticket again: both sides' clinicians may watch it,
// whatever their right to the ticket's clinical content.
type Notice struct {
	Type    string          `json:"type"` // NoticeChanged
	ID      string          `json:"id"`
	Number  string          `json:"number,omitempty"`
	Status  referral.Status `json:"status"`
	Version int             `json:"version"`
	At      time.Time       `json:"at"`
}

// NoticeChanged is the type of every Notice.
const NoticeChanged = "changed"

// changesChannel is the hospital's referral-change channel, beside its desk
// queue channel: the same per-hospital pub/sub, for the parties of tickets
// rather than the receiving desk.
func (q *Referrals) changesChannel(hospitalID string) string {
	return q.conn.Key("q", "rc", hospitalID)
}

// PublishChange tells every screen watching hospitalID's referrals, on any
// instance, that a ticket changed. Delivery is at most once per call: a
// screen that misses a notice sees the state on its next read, and callers
// may publish the same change twice (clients compare versions).
func (q *Referrals) PublishChange(ctx context.Context, hospitalID string, n Notice) error {
	msg, err := noticeMessage(n)
	if err != nil {
		return err
	}
	return q.conn.Publish(ctx, q.changesChannel(hospitalID), msg).Err()
}

// SubscribeChanges delivers the change notices of hospitalID's tickets until
// stop is called or ctx ends, like Subscribe.
func (q *Referrals) SubscribeChanges(ctx context.Context, hospitalID string) (<-chan Notice, func(), error) {
	return subscribe[Notice](ctx, q.conn, q.changesChannel(hospitalID))
}

// subscribe decodes the messages of one channel into T. When it returns,
// the subscription is active. A message that does not decode is dropped, and
// a receiver that does not keep up loses messages rather than hold up the
// others: every watcher can re-read the state it shows. The channel also
// closes when the instance's connection to Redis breaks (kv.Conn.Listen), so
// a screen that may have missed something reconnects and reads again.
func subscribe[T any](ctx context.Context, conn *kv.Conn, channel string) (<-chan T, func(), error) {
	in, stop, err := conn.Listen(ctx, channel)
	if err != nil {
		return nil, nil, fmt.Errorf("queue subscribe: %w", err)
	}
	out := make(chan T, kv.ListenBuffer)
	go func() {
		defer close(out)
		for payload := range in {
			var v T
			if json.Unmarshal([]byte(payload), &v) != nil {
				continue
			}
			select {
			case out <- v:
			default: // a slow screen loses events and refreshes; the queue never waits for it
			}
		}
	}()
	return out, stop, nil
}
