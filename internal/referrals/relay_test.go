package referrals_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"duikou/internal/apperr"
	"duikou/internal/auth"
	"duikou/internal/kv"
	"duikou/internal/kv/kvtest"
	"duikou/internal/queue"
	"duikou/internal/referrals"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/referral"
)

// relayWorld is the referral world with desk queues on a Redis server.
type relayWorld struct {
	*refWorld
	q     *queue.Referrals
	relay *referrals.Relay
	desks *referrals.Desks
}

func relayWorlds(t *testing.T, fn func(t *testing.T, w *relayWorld)) {
	relayWorldsWith(t, queue.Options{}, fn)
}

func relayWorldsWith(t *testing.T, opt queue.Options, fn func(t *testing.T, w *relayWorld)) {
	for _, s := range []struct {
		name string
		open func(testing.TB) *kv.Conn
	}{{"embedded-redis", kvtest.Embedded}, {"redis", kvtest.ForTest}} {
		t.Run(s.name, func(t *testing.T) {
			conn := s.open(t)
			sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
				w := &relayWorld{refWorld: newRefWorld(t, db, nil), q: queue.New(conn, opt)}
				w.relay = referrals.NewRelay(db, w.st, w.q, referral.DefaultDeadlines(), nil)
				w.desks = referrals.NewDesks(w.svc, w.q)
				fn(t, w)
			})
		})
	}
}

