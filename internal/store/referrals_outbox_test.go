package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/referral"
)

func outboxTestIDs(ms []store.OutboxMessage) []string {
	keys := make([]string, len(ms))
	for i, m := range ms {
		keys[i] = m.Key
	}
	return keys
}

func TestReferralOutboxTakeAndMarkPublished(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewReferrals(db)
		now := sqldb.Now()
		for _, m := range []struct{ topic, key string }{{"referral.changed", "a"}, {"other", "x"}, {"referral.changed", "b"}, {"referral.changed", "c"}} {
			if err := st.EnqueueOutbox(ctx, m.topic, m.key, "{}", now); err != nil {
				t.Fatal(err)
			}
		}
		var first []store.OutboxMessage
		err := db.InTx(ctx, func(ctx context.Context) error {
			var err error
			if first, err = st.TakeOutbox(ctx, "referral.changed", 2); err != nil {
				return err
			}
			return st.MarkPublished(ctx, []int64{first[0].ID, first[1].ID}, now)
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := outboxTestIDs(first); !slices.Equal(got, []string{"a", "b"}) {
			t.Fatalf("first batch %v, want a, b of the topic in order", got)
		}
		rest, err := st.TakeOutbox(ctx, "referral.changed", 10)
		if err != nil || !slices.Equal(outboxTestIDs(rest), []string{"c"}) {
			t.Fatalf("after marking: %v %v, want c", outboxTestIDs(rest), err)
		}
		// Marking again keeps the first delivery time.
		if err := st.MarkPublished(ctx, []int64{first[0].ID}, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		var at time.Time
		if err := db.QueryRow(ctx, `SELECT published_at FROM outbox WHERE id = $1`, first[0].ID).Scan(&at); err != nil || !at.Equal(now) {
			t.Errorf("published at %v (%v), want %v", at, err, now)
		}
		if err := st.MarkPublished(ctx, nil, now); err != nil {
			t.Errorf("marking nothing: %v", err)
		}
	})
}

// Two relays at once on PostgreSQL take different rows: the second skips
// the rows the first holds instead of waiting for them or repeating them.
func TestReferralOutboxRelaysShareTheRows(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		if db.Dialect() != sqldb.Postgres {
			t.Skip("SQLite has one writer: relays cannot overlap")
		}
		ctx := context.Background()
		st := store.NewReferrals(db)
		for _, k := range []string{"a", "b", "c"} {
			if err := st.EnqueueOutbox(ctx, "referral.changed", k, "{}", sqldb.Now()); err != nil {
				t.Fatal(err)
			}
		}
		held, release := make(chan []string), make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- db.InTx(ctx, func(ctx context.Context) error {
				ms, err := st.TakeOutbox(ctx, "referral.changed", 2)
				held <- outboxTestIDs(ms)
				<-release
				return err
			})
		}()
		if got := <-held; !slices.Equal(got, []string{"a", "b"}) {
			t.Errorf("first relay took %v", got)
		}
		var second []store.OutboxMessage
		err := db.InTx(ctx, func(ctx context.Context) error {
			var err error
			second, err = st.TakeOutbox(ctx, "referral.changed", 10)
			return err
		})
		close(release)
		if err := errors.Join(err, <-done); err != nil {
			t.Fatal(err)
		}
		if got := outboxTestIDs(second); !slices.Equal(got, []string{"c"}) {
			t.Errorf("second relay took %v, want only c", got)
		}
	})
}

func TestReferralStoreForEachQueuedReadsTheWaitingTickets(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewReferrals(db)
		now := sqldb.Now()
		want := map[string]referral.Status{}
		for _, s := range []referral.Status{referral.Submitted, referral.Claimed, referral.Accepted, referral.Cancelled} {
			r := refTestTicket(dirTestID(), dirTestID(), now)
			r.Status = s
			if s == referral.Claimed {
				r.ClaimedBy = dirTestID()
			}
			if err := st.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
			if s.InQueue() {
				want[r.ID] = s
			}
		}
		got := map[string]referral.Status{}
		err := st.ForEachQueued(ctx, func(r referral.Referral) error {
			got[r.ID] = r.Status
			if r.ReceivingHospitalID == "" || r.ReceivingDepartmentID == "" || r.Version != 2 || !r.GreenChannel ||
				r.GreenCategory != referral.ChestPain || r.Priority != referral.Emergency || r.QueuedAt == nil || !r.QueuedAt.Equal(now) {
				t.Errorf("queued ticket read back as %+v", r)
			}
			if (r.Status == referral.Claimed) != (r.ClaimedBy != "") {
				t.Errorf("%s ticket held by %q", r.Status, r.ClaimedBy)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("read %v, want %v", got, want)
		}
		for id, s := range want {
			if got[id] != s {
				t.Errorf("%s: %s, want %s", id, got[id], s)
			}
		}
		stop := errors.New("stop")
		if err := st.ForEachQueued(ctx, func(referral.Referral) error { return stop }); !errors.Is(err, stop) {
			t.Errorf("fn's error: %v", err)
		}
	})
}

