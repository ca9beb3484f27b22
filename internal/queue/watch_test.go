package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"duikou/internal/kv"
	"duikou/internal/queue"
)

func TestWatchConnectionTellsOfEveryReconnectionAsARestartedRedisCausesIt(t *testing.T) {
	m := miniredis.RunT(t) // private: this test restarts it
	conn, err := kv.Open(context.Background(), "redis://"+m.Addr(), "t")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	connected := make(chan struct{}, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		queue.New(conn, queue.Options{}).WatchConnection(ctx, func() { connected <- struct{}{} })
	}()
	wait := func(what string) {
		t.Helper()
		select {
		case <-connected:
		case <-time.After(10 * time.Second):
			t.Fatalf("not told %s", what)
		}
	}
	wait("at the start")
	select {
	case <-connected:
		t.Fatal("told twice without a reconnection")
	case <-time.After(100 * time.Millisecond):
	}
	for i := range 2 {
		m.Close()
		time.Sleep(100 * time.Millisecond) // down for a while
		if err := m.Restart(); err != nil {
			t.Fatal(err)
		}
		wait("after restart " + string(rune('1'+i)))
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not end with its context")
	}
}
