package auth_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/kv"
	"duikou/internal/kv/kvtest"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
)

// The shared Redis limiter is what production wires in.
var _ auth.Limiter = (*kv.Limiter)(nil)

func TestLoginLockoutAfterRepeatedFailures(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		u := f.createUser(t, "li.ming")
		f.rec.reset()

		// Four wrong passwords are plain failures.
		for i := 1; i <= 4; i++ {
			_, err := f.svc.Login(ctx, "li.ming", "wrong-password", "192.0.2.1", "")
			if !errors.Is(err, apperr.ErrUnauthenticated) {
				t.Fatalf("failure %d: err = %v, want ErrUnauthenticated", i, err)
			}
		}
		// The fifth locks the account.
		if _, err := f.svc.Login(ctx, "li.ming", "wrong-password", "192.0.2.1", ""); !errors.Is(err, apperr.ErrLocked) {
			t.Fatalf("fifth failure: err = %v, want ErrLocked", err)
		}
		// While locked, even the right password is refused.
		f.clock.Advance(14 * time.Minute)
		if _, err := f.svc.Login(ctx, "li.ming", testPassword, "192.0.2.1", ""); !errors.Is(err, apperr.ErrLocked) {
			t.Fatalf("right password while locked: err = %v, want ErrLocked", err)
		}
		// After the lock period the right password works and resets the counter.
		f.clock.Advance(time.Minute)
		res, err := f.svc.Login(ctx, "li.ming", testPassword, "192.0.2.1", "")
		if err != nil {
			t.Fatalf("after the lock: %v", err)
		}
		if res.Principal.UserID != u.ID {
			t.Errorf("logged in as %q, want %q", res.Principal.UserID, u.ID)
		}
		cur, _ := f.users.User(ctx, u.ID)
		if cur.FailedLogins != 0 || cur.LockedUntil != nil {
			t.Errorf("after success: failed_logins=%d locked_until=%v", cur.FailedLogins, cur.LockedUntil)
		}

		want := []string{
			audit.LoginFailed, audit.LoginFailed, audit.LoginFailed, audit.LoginFailed,
			audit.LoginFailed, audit.Lockout, // the fifth failure and the lock it causes
			audit.LoginFailed, // refused while locked
			audit.Login,
		}
		if got := f.rec.actions(); !slices.Equal(got, want) {
			t.Errorf("audit actions\n got %v\nwant %v", got, want)
		}
		for _, e := range f.rec.all() {
			if e.ActorID != u.ID || e.ActorHospitalID != f.hospital || e.ClientAddr != "192.0.2.1" {
				t.Errorf("%s row: actor %q hospital %q addr %q", e.Action, e.ActorID, e.ActorHospitalID, e.ClientAddr)
			}
			if strings.Contains(e.Detail, testPassword) || strings.Contains(e.Detail, "wrong-password") {
				t.Errorf("%s row detail %q contains a password", e.Action, e.Detail)
			}
		}
	})
}

func TestLoginSuccessResetsTheFailureCount(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		f.createUser(t, "sun.li")
		fail := func(n int) error {
			var err error
			for range n {
				_, err = f.svc.Login(ctx, "sun.li", "not-the-password", "192.0.2.1", "")
			}
			return err
		}
		fail(4)
		f.login(t, "sun.li", testPassword)
		// Four more failures: consecutive count is 4, not 8, so no lock.
		if err := fail(4); !errors.Is(err, apperr.ErrUnauthenticated) {
			t.Fatalf("err = %v, want ErrUnauthenticated (not locked)", err)
		}
		f.login(t, "sun.li", testPassword)
	})
}

