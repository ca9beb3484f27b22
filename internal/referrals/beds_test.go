package referrals_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/referral"
)

// admin sets pool sizes in these tests.
var bedAdmin = auth.Principal{UserID: "0190a0b0-0000-7000-8000-0000000000ad", Roles: []auth.Role{auth.Admin}}

// claimedGreen is a chest-pain green-channel ticket to cardiology, claimed
// by the desk.
func (w *refWorld) claimedGreen(t *testing.T) referral.Referral {
	t.Helper()
	in := w.input(w.patient)
	in.Priority, in.GreenChannel, in.GreenCategory, in.TransferRisk = referral.Emergency, true, referral.ChestPain, referral.RiskI
	in.Transport = referral.Transport{Mode: referral.ByAmbulance, Escort: referral.EscortDoctor}
	r := w.act(t, w.doctor, w.draft(t, in), referral.Submit, referral.ActionInput{})
	return w.act(t, w.desk, r, referral.Claim, referral.ActionInput{})
}

// setPool gives cardiology a pool of size beds (creating it if need be).
func (w *refWorld) setPool(t *testing.T, size int) referral.BedPool {
	t.Helper()
	ctx := context.Background()
	cur, err := w.beds.Pool(ctx, bedAdmin, w.tertiary, w.cardio)
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := w.beds.SetSize(ctx, bedAdmin, w.tertiary, w.cardio, cur.Version, &size)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// cardioPool is cardiology's pool as its desk sees it.
func (w *refWorld) cardioPool(t *testing.T) referral.BedPool {
	t.Helper()
	p, err := w.beds.Pool(context.Background(), w.desk, w.tertiary, w.cardio)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func heldNumbers(p referral.BedPool) []string {
	out := []string{}
	for _, r := range p.Reservations {
		out = append(out, r.Number)
	}
	return out
}

func wantNoBedFree(t *testing.T, err error, says string) {
	t.Helper()
	if !errors.Is(err, apperr.ErrConflict) || !strings.Contains(err.Error(), says) {
		t.Fatalf("got %v, want a conflict saying %q", err, says)
	}
}

func TestGreenAcceptanceHoldsABedAndCancellingGivesItBack(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newRefWorld(t, db, nil)
		ctx := context.Background()
		w.setPool(t, 1)
		first, second := w.claimedGreen(t), w.claimedGreen(t)

		got := w.act(t, w.desk, first, referral.Accept, referral.ActionInput{Reason: "胸痛中心接收"})
		if got.Status != referral.Accepted || !got.FeeWaived || got.ExamSlipNumber == "" || !apperr.IsID(got.BedReservationID) {
			t.Fatalf("accepted: %+v", got)
		}
		if p := w.cardioPool(t); p.InUse != 1 || p.Free != 0 || !slices.Equal(heldNumbers(p), []string{first.Number}) ||
			p.Reservations[0].ID != got.BedReservationID {
			t.Fatalf("pool after acceptance: %+v", p)
		}

		// The pool is full: the second acceptance is refused and writes nothing.
		_, err := w.svc.Act(ctx, w.desk, second.ID, second.Version, referral.Accept, referral.ActionInput{})
		wantNoBedFree(t, err, "is full (1 of 1 beds in use)")
		if stored, _ := w.st.Get(ctx, second.ID); stored.Status != referral.Claimed || stored.Version != second.Version || stored.BedReservationID != "" {
			t.Fatalf("refused ticket changed: %+v", stored)
		}
		if wr := w.written(t, second.ID); len(wr.events) != 2 || len(wr.outbox) != 2 {
			t.Fatalf("refused acceptance wrote %+v", wr)
		}

		// The referrer cancels the first: its bed goes to the second.
		w.act(t, w.doctor, got, referral.Cancel, referral.ActionInput{Reason: "家属决定转往他院"})
		if p := w.cardioPool(t); p.InUse != 0 || p.Free != 1 || len(p.Reservations) != 0 {
			t.Fatalf("pool after cancelling: %+v", p)
		}
		w.act(t, w.desk, second, referral.Accept, referral.ActionInput{})
		if p := w.cardioPool(t); p.InUse != 1 || !slices.Equal(heldNumbers(p), []string{second.Number}) {
			t.Fatalf("pool after the second acceptance: %+v", p)
		}

		var actions []string
		rows, err := db.Query(ctx, `SELECT action FROM audit_log WHERE resource_type = 'bed_reservation' AND patient_id = $1 ORDER BY seq`, w.patient)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var a string
			if err := rows.Scan(&a); err != nil {
				t.Fatal(err)
			}
			actions = append(actions, a)
		}
		if want := []string{"bed_pool.reserve", "bed_pool.release", "bed_pool.reserve"}; !slices.Equal(actions, want) {
			t.Errorf("bed audit rows %v, want %v", actions, want)
		}
	})
}