func TestReferralOutboxClaimHoldsMessagesUntilRetried(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewReferrals(db)
		now := sqldb.Now()
		for _, k := range []string{"a", "b", "c", "d"} {
			if err := st.EnqueueOutbox(ctx, "hook", k, "{}", now); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.EnqueueOutbox(ctx, "other", "x", "{}", now); err != nil {
			t.Fatal(err)
		}
		claim := func(at time.Time, limit int) []store.OutboxMessage {
			t.Helper()
			ms, err := st.ClaimOutbox(ctx, "hook", limit, at, at.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			return ms
		}
		first := claim(now, 3)
		if got := outboxTestIDs(first); !slices.Equal(got, []string{"a", "b", "c"}) || first[0].Attempts != 1 {
			t.Fatalf("first claim %v (attempts %d), want a, b, c at their first attempt", got, first[0].Attempts)
		}
		if got := outboxTestIDs(claim(now, 3)); !slices.Equal(got, []string{"d"}) {
			t.Fatalf("second claim %v, want only d: the others are held", got)
		}
		if err := st.MarkPublished(ctx, []int64{first[0].ID}, now); err != nil {
			t.Fatal(err)
		}
		if err := st.RetryOutbox(ctx, first[1].ID, now.Add(10*time.Second), "receiver answered 500"); err != nil {
			t.Fatal(err)
		}
		if got := outboxTestIDs(claim(now.Add(10*time.Second), 10)); !slices.Equal(got, []string{"b"}) {
			t.Fatalf("at b's retry time %v, want b alone", got)
		}
		again := claim(now.Add(2*time.Minute), 10)
		if got := outboxTestIDs(again); !slices.Equal(got, []string{"b", "c", "d"}) || again[0].Attempts != 3 || again[1].Attempts != 2 {
			t.Fatalf("after the hold %v, want b, c, d again (the delivered a never)", got)
		}
	})
}

func TestReferralEscalationIsRecordedOncePerDeadline(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewReferrals(db)
		now := sqldb.Now()
		r := refTestTicket(dirTestID(), dirTestID(), now)
		if err := st.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		due := now.Add(5 * time.Minute)
		e := referral.Escalation{ReferralID: r.ID, Kind: referral.ClaimBreach, Due: due, RaisedAt: now.Add(6 * time.Minute), Status: referral.Submitted}
		for i, c := range []struct {
			kind  referral.BreachKind
			due   time.Time
			added bool
		}{{referral.ClaimBreach, due, true}, {referral.ClaimBreach, due, false}, {referral.DecideBreach, due, true}, {referral.ClaimBreach, due.Add(time.Hour), true}} {
			e.ID, e.Kind, e.Due = dirTestID(), c.kind, c.due
			added, err := st.AddEscalation(ctx, e)
			if err != nil || added != c.added {
				t.Fatalf("%d: %s due %v added=%v (%v), want %v", i, c.kind, c.due, added, err, c.added)
			}
		}
		es, err := st.Escalations(ctx, r.ID)
		if err != nil || len(es) != 3 || !es[0].Due.Equal(due) || es[0].Status != referral.Submitted {
			t.Fatalf("escalations %+v %v", es, err)
		}
	})
}

