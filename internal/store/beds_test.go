package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"duikou/internal/apperr"
	"duikou/internal/directory"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/referral"
)

// bedTestWorld is a tertiary hospital with one department and n accepted
// green tickets sent to it, none holding a bed yet.
type bedTestWorld struct {
	st                   *store.Referrals
	hospital, department string
	tickets              []referral.Referral
}

func newBedTestWorld(t *testing.T, db sqldb.DB, n int) bedTestWorld {
	t.Helper()
	ctx := context.Background()
	dir := store.NewDirectory(db)
	h := dirTestHospital(t, dir, 1, directory.Tertiary, "四川省", "")
	now := sqldb.Now()
	d := directory.Department{ID: dirTestID(), HospitalID: h.ID, Code: "03.04", Name: "心血管内科", Version: 1, CreatedAt: now, UpdatedAt: now}
	if err := dir.CreateDepartment(ctx, d); err != nil {
		t.Fatal(err)
	}
	w := bedTestWorld{st: store.NewReferrals(db), hospital: h.ID, department: d.ID}
	for i := range n {
		r := refTestTicket(dirTestID(), h.ID, now)
		r.ReceivingDepartmentID = d.ID
		r.Number = fmt.Sprintf("ZZ-20261122-%06d", i+1)
		if err := w.st.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		w.tickets = append(w.tickets, r)
	}
	return w
}

func (w bedTestWorld) reservation(r referral.Referral, at time.Time) referral.BedReservation {
	return referral.BedReservation{ID: dirTestID(), HospitalID: w.hospital, DepartmentID: w.department,
		ReferralID: r.ID, HeldAt: at, HeldBy: dirTestID()}
}

func (w bedTestWorld) pool(t *testing.T) referral.BedPool {
	t.Helper()
	p, err := w.st.BedPool(context.Background(), w.hospital, w.department)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBedPoolStoreCreateAndResize(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		w := newBedTestWorld(t, db, 2)
		now := sqldb.Now()
		if _, err := w.st.BedPool(ctx, w.hospital, w.department); !errors.Is(err, apperr.ErrNotFound) {
			t.Fatalf("pool before creation: %v, want not found", err)
		}
		created, err := w.st.CreateBedPool(ctx, referral.BedPool{HospitalID: w.hospital, DepartmentID: w.department, Size: 2, UpdatedBy: "u1"}, now)
		if err != nil || !created {
			t.Fatalf("create: %v %v", created, err)
		}
		again, err := w.st.CreateBedPool(ctx, referral.BedPool{HospitalID: w.hospital, DepartmentID: w.department, Size: 9}, now)
		if err != nil || again {
			t.Fatalf("second create: %v %v, want refused without error", again, err)
		}
		p := w.pool(t)
		if p.Size != 2 || p.InUse != 0 || p.Free != 2 || p.Version != 1 || p.UpdatedBy != "u1" || p.UpdatedAt == nil || !p.UpdatedAt.Equal(now) {
			t.Fatalf("created pool: %+v", p)
		}

		for _, r := range w.tickets {
			if _, ok, err := w.st.ReserveBed(ctx, w.reservation(r, now)); err != nil || !ok {
				t.Fatalf("reserve: %v %v", ok, err)
			}
		}
		tests := []struct {
			name    string
			size    int
			version int
			check   func(error) bool
		}{
			{"a version not the current one is stale", 5, 7, func(err error) bool { return errors.Is(err, apperr.ErrStale) }},
			{"a size below the beds in use is a field error", 1, 1, func(err error) bool {
				var v apperr.Invalid
				return errors.As(err, &v) && v[0].Field == "size"
			}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := w.st.SetBedPoolSize(ctx, w.hospital, w.department, tc.size, tc.version, "u2", now)
				if !tc.check(err) {
					t.Fatalf("got %v", err)
				}
				if p := w.pool(t); p.Size != 2 || p.Version != 1 {
					t.Fatalf("refused resize changed the pool: %+v", p)
				}
			})
		}
		if _, err := w.st.SetBedPoolSize(ctx, w.hospital, dirTestID(), 3, 1, "u2", now); !errors.Is(err, apperr.ErrNotFound) {
			t.Fatalf("resize of a department without a pool: %v, want not found", err)
		}
		later := now.Add(time.Minute)
		p, err = w.st.SetBedPoolSize(ctx, w.hospital, w.department, 2, 1, "u2", later)
		if err != nil || p.Size != 2 || p.InUse != 2 || p.Free != 0 || p.Version != 2 || p.UpdatedBy != "u2" || !p.UpdatedAt.Equal(later) {
			t.Fatalf("resize to exactly the beds in use: %+v %v", p, err)
		}
	})
}

