package kv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"duikou/internal/apperr"
)

// Listening. Every live screen of an instance (desk queues, referral and
// session notices) and every signal listens to a pub/sub channel; one Redis
// connection per listener would cost Redis a client per open screen and the
// instance a socket and a goroutine each. So a Conn keeps a single pub/sub
// connection, subscribes each channel on it once, however many listen to it,
// and fans the messages out in memory.
//
// When that connection breaks (Redis restarted, the network went away),
// messages published meanwhile are lost to every listener, so rather than
// resubscribe behind their backs it ends every listener: each one sees its
// channel closed, and whoever listens again knows to read the state afresh.

// ListenBuffer is how many messages a listener may fall behind by; past it
// the listener loses messages rather than hold up the others.
const ListenBuffer = 64

// listenPing is how long the shared connection may stay silent before it is
// pinged; a ping unanswered by the next such silence counts as a broken
// connection (a peer gone without closing the socket).
const listenPing = 15 * time.Second

// listenOpTimeout bounds the wait for Redis to confirm a subscribe or an
// unsubscribe.
const listenOpTimeout = 10 * time.Second

// errListenerClosed is what an operation waiting on a broken pub/sub
// connection gets: Redis is away, for now.
var errListenerClosed = fmt.Errorf("redis pub/sub connection closed: %w", apperr.ErrUnavailable)

// hub is a Conn's listening: its zero value is ready, and Conn.Close ends it.
type hub struct {
	// ops serialises subscribing and unsubscribing: each waits, holding it,
	// for Redis to confirm, so confirmations come back in the order asked.
	ops sync.Mutex
	s   *pubsubSession // the live connection, or nil; changed under ops
	// closed is set by Conn.Close; no session starts after it.
	closed bool
	// ping is listenPing unless a test shortens it.
	ping time.Duration
	// dropped counts messages a listener lost for being too far behind.
	dropped atomic.Int64
}

// pubsubSession is one pub/sub connection and its listeners. It ends for
// good when the connection breaks; the hub then starts a new one for the
// next listener.
type pubsubSession struct {
	dropped *atomic.Int64 // the hub's
	ping    time.Duration
	ps      *redis.PubSub
	dead    chan struct{} // closed when the connection broke or was closed
	confirm chan *redis.Subscription

	mu        sync.RWMutex
	listeners map[string]map[*listener]struct{}
	ended     bool // under mu: no listener may join any more
}

type listener struct {
	out  chan string
	once sync.Once
}

func (l *listener) close() { l.once.Do(func() { close(l.out) }) }

// Listen delivers the payloads published on channel from the moment it
// returns (the subscription is confirmed by then) until stop is called, ctx
// ends or the shared connection breaks; the channel is then closed. A
// listener more than ListenBuffer messages behind loses messages.
func (c *Conn) Listen(ctx context.Context, channel string) (<-chan string, func(), error) {
	h := &c.hub
	l := &listener{out: make(chan string, ListenBuffer)}
	h.ops.Lock()
	s, err := h.session(c)
	if err != nil {
		h.ops.Unlock()
		return nil, nil, err
	}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		h.ops.Unlock()
		return nil, nil, errListenerClosed
	}
	set, subscribed := s.listeners[channel]
	if !subscribed {
		set = map[*listener]struct{}{}
		s.listeners[channel] = set
	}
	// The listener joins before SUBSCRIBE goes out: Redis sends nothing of
	// the channel before its confirmation, and nothing after it is missed.
	set[l] = struct{}{}
	s.mu.Unlock()
	if !subscribed {
		// Not under ctx: a caller giving up mid-way must not leave a
		// confirmation unread; its listener leaves at once instead.
		err = s.do("subscribe", channel, func(ctx context.Context) error { return s.ps.Subscribe(ctx, channel) })
	}
	h.ops.Unlock()
	if err != nil {
		s.leave(channel, l)
		return nil, nil, fmt.Errorf("subscribe %s: %w", channel, err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { h.leave(s, channel, l) }) }
	unwatch := context.AfterFunc(ctx, stop)
	return l.out, func() { unwatch(); stop() }, nil
}

