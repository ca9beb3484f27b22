package kv_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"duikou/internal/kv"
	"duikou/internal/kv/kvtest"
)

// listenServers are the two kinds of Redis every listening test runs on.
func listenServers(t *testing.T) map[string]*kv.Conn {
	return map[string]*kv.Conn{"embedded": kvtest.Embedded(t), "redis": kvtest.ForTest(t)}
}

func numsub(t *testing.T, c *kv.Conn, channel string) int64 {
	t.Helper()
	m, err := c.PubSubNumSub(context.Background(), channel).Result()
	if err != nil {
		t.Fatal(err)
	}
	return m[channel]
}

// receive takes the next payload from in, failing after a while.
func receive(t *testing.T, in <-chan string, what string) string {
	t.Helper()
	select {
	case p, ok := <-in:
		if !ok {
			t.Fatalf("%s: the listener ended", what)
		}
		return p
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: nothing received", what)
	}
	return ""
}

func quiet(t *testing.T, in <-chan string, what string) {
	t.Helper()
	select {
	case p, ok := <-in:
		if ok {
			t.Fatalf("%s: received %q", what, p)
		}
	case <-time.After(50 * time.Millisecond):
	}
}

// Many screens watching the same channels cost Redis one subscription per
// channel, not one per screen; each listener gets each message of its own
// channel once, from the moment Listen returns, and none of the others'.
func TestListenersShareOneSubscriptionPerChannel(t *testing.T) {
	for name, conn := range listenServers(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			channels := []string{conn.Key("l", "a"), conn.Key("l", "b"), conn.Key("l", "c")}
			type watch struct {
				channel string
				in      <-chan string
				stop    func()
			}
			var watches []watch
			for i := range 21 {
				ch := channels[i%3]
				in, stop, err := conn.Listen(ctx, ch)
				if err != nil {
					t.Fatal(err)
				}
				watches = append(watches, watch{ch, in, stop})
			}
			for _, ch := range channels {
				if n := numsub(t, conn, ch); n != 1 {
					t.Fatalf("%s has %d subscribers in Redis, want 1 for 7 listeners", ch, n)
				}
			}
			if st := conn.ListenStats(); st.Channels != 3 || st.Listeners != 21 {
				t.Fatalf("stats %+v, want 3 channels and 21 listeners", st)
			}
			for _, ch := range channels {
				if err := conn.Publish(ctx, ch, "to "+ch).Err(); err != nil {
					t.Fatal(err)
				}
			}
			for i, w := range watches {
				if got := receive(t, w.in, fmt.Sprint("listener ", i)); got != "to "+w.channel {
					t.Fatalf("listener %d of %s got %q", i, w.channel, got)
				}
				quiet(t, w.in, fmt.Sprint("listener ", i, " after its message"))
			}

			// A screen closing leaves the others listening; the channel is
			// given up in Redis only with its last listener.
			watches[0].stop()
			if _, ok := <-watches[0].in; ok {
				t.Fatal("a stopped listener's channel is still open")
			}
			conn.Publish(ctx, channels[0], "after one left")
			if got := receive(t, watches[3].in, "the remaining listener"); got != "after one left" {
				t.Fatalf("got %q", got)
			}
			for _, w := range watches {
				w.stop()
				w.stop() // stopping twice is harmless
			}
			for _, ch := range channels {
				if n := numsub(t, conn, ch); n != 0 {
					t.Fatalf("%s still has %d subscribers after every listener stopped", ch, n)
				}
			}
			if st := conn.ListenStats(); st.Channels != 0 || st.Listeners != 0 {
				t.Fatalf("stats %+v after every listener stopped", st)
			}

			// Listening again after the channel was given up works.
			in, stop, err := conn.Listen(ctx, channels[1])
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			conn.Publish(ctx, channels[1], "again")
			if got := receive(t, in, "listening again"); got != "again" {
				t.Fatalf("got %q", got)
			}
		})
	}
}