func TestBedPoolStoreReserveAndRelease(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		w := newBedTestWorld(t, db, 3)
		now := sqldb.Now()
		a, b, c := w.tickets[0], w.tickets[1], w.tickets[2]

		// No pool: nothing reserved, nothing written, the pool says so.
		p, ok, err := w.st.ReserveBed(ctx, w.reservation(a, now))
		if err != nil || ok || p.Configured() {
			t.Fatalf("reserve without a pool: %+v %v %v", p, ok, err)
		}
		if _, err := w.st.CreateBedPool(ctx, referral.BedPool{HospitalID: w.hospital, DepartmentID: w.department, Size: 2}, now); err != nil {
			t.Fatal(err)
		}
		for i, r := range []referral.Referral{a, b} {
			if _, ok, err := w.st.ReserveBed(ctx, w.reservation(r, now)); err != nil || !ok {
				t.Fatalf("reserve %s: %v %v", r.Number, ok, err)
			}
			if i == 0 {
				// A ticket holds one bed at most; the refused second one leaves the
				// count as it was.
				if err := db.InTx(ctx, func(ctx context.Context) error {
					_, _, err := w.st.ReserveBed(ctx, w.reservation(a, now))
					return err
				}); !errors.Is(err, apperr.ErrConflict) {
					t.Fatalf("second bed for one ticket: %v, want conflict", err)
				}
				if p := w.pool(t); p.InUse != 1 {
					t.Fatalf("after a refused second bed: %+v", p)
				}
			}
		}
		// Full: refused, and the refusal carries the counts.
		p, ok, err = w.st.ReserveBed(ctx, w.reservation(c, now))
		if err != nil || ok || p.InUse != 2 || p.Size != 2 {
			t.Fatalf("reserve from a full pool: %+v %v %v", p, ok, err)
		}
		held, err := w.st.HeldBeds(ctx, w.hospital, w.department)
		if err != nil {
			t.Fatal(err)
		}
		if got := []string{held[0].Number, held[1].Number}; len(held) != 2 || !slices.Contains(got, a.Number) || !slices.Contains(got, b.Number) {
			t.Fatalf("held beds: %+v", held)
		}

		// Releasing twice frees one bed once.
		later := now.Add(time.Hour)
		res, ok, err := w.st.ReleaseBed(ctx, a.ID, "desk", "cancelled", later)
		if err != nil || !ok || res.ReferralID != a.ID || res.State != referral.BedReleased || !res.ReleasedAt.Equal(later) || res.ReleasedBy != "desk" {
			t.Fatalf("release: %+v %v %v", res, ok, err)
		}
		if _, ok, err := w.st.ReleaseBed(ctx, a.ID, "desk", "cancelled", later); ok || err != nil {
			t.Fatalf("second release: %v %v, want nothing to release", ok, err)
		}
		if _, ok, err := w.st.ReleaseBed(ctx, c.ID, "desk", "", later); ok || err != nil {
			t.Fatalf("release of a ticket without a bed: %v %v", ok, err)
		}
		if p := w.pool(t); p.InUse != 1 || p.Free != 1 {
			t.Fatalf("after release: %+v", p)
		}
		kept, err := w.st.BedReservation(ctx, a.ID)
		if err != nil || kept.State != referral.BedReleased || kept.ReleaseReason != "cancelled" {
			t.Fatalf("the released reservation stays on record: %+v %v", kept, err)
		}
		if _, ok, err := w.st.ReserveBed(ctx, w.reservation(c, later)); err != nil || !ok {
			t.Fatalf("the freed bed goes to the next ticket: %v %v", ok, err)
		}
	})
}

// The table itself refuses an oversubscribed or negative pool, whatever
// statement tries it.
func TestBedPoolStoreConstraintsRefuseOversubscription(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		w := newBedTestWorld(t, db, 0)
		if _, err := w.st.CreateBedPool(ctx, referral.BedPool{HospitalID: w.hospital, DepartmentID: w.department, Size: 1}, sqldb.Now()); err != nil {
			t.Fatal(err)
		}
		for _, stmt := range []string{
			`UPDATE bed_pools SET in_use = 2`,
			`UPDATE bed_pools SET in_use = -1`,
			`UPDATE bed_pools SET size = 1001, in_use = 0`,
		} {
			if _, err := db.Exec(ctx, stmt); err == nil {
				t.Errorf("%s was accepted", stmt)
			}
		}
		if p := w.pool(t); p.Size != 1 || p.InUse != 0 {
			t.Fatalf("pool changed: %+v", p)
		}
	})
}

// Many transactions reserving from one pool at once: exactly size of them
// get a bed, on both engines.
func TestBedPoolStoreConcurrentReservations(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		const n, size = 20, 3
		w := newBedTestWorld(t, db, n)
		if _, err := w.st.CreateBedPool(ctx, referral.BedPool{HospitalID: w.hospital, DepartmentID: w.department, Size: size}, sqldb.Now()); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		results := make([]error, n)
		got := make([]bool, n)
		for i, r := range w.tickets {
			wg.Go(func() {
				results[i] = db.InTx(ctx, func(ctx context.Context) error {
					_, ok, err := w.st.ReserveBed(ctx, w.reservation(r, sqldb.Now()))
					got[i] = ok
					return err
				})
			})
		}
		wg.Wait()
		won := 0
		for i, err := range results {
			if err != nil {
				t.Errorf("reservation %d: %v", i, err)
			}
			if got[i] {
				won++
			}
		}
		held, err := w.st.HeldBeds(ctx, w.hospital, w.department)
		if err != nil {
			t.Fatal(err)
		}
		if p := w.pool(t); won != size || p.InUse != size || len(held) != size {
			t.Fatalf("%d reservations succeeded, pool %+v, %d held; want %d", won, p, len(held), size)
		}
	})
}