// Which later steps give the bed back: the ends where the patient does not
// come or has left the referral path; not the steps on the way in.
func TestGreenBedIsReleasedWhenTheTicketEndsOrCompletes(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newRefWorld(t, db, nil)
		w.setPool(t, 4)
		book := referral.ActionInput{Schedule: &referral.Schedule{Kind: referral.Bed, Slot: "心内科3病区12床", At: w.now.Add(time.Hour)}}
		type step struct {
			by auth.Principal
			a  referral.Action
			in referral.ActionInput
		}
		tests := []struct {
			name  string
			steps []step
			held  bool
		}{
			{"cancelled by the referrer", []step{{w.doctor, referral.Cancel, referral.ActionInput{Reason: "病情好转"}}}, false},
			{"cancelled by the desk after scheduling", []step{{w.desk, referral.Book, book}, {w.desk, referral.Cancel, referral.ActionInput{Reason: "患者拒绝转运"}}}, false},
			{"no-show", []step{{w.desk, referral.Book, book}, {w.desk, referral.MarkNoShow, referral.ActionInput{}}}, false},
			{"completed", []step{{w.desk, referral.Book, book}, {w.doctor, referral.Depart, referral.ActionInput{}}, {w.desk, referral.Arrive, referral.ActionInput{}},
				{w.desk, referral.Complete, referral.ActionInput{Outcome: referral.Discharged, Feedback: "PCI术后出院"}}}, false},
			{"arrived: the patient is in the bed", []step{{w.desk, referral.Book, book}, {w.desk, referral.Arrive, referral.ActionInput{}}}, true},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := w.act(t, w.desk, w.claimedGreen(t), referral.Accept, referral.ActionInput{})
				before := w.cardioPool(t).InUse
				for _, s := range tc.steps {
					r = w.act(t, s.by, r, s.a, s.in)
				}
				p := w.cardioPool(t)
				if held := slices.Contains(heldNumbers(p), r.Number); held != tc.held {
					t.Fatalf("%s: bed held %v, want %v (pool %+v)", r.Status, held, tc.held, p)
				}
				if want := before - 1; !tc.held && p.InUse != want {
					t.Fatalf("in use %d, want %d", p.InUse, want)
				}
			})
		}
	})
}

func TestGreenAcceptanceWithoutAPool(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newRefWorld(t, db, nil)
		ctx := context.Background()
		r := w.claimedGreen(t)
		_, err := w.svc.Act(ctx, w.desk, r.ID, r.Version, referral.Accept, referral.ActionInput{})
		wantNoBedFree(t, err, "no reserved green-channel bed pool")
		// The role is still checked first: the referrer may not accept.
		if _, err := w.svc.Act(ctx, w.doctor, r.ID, r.Version, referral.Accept, referral.ActionInput{}); !errors.Is(err, apperr.ErrForbidden) {
			t.Fatalf("referrer accepting: %v, want forbidden", err)
		}
		// A pool of size 0 is no better.
		w.setPool(t, 0)
		_, err = w.svc.Act(ctx, w.desk, r.ID, r.Version, referral.Accept, referral.ActionInput{})
		wantNoBedFree(t, err, "no reserved green-channel bed pool")
		if got := w.written(t, r.ID); len(got.events) != 2 {
			t.Fatalf("refused acceptance wrote: %+v", got)
		}
		// A routine ticket needs no bed from the pool.
		plain := w.act(t, w.doctor, w.draft(t, w.input(w.patient)), referral.Submit, referral.ActionInput{})
		plain = w.act(t, w.desk, plain, referral.Claim, referral.ActionInput{})
		if got := w.act(t, w.desk, plain, referral.Accept, referral.ActionInput{}); got.BedReservationID != "" {
			t.Fatalf("routine acceptance holds a bed: %+v", got)
		}
	})
}

