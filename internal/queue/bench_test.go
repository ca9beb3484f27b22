package queue_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"duikou/internal/kv/kvtest"
	"duikou/internal/queue"
	"duikou/referral"
)

// BenchmarkRebuild rebuilds the queues of n open tickets (spread over 5
// hospitals with 10 departments each) and reports the Redis memory each
// queued ticket costs, from MEMORY USAGE of every queue key (real Redis only;
// the embedded server cannot tell). Run on real Redis:
//
//	DUIKOU_TEST_REDIS_URL=redis://127.0.0.1:6379/0 go test -run '^$' -bench Rebuild ./internal/queue
func BenchmarkRebuild(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("tickets=%d", n), func(b *testing.B) {
			conn := kvtest.ForTest(b)
			b.Cleanup(func() { flush(b, conn) })
			ctx := context.Background()
			q := queue.New(conn, queue.Options{AgingAfter: 24 * time.Hour})
			now := time.Now()
			prios := []referral.Priority{referral.Routine, referral.Routine, referral.Routine, referral.Urgent, referral.Emergency}
			db := make(tickets, n)
			for i := range db {
				e := waiting(i+1, fmt.Sprintf("0194f5c2-0000-7000-8000-0000000000%02d", i%10), prios[i%len(prios)], i%50 == 0, now, i%5000)
				e.HospitalID = fmt.Sprintf("0194f5c2-0000-7000-8000-00000000a%03d", i%5)
				e.ID = fmt.Sprintf("%08x-%04x-7000-8000-%012x", now.Unix(), i%65536, i)
				e.Version = 3
				db[i] = e
			}
			b.ResetTimer()
			for range b.N {
				if _, err := q.Rebuild(ctx, db); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/ticket")
			if conn.Embedded {
				return
			}
			keys, err := conn.Keys(ctx, conn.Key("q", "*")).Result()
			if err != nil {
				b.Fatal(err)
			}
			var total int64
			for _, k := range keys {
				m, err := conn.MemoryUsage(ctx, k, 0).Result()
				if err != nil {
					b.Fatal(err)
				}
				total += m
			}
			b.ReportMetric(float64(total)/float64(n), "bytes/ticket")
		})
	}
}
