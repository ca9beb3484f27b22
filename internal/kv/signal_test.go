package kv_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"duikou/internal/kv"
	"duikou/internal/kv/kvtest"
)

// A signal raised by one instance is heard by another sharing the Redis
// (and deployment prefix), once per notice, and only under its own name;
// subscribing counts as a notice, since notices sent before it were missed.
func TestSignalReachesEveryInstance(t *testing.T) {
	for name, conn := range map[string]*kv.Conn{"embedded": kvtest.Embedded(t), "redis": kvtest.ForTest(t)} {
		t.Run(name, func(t *testing.T) {
			other := &kv.Conn{Client: redis.NewClient(conn.Options()), Prefix: conn.Prefix}
			t.Cleanup(func() { other.Client.Close() })
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			heard := make(chan struct{}, 16)
			ready := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				kv.NewSignal(other, "sessions").Run(ctx, func() { heard <- struct{}{} }, ready)
			}()
			wait := func(what string) {
				t.Helper()
				select {
				case <-heard:
				case <-time.After(10 * time.Second):
					t.Fatalf("%s: not heard", what)
				}
			}
			select {
			case <-ready:
			case <-time.After(10 * time.Second):
				t.Fatal("no subscription")
			}
			wait("the subscription")

			if err := kv.NewSignal(conn, "unrelated").Raise(ctx); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2; i++ {
				if err := kv.NewSignal(conn, "sessions").Raise(ctx); err != nil {
					t.Fatal(err)
				}
				wait("a raised signal")
			}
			select {
			case <-heard:
				t.Fatal("heard a notice more than was raised under the name")
			case <-time.After(100 * time.Millisecond):
			}
			cancel()
			<-done
		})
	}
}