// A listener's context ending closes its channel, like stop.
func TestListenerEndsWithItsContext(t *testing.T) {
	for name, conn := range listenServers(t) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			ch := conn.Key("l", "ctx")
			in, stop, err := conn.Listen(ctx, ch)
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			cancel()
			select {
			case _, ok := <-in:
				if ok {
					t.Fatal("a message after the context ended")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the listener outlived its context")
			}
			deadline := time.Now().Add(10 * time.Second)
			for numsub(t, conn, ch) != 0 {
				if time.Now().After(deadline) {
					t.Fatal("the channel stayed subscribed")
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// A listener that does not read loses messages past its buffer; the others
// still get every one.
func TestSlowListenerHoldsUpNobody(t *testing.T) {
	for name, conn := range listenServers(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			ch := conn.Key("l", "slow")
			slow, stopSlow, err := conn.Listen(ctx, ch)
			if err != nil {
				t.Fatal(err)
			}
			defer stopSlow()
			fast, stopFast, err := conn.Listen(ctx, ch)
			if err != nil {
				t.Fatal(err)
			}
			defer stopFast()
			// The reading listener takes each message before the next is
			// sent, so only the idle one falls behind.
			const n = 3 * kv.ListenBuffer
			for i := range n {
				if err := conn.Publish(ctx, ch, fmt.Sprint(i)).Err(); err != nil {
					t.Fatal(err)
				}
				if got := receive(t, fast, "the reading listener"); got != fmt.Sprint(i) {
					t.Fatalf("the reading listener got %q, want %d", got, i)
				}
			}
			if len(slow) != kv.ListenBuffer {
				t.Fatalf("the idle listener holds %d messages, want its buffer full (%d)", len(slow), kv.ListenBuffer)
			}
			// The last message may still be on its way to the idle listener
			// when the reading one has it.
			deadline := time.Now().Add(10 * time.Second)
			for d := conn.ListenStats().Dropped; d != n-kv.ListenBuffer; d = conn.ListenStats().Dropped {
				if time.Now().After(deadline) {
					t.Fatalf("%d messages counted as lost, want %d", d, n-kv.ListenBuffer)
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
}

// An idle shared connection is pinged and stays up: listeners keep their
// channel through many quiet spells.
func TestIdleListeningConnectionIsKeptAlive(t *testing.T) {
	for name, base := range listenServers(t) {
		t.Run(name, func(t *testing.T) {
			conn := &kv.Conn{Client: redis.NewClient(base.Options()), Prefix: base.Prefix}
			defer conn.Close()
			conn.SetListenPing(20 * time.Millisecond)
			ctx := context.Background()
			in, stop, err := conn.Listen(ctx, conn.Key("l", "idle"))
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			quiet(t, in, "quiet spell") // 50 ms
			time.Sleep(200 * time.Millisecond)
			quiet(t, in, "after ten pings")
			conn.Publish(ctx, conn.Key("l", "idle"), "still here")
			if got := receive(t, in, "after the quiet"); got != "still here" {
				t.Fatalf("got %q", got)
			}
		})
	}
}

// When the shared connection breaks, messages sent meanwhile are lost, so
// every listener is ended rather than silently resubscribed: a screen then
// listens again and rereads its state. The next Listen opens a new
// connection.
func TestBrokenConnectionEndsEveryListener(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		m := miniredis.RunT(t)
		conn := &kv.Conn{Client: redis.NewClient(&redis.Options{Addr: m.Addr(), Protocol: 2, MaxRetries: -1})}
		defer conn.Close()
		brokenConnectionEndsListeners(t, conn, func() {
			m.Close()
			if err := m.Restart(); err != nil {
				t.Fatal(err)
			}
		})
	})
	t.Run("redis", func(t *testing.T) {
		base := kvtest.ForTest(t)
		opt := base.Options()
		opt.ClientName = "listen-" + strings.ReplaceAll(base.Prefix, ":", "")
		conn := &kv.Conn{Client: redis.NewClient(opt), Prefix: base.Prefix}
		defer conn.Close()
		brokenConnectionEndsListeners(t, conn, func() {
			// Only this test's connection: the server is shared with other
			// packages' tests.
			list, err := base.ClientList(context.Background()).Result()
			if err != nil {
				t.Fatal(err)
			}
			killed := 0
			for _, line := range strings.Split(list, "\n") {
				if !strings.Contains(line, " name="+opt.ClientName+" ") {
					continue
				}
				var id int64
				fmt.Sscanf(line, "id=%d", &id)
				if err := base.ClientKillByFilter(context.Background(), "ID", fmt.Sprint(id)).Err(); err != nil {
					t.Fatal(err)
				}
				killed++
			}
			if killed == 0 {
				t.Fatalf("no connection named %s in %s", opt.ClientName, list)
			}
		})
	})
}

func brokenConnectionEndsListeners(t *testing.T, conn *kv.Conn, breakIt func()) {
	ctx := context.Background()
	ch := conn.Key("l", "broken")
	a, stopA, err := conn.Listen(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	defer stopA()
	b, stopB, err := conn.Listen(ctx, conn.Key("l", "other"))
	if err != nil {
		t.Fatal(err)
	}
	defer stopB()
	breakIt()
	for name, in := range map[string]<-chan string{"a": a, "b": b} {
		select {
		case _, ok := <-in:
			if ok {
				t.Fatalf("listener %s got a message", name)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("listener %s outlived its connection", name)
		}
	}
	var in <-chan string
	deadline := time.Now().Add(10 * time.Second)
	for {
		var stop func()
		if in, stop, err = conn.Listen(ctx, ch); err == nil {
			defer stop()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no listening after the break: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := conn.Publish(ctx, ch, "after").Err(); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, in, "the new listener"); got != "after" {
		t.Fatalf("got %q", got)
	}
}

// A Redis that stops answering without closing the connection (a network
// cut, a frozen server) is found by the pings: the listeners end within two
// quiet spells instead of waiting for ever on a dead socket.
func TestSilentConnectionIsFoundByPing(t *testing.T) {
	m := miniredis.RunT(t)
	p := startFreezer(t, m.Addr())
	conn := &kv.Conn{Client: redis.NewClient(&redis.Options{Addr: p.addr(), Protocol: 2, MaxRetries: -1})}
	defer conn.Close()
	conn.SetListenPing(50 * time.Millisecond)
	in, stop, err := conn.Listen(context.Background(), "frozen")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	quiet(t, in, "before the freeze") // a ping is answered meanwhile
	time.Sleep(150 * time.Millisecond)
	quiet(t, in, "after pings were answered")
	p.freeze()
	select {
	case _, ok := <-in:
		if ok {
			t.Fatal("a message from a frozen server")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the listener outlived a server that stopped answering")
	}
}

// freezer forwards TCP connections to a server until freeze, after which it
// keeps them open and passes nothing either way.
type freezer struct {
	ln     net.Listener
	frozen chan struct{}
	once   sync.Once
}

func startFreezer(t *testing.T, target string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, frozen: make(chan struct{})}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close(); s.Close() })
			go f.pipe(s, c)
			go f.pipe(c, s)
		}
	}()
	return f
}

func (f *freezer) addr() string { return f.ln.Addr().String() }
func (f *freezer) freeze()      { f.once.Do(func() { close(f.frozen) }) }

func (f *freezer) pipe(dst, src net.Conn) {
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		select {
		case <-f.frozen:
			// Swallow everything from now on, keeping the socket open.
			for {
				if _, err := src.Read(buf); err != nil {
					return
				}
			}
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