// The bed moves in the transaction of the ticket's change: when the change
// fails late (here its audit row), the bed has not moved either.
func TestGreenBedMovesOnlyWithItsTicket(t *testing.T) {
	for _, action := range []string{"referral.accept", "referral.cancel", "bed_pool.release"} {
		t.Run(action, func(t *testing.T) {
			sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
				w := newRefWorld(t, db, func(next audit.Recorder) audit.Recorder {
					return failingAudit{next: next, action: action}
				})
				ctx := context.Background()
				w.setPool(t, 2)
				r := w.claimedGreen(t)
				cancel := referral.ActionInput{Reason: "家属决定就近治疗"}
				if action == "referral.accept" {
					if _, err := w.svc.Act(ctx, w.desk, r.ID, r.Version, referral.Accept, referral.ActionInput{}); err == nil {
						t.Fatal("accepted without its audit row")
					}
					if p := w.cardioPool(t); p.InUse != 0 {
						t.Fatalf("failed acceptance holds a bed: %+v", p)
					}
					return
				}
				r = w.act(t, w.desk, r, referral.Accept, referral.ActionInput{})
				if _, err := w.svc.Act(ctx, w.doctor, r.ID, r.Version, referral.Cancel, cancel); err == nil {
					t.Fatal("cancelled without its audit rows")
				}
				stored, err := w.st.Get(ctx, r.ID)
				if err != nil || stored.Status != referral.Accepted {
					t.Fatalf("ticket after the failed cancel: %v %+v", err, stored)
				}
				if p := w.cardioPool(t); p.InUse != 1 || !slices.Equal(heldNumbers(p), []string{r.Number}) {
					t.Fatalf("failed cancel gave the bed back: %+v", p)
				}
			})
		})
	}
}

// The pool is never oversubscribed, whatever the concurrency: twenty desk
// acceptances race for three beds, then cancellations race with the
// remaining acceptances. The pool never shows more beds in use than it has
// nor fewer than none, and the count always matches the tickets holding a
// bed. Busy or lock errors would be failures here, never successes.
// asRequest gives ctx a request id of its own, as the HTTP layer does: the
// audit rows of one transaction then share one chain.
func asRequest(ctx context.Context) context.Context {
	return audit.WithSource(ctx, audit.Source{RequestID: refID()})
}

