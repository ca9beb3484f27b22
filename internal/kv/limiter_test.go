package kv_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"duikou/internal/kv"
	"duikou/internal/kv/kvtest"
	"duikou/internal/testclock"
)

func newTestClock() *testclock.Clock {
	return testclock.New(time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC))
}

// scriptCalls counts the limiter's round trips to Redis (each runs the
// script with EVALSHA first).
type scriptCalls struct{ n atomic.Int64 }

func (c *scriptCalls) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *scriptCalls) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "evalsha" {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (c *scriptCalls) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// onBothServers runs test against the embedded server and the test Redis.
func onBothServers(t *testing.T, test func(t *testing.T, conn *kv.Conn)) {
	for _, name := range []string{"embedded", "redis"} {
		t.Run(name, func(t *testing.T) {
			conn := kvtest.Embedded(t)
			if name == "redis" {
				conn = kvtest.ForTest(t)
			}
			test(t, conn)
		})
	}
}

// instance is one server instance's limiter on the shared Redis.
func instance(conn *kv.Conn, clock *testclock.Clock) *kv.Limiter {
	l := kv.NewLimiter(conn)
	l.SetClock(clock.Now)
	return l
}

func TestLimiterAdmitsTheLimitInEachWindowAndNoMore(t *testing.T) {
	cases := []struct {
		name  string
		limit int
	}{
		{"a single hit", 1},
		{"login attempts", 5},
		{"just below chunking", 31},
		{"uploads", 30},
		{"smallest chunked limit", 32},
		{"api requests", 1200},
	}
	onBothServers(t, func(t *testing.T, conn *kv.Conn) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				clock := newTestClock()
				l := instance(conn, clock)
				ctx := context.Background()
				key := "window:" + c.name
				for window := 1; window <= 3; window++ {
					for i := 1; i <= c.limit; i++ {
						if ok, _, err := l.Allow(ctx, key, c.limit, time.Minute); !ok || err != nil {
							t.Fatalf("window %d: hit %d of %d refused (err %v)", window, i, c.limit, err)
						}
					}
					ok, retry, err := l.Allow(ctx, key, c.limit, time.Minute)
					if ok || err != nil || retry != time.Minute {
						t.Fatalf("window %d: hit %d: ok=%v retry=%v err=%v; want refused until the window ends in 1m", window, c.limit+1, ok, retry, err)
					}
					clock.Advance(20 * time.Second)
					if ok, retry, _ := l.Allow(ctx, key, c.limit, time.Minute); ok || retry != 40*time.Second {
						t.Fatalf("window %d, 20s on: ok=%v retry=%v; want still refused for 40s", window, ok, retry)
					}
					clock.Advance(40 * time.Second) // the window is over
				}
			})
		}
	})
}

func TestLimiterHoldsAcrossInstances(t *testing.T) {
	cases := []struct {
		name       string
		limit      int
		goroutines int // per instance
		hits       int // per goroutine; 0: until refused
		admitted   int // by both instances together
	}{
		{"login attempts, more than the limit", 5, 4, 0, 5},
		{"uploads, more than the limit", 30, 4, 0, 30},
		{"api requests, more than the limit", 1200, 8, 0, 1200},
		{"api requests, less than the limit", 1200, 8, 60, 2 * 8 * 60},
	}
	onBothServers(t, func(t *testing.T, conn *kv.Conn) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				clock := newTestClock()
				instances := []*kv.Limiter{instance(conn, clock), instance(conn, clock)}
				key := "shared:" + c.name
				var admitted atomic.Int64
				var wg sync.WaitGroup
				for _, l := range instances {
					for range c.goroutines {
						wg.Go(func() {
							// Until refused, but never endlessly should the limit not hold.
							for i := 0; (c.hits == 0 && admitted.Load() <= int64(c.limit)) || i < c.hits; i++ {
								ok, _, err := l.Allow(context.Background(), key, c.limit, time.Minute)
								if err != nil {
									t.Error(err)
									return
								}
								if !ok {
									return
								}
								admitted.Add(1)
							}
						})
					}
				}
				wg.Wait()
				if got := admitted.Load(); got != int64(c.admitted) {
					t.Errorf("two instances admitted %d hits, want %d (limit %d)", got, c.admitted, c.limit)
				}
			})
		}
	})
}

func TestLimiterReservesInGrowingChunks(t *testing.T) {
	cases := []struct {
		name     string
		limit    int
		hits     int
		maxCalls int64
	}{
		// Below 32 every hit is its own reservation of one, as before.
		{"login attempts", 20, 20, 20},
		// 1, 2: a key used a few times reserves no more than it uses.
		{"a few api requests", 1200, 3, 2},
		// 1, 2, 4 … 64, then 64 at a time: 24 calls.
		{"a busy user", 1200, 1200, 24},
	}
	onBothServers(t, func(t *testing.T, conn *kv.Conn) {
		calls := &scriptCalls{}
		conn.AddHook(calls)
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				l := instance(conn, newTestClock())
				key := "chunks:" + c.name
				before := calls.n.Load()
				for i := 1; i <= c.hits; i++ {
					if ok, _, err := l.Allow(context.Background(), key, c.limit, time.Minute); !ok || err != nil {
						t.Fatalf("hit %d refused (err %v)", i, err)
					}
				}
				if n := calls.n.Load() - before; n > c.maxCalls {
					t.Errorf("%d hits took %d calls to Redis, want at most %d", c.hits, n, c.maxCalls)
				}
			})
		}
		t.Run("a refused key costs no call until its window ends", func(t *testing.T) {
			clock := newTestClock()
			l := instance(conn, clock)
			for range 100 {
				l.Allow(context.Background(), "refused", 100, time.Minute)
			}
			before := calls.n.Load()
			for range 50 {
				if ok, _, _ := l.Allow(context.Background(), "refused", 100, time.Minute); ok {
					t.Fatal("a hit beyond the limit was admitted")
				}
			}
			if n := calls.n.Load() - before; n != 0 {
				t.Errorf("refusing took %d calls to Redis", n)
			}
		})
	})
}

