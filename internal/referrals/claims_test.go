package referrals_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"duikou/internal/apperr"
	"duikou/internal/auth"
	"duikou/internal/kv/kvtest"
	"duikou/internal/queue"
	"duikou/internal/referrals"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/referral"
)

// claimers is how many desk members try to claim one ticket at once.
const claimers = 100

// deskCrowd adds claimers desk members of the tertiary hospital.
func (w *refWorld) deskCrowd(t *testing.T) []auth.Principal {
	t.Helper()
	out := make([]auth.Principal, claimers)
	for i := range out {
		out[i] = w.user(t, w.tertiary, []string{w.tertiary, w.county}, auth.ReferralDesk)
	}
	return out
}

// One queued ticket, a hundred desk members pressing "claim next" at once on
// the real Redis: exactly one gets it, the others find nothing to claim, and
// the database agrees with the winner.
func TestConcurrentClaimNextHasExactlyOneWinner(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		w := newRefWorld(t, db, nil)
		q := queue.New(kvtest.ForTest(t), queue.Options{})
		relay := referrals.NewRelay(db, w.st, q, referral.DefaultDeadlines(), nil)
		desks := referrals.NewDesks(w.svc, q)
		ticket := w.act(t, w.doctor, w.draft(t, w.input(w.patient)), referral.Submit, referral.ActionInput{})
		if n, err := relay.Flush(ctx); err != nil || n != 1 {
			t.Fatalf("relay: %d %v", n, err)
		}
		crowd := w.deskCrowd(t)

		type result struct {
			by  auth.Principal
			got referral.Referral
			ok  bool
			err error
		}
		results := make([]result, claimers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, p := range crowd {
			wg.Go(func() {
				<-start
				got, ok, err := desks.ClaimNext(asRequest(ctx), p, w.tertiary, "")
				results[i] = result{p, got, ok, err}
			})
		}
		close(start)
		wg.Wait()

		var winners []result
		for _, r := range results {
			switch {
			case r.err != nil:
				t.Errorf("claim by %s: %v", r.by.UserID, r.err)
			case r.ok:
				winners = append(winners, r)
			}
		}
		if len(winners) != 1 {
			t.Fatalf("%d winners, want exactly one", len(winners))
		}
		win := winners[0]
		stored, err := w.st.Get(ctx, ticket.ID)
		if err != nil {
			t.Fatal(err)
		}
		if win.got.ID != ticket.ID || stored.Status != referral.Claimed || stored.ClaimedBy != win.by.UserID || stored.Version != ticket.Version+1 {
			t.Fatalf("winner %s got %+v; stored %+v", win.by.UserID, win.got, stored)
		}
		if got := w.written(t, ticket.ID); len(got.events) != 2 {
			t.Fatalf("events %v, want submit and one claim", got.events)
		}
	})
}

// A hundred desk members claiming the same ticket straight through the
// service, all at the version they read: one claim commits, every other is
// told the ticket changed or is taken, and only one claim is recorded.
func TestConcurrentClaimsOfOneTicketHaveExactlyOneWinner(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		w := newRefWorld(t, db, nil)
		ticket := w.act(t, w.doctor, w.draft(t, w.input(w.patient)), referral.Submit, referral.ActionInput{})
		crowd := w.deskCrowd(t)

		errs := make([]error, claimers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, p := range crowd {
			wg.Go(func() {
				<-start
				_, errs[i] = w.svc.Act(asRequest(ctx), p, ticket.ID, ticket.Version, referral.Claim, referral.ActionInput{})
			})
		}
		close(start)
		wg.Wait()

		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("both %d and %d claimed the ticket", winner, i)
				}
				winner = i
			case errors.Is(err, apperr.ErrStale), errors.Is(err, apperr.ErrConflict):
			default:
				t.Errorf("claim %d: %v (a busy or lock error is a failure, not a lost race)", i, err)
			}
		}
		if winner < 0 {
			t.Fatal("nobody claimed the ticket")
		}
		stored, err := w.st.Get(ctx, ticket.ID)
		if err != nil || stored.ClaimedBy != crowd[winner].UserID || stored.Version != ticket.Version+1 {
			t.Fatalf("stored %+v %v, want claimed by the winner", stored, err)
		}
		if got := w.written(t, ticket.ID); len(got.events) != 2 || len(got.outbox) != 2 {
			t.Fatalf("wrote %+v, want submit and one claim", got)
		}
	})
}
