package referrals_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"duikou/internal/kv/kvtest"
	"duikou/internal/referrals"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/internal/testclock"
)

// countingPurgeStore counts the purge's statements.
type countingPurgeStore struct {
	referrals.PurgeStore
	mu    sync.Mutex
	calls int
}

func (c *countingPurgeStore) PurgeOutbox(ctx context.Context, after int64, before time.Time, window int) (store.OutboxPurgeStep, error) {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	return c.PurgeStore.PurgeOutbox(ctx, after, before, window)
}

func (c *countingPurgeStore) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// outboxKeys lists the outbox's messages' keys in id order.
func outboxKeys(t *testing.T, db sqldb.DB) []string {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT key FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var key string
		if err := rows.Scan(&key); err != nil {
			t.Fatal(err)
		}
		out = append(out, key)
	}
	return out
}

// The purge deletes published messages past the retention, a bounded
// number of statements per run, going on over ticks until it is through; it
// leaves unpublished messages of any age and recently published ones, and
// waits its period before the next run.
func TestOutboxPurgeDeletesPublishedMessagesPastTheRetentionOverBoundedRuns(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewReferrals(db)
		now := sqldb.Now()
		c := testclock.New(now)
		type msg struct {
			key       string
			created   time.Time
			published *time.Time
		}
		ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
		day := 24 * time.Hour
		var msgs []msg
		var want []string
		for i := range 9 {
			msgs = append(msgs, msg{key: fmt.Sprintf("old-%d", i), created: now.Add(-10 * day), published: ago(10 * day)})
			if i == 4 {
				// A change never relayed, and one relayed just now: both stay.
				msgs = append(msgs, msg{key: "stuck", created: now.Add(-10 * day)}, msg{key: "late", created: now.Add(-10 * day), published: ago(time.Hour)})
				want = append(want, "stuck", "late")
			}
		}
		msgs = append(msgs, msg{key: "yesterday", created: now.Add(-day), published: ago(day)}, msg{key: "waiting", created: now})
		want = append(want, "yesterday", "waiting")
		for _, m := range msgs {
			if err := st.EnqueueOutbox(ctx, referrals.TopicChanged, m.key, "{}", m.created); err != nil {
				t.Fatal(err)
			}
		}
		for i, m := range msgs {
			if m.published != nil {
				if err := st.MarkPublished(ctx, []int64{int64(i + 1)}, *m.published); err != nil {
					t.Fatal(err)
				}
			}
		}
		if got := outboxKeys(t, db); len(got) != len(msgs) || got[0] != "old-0" {
			t.Fatalf("written %v", got) // ids 1… in order, as MarkPublished above assumed
		}

		counted := &countingPurgeStore{PurgeStore: st}
		p := referrals.NewOutboxPurge(counted, referrals.PurgeOptions{Retention: 7 * day, Every: time.Hour, Batch: 2, MaxBatches: 2, Now: c.Now})
		// Windows of 2 ids, 2 per run: the first run deletes old-0…old-3,
		// the second old-4 and, past stuck and late, old-5, the third
		// old-6…old-8 and reaches yesterday: it is through.
		for run, left := range []int{9, 7, 4} {
			calls := counted.count()
			if n, err := p.Tick(ctx); err != nil || n != 0 {
				t.Fatalf("run %d: %d raised, %v", run, n, err)
			}
			if got := counted.count() - calls; got > 2 {
				t.Errorf("run %d: %d statements, want at most 2", run, got)
			}
			if got := outboxKeys(t, db); len(got) != left {
				t.Errorf("run %d left %v, want %d messages", run, got, left)
			}
			c.Set(c.Now().Add(2 * time.Second)) // the watcher's next tick
		}
		if got := outboxKeys(t, db); !slices.Equal(got, want) {
			t.Fatalf("kept %v, want %v", got, want)
		}
		calls := counted.count()
		if _, err := p.Tick(ctx); err != nil || counted.count() != calls {
			t.Errorf("ran again %d statements before its hour (%v)", counted.count()-calls, err)
		}

		// Nearly a week on, what was published yesterday is past the
		// retention too; a message waiting to be relayed never is.
		c.Set(now.Add(6*day + 2*time.Hour))
		if _, err := p.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		if got := outboxKeys(t, db); !slices.Equal(got, []string{"stuck", "late", "waiting"}) {
			t.Errorf("a week later kept %v", got)
		}
		c.Set(now.Add(8 * day))
		if _, err := p.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		if got := outboxKeys(t, db); !slices.Equal(got, []string{"stuck", "waiting"}) {
			t.Errorf("eight days later kept %v", got)
		}
	})
}

// The purge is a source of the deadline watcher: only the lease holder
// purges, and another instance takes over when the holder gives the lease
// up.
func TestOutboxPurgeRunsOnTheLeaderOnly(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewReferrals(db)
		c := testclock.New(sqldb.Now())
		if err := st.EnqueueOutbox(ctx, referrals.TopicChanged, "old", "{}", c.Now().Add(-30*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := st.MarkPublished(ctx, []int64{1}, c.Now().Add(-30*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		conn := kvtest.Embedded(t)
		stores := [2]*countingPurgeStore{{PurgeStore: st}, {PurgeStore: st}}
		var inst [2]instance
		for i, owner := range []string{"one", "two"} {
			purge := referrals.NewOutboxPurge(stores[i], referrals.PurgeOptions{Every: time.Minute, Now: c.Now})
			inst[i] = newInstance(t, db, conn, owner, 15*time.Second, c.Now, referrals.WatcherOptions{Sources: []referrals.Source{purge}})
		}
		step := func(i int) bool {
			t.Helper()
			leader, _, err := inst[i].watcher.Step(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return leader
		}
		if !step(0) || step(1) {
			t.Fatal("want one, and only one, leader")
		}
		if stores[0].count() == 0 || stores[1].count() != 0 {
			t.Fatalf("statements: leader %d, other %d; want the leader's only", stores[0].count(), stores[1].count())
		}
		if got := outboxKeys(t, db); len(got) != 0 {
			t.Errorf("left %v", got)
		}
		c.Set(c.Now().Add(2 * time.Minute))
		if step(1) {
			t.Fatal("two leaders")
		}
		if stores[1].count() != 0 {
			t.Errorf("the other instance purged %d times while not leading", stores[1].count())
		}
		if err := inst[0].lease.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if !step(1) || stores[1].count() == 0 {
			t.Errorf("after the lease was given up the other instance purged %d times", stores[1].count())
		}
	})
}