func TestLimiterConcurrentHitsOnOneKeyShareReservations(t *testing.T) {
	onBothServers(t, func(t *testing.T, conn *kv.Conn) {
		calls := &scriptCalls{}
		conn.AddHook(calls)
		l := instance(conn, newTestClock())
		const goroutines, hits = 32, 100
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for range goroutines {
			wg.Go(func() {
				for range hits {
					if ok, _, err := l.Allow(context.Background(), "busy", 100000, time.Minute); ok && err == nil {
						admitted.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if admitted.Load() != goroutines*hits {
			t.Errorf("admitted %d of %d hits within the limit", admitted.Load(), goroutines*hits)
		}
		// Reservations only grow while hits wait for one, so the count is
		// at most that of one hit after another: 1, 2 … 64, then 64s.
		if n := calls.n.Load(); n > 56 {
			t.Errorf("%d hits took %d calls to Redis, want at most 56", goroutines*hits, n)
		}
	})
}

func TestLimiterUnusedReservationRefusesElsewhereByAtMostAChunk(t *testing.T) {
	cases := []struct {
		limit, hitsOnA int
	}{
		{5, 1}, {20, 7}, {31, 10}, {32, 3}, {1200, 1}, {1200, 10}, {1200, 300}, {100000, 5000},
	}
	onBothServers(t, func(t *testing.T, conn *kv.Conn) {
		for _, c := range cases {
			t.Run(fmt.Sprintf("limit %d, %d hits on A", c.limit, c.hitsOnA), func(t *testing.T) {
				clock := newTestClock()
				a, b := instance(conn, clock), instance(conn, clock)
				key := fmt.Sprintf("unused:%d:%d", c.limit, c.hitsOnA)
				ctx := context.Background()
				// A goes busy in a first window, so its chunks grew …
				for range min(c.limit, 500) {
					a.Allow(ctx, key, c.limit, time.Minute)
				}
				clock.Advance(time.Minute)
				// … but they start at one again in the next.
				for range c.hitsOnA {
					if ok, _, _ := a.Allow(ctx, key, c.limit, time.Minute); !ok {
						t.Fatal("A refused within the limit")
					}
				}
				onB := 0
				for onB <= c.limit {
					if ok, _, _ := b.Allow(ctx, key, c.limit, time.Minute); !ok {
						break
					}
					onB++
				}
				if c.hitsOnA+onB > c.limit {
					t.Errorf("A and B admitted %d + %d, over the limit %d", c.hitsOnA, onB, c.limit)
				}
				if held := c.limit - c.hitsOnA - onB; held >= kv.ChunkCap(c.limit) {
					t.Errorf("B was refused with %d hits held unused by A, want fewer than a chunk (%d)", held, kv.ChunkCap(c.limit))
				}
				if c.limit < 32 && c.hitsOnA+onB != c.limit {
					t.Errorf("A and B admitted %d + %d, want exactly the limit %d", c.hitsOnA, onB, c.limit)
				}
			})
		}
	})
}

func TestLimiterKeepsLocalStateBounded(t *testing.T) {
	onBothServers(t, func(t *testing.T, conn *kv.Conn) {
		ctx := context.Background()
		t.Run("at most maxKeys keys", func(t *testing.T) {
			clock := newTestClock()
			l := instance(conn, clock)
			l.SetMaxKeys(100)
			for i := range 1000 {
				if ok, _, err := l.Allow(ctx, fmt.Sprintf("many:%d", i), 1200, time.Minute); !ok || err != nil {
					t.Fatalf("key %d refused (err %v)", i, err)
				}
				if n := l.LocalKeys(); n > 100 {
					t.Fatalf("%d keys held, want at most 100", n)
				}
			}
			clock.Advance(time.Minute)
			l.Allow(ctx, "many:next-window", 1200, time.Minute)
			if n := l.LocalKeys(); n != 1 {
				t.Errorf("%d keys held after their windows ended, want only the new one", n)
			}
		})
		t.Run("a forgotten key stays within its limit", func(t *testing.T) {
			l := instance(conn, newTestClock())
			l.SetMaxKeys(2)
			const limit = 64 // chunks of up to 4
			admitted := map[string]int{}
			for i := range 3 * 200 {
				key := fmt.Sprintf("forgotten:%d", i%3)
				if ok, _, _ := l.Allow(ctx, key, limit, time.Minute); ok {
					admitted[key]++
				}
			}
			for key, n := range admitted {
				if n > limit {
					t.Errorf("%s: %d admitted, over the limit %d", key, n, limit)
				}
			}
		})
	})
}

func TestLimiterAllowsWhenRedisIsDown(t *testing.T) {
	onBothServers(t, func(t *testing.T, conn *kv.Conn) {
		l := kv.NewLimiter(conn)
		conn.Close()
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				ok, _, err := l.Allow(context.Background(), "down", 1200, time.Minute)
				if !ok || err == nil {
					t.Errorf("with Redis unreachable: ok=%v err=%v, want allowed with the error", ok, err)
				}
			})
		}
		wg.Wait()
	})
}