func TestLoginUnknownUserAndWrongPasswordFailAlike(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		u := f.createUser(t, "zhou.qi")
		f.rec.reset()

		_, errWrong := f.svc.Login(ctx, "zhou.qi", "wrong-password", "192.0.2.9", "")
		_, errUnknown := f.svc.Login(ctx, "nobody.here", "wrong-password", "192.0.2.9", "")
		if !errors.Is(errWrong, apperr.ErrUnauthenticated) || !errors.Is(errUnknown, apperr.ErrUnauthenticated) {
			t.Fatalf("errors: %v / %v", errWrong, errUnknown)
		}
		if errWrong.Error() != errUnknown.Error() || errWrong.Error() != "wrong username or password" {
			t.Errorf("messages differ: %q vs %q", errWrong, errUnknown)
		}
		got := f.rec.all()
		if len(got) != 2 || got[0].Action != audit.LoginFailed || got[1].Action != audit.LoginFailed {
			t.Fatalf("audit rows: %+v", got)
		}
		if got[0].ActorID != u.ID {
			t.Errorf("failed login of a known user: actor %q, want %q", got[0].ActorID, u.ID)
		}
		if got[1].ActorID != "" {
			t.Errorf("failed login of an unknown user: actor %q, want none", got[1].ActorID)
		}
		for _, e := range got {
			if strings.Contains(e.Detail, "wrong-password") || e.Outcome == audit.Success {
				t.Errorf("row %+v", e)
			}
		}
	})
}

func TestLoginNormalizesUsernameAndRequiresFields(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		f.createUser(t, "he.jun")
		f.login(t, "  He.Jun ", testPassword)

		_, err := f.svc.Login(context.Background(), " ", "", "192.0.2.1", "")
		var inv apperr.Invalid
		if !errors.As(err, &inv) || len(inv) != 2 {
			t.Errorf("empty login: err = %v, want two field errors", err)
		}
	})
}

func TestLoginDisabledUserIsRefused(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		u := f.createUser(t, "ma.chao")
		live := f.login(t, "ma.chao", testPassword)

		yes := true
		if _, err := f.svc.UpdateUser(ctx, f.admin, u.ID, u.Version, auth.UserChanges{Disabled: &yes}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Login(ctx, "ma.chao", testPassword, "192.0.2.1", ""); !errors.Is(err, apperr.ErrUnauthenticated) {
			t.Errorf("disabled login: err = %v, want ErrUnauthenticated", err)
		}
		if _, err := f.svc.Authenticate(ctx, live.Token); !errors.Is(err, apperr.ErrUnauthenticated) {
			t.Errorf("session of a disabled user: err = %v, want ErrUnauthenticated", err)
		}
	})
}

func TestLoginRateLimitedPerClientAddress(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		limiter := kv.NewLimiter(kvtest.ForTest(t))
		f := newFixture(t, db, func(c *auth.Config) { c.Limiter = limiter; c.LoginsPerMinute = 3 })
		ctx := context.Background()
		f.createUser(t, "qian.yu")
		for i := range 3 {
			if _, err := f.svc.Login(ctx, "qian.yu", "wrong-password", "198.51.100.4", ""); errors.Is(err, apperr.ErrRateLimited) {
				t.Fatalf("attempt %d limited too early", i+1)
			}
		}
		// The fourth attempt from that address is refused before any password check.
		before := len(f.rec.all())
		if _, err := f.svc.Login(ctx, "qian.yu", testPassword, "198.51.100.4", ""); !errors.Is(err, apperr.ErrRateLimited) {
			t.Fatalf("fourth attempt: err = %v, want ErrRateLimited", err)
		}
		if len(f.rec.all()) != before {
			t.Error("a rate-limited attempt was processed")
		}
		// Another address is not affected.
		if _, err := f.svc.Login(ctx, "qian.yu", testPassword, "198.51.100.5", ""); err != nil {
			t.Errorf("other address: %v", err)
		}
	})
}

