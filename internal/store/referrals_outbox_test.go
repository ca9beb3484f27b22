package store_test

import (
	"context"
	"errors"
	"slices"
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