// session returns the live session, starting one if there is none. The
// caller holds ops.
func (h *hub) session(c *Conn) (*pubsubSession, error) {
	if h.closed {
		return nil, errListenerClosed
	}
	if h.s != nil {
		select {
		case <-h.s.dead:
		default:
			return h.s, nil
		}
	}
	ping := h.ping
	if ping == 0 {
		ping = listenPing
	}
	s := &pubsubSession{
		dropped:   &h.dropped,
		ping:      ping,
		ps:        c.Client.Subscribe(context.Background()),
		dead:      make(chan struct{}),
		confirm:   make(chan *redis.Subscription, 1),
		listeners: map[string]map[*listener]struct{}{},
	}
	h.s = s
	go s.read()
	return s, nil
}

// leave removes l from channel and, when it was the channel's last listener
// on a live connection, unsubscribes the channel.
func (h *hub) leave(s *pubsubSession, channel string, l *listener) {
	h.ops.Lock()
	defer h.ops.Unlock()
	if !s.leave(channel, l) {
		return
	}
	// The wait is bounded and its failure ends the session (do), so a Redis
	// that does not answer cannot leave the channel half subscribed.
	s.do("unsubscribe", channel, func(ctx context.Context) error { return s.ps.Unsubscribe(ctx, channel) })
}

// leave drops l and closes its channel; it reports whether the channel has
// no listener left on a live session (and so should be unsubscribed).
func (s *pubsubSession) leave(channel string, l *listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l.close()
	set := s.listeners[channel]
	if _, ok := set[l]; !ok {
		return false
	}
	delete(set, l)
	if len(set) > 0 {
		return false
	}
	delete(s.listeners, channel)
	return !s.ended
}

// do sends a subscribe or unsubscribe and waits for its confirmation. The
// caller holds the hub's ops, so the next confirmation of this kind and
// channel is this one's. Any failure ends the session.
func (s *pubsubSession) do(kind, channel string, send func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), listenOpTimeout)
	defer cancel()
	if err := send(ctx); err != nil {
		s.end()
		return err
	}
	for {
		select {
		case m := <-s.confirm:
			if m.Kind == kind && m.Channel == channel {
				return nil
			}
		case <-s.dead:
			return errListenerClosed
		case <-ctx.Done():
			// A confirmation that may still come would be taken for a later
			// operation's: the session cannot be trusted any more.
			s.end()
			return ctx.Err()
		}
	}
}

// read receives from the connection until it breaks: messages go to the
// channel's listeners, confirmations to the operation waiting for them.
func (s *pubsubSession) read() {
	defer s.end()
	pinged := false
	for {
		msg, err := s.ps.ReceiveTimeout(context.Background(), s.ping)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged {
				select {
				case <-s.dead:
					return
				default:
				}
				if s.ps.Ping(context.Background()) != nil {
					return
				}
				pinged = true
				continue
			}
			return
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Message:
			s.mu.RLock()
			for l := range s.listeners[m.Channel] {
				select {
				case l.out <- m.Payload:
				default: // a listener that does not keep up loses the message
					s.dropped.Add(1)
				}
			}
			s.mu.RUnlock()
		case *redis.Subscription:
			select {
			case s.confirm <- m:
			case <-s.dead:
				return
			}
		}
	}
}

// end closes the connection and every listener's channel; it may be called
// more than once.
func (s *pubsubSession) end() {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	close(s.dead)
	for _, set := range s.listeners {
		for l := range set {
			l.close()
		}
	}
	s.mu.Unlock()
	s.ps.Close()
}

// close ends the hub's session and refuses new listeners.
func (h *hub) close() {
	h.ops.Lock()
	h.closed = true
	s := h.s
	h.ops.Unlock()
	if s != nil {
		s.end()
	}
}

// ListenStats is what an instance's listening holds: the channels subscribed
// on its one pub/sub connection, the listeners fed from them, and the
// messages listeners have lost, all told, for falling behind.
type ListenStats struct {
	Channels, Listeners int
	Dropped             int64
}

// ListenStats reports c's listening now.
func (c *Conn) ListenStats() ListenStats {
	h := &c.hub
	st := ListenStats{Dropped: h.dropped.Load()}
	h.ops.Lock()
	s := h.s
	h.ops.Unlock()
	if s == nil {
		return st
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ended {
		return st
	}
	st.Channels = len(s.listeners)
	for _, set := range s.listeners {
		st.Listeners += len(set)
	}
	return st
}
