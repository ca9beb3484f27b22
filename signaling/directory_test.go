package signaling

import (
	"context"
	"testing"
	"time"

	"duikou/internal/kv"
	"duikou/internal/kv/kvtest"
)

// instance is one signalling server with its directory entry.
type instance struct {
	h    *harness
	dir  *RedisDirectory
	stop context.CancelFunc
	done chan error
}

func startInstance(t *testing.T, conn *kv.Conn, id string, ttl time.Duration) *instance {
	t.Helper()
	in := &instance{done: make(chan error, 1)}
	in.h = newHarness(t, func(c *Config) {
		c.Self.ID = id
		d, err := NewRedisDirectory(conn, c.Self, ttl)
		if err != nil {
			t.Fatal(err)
		}
		in.dir = d
		c.Directory = d
	})
	ctx, cancel := context.WithCancel(context.Background())
	in.stop = cancel
	if err := in.dir.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	go func() { in.done <- in.dir.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-in.done })
	return in
}

func TestJoinThroughTheWrongInstanceIsRedirectedToTheRoomsHost(t *testing.T) {
	for _, open := range []struct {
		name string
		open func(testing.TB) *kv.Conn
	}{{"embedded", kvtest.Embedded}, {"redis", kvtest.ForTest}} {
		t.Run(open.name, func(t *testing.T) {
			conn := open.open(t)
			t.Cleanup(func() { cleanKeys(t, conn) })
			// Heartbeats every 500 ms, dead after 1.5 s without one.
			a := startInstance(t, conn, "a", 1500*time.Millisecond)
			b := startInstance(t, conn, "b", 1500*time.Millisecond)

			hostC := a.h.join("room1", "host", host)
			tok := a.h.token("room1", "guest", Perms{Subscribe: true, Admit: true})

			// Through b: told to go to a.
			g := b.h.mustDial("guest via b")
			g.send(TJoin, JoinPayload{Room: "room1", Token: tok})
			var rp RedirectPayload
			g.expectPayload(TRedirect, &rp)
			if rp.URL != a.h.url {
				t.Fatalf("redirected to %q, want %q", rp.URL, a.h.url)
			}
			g.expectClose(CloseRedirect)
			if b.h.srv.Rooms() != 0 {
				t.Fatal("the wrong instance opened the room")
			}

			// The same token at a gets in.
			g = a.h.mustDial("guest via a")
			g.send(TJoin, JoinPayload{Room: "room1", Token: tok})
			g.expect(TWelcome)
			hostC.expect(TJoined)

			// a dies without a word (its heartbeat stops and runs out): the
			// next join through b hosts the room there.
			a.stopWithoutWithdrawing(t)
			time.Sleep(1600 * time.Millisecond)
			n := b.h.mustDial("newcomer")
			n.send(TJoin, JoinPayload{Room: "room1", Token: b.h.token("room1", "newcomer", host)})
			n.expect(TWelcome)
			if b.h.srv.Rooms() != 1 {
				t.Fatal("b does not host the room")
			}
			// And a join through a (which came back) now goes to b.
			if err := a.dir.Beat(context.Background()); err != nil {
				t.Fatal(err)
			}
			x := a.h.mustDial("late")
			x.send(TJoin, JoinPayload{Room: "room1", Token: a.h.token("room1", "late", host)})
			x.expectPayload(TRedirect, &rp)
			if rp.URL != b.h.url {
				t.Fatalf("redirected to %q, want b", rp.URL)
			}
		})
	}
}

// stopWithoutWithdrawing ends the heartbeat loop and puts the last beat
// back, as a crashed instance leaves it.
func (in *instance) stopWithoutWithdrawing(t *testing.T) {
	t.Helper()
	in.stop()
	<-in.done
	in.done <- nil
	if err := in.dir.Beat(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestRoomReleasedWhenItEmpties(t *testing.T) {
	conn := kvtest.Embedded(t)
	a := startInstance(t, conn, "a", 5*time.Second)
	c := a.h.join("room1", "host", host)
	if v, _ := conn.Get(context.Background(), conn.Key("sig", "room", "room1")).Result(); v != "a" {
		t.Fatalf("room entry %q", v)
	}
	c.send(TLeave, nil)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if n, _ := conn.Exists(context.Background(), conn.Key("sig", "room", "room1")).Result(); n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the empty room's entry stayed")
}

func cleanKeys(t testing.TB, conn *kv.Conn) {
	ctx := context.Background()
	keys, err := conn.Keys(ctx, conn.Key("*")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) > 0 {
		conn.Del(ctx, keys...)
	}
}
