package kv_test

import (
	"context"
	"testing"
	"time"

	"duikou/internal/kv"
	"duikou/internal/kv/kvtest"
)

func TestLeaseHasOneHolderOnBothServers(t *testing.T) {
	for name, conn := range map[string]*kv.Conn{"embedded": kvtest.Embedded(t), "redis": kvtest.ForTest(t)} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			lease := func(owner string, ttl time.Duration) *kv.Lease {
				l, err := kv.NewLease(conn, "job", owner, ttl)
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			hold := func(l *kv.Lease) bool {
				ok, err := l.Hold(ctx)
				if err != nil {
					t.Fatal(err)
				}
				return ok
			}
			a, b := lease("a", 400*time.Millisecond), lease("b", time.Minute)
			steps := []struct {
				name string
				l    *kv.Lease
				want bool
			}{{"a takes the free lease", a, true}, {"b is refused while a holds it", b, false}, {"a renews", a, true}, {"b is still refused", b, false}}
			for _, s := range steps {
				if got := hold(s.l); got != s.want {
					t.Fatalf("%s: %v", s.name, got)
				}
			}
			// a stops renewing: after its ttl b takes over, and a cannot
			// take it back.
			deadline := time.Now().Add(5 * time.Second)
			for !hold(b) {
				if time.Now().After(deadline) {
					t.Fatal("a's lease never expired")
				}
				time.Sleep(50 * time.Millisecond)
			}
			if hold(a) {
				t.Fatal("a took the lease back from b")
			}
			if err := a.Release(ctx); err != nil || hold(a) {
				t.Fatalf("a released b's lease (err %v)", err)
			}
			if err := b.Release(ctx); err != nil {
				t.Fatal(err)
			}
			if !hold(a) {
				t.Fatal("a released lease was not free")
			}
			if err := a.Release(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
	if _, err := kv.NewLease(kvtest.Embedded(t), "job", "a|b", time.Second); err == nil {
		t.Error("an owner with the separator was accepted")
	}
}