// The counter change and its audit rows share a transaction: when the audit
// write fails the failure is not counted either.
func TestLoginFailureCountRollsBackWithItsAuditRow(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		u := f.createUser(t, "tang.wen")
		f.rec.fail = errors.New("audit log unavailable")
		_, err := f.svc.Login(ctx, "tang.wen", "wrong-password", "192.0.2.1", "")
		if err == nil || errors.Is(err, apperr.ErrUnauthenticated) {
			t.Fatalf("err = %v, want the audit failure", err)
		}
		if cur, _ := f.users.User(ctx, u.ID); cur.FailedLogins != 0 {
			t.Errorf("failed_logins = %d although its audit row was not written", cur.FailedLogins)
		}
		// No session either when the login cannot be audited.
		if _, err := f.svc.Login(ctx, "tang.wen", testPassword, "192.0.2.1", ""); err == nil {
			t.Error("login succeeded without its audit row")
		}
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM sessions WHERE user_id = $1`, u.ID).Scan(&n); err != nil || n != 0 {
			t.Errorf("sessions of the user: %d (%v), want 0", n, err)
		}
	})
}

func TestLoginRehashesWhenParametersWereRaised(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		u := f.createUser(t, "gao.yan")
		stronger := auth.CheapPasswordParams()
		stronger.Time++
		svc, err := auth.NewService(auth.Config{Store: f.users, Audit: f.rec, CSRFKey: csrfKey, Clock: f.clock.Now, Passwords: stronger})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Login(ctx, "gao.yan", testPassword, "192.0.2.1", ""); err != nil {
			t.Fatal(err)
		}
		h, _ := f.users.PasswordHash(ctx, u.ID)
		if !strings.Contains(h, ",t=2,") {
			t.Errorf("hash %q was not upgraded to t=2", h)
		}
		if _, err := svc.Login(ctx, "gao.yan", testPassword, "192.0.2.1", ""); err != nil {
			t.Errorf("login with the upgraded hash: %v", err)
		}
	})
}

// With the platform's hash-chained log on the same database, the audit rows
// of logins land in audit_log and commit with the changes they record.
func TestLoginAuditRowsLandInThePlatformLog(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		log := audit.NewLog(store.NewAuditLog(db), f.clock.Now)
		svc, err := auth.NewService(auth.Config{Store: f.users, Audit: log, CSRFKey: csrfKey, Clock: f.clock.Now,
			Passwords: auth.CheapPasswordParams(), MaxFailedLogins: 2})
		if err != nil {
			t.Fatal(err)
		}
		ctx := audit.WithSource(context.Background(), audit.Source{RequestID: "req-12345678", ClientAddr: "192.0.2.50"})
		u := f.createUser(t, "kong.rui")
		svc.Login(ctx, "kong.rui", "wrong-password", "192.0.2.50", "")
		svc.Login(ctx, "kong.rui", "wrong-password", "192.0.2.50", "")
		f.clock.Advance(15 * time.Minute)
		res, err := svc.Login(ctx, "kong.rui", testPassword, "192.0.2.50", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Logout(ctx, res.Principal); err != nil {
			t.Fatal(err)
		}
		rows, err := db.Query(ctx, `SELECT action, outcome, actor_id FROM audit_log ORDER BY seq`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var action, outcome, actor string
			if err := rows.Scan(&action, &outcome, &actor); err != nil {
				t.Fatal(err)
			}
			if actor != u.ID {
				t.Errorf("%s row by %q, want %q", action, actor, u.ID)
			}
			got = append(got, action+"/"+outcome)
		}
		want := []string{"auth.login_failed/failure", "auth.login_failed/failure", "auth.lockout/success", "auth.login/success", "auth.logout/success"}
		if !slices.Equal(got, want) {
			t.Errorf("audit_log\n got %v\nwant %v", got, want)
		}
	})
}

// Concurrent wrong passwords are each counted and lock the account once.
func TestLoginConcurrentFailuresLockOnce(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		u := f.createUser(t, "bai.lu")
		f.rec.reset()
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				f.svc.Login(context.Background(), "bai.lu", "wrong-password", "192.0.2.1", "")
			})
		}
		wg.Wait()
		var lockouts, failures int
		for _, a := range f.rec.actions() {
			switch a {
			case audit.Lockout:
				lockouts++
			case audit.LoginFailed:
				failures++
			}
		}
		if lockouts != 1 || failures != 8 {
			t.Errorf("%d lockouts and %d failures recorded, want 1 and 8", lockouts, failures)
		}
		cur, _ := f.users.User(context.Background(), u.ID)
		if !cur.LockedAt(f.clock.Now()) {
			t.Errorf("account not locked: %+v", cur)
		}
	})
}
