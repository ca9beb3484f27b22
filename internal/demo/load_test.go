package demo_test

import (
	"context"
	"testing"

	"duikou/consult"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/consults"
	"duikou/internal/demo"
	"duikou/internal/directory"
	"duikou/internal/patient"
	"duikou/internal/referrals"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/referral"
)

var tables = []string{"hospitals", "departments", "staff", "pairings", "users", "user_roles", "bed_pools", "clinic_slots"}

func counts(t *testing.T, db sqldb.DB) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, tb := range tables {
		var n int
		if err := db.QueryRow(context.Background(), "SELECT count(*) FROM "+tb).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[tb] = n
	}
	return out
}

func TestDemoProvinceLoadsOnceAndAgainChangesNothing(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		log := audit.NewLog(store.NewAuditLog(db), nil)
		dir := directory.NewService(db, store.NewDirectory(db), log)
		authSvc, err := auth.NewService(auth.Config{
			Store: store.NewUsers(db), Audit: log, Reach: dir.Reach, CSRFKey: make([]byte, 32),
			Passwords: auth.PasswordParams{Memory: 64, Time: 1, Threads: 1},
		})
		if err != nil {
			t.Fatal(err)
		}
		refSvc := referrals.NewService(db, store.NewReferrals(db), log, referrals.NewDirectoryRoutes(store.NewDirectory(db), nil), nil, referral.DefaultDeadlines())
		reg := patient.NewService(db, store.NewPatients(db), nil, log)
		clinics := consults.NewService(db, store.NewConsults(db), log, reg, dir, nil, consult.Deadlines{}, nil)
		s := demo.Services{Directory: dir, Auth: authSvc, Beds: referrals.NewBeds(refSvc, store.NewReferrals(db), store.NewDirectory(db)), Clinics: clinics}

		logins, err := demo.Load(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		first := counts(t, db)
		// Two tertiary hospitals, ten departments each with reserved beds;
		// the provincial cardiologist's eight clinic places.
		want := map[string]int{"hospitals": 10, "pairings": 8, "bed_pools": 20, "clinic_slots": 8}
		for tb, n := range want {
			if first[tb] != n {
				t.Errorf("%s: %d rows, want %d", tb, first[tb], n)
			}
		}
		roles := map[string]bool{}
		for _, l := range logins {
			for _, r := range l.Roles {
				roles[r] = true
			}
		}
		for _, r := range auth.Roles {
			if !roles[string(r)] {
				t.Errorf("no demo login holds role %s", r)
			}
		}

		again, err := demo.Load(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if second := counts(t, db); !equal(first, second) || len(again) != len(logins) {
			t.Fatalf("second load changed data: %v → %v", first, second)
		}

		// A demo login works with the printed password.
		res, err := authSvc.Login(ctx, "sph.desk", demo.Password, "127.0.0.1", "test")
		if err != nil {
			t.Fatal(err)
		}
		if !res.Principal.Has(auth.ReferralDesk) || !res.Principal.Supervisor || len(res.Principal.Reach) == 0 {
			t.Fatalf("sph.desk principal: %+v", res.Principal)
		}
		if v, err := log.Verify(ctx); err != nil || !v.OK {
			t.Fatalf("audit chain after demo load: %+v, %v", v, err)
		}
	})
}

func equal(a, b map[string]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return len(a) == len(b)
}