func (w *relayWorld) flush(t *testing.T) int {
	t.Helper()
	n, err := w.relay.Flush(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (w *relayWorld) board(t *testing.T) []string {
	t.Helper()
	items, err := w.desks.Queue(context.Background(), w.desk, w.tertiary, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, it := range items {
		ids = append(ids, it.ID)
	}
	return ids
}

func (w *relayWorld) submitted(t *testing.T) referral.Referral {
	t.Helper()
	return w.act(t, w.doctor, w.draft(t, w.input(w.patient)), referral.Submit, referral.ActionInput{})
}

func TestRelayDeliversEachChangeOnceInEffectWhateverTheDeliveries(t *testing.T) {
	relayWorlds(t, func(t *testing.T, w *relayWorld) {
		ctx := context.Background()
		kept, cancelled := w.submitted(t), w.submitted(t)
		if n := w.flush(t); n != 2 {
			t.Fatalf("relayed %d, want 2", n)
		}
		if got, want := w.board(t), []string{kept.ID, cancelled.ID}; !slices.Equal(got, want) {
			t.Fatalf("board %v, want %v", got, want)
		}
		w.act(t, w.doctor, cancelled, referral.Cancel, referral.ActionInput{Reason: "患者家属决定就近治疗"})
		if n := w.flush(t); n != 1 {
			t.Fatalf("relayed %d, want the cancellation", n)
		}
		if got, want := w.board(t), []string{kept.ID}; !slices.Equal(got, want) {
			t.Fatalf("board after cancelling %v, want %v", got, want)
		}

		// Every message delivered again, the old submission included: the
		// cancelled ticket does not come back and nothing is doubled.
		if _, err := w.db.Exec(ctx, `UPDATE outbox SET published_at = NULL`); err != nil {
			t.Fatal(err)
		}
		if n := w.flush(t); n != 3 {
			t.Fatalf("relayed %d again, want 3", n)
		}
		if got, want := w.board(t), []string{kept.ID}; !slices.Equal(got, want) {
			t.Fatalf("board after redelivery %v, want %v", got, want)
		}
		var open int
		if err := w.db.QueryRow(ctx, `SELECT COUNT(*) FROM outbox WHERE published_at IS NULL`).Scan(&open); err != nil || open != 0 {
			t.Errorf("%d messages left unpublished (%v)", open, err)
		}
	})
}

func TestRelayClaimNextPassesOverAStaleEntry(t *testing.T) {
	relayWorlds(t, func(t *testing.T, w *relayWorld) {
		ctx := context.Background()
		first, second := w.submitted(t), w.submitted(t)
		w.flush(t)
		// Claimed straight through the service: the queue has not heard yet.
		w.act(t, w.desk, first, referral.Claim, referral.ActionInput{})

		got, ok, err := w.desks.ClaimNext(ctx, w.desk, w.tertiary, "")
		if err != nil || !ok || got.ID != second.ID || got.Status != referral.Claimed {
			t.Fatalf("claim next: %s %s %v %v, want the second ticket claimed", got.ID, got.Status, ok, err)
		}
		if _, ok, err := w.desks.ClaimNext(ctx, w.desk, w.tertiary, ""); ok || err != nil {
			t.Fatalf("a third claim: %v %v, want nothing to claim", ok, err)
		}
		stored, err := w.st.Get(ctx, first.ID)
		if err != nil || stored.ClaimedBy != w.desk.UserID || stored.Version != first.Version+1 {
			t.Errorf("the stale ticket was changed: %+v %v", stored, err)
		}
	})
}

func TestDesksKeepEachDeskToItsOwnQueue(t *testing.T) {
	relayWorlds(t, func(t *testing.T, w *relayWorld) {
		ctx := context.Background()
		w.submitted(t)
		w.flush(t)
		cases := []struct {
			name string
			err  error
			call func() error
		}{
			{"another hospital's desk reads", apperr.ErrNotFound, func() error {
				_, err := w.desks.Queue(ctx, w.outside, w.tertiary, "", 10)
				return err
			}},
			{"another hospital's desk claims", apperr.ErrNotFound, func() error {
				_, _, err := w.desks.ClaimNext(ctx, w.outside, w.tertiary, "")
				return err
			}},
			{"a doctor reads", apperr.ErrForbidden, func() error {
				_, err := w.desks.Queue(ctx, w.doctor, w.county, "", 10)
				return err
			}},
			{"a doctor claims", apperr.ErrForbidden, func() error {
				_, _, err := w.desks.ClaimNext(ctx, w.doctor, w.county, "")
				return err
			}},
		}
		for _, c := range cases {
			if err := c.call(); !errors.Is(err, c.err) {
				t.Errorf("%s: %v, want %v", c.name, err, c.err)
			}
		}
		var denied int
		if err := w.db.QueryRow(ctx, `SELECT COUNT(*) FROM audit_log WHERE action = 'access.denied' AND resource_id = $1`,
			w.tertiary).Scan(&denied); err != nil || denied != 2 {
			t.Errorf("%d refused reads of another hospital's queue audited (%v), want 2", denied, err)
		}
		supervisor := w.doctor
		supervisor.HospitalID, supervisor.Supervisor = w.tertiary, true
		if items, err := w.desks.Queue(ctx, supervisor, w.tertiary, "", 10); err != nil || len(items) != 1 {
			t.Errorf("a supervisor watches the queue: %d items, %v", len(items), err)
		}
		if _, _, err := w.desks.ClaimNext(ctx, supervisor, w.tertiary, ""); !errors.Is(err, apperr.ErrForbidden) {
			t.Errorf("a supervisor claims: %v, want forbidden", err)
		}
	})
}

// TestALapsedClaimIsTakenOverThroughTheQueue: a desk member claims a ticket
// and walks away. While their lease lives nobody else gets it; once it has
// lapsed the queue hands it to a colleague, whose claim takes it over in the
// database, and the first member can no longer decide it.
func TestALapsedClaimIsTakenOverThroughTheQueue(t *testing.T) {
	const lease = 2 * time.Second
	relayWorldsWith(t, queue.Options{Lease: lease}, func(t *testing.T, w *relayWorld) {
		ctx := context.Background()
		colleague := w.desk
		colleague.UserID = refID()
		if _, err := w.db.Exec(ctx, `INSERT INTO users (id, username, display_name, hospital_id, password_hash, created_at, updated_at)
			VALUES ($1, $2, $2, $3, 'x', $4, $4)`, colleague.UserID, "colleague", w.tertiary, w.now); err != nil {
			t.Fatal(err)
		}
		ticket := w.submitted(t)
		w.flush(t)
		held, ok, err := w.desks.ClaimNext(ctx, w.desk, w.tertiary, "")
		if err != nil || !ok || held.ID != ticket.ID {
			t.Fatalf("first claim: %v %v", ok, err)
		}
		w.flush(t)
		if _, ok, err := w.desks.ClaimNext(ctx, colleague, w.tertiary, ""); ok || err != nil {
			t.Fatalf("a held ticket was handed out: %v %v", ok, err)
		}

		if _, err := w.desks.RenewLease(ctx, w.desk, w.tertiary, ticket.ID); err != nil {
			t.Fatalf("the holder renews: %v", err)
		}
		if _, err := w.desks.RenewLease(ctx, colleague, w.tertiary, ticket.ID); !errors.Is(err, apperr.ErrConflict) {
			t.Fatalf("a colleague renewed someone else's lease: %v", err)
		}

		time.Sleep(lease + 100*time.Millisecond) // the Redis lease runs out
		w.now = w.now.Add(lease + time.Second)   // and the database sees the claim as old
		got, ok, err := w.desks.ClaimNext(ctx, colleague, w.tertiary, "")
		if err != nil || !ok || got.ID != ticket.ID || got.ClaimedBy != colleague.UserID {
			t.Fatalf("take-over: %+v %v %v", got.ClaimedBy, ok, err)
		}
		_, err = w.svc.Act(ctx, w.desk, ticket.ID, got.Version, referral.Accept, referral.ActionInput{})
		if !errors.Is(err, apperr.ErrConflict) {
			t.Fatalf("the former holder decided a ticket taken over: %v", err)
		}
		if _, err := w.desks.RenewLease(ctx, w.desk, w.tertiary, ticket.ID); !errors.Is(err, apperr.ErrConflict) {
			t.Fatalf("the former holder renewed a lease taken over: %v", err)
		}
		evs, err := w.st.Events(ctx, ticket.ID)
		if err != nil {
			t.Fatal(err)
		}
		if last := evs[len(evs)-1]; last.Action != referral.Claim || last.From != referral.Claimed || last.Actor != colleague.UserID {
			t.Errorf("the take-over is not on record: %+v", last)
		}
	})
}

// next reads one notice, waiting generously: delivery is asserted, not its
// speed.
func nextNotice(t *testing.T, ch <-chan queue.Notice) queue.Notice {
	t.Helper()
	select {
	case n, ok := <-ch:
		if !ok {
			t.Fatal("the change stream ended")
		}
		return n
	case <-time.After(10 * time.Second):
		t.Fatal("no change notice")
	}
	return queue.Notice{}
}

func TestRelayTellsBothPartiesOfChangesOnceTheTicketWasSent(t *testing.T) {
	relayWorlds(t, func(t *testing.T, w *relayWorld) {
		ctx := context.Background()
		changes := referrals.NewChanges(w.svc, w.q)
		if _, _, err := changes.Watch(ctx, auth.Principal{UserID: w.doctor.UserID, HospitalID: w.county, Roles: []auth.Role{auth.ProgramOffice}}); !errors.Is(err, apperr.ErrForbidden) {
			t.Errorf("the program office watches referrals: %v", err)
		}
		referrer, stop, err := changes.Watch(ctx, w.doctor)
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		receiver, stopR, err := changes.Watch(ctx, w.desk)
		if err != nil {
			t.Fatal(err)
		}
		defer stopR()

		// A draft given up before it was sent concerns its writer only.
		draft := w.draft(t, w.input(w.patient))
		w.act(t, w.doctor, draft, referral.Cancel, referral.ActionInput{Reason: "患者家属决定就近治疗"})
		sent := w.submitted(t)
		w.flush(t)
		if n := nextNotice(t, referrer); n.ID != draft.ID || n.Status != referral.Cancelled || n.Type != queue.NoticeChanged {
			t.Errorf("referrer's first notice %+v, want the draft cancelled", n)
		}
		if n := nextNotice(t, referrer); n.ID != sent.ID || n.Status != referral.Submitted || n.Number != sent.Number || n.Version != sent.Version {
			t.Errorf("referrer's second notice %+v, want %s submitted v%d", n, sent.Number, sent.Version)
		}
		if n := nextNotice(t, receiver); n.ID != sent.ID || n.Status != referral.Submitted {
			t.Errorf("receiver's first notice %+v, want the sent ticket (never the cancelled draft)", n)
		}

		claimed := w.act(t, w.desk, sent, referral.Claim, referral.ActionInput{})
		w.flush(t)
		for who, ch := range map[string]<-chan queue.Notice{"referrer": referrer, "receiver": receiver} {
			if n := nextNotice(t, ch); n.ID != sent.ID || n.Status != referral.Claimed || n.Version != claimed.Version {
				t.Errorf("%s's notice of the claim %+v", who, n)
			}
		}
	})
}

func TestRelayRebuildsTheQueuesSoonAfterRedisRestartsEmpty(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		m := miniredis.RunT(t) // private: this test restarts it
		conn, err := kv.Open(context.Background(), "redis://"+m.Addr(), "t")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		w := &relayWorld{refWorld: newRefWorld(t, db, nil), q: queue.New(conn, queue.Options{})}
		w.relay = referrals.NewRelay(db, w.st, w.q, referral.DefaultDeadlines(), nil)
		w.desks = referrals.NewDesks(w.svc, w.q)

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			// The marker poll is an hour away: only the restart can be
			// what makes the relay rebuild.
			w.relay.Run(ctx, 50*time.Millisecond, time.Hour)
		}()
		defer func() { cancel(); <-done }()
		onBoard := func(what string, want []string) {
			t.Helper()
			for deadline := time.Now().Add(10 * time.Second); ; {
				if ids := w.board(t); slices.Equal(ids, want) {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: the board is not %v", what, want)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		// Relayed by the running relay, so its first check is behind it,
		// and nothing is left in the outbox for a batch to notice the loss.
		first := w.submitted(t)
		onBoard("relayed", []string{first.ID})
		second := w.submitted(t)
		onBoard("relayed", []string{first.ID, second.ID})

		m.FlushAll()
		m.Close()
		if err := m.Restart(); err != nil {
			t.Fatal(err)
		}
		onBoard("after Redis restarted empty", []string{first.ID, second.ID})
	})
}
