package queue_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"duikou/internal/kv"
	"duikou/internal/kv/kvtest"
	"duikou/internal/queue"
	"duikou/referral"
)

const (
	hospA  = "0194f5c2-0000-7000-8000-00000000a001"
	hospB  = "0194f5c2-0000-7000-8000-00000000a002"
	cardio = "0194f5c2-0000-7000-8000-0000000000d1"
	neuro  = "0194f5c2-0000-7000-8000-0000000000d2"
)

var base = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

// bothServers runs a test on the embedded server and on the test Redis.
func bothServers(t *testing.T, fn func(t *testing.T, conn *kv.Conn)) {
	for _, s := range []struct {
		name string
		open func(testing.TB) *kv.Conn
	}{{"embedded", kvtest.Embedded}, {"redis", kvtest.ForTest}} {
		t.Run(s.name, func(t *testing.T) {
			conn := s.open(t)
			t.Cleanup(func() { flush(t, conn) }) // the test Redis is shared
			fn(t, conn)
		})
	}
}

// ticketID is a time-ordered UUID: n orders it.
func ticketID(n int) string { return fmt.Sprintf("%08x-0000-7000-8000-000000000001", n) }

// waiting is a queued ticket that was submitted minutesAgo before now.
func waiting(n int, dept string, prio referral.Priority, green bool, now time.Time, minutesAgo int) queue.Entry {
	at := now.Add(-time.Duration(minutesAgo) * time.Minute)
	e := queue.Entry{ID: ticketID(n), Version: 1, HospitalID: hospA, DepartmentID: dept,
		Number: fmt.Sprintf("ZZ-20261122-%06d", n), Priority: prio, Green: green,
		WaitingSince: at, QueuedAt: at, ClaimBy: at.Add(time.Hour), DecideBy: at.Add(4 * time.Hour)}
	if green {
		e.Category = referral.Stroke
	}
	return e
}

func ids(items []queue.Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.ID)
	}
	return out
}