func TestGreenBedPoolUnderConcurrentAcceptance(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		const n, size = 20, 3
		w := newRefWorld(t, db, nil)
		ctx := context.Background()
		w.setPool(t, size)
		tickets := make([]referral.Referral, n)
		for i := range tickets {
			tickets[i] = w.claimedGreen(t)
		}

		// A watcher reads the pool all along.
		stop := make(chan struct{})
		var watched sync.WaitGroup
		var seenMax, seenMin atomic.Int64
		seenMin.Store(size)
		watched.Go(func() {
			for {
				var inUse, sz int64
				if err := db.QueryRow(ctx, `SELECT in_use, size FROM bed_pools WHERE department_id = $1`, w.cardio).Scan(&inUse, &sz); err == nil {
					if inUse > seenMax.Load() {
						seenMax.Store(inUse)
					}
					if inUse < seenMin.Load() {
						seenMin.Store(inUse)
					}
				}
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
			}
		})

		accept := func(rs []referral.Referral) (won []referral.Referral, full int) {
			var mu sync.Mutex
			var wg sync.WaitGroup
			for _, r := range rs {
				wg.Go(func() {
					got, err := w.svc.Act(asRequest(ctx), w.desk, r.ID, r.Version, referral.Accept, referral.ActionInput{})
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						won = append(won, got)
					case errors.Is(err, apperr.ErrConflict) && strings.Contains(err.Error(), "is full"):
						full++
					default:
						t.Errorf("accepting %s: %v", r.Number, err)
					}
				})
			}
			wg.Wait()
			return won, full
		}

		won, full := accept(tickets)
		if len(won) != size || full != n-size {
			t.Fatalf("%d accepted and %d refused as full, want %d and %d", len(won), full, size, n-size)
		}
		if p := w.cardioPool(t); p.InUse != size || len(p.Reservations) != size {
			t.Fatalf("pool after the race: %+v", p)
		}

		// The winners are cancelled (each twice, as a retry would) while the
		// others try again.
		var rest []referral.Referral
		for _, r := range tickets {
			if !slices.ContainsFunc(won, func(x referral.Referral) bool { return x.ID == r.ID }) {
				rest = append(rest, r)
			}
		}
		var wg sync.WaitGroup
		for _, r := range won {
			for range 2 {
				wg.Go(func() {
					if _, err := w.svc.Act(asRequest(ctx), w.doctor, r.ID, r.Version, referral.Cancel, referral.ActionInput{Reason: "病情变化"}); err != nil {
						t.Errorf("cancelling %s: %v", r.Number, err)
					}
				})
			}
		}
		won2, full2 := accept(rest)
		wg.Wait()
		close(stop)
		watched.Wait()

		if len(won2)+full2 != len(rest) || len(won2) > size {
			t.Fatalf("second round: %d accepted, %d full of %d", len(won2), full2, len(rest))
		}
		p := w.cardioPool(t)
		var accepted []string
		for _, r := range tickets {
			stored, err := w.st.Get(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if stored.Status == referral.Accepted {
				accepted = append(accepted, stored.Number)
			}
		}
		slices.Sort(accepted)
		held := heldNumbers(p)
		slices.Sort(held)
		if p.InUse != len(won2) || !slices.Equal(held, accepted) {
			t.Fatalf("pool %+v holds %v; accepted tickets %v, %d accepted in the second round", p, held, accepted, len(won2))
		}
		if seenMax.Load() > size || seenMin.Load() < 0 {
			t.Fatalf("in use seen between %d and %d, pool of %d", seenMin.Load(), seenMax.Load(), size)
		}
	})
}

