package kv

import (
	"context"
	"time"
)

// Signal is a notice without content that every instance sharing Redis
// hears: "something changed here, drop what you keep of it". It rides on a
// pub/sub channel, so a notice sent while an instance is cut off from Redis
// is lost to it; Run therefore also calls its function each time it
// (re)subscribes, and whoever keeps state on the strength of a signal must
// still bound how long it keeps it.
type Signal struct {
	conn    *Conn
	channel string
}

// NewSignal returns the signal called name on conn.
func NewSignal(conn *Conn, name string) *Signal {
	return &Signal{conn: conn, channel: conn.Key("signal", name)}
}

// Raise sends the notice to every instance listening, this one included.
func (s *Signal) Raise(ctx context.Context) error {
	return s.conn.Publish(ctx, s.channel, "1").Err()
}

// Run calls fn for every notice, and once each time the subscription is
// made or remade (notices may have been missed meanwhile), until ctx ends.
// ready, when not nil, is closed once the first subscription is in place.
func (s *Signal) Run(ctx context.Context, fn func(), ready chan<- struct{}) {
	first := true
	for ctx.Err() == nil {
		if in, stop, err := s.conn.Listen(ctx, s.channel); err == nil {
			fn()
			if first && ready != nil {
				close(ready)
			}
			first = false
			for range in {
				fn()
			}
			stop()
		}
		// The connection broke or Redis is down: listen again after a
		// pause, so a Redis that is away is not asked in a tight loop.
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}
