package kv_test

import (
	"context"
	"testing"
	"time"

	"duikou/internal/kv"
	"duikou/internal/kv/kvtest"
)

func TestLimiterOnBothServers(t *testing.T) {
	for name, conn := range map[string]*kv.Conn{"embedded": kvtest.Embedded(t), "redis": kvtest.ForTest(t)} {
		t.Run(name, func(t *testing.T) {
			l := kv.NewLimiter(conn)
			ctx := context.Background()
			for i := 1; i <= 3; i++ {
				ok, _, err := l.Allow(ctx, "login:1.2.3.4", 3, time.Minute)
				if err != nil || !ok {
					t.Fatalf("hit %d refused (err %v)", i, err)
				}
			}
			ok, retry, err := l.Allow(ctx, "login:1.2.3.4", 3, time.Minute)
			if err != nil || ok || retry <= 0 || retry > time.Minute {
				t.Fatalf("4th hit: ok=%v retry=%v err=%v; want refused with retry in (0, 1m]", ok, retry, err)
			}
			if ok, _, _ := l.Allow(ctx, "login:5.6.7.8", 3, time.Minute); !ok {
				t.Fatal("another key must have its own window")
			}
		})
	}
}