func TestBedPoolReadsAndSizes(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newRefWorld(t, db, nil)
		ctx := context.Background()
		clinician := w.user(t, w.tertiary, []string{w.tertiary, w.county}, auth.Specialist)
		supervisor := w.user(t, w.tertiary, []string{w.tertiary, w.county}, auth.ReferralDesk)
		supervisor.Supervisor = true
		countyDesk := w.user(t, w.county, []string{w.county, w.tertiary}, auth.ReferralDesk)
		countySupervisor := countyDesk
		countySupervisor.Supervisor = true
		office := w.user(t, w.county, []string{w.county, w.tertiary}, auth.ProgramOffice)
		auditor := w.user(t, w.tertiary, []string{w.tertiary}, auth.Auditor)

		// No pool yet: none reserved, version 0.
		p, err := w.beds.Pool(ctx, w.desk, w.tertiary, w.cardio)
		if err != nil || p.Configured() || p.Size != 0 || p.Free != 0 || p.Reservations == nil {
			t.Fatalf("pool before any size: %+v %v", p, err)
		}
		size := 2
		p, created, err := w.beds.SetSize(ctx, supervisor, w.tertiary, w.cardio, 0, &size)
		if err != nil || !created || p.Size != 2 || p.Version != 1 || p.Free != 2 {
			t.Fatalf("supervisor creating the pool: %+v %v %v", p, created, err)
		}
		accepted := w.act(t, w.desk, w.claimedGreen(t), referral.Accept, referral.ActionInput{})

		reads := []struct {
			name string
			by   auth.Principal
			full bool
			err  error
		}{
			{"the desk sees the held tickets", w.desk, true, nil},
			{"the hospital's clinicians too", clinician, true, nil},
			{"a paired county's desk sees the counts", countyDesk, false, nil},
			{"the program office within reach sees the counts", office, false, nil},
			{"an administrator sees the counts", bedAdmin, false, nil},
			{"a paired county's doctor does not see it", w.doctor, false, apperr.ErrNotFound},
			{"an unrelated desk does not see it", w.outside, false, apperr.ErrNotFound},
			{"an auditor may not", auditor, false, apperr.ErrForbidden},
		}
		for _, tc := range reads {
			t.Run(tc.name, func(t *testing.T) {
				p, err := w.beds.Pool(ctx, tc.by, w.tertiary, w.cardio)
				if !errors.Is(err, tc.err) {
					t.Fatalf("got %v, want %v", err, tc.err)
				}
				if err != nil {
					return
				}
				if p.Size != 2 || p.InUse != 1 || p.Free != 1 || p.Version != 1 {
					t.Fatalf("counts: %+v", p)
				}
				if shown := p.Reservations != nil; shown != tc.full {
					t.Fatalf("reservations shown %v, want %v", shown, tc.full)
				}
				if tc.full && !slices.Equal(heldNumbers(p), []string{accepted.Number}) {
					t.Fatalf("held: %+v", p.Reservations)
				}
			})
		}
		if _, err := w.beds.Pool(ctx, w.desk, w.tertiary, w.countyDept); !errors.Is(err, apperr.ErrNotFound) {
			t.Fatalf("a department that is not the hospital's: %v", err)
		}

		num := func(n int) *int { return &n }
		isField := func(err error) bool {
			var v apperr.Invalid
			return errors.As(err, &v) && v[0].Field == "size"
		}
		writes := []struct {
			name    string
			by      auth.Principal
			version int
			size    *int
			check   func(error) bool
		}{
			{"a desk member without the supervisor flag may not", w.desk, 1, num(3), func(err error) bool { return errors.Is(err, apperr.ErrForbidden) }},
			{"a clinician may not", clinician, 1, num(3), func(err error) bool { return errors.Is(err, apperr.ErrForbidden) }},
			{"the county's supervisor may not size the partner's pool", countySupervisor, 1, num(3), func(err error) bool { return errors.Is(err, apperr.ErrNotFound) }},
			{"below the beds in use", supervisor, 1, num(0), isField},
			{"above the bound", supervisor, 1, num(referral.MaxBedPoolSize + 1), isField},
			{"negative", supervisor, 1, num(-1), isField},
			{"missing", supervisor, 1, nil, isField},
			{"an old version", supervisor, 7, num(3), func(err error) bool { return errors.Is(err, apperr.ErrStale) }},
			{"creating a pool that exists", supervisor, 0, num(3), func(err error) bool { return errors.Is(err, apperr.ErrStale) }},
		}
		for _, tc := range writes {
			t.Run(tc.name, func(t *testing.T) {
				_, _, err := w.beds.SetSize(ctx, tc.by, w.tertiary, w.cardio, tc.version, tc.size)
				if !tc.check(err) {
					t.Fatalf("got %v", err)
				}
				if p := w.cardioPool(t); p.Size != 2 || p.Version != 1 {
					t.Fatalf("refused change wrote: %+v", p)
				}
			})
		}
		for i, by := range []auth.Principal{supervisor, office, bedAdmin} {
			p, created, err := w.beds.SetSize(ctx, by, w.tertiary, w.cardio, i+1, num(3+i))
			if err != nil || created || p.Size != 3+i || p.Version != i+2 || p.InUse != 1 {
				t.Fatalf("resize %d: %+v %v %v", i, p, created, err)
			}
		}

		var got []string
		rows, err := db.Query(ctx, `SELECT action, outcome FROM audit_log WHERE resource_type = 'bed_pool' ORDER BY seq`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var a, o string
			if err := rows.Scan(&a, &o); err != nil {
				t.Fatal(err)
			}
			got = append(got, a+"/"+o)
		}
		want := []string{"bed_pool.create/success", "access.denied/denied", "access.denied/denied", "access.denied/denied",
			"bed_pool.update/success", "bed_pool.update/success", "bed_pool.update/success"}
		if !slices.Equal(got, want) {
			t.Errorf("bed pool audit rows %v, want %v", got, want)
		}
	})
}