func mustUpsert(t *testing.T, q *queue.Referrals, es ...queue.Entry) {
	t.Helper()
	for _, e := range es {
		if _, err := q.Upsert(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

func TestQueueServesGreenThenEmergencyUrgentRoutineFirstComeAndAgesRoutine(t *testing.T) {
	bothServers(t, func(t *testing.T, conn *kv.Conn) {
		ctx := context.Background()
		now := base
		q := queue.New(conn, queue.Options{AgingAfter: 2 * time.Hour, Now: func() time.Time { return now }})
		mustUpsert(t, q,
			waiting(1, cardio, referral.Routine, false, now, 50),
			waiting(2, neuro, referral.Routine, false, now, 40),
			waiting(3, cardio, referral.Urgent, false, now, 30),
			waiting(4, neuro, referral.Routine, false, now, 180), // waited past the limit: served with urgent
			waiting(5, cardio, referral.Emergency, false, now, 2),
			waiting(6, neuro, referral.Emergency, true, now, 1),
			waiting(7, cardio, referral.Routine, false, now, 119), // ages two minutes from now
		)
		got, err := q.List(ctx, hospA, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{ticketID(6), ticketID(5), ticketID(4), ticketID(3), ticketID(7), ticketID(1), ticketID(2)}
		if !slices.Equal(ids(got), want) {
			t.Fatalf("desk view order\n got %v\nwant %v", ids(got), want)
		}
		dept, _ := q.List(ctx, hospA, cardio, 2)
		if !slices.Equal(ids(dept), []string{ticketID(5), ticketID(3)}) {
			t.Fatalf("cardiology's first two: %v", ids(dept))
		}
		if other, _ := q.List(ctx, hospB, "", 10); len(other) != 0 {
			t.Fatalf("another hospital's desk sees %v", ids(other))
		}

		now = now.Add(3 * time.Minute) // ticket 7 has now waited 2h02m: it slots in by its submission time
		got, _ = q.List(ctx, hospA, "", 10)
		want = []string{ticketID(6), ticketID(5), ticketID(4), ticketID(7), ticketID(3), ticketID(1), ticketID(2)}
		if !slices.Equal(ids(got), want) {
			t.Fatalf("after aging\n got %v\nwant %v", ids(got), want)
		}
		// Claims follow the same order.
		for i, id := range want[:3] {
			got, err := q.Claim(ctx, hospA, "", fmt.Sprintf("desk%d", i), nil)
			if err != nil || got != id {
				t.Fatalf("claim %d = %s, %v; want %s", i, got, err, id)
			}
		}
	})
}

func TestUpsertIsIdempotentByVersionAndKeepsBoardFields(t *testing.T) {
	bothServers(t, func(t *testing.T, conn *kv.Conn) {
		ctx := context.Background()
		q := queue.New(conn, queue.Options{Now: func() time.Time { return base }})
		v2 := waiting(1, cardio, referral.Urgent, true, base, 10)
		v2.Category, v2.Version = referral.ChestPain, 2
		v1 := v2
		v1.Version, v1.Number = 1, "ZZ-OLD"
		steps := []struct {
			name    string
			entry   queue.Entry
			changed bool
		}{{"first", v2, true}, {"same again", v2, false}, {"older after newer", v1, false}}
		for _, s := range steps {
			changed, err := q.Upsert(ctx, s.entry)
			if err != nil || changed != s.changed {
				t.Fatalf("%s: changed=%v err=%v, want %v", s.name, changed, err, s.changed)
			}
		}
		got, _ := q.List(ctx, hospA, "", 10)
		if len(got) != 1 {
			t.Fatalf("one ticket expected, got %v", ids(got))
		}
		want := v2
		if !reflect.DeepEqual(got[0].Entry, want) {
			t.Fatalf("board fields\n got %+v\nwant %+v", got[0].Entry, want)
		}

		if err := q.Remove(ctx, v1.ID, 1); err != nil {
			t.Fatal(err)
		}
		if got, _ := q.List(ctx, hospA, "", 10); len(got) != 1 {
			t.Fatal("removing an older version took the newer one out")
		}
		if err := q.Remove(ctx, v2.ID, 3); err != nil {
			t.Fatal(err)
		}
		if got, _ := q.List(ctx, hospA, "", 10); len(got) != 0 {
			t.Fatalf("removed ticket still queued: %v", ids(got))
		}
		if changed, _ := q.Upsert(ctx, v2); changed {
			t.Fatal("a late, older upsert brought a removed ticket back")
		}
		v4 := v2
		v4.Version = 4 // resubmitted after an information request
		if changed, _ := q.Upsert(ctx, v4); !changed {
			t.Fatal("a newer version must queue the ticket again")
		}
	})
}

func TestHundredDeskMembersClaimingOneTicketOneWins(t *testing.T) {
	bothServers(t, func(t *testing.T, conn *kv.Conn) {
		ctx := context.Background()
		q := queue.New(conn, queue.Options{})
		mustUpsert(t, q, waiting(1, cardio, referral.Emergency, false, time.Now(), 1))
		var wg sync.WaitGroup
		var mu sync.Mutex
		won, empty := 0, 0
		for i := range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id, err := q.Claim(ctx, hospA, "", fmt.Sprintf("desk%d", i), nil)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && id == ticketID(1):
					won++
				case errors.Is(err, queue.ErrEmpty):
					empty++
				default:
					t.Errorf("claim: %s, %v", id, err)
				}
			}()
		}
		wg.Wait()
		if won != 1 || empty != 99 {
			t.Fatalf("winners %d, empty-handed %d; want 1 and 99", won, empty)
		}
	})
}

func TestExpiredLeaseMakesTicketClaimableAgain(t *testing.T) {
	bothServers(t, func(t *testing.T, conn *kv.Conn) {
		ctx := context.Background()
		q := queue.New(conn, queue.Options{Lease: 300 * time.Millisecond})
		mustUpsert(t, q, waiting(1, cardio, referral.Urgent, false, time.Now(), 1))
		if id, err := q.Claim(ctx, hospA, cardio, "alice", nil); err != nil || id != ticketID(1) {
			t.Fatalf("first claim: %s %v", id, err)
		}
		if _, err := q.Claim(ctx, hospA, cardio, "bob", nil); !errors.Is(err, queue.ErrEmpty) {
			t.Fatalf("leased ticket handed out again: %v", err)
		}
		if got, _ := q.List(ctx, hospA, "", 1); len(got) != 1 || got[0].LeasedBy != "alice" {
			t.Fatalf("the board must show the lease: %+v", got)
		}
		time.Sleep(400 * time.Millisecond)
		if err := q.Renew(ctx, ticketID(1), "alice"); !errors.Is(err, queue.ErrNotHolder) {
			t.Fatalf("renewing an expired lease: %v", err)
		}
		if id, err := q.Claim(ctx, hospA, cardio, "bob", nil); err != nil || id != ticketID(1) {
			t.Fatalf("after expiry: %s %v", id, err)
		}
	})
}

func TestOnlyTheHolderRenewsOrReleases(t *testing.T) {
	bothServers(t, func(t *testing.T, conn *kv.Conn) {
		ctx := context.Background()
		q := queue.New(conn, queue.Options{Lease: time.Minute})
		mustUpsert(t, q, waiting(1, cardio, referral.Urgent, false, time.Now(), 1))
		id, err := q.Claim(ctx, hospA, "", "alice", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Release(ctx, id, "bob"); !errors.Is(err, queue.ErrNotHolder) {
			t.Fatalf("bob released alice's lease: %v", err)
		}
		if err := q.Renew(ctx, id, "bob"); !errors.Is(err, queue.ErrNotHolder) {
			t.Fatalf("bob renewed alice's lease: %v", err)
		}
		if err := q.Renew(ctx, id, "alice"); err != nil {
			t.Fatalf("alice renews: %v", err)
		}
		if _, err := q.Claim(ctx, hospA, "", "bob", nil); !errors.Is(err, queue.ErrEmpty) {
			t.Fatalf("held ticket handed to bob: %v", err)
		}
		if err := q.Release(ctx, id, "alice"); err != nil {
			t.Fatalf("alice releases: %v", err)
		}
		if got, err := q.Claim(ctx, hospA, "", "bob", nil); err != nil || got != id {
			t.Fatalf("released ticket: %s %v", got, err)
		}
	})
}

// TestAChangeWithoutAHolderEndsTheLease: when the database says nobody holds
// the ticket any more (the claim was released, or the ticket was resubmitted
// to the queue), the relayed change frees it at once; a change that still
// names the holder keeps their lease.
func TestAChangeWithoutAHolderEndsTheLease(t *testing.T) {
	bothServers(t, func(t *testing.T, conn *kv.Conn) {
		ctx := context.Background()
		q := queue.New(conn, queue.Options{Lease: time.Hour})
		e := waiting(1, cardio, referral.Urgent, false, time.Now(), 1)
		mustUpsert(t, q, e)
		if _, err := q.Claim(ctx, hospA, "", "alice", nil); err != nil {
			t.Fatal(err)
		}
		e.Version, e.Holder = 2, "alice" // the claim, relayed
		mustUpsert(t, q, e)
		if _, err := q.Claim(ctx, hospA, "", "bob", nil); !errors.Is(err, queue.ErrEmpty) {
			t.Fatalf("the holder's relayed claim must keep the lease: %v", err)
		}
		e.Version, e.Holder = 3, "" // alice released it through the state machine
		mustUpsert(t, q, e)
		if got, err := q.Claim(ctx, hospA, "", "bob", nil); err != nil || got != e.ID {
			t.Fatalf("a released ticket must be claimable at once: %s %v", got, err)
		}
		e.Version = 2 // a late duplicate of an older change
		mustUpsert(t, q, e)
		if got, _ := q.List(ctx, hospA, "", 1); len(got) != 1 || got[0].LeasedBy != "bob" {
			t.Fatalf("an older change must not touch the lease: %+v", got)
		}
	})
}

func TestClaimDropsStaleEntriesTheDatabaseRefuses(t *testing.T) {
	bothServers(t, func(t *testing.T, conn *kv.Conn) {
		ctx := context.Background()
		q := queue.New(conn, queue.Options{})
		now := time.Now()
		mustUpsert(t, q, waiting(1, cardio, referral.Emergency, false, now, 5), waiting(2, cardio, referral.Urgent, false, now, 5))
		stale := ticketID(1) // accepted elsewhere; its removal never reached Redis
		var asked []string
		id, err := q.Claim(ctx, hospA, "", "alice", func(_ context.Context, id string) (bool, error) {
			asked = append(asked, id)
			return id != stale, nil
		})
		if err != nil || id != ticketID(2) {
			t.Fatalf("claim = %s, %v; want the next ticket", id, err)
		}
		if !slices.Equal(asked, []string{ticketID(1), ticketID(2)}) {
			t.Fatalf("confirmed %v", asked)
		}
		if got, _ := q.List(ctx, hospA, "", 10); !slices.Equal(ids(got), []string{ticketID(2)}) {
			t.Fatalf("stale entry still queued: %v", ids(got))
		}

		// A database error hands nothing out and keeps the ticket claimable.
		mustUpsert(t, q, waiting(3, neuro, referral.Emergency, true, now, 1))
		boom := errors.New("database down")
		if _, err := q.Claim(ctx, hospA, neuro, "bob", func(context.Context, string) (bool, error) { return false, boom }); !errors.Is(err, boom) {
			t.Fatalf("confirm error: %v", err)
		}
		if id, err := q.Claim(ctx, hospA, neuro, "carol", nil); err != nil || id != ticketID(3) {
			t.Fatalf("after a failed confirm: %s %v", id, err)
		}
	})
}

// tickets is the database's open tickets in a test.
type tickets []queue.Entry

func (ts tickets) ForEachQueued(_ context.Context, fn func(queue.Entry) error) error {
	for _, e := range ts {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// flush deletes every key of the connection's prefix: Redis lost its data.
func flush(t testing.TB, conn *kv.Conn) {
	t.Helper()
	ctx := context.Background()
	keys, err := conn.Keys(ctx, conn.Key("*")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) > 0 {
		if err := conn.Del(ctx, keys...).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRebuildAfterRedisLossRestoresTheSameQueues(t *testing.T) {
	bothServers(t, func(t *testing.T, conn *kv.Conn) {
		ctx := context.Background()
		q := queue.New(conn, queue.Options{AgingAfter: 2 * time.Hour, Lease: time.Minute})
		now := time.Now()
		db := tickets{
			waiting(1, cardio, referral.Routine, false, now, 300),
			waiting(2, neuro, referral.Urgent, false, now, 20),
			waiting(3, cardio, referral.Emergency, true, now, 3),
			waiting(4, neuro, referral.Routine, false, now, 30),
		}
		other := waiting(5, cardio, referral.Urgent, false, now, 1)
		other.HospitalID = hospB
		other.Holder = "dora" // claimed in the database
		db = append(db, other)
		if _, err := q.EnsureBuilt(ctx, db); err != nil {
			t.Fatal(err)
		}
		before, _ := q.List(ctx, hospA, "", 100)
		if len(before) != 4 {
			t.Fatalf("built queue: %v", ids(before))
		}

		flush(t, conn)
		rebuilt, err := q.EnsureBuilt(ctx, db)
		if err != nil || !rebuilt {
			t.Fatalf("rebuild after loss: %v %v", rebuilt, err)
		}
		if again, _ := q.EnsureBuilt(ctx, db); again {
			t.Fatal("rebuilt although nothing was lost")
		}
		if _, err := q.Rebuild(ctx, db); err != nil { // twice: nothing may double
			t.Fatal(err)
		}
		after, _ := q.List(ctx, hospA, "", 100)
		if !slices.Equal(ids(after), ids(before)) {
			t.Fatalf("order after rebuild\n got %v\nwant %v", ids(after), ids(before))
		}
		for i := range after {
			if !reflect.DeepEqual(after[i].Entry, before[i].Entry) {
				t.Fatalf("entry changed by rebuild: %+v vs %+v", after[i].Entry, before[i].Entry)
			}
		}
		b, _ := q.List(ctx, hospB, "", 100)
		if len(b) != 1 || b[0].LeasedBy != "dora" {
			t.Fatalf("a claimed ticket's lease must come back: %+v", b)
		}
		if _, err := q.Claim(ctx, hospB, "", "erin", nil); !errors.Is(err, queue.ErrEmpty) {
			t.Fatalf("restored lease ignored: %v", err)
		}
	})
}

// second opens another connection to the same server with the same prefix,
// like another server instance.
func second(t *testing.T, conn *kv.Conn) *kv.Conn {
	t.Helper()
	c, err := kv.Open(context.Background(), "redis://"+conn.Options().Addr+fmt.Sprintf("/%d", conn.Options().DB), conn.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Client.Close() })
	return c
}

func TestChangesReachDeskScreensOnOtherInstances(t *testing.T) {
	bothServers(t, func(t *testing.T, conn *kv.Conn) {
		ctx := context.Background()
		desk := queue.New(second(t, conn), queue.Options{})
		events, stop, err := desk.Subscribe(ctx, hospA)
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		otherDesk, stopOther, err := desk.Subscribe(ctx, hospB)
		if err != nil {
			t.Fatal(err)
		}
		defer stopOther()

		q := queue.New(conn, queue.Options{})
		mustUpsert(t, q, waiting(1, cardio, referral.Urgent, false, time.Now(), 1))
		if _, err := q.Claim(ctx, hospA, "", "alice", nil); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{queue.EventQueued, queue.EventClaimed} {
			select {
			case ev := <-events:
				if ev.Type != want || ev.ID != ticketID(1) {
					t.Fatalf("event %+v, want %s of ticket 1", ev, want)
				}
			case <-time.After(time.Second):
				t.Fatalf("no %s event within a second", want)
			}
		}
		select {
		case ev := <-otherDesk:
			t.Fatalf("another hospital's desk got %+v", ev)
		case <-time.After(50 * time.Millisecond):
		}
		stop()
		if _, open := <-events; open {
			t.Fatal("channel must close after stop")
		}
	})
}

func TestTicketsSubmittedInTheSameMillisecondKeepIDOrder(t *testing.T) {
	bothServers(t, func(t *testing.T, conn *kv.Conn) {
		q := queue.New(conn, queue.Options{})
		now := time.Now()
		// First six bits 51 and 52: standard base 64 writes them "z" and "0",
		// which would sort the later ticket first.
		late := waiting(0xD0000000, cardio, referral.Urgent, false, now, 5)
		early := waiting(0xCC000000, cardio, referral.Urgent, false, now, 5)
		mustUpsert(t, q, late, early)
		got, _ := q.List(context.Background(), hospA, "", 10)
		if !slices.Equal(ids(got), []string{early.ID, late.ID}) {
			t.Fatalf("tie order %v", ids(got))
		}
	})
}

func TestQueueMarksEscalatedDeadlinesOfQueuedTicketsOnly(t *testing.T) {
	bothServers(t, func(t *testing.T, conn *kv.Conn) {
		ctx := context.Background()
		q := queue.New(conn, queue.Options{Now: func() time.Time { return base }})
		late, gone := waiting(1, cardio, referral.Urgent, false, base, 90), waiting(2, cardio, referral.Urgent, false, base, 90)
		mustUpsert(t, q, late, gone)
		mark := func(e queue.Entry, k referral.BreachKind, due time.Time) bool {
			t.Helper()
			ok, err := q.MarkBreached(ctx, e.ID, k, due)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		breached := func() map[string][]referral.BreachKind {
			t.Helper()
			items, err := q.List(ctx, hospA, "", 10)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string][]referral.BreachKind{}
			for _, it := range items {
				out[it.ID] = it.Breached
			}
			return out
		}
		if !mark(late, referral.ClaimBreach, late.ClaimBy) || !mark(late, referral.ClaimBreach, late.ClaimBy) || !mark(gone, referral.ClaimBreach, gone.ClaimBy) {
			t.Fatal("marking a queued ticket (again) was refused")
		}
		if got := breached(); !slices.Equal(got[late.ID], []referral.BreachKind{referral.ClaimBreach}) || len(got[gone.ID]) != 1 {
			t.Fatalf("marks %v", got)
		}
		// The ticket leaves the queue: its mark goes with it, and a late
		// mark does not bring it back.
		if err := q.Remove(ctx, gone.ID, 2); err != nil {
			t.Fatal(err)
		}
		if mark(gone, referral.DecideBreach, gone.DecideBy) {
			t.Error("a ticket no longer queued was marked")
		}
		if n, err := conn.HLen(ctx, conn.Key("q", "b")).Result(); err != nil || n != 1 {
			t.Errorf("%d marks kept (%v), want only the queued ticket's", n, err)
		}
		// Re-queued with new deadlines (a resubmission), the old mark is
		// history: the entry shows no breach until the new one is raised.
		again := late
		again.Version, again.QueuedAt = 2, base
		again.ClaimBy, again.DecideBy = base.Add(time.Hour), base.Add(4*time.Hour)
		mustUpsert(t, q, again)
		if got := breached(); len(got[late.ID]) != 0 {
			t.Errorf("re-queued ticket still marked %v", got[late.ID])
		}
		if _, err := q.MarkBreached(ctx, late.ID, "late", late.DecideBy); err == nil {
			t.Error("an unknown deadline kind was accepted")
		}
	})
}

// TestClaimLooksPastManyClaimedTickets: a busy department holds more claimed,
// undecided tickets at the head of its queue than one page of the claim's
// scan; a waiting ticket behind them is still handed out.
func TestClaimLooksPastManyClaimedTickets(t *testing.T) {
	bothServers(t, func(t *testing.T, conn *kv.Conn) {
		ctx := context.Background()
		q := queue.New(conn, queue.Options{Lease: time.Hour})
		now := time.Now()
		const held = 150
		for i := 1; i <= held+1; i++ {
			e := waiting(i, cardio, referral.Urgent, false, now, held+2-i)
			if i <= held {
				e.Holder = fmt.Sprintf("desk%d", i)
			}
			mustUpsert(t, q, e)
		}
		got, err := q.Claim(ctx, hospA, cardio, "late", nil)
		if err != nil || got != ticketID(held+1) {
			t.Fatalf("claim behind %d held tickets: %s %v, want %s", held, got, err, ticketID(held+1))
		}
		if _, err := q.Claim(ctx, hospA, cardio, "later", nil); !errors.Is(err, queue.ErrEmpty) {
			t.Fatalf("every ticket is held: %v", err)
		}
	})
}