// outboxTestRows writes one message per key, created at the given time, and
// returns their ids by key.
func outboxTestRows(t *testing.T, db sqldb.DB, st *store.Referrals, rows []outboxTestRow) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	for _, r := range rows {
		if err := st.EnqueueOutbox(ctx, "referral.changed", r.key, "{}", r.created); err != nil {
			t.Fatal(err)
		}
	}
	ids := map[string]int64{}
	rs, err := db.Query(ctx, `SELECT id, key FROM outbox`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	for rs.Next() {
		var id int64
		var key string
		if err := rs.Scan(&id, &key); err != nil {
			t.Fatal(err)
		}
		ids[key] = id
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		switch {
		case r.published != nil:
			err = st.MarkPublished(ctx, []int64{ids[r.key]}, *r.published)
		case r.failed:
			err = st.FailOutbox(ctx, ids[r.key], r.created.Add(time.Hour), "receiver answered 500")
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

type outboxTestRow struct {
	key       string
	created   time.Time
	published *time.Time // nil: not (yet) delivered
	failed    bool       // given up by its consumer
}

func outboxTestKeys(t *testing.T, db sqldb.DB) []string {
	t.Helper()
	rs, err := db.Query(context.Background(), `SELECT key FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var keys []string
	for rs.Next() {
		var k string
		if err := rs.Scan(&k); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	return keys
}

// A purge walks the outbox in windows of the primary key, deletes in each
// only what was published before the cutoff, and stops at the first window
// that reaches messages too recent: unpublished messages of any age,
// failed ones and recently published ones stay.
func TestReferralOutboxPurgeDeletesOnlyOldPublishedMessagesInWindows(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewReferrals(db)
		now := sqldb.Now()
		cutoff := now.Add(-7 * 24 * time.Hour)
		day := func(n int) time.Time { return now.Add(time.Duration(n) * 24 * time.Hour) }
		at := func(n int) *time.Time { t := day(n); return &t }

		rows := []outboxTestRow{
			{key: "old-published", created: day(-10), published: at(-10)},
			{key: "old-unpublished", created: day(-10)},
			{key: "old-failed", created: day(-9), failed: true},
		}
		var purged []string
		for i := range 12 {
			k := fmt.Sprintf("published-8d-%02d", i)
			rows = append(rows, outboxTestRow{key: k, created: day(-8), published: at(-8)})
			purged = append(purged, k)
		}
		rows = append(rows,
			outboxTestRow{key: "published-late", created: day(-8), published: at(-6)}, // delivered within the retention
			outboxTestRow{key: "published-yesterday", created: day(-1), published: at(-1)},
			outboxTestRow{key: "just-before-cutoff", created: cutoff.Add(-time.Second), published: ptr(cutoff.Add(-time.Second))},
		)
		for i := range 8 {
			r := outboxTestRow{key: fmt.Sprintf("recent-%d", i), created: now}
			if i%2 == 0 {
				r.published = &now
			}
			rows = append(rows, r)
		}
		ids := outboxTestRows(t, db, st, rows)
		purged = append([]string{"old-published"}, purged...)

		// Windows of 5 ids: the first deletes 3 (the two unpublished stay),
		// the next two 5 each; the fourth deletes only the message published
		// just before the cutoff (not the one published late) and holds
		// messages created after the cutoff, so the walk ends there.
		var steps []store.OutboxPurgeStep
		after := int64(0)
		for len(steps) < 20 {
			step, err := st.PurgeOutbox(ctx, after, cutoff, 5)
			if err != nil {
				t.Fatal(err)
			}
			if step.Deleted > 5 {
				t.Fatalf("a window of 5 deleted %d", step.Deleted)
			}
			if step.Last <= after {
				t.Fatalf("step after %d ended at %d", after, step.Last)
			}
			steps, after = append(steps, step), step.Last
			if step.Done {
				break
			}
		}
		var deleted []int64
		for _, s := range steps {
			deleted = append(deleted, s.Deleted)
		}
		if !slices.Equal(deleted, []int64{3, 5, 5, 1}) {
			t.Errorf("deleted per window %v, want [3 5 5 1]", deleted)
		}
		if last := steps[len(steps)-1].Last; last >= ids["recent-7"] {
			t.Errorf("the walk went on to id %d: past the first window of recent messages", last)
		}
		purged = append(purged, "just-before-cutoff")
		var want []string
		for _, r := range rows {
			if !slices.Contains(purged, r.key) {
				want = append(want, r.key)
			}
		}
		if got := outboxTestKeys(t, db); !slices.Equal(got, want) {
			t.Errorf("kept %v\nwant %v", got, want)
		}

		// Again: nothing more to delete, and an empty window is done.
		step, err := st.PurgeOutbox(ctx, 0, cutoff, 5)
		if err != nil || step.Deleted != 0 {
			t.Errorf("second purge deleted %d (%v)", step.Deleted, err)
		}
		step, err = st.PurgeOutbox(ctx, ids["recent-7"], cutoff, 5)
		if err != nil || !step.Done || step.Deleted != 0 || step.Last != ids["recent-7"] {
			t.Errorf("past the last message: %+v (%v)", step, err)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// A message given up is not claimed again; it keeps its error, and a
// delivered message cannot be given up.
func TestReferralOutboxFailedMessageIsNeverClaimedAgain(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewReferrals(db)
		now := sqldb.Now()
		for _, k := range []string{"a", "b"} {
			if err := st.EnqueueOutbox(ctx, "hook", k, "{}", now); err != nil {
				t.Fatal(err)
			}
		}
		ms, err := st.ClaimOutbox(ctx, "hook", 10, now, now.Add(time.Minute))
		if err != nil || len(ms) != 2 {
			t.Fatalf("claimed %d (%v)", len(ms), err)
		}
		if err := st.FailOutbox(ctx, ms[0].ID, now, "receiver answered 500 Internal Server Error"); err != nil {
			t.Fatal(err)
		}
		if err := st.MarkPublished(ctx, []int64{ms[1].ID}, now); err != nil {
			t.Fatal(err)
		}
		if err := st.FailOutbox(ctx, ms[1].ID, now, "late"); err != nil {
			t.Fatal(err)
		}
		if again, err := st.ClaimOutbox(ctx, "hook", 10, now.Add(time.Hour), now.Add(2*time.Hour)); err != nil || len(again) != 0 {
			t.Fatalf("claimed again: %v (%v)", outboxTestIDs(again), err)
		}
		var failed, published int
		var lastError string
		if err := db.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM outbox WHERE failed_at IS NOT NULL AND published_at IS NULL),
			(SELECT count(*) FROM outbox WHERE published_at IS NOT NULL AND failed_at IS NULL),
			(SELECT last_error FROM outbox WHERE id = $1)`, ms[0].ID).Scan(&failed, &published, &lastError); err != nil {
			t.Fatal(err)
		}
		if failed != 1 || published != 1 || lastError != "receiver answered 500 Internal Server Error" {
			t.Errorf("%d failed, %d published, last error %q", failed, published, lastError)
		}
	})
}

// A delivery given up is no longer pending: neither the relay nor the
// webhook nor a look at the outbox gets it again. On PostgreSQL each of
// those reads can go through the outbox_pending index, which holds only
// pending messages: a partial index serves only a query whose WHERE
// implies its predicate.
func TestReferralOutboxGivenUpMessagesAreNotPending(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		rec := &outboxTestStatements{DB: db}
		st := store.NewReferrals(rec)
		now := sqldb.Now()
		for _, k := range []string{"a", "b", "c"} {
			if err := st.EnqueueOutbox(ctx, "hook", k, "{}", now); err != nil {
				t.Fatal(err)
			}
		}
		ms, err := st.ClaimOutbox(ctx, "hook", 10, now, now.Add(time.Minute))
		if err != nil || len(ms) != 3 {
			t.Fatalf("claimed %d (%v)", len(ms), err)
		}
		if err := st.FailOutbox(ctx, ms[1].ID, now, "receiver answered 500"); err != nil {
			t.Fatal(err)
		}
		rec.reads = nil

		taken, err := st.TakeOutbox(ctx, "hook", 10)
		if err != nil || !slices.Equal(outboxTestIDs(taken), []string{"a", "c"}) {
			t.Errorf("the relay took %v (%v), want a, c", outboxTestIDs(taken), err)
		}
		listed, err := st.Outbox(ctx, 10)
		if err != nil || !slices.Equal(outboxTestIDs(listed), []string{"a", "c"}) {
			t.Errorf("pending %v (%v), want a, c", outboxTestIDs(listed), err)
		}
		claimed, err := st.ClaimOutbox(ctx, "hook", 10, now.Add(time.Hour), now.Add(2*time.Hour))
		if err != nil || !slices.Equal(outboxTestIDs(claimed), []string{"a", "c"}) {
			t.Errorf("the webhook claimed %v (%v), want a, c", outboxTestIDs(claimed), err)
		}

		if db.Dialect() != sqldb.Postgres {
			return
		}
		if len(rec.reads) != 3 {
			t.Fatalf("recorded %d reads, want the three above", len(rec.reads))
		}
		// Many delivered messages, as a running outbox holds, and fresh
		// statistics: the planner then sees the pending ones as the few
		// they are, and sequential scans are off so that even a small
		// table is read through an index, which must be outbox_pending.
		if _, err := db.Exec(ctx, `INSERT INTO outbox (topic, key, payload, created_at, published_at)
			SELECT 'hook', 'delivered-' || g, '{}', $1, $1 FROM generate_series(1, 2000) g`, now); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `ANALYZE outbox`); err != nil {
			t.Fatal(err)
		}
		for _, r := range rec.reads {
			var plan []string
			err := db.InTx(ctx, func(ctx context.Context) error {
				if _, err := db.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
					return err
				}
				rows, err := db.Query(ctx, `EXPLAIN `+r.sql, r.args...)
				if err != nil {
					return err
				}
				defer rows.Close()
				for rows.Next() {
					var line string
					if err := rows.Scan(&line); err != nil {
						return err
					}
					plan = append(plan, line)
				}
				return rows.Err()
			})
			if err != nil {
				t.Fatalf("explain %s: %v", r.sql, err)
			}
			if !strings.Contains(strings.Join(plan, "\n"), "outbox_pending") {
				t.Errorf("%s\nis planned without the outbox_pending index:\n%s", r.sql, strings.Join(plan, "\n"))
			}
		}
	})
}

// outboxTestStatements records the queries the store sends, with their
// arguments, for the planner to be asked about them.
type outboxTestStatements struct {
	sqldb.DB
	reads []outboxTestStatement
}

type outboxTestStatement struct {
	sql  string
	args []any
}

func (s *outboxTestStatements) Query(ctx context.Context, sql string, args ...any) (sqldb.Rows, error) {
	s.reads = append(s.reads, outboxTestStatement{sql, args})
	return s.DB.Query(ctx, sql, args...)
}
