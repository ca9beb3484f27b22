package auth_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
)

func TestAuthenticateBuildsThePrincipal(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		u, err := f.svc.CreateUser(ctx, f.admin, auth.NewUser{
			Username: "desk.head", DisplayName: "Referral desk head", HospitalID: f.hospital,
			Roles: []auth.Role{auth.ReferralDesk, auth.CountyDoctor}, Supervisor: true, Password: testPassword,
		})
		if err != nil {
			t.Fatal(err)
		}
		res := f.login(t, "desk.head", testPassword)
		p, err := f.svc.Authenticate(ctx, res.Token)
		if err != nil {
			t.Fatal(err)
		}
		if p.UserID != u.ID || p.Username != "desk.head" || p.DisplayName != "Referral desk head" ||
			p.HospitalID != f.hospital || !p.Supervisor || p.SessionID == "" ||
			!slices.Equal(p.Roles, []auth.Role{auth.CountyDoctor, auth.ReferralDesk}) {
			t.Errorf("principal %+v", p)
		}
		if !p.CanReach(f.hospital) || !p.CanReach(f.paired) || p.CanReach(insertHospital(t, db)) {
			t.Errorf("reach %v: want own hospital and the paired one only", p.Reach)
		}
		if res.CSRFToken != f.svc.CSRFToken(p.SessionID) || res.Principal.SessionID != p.SessionID {
			t.Errorf("login result does not match the session")
		}
		if want := f.clock.Now().Add(12 * time.Hour); !res.ExpiresAt.Equal(want) {
			t.Errorf("expires at %v, want %v", res.ExpiresAt, want)
		}
	})
}

func TestAuthenticateRefusesEndedSessions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		activeFor time.Duration // in use every 20 minutes for this long

		idleFor time.Duration
		logout  bool
		ok      bool
	}{
		{name: "fresh", ok: true},
		{name: "idle 29 minutes", idleFor: 29 * time.Minute, ok: true},
		{name: "idle 30 minutes", idleFor: 30 * time.Minute},
		{name: "in use for 11h40", activeFor: 11*time.Hour + 40*time.Minute, ok: true},
		{name: "in use past the 12 h absolute expiry", activeFor: 12 * time.Hour},
		{name: "logged out", logout: true},
	}
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		f.createUser(t, "wu.di")
		for _, tt := range tests {
			res := f.login(t, "wu.di", testPassword)
			for used := 20 * time.Minute; used <= tt.activeFor; used += 20 * time.Minute {
				f.clock.Advance(20 * time.Minute)
				if _, err := f.svc.Authenticate(ctx, res.Token); err != nil && used < 12*time.Hour {
					t.Fatalf("%s: refused while in use at +%v: %v", tt.name, used, err)
				}
			}
			f.clock.Advance(tt.idleFor)
			if tt.logout {
				if err := f.svc.Logout(ctx, res.Principal); err != nil {
					t.Fatal(err)
				}
			}
			_, err := f.svc.Authenticate(ctx, res.Token)
			if tt.ok && err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			if !tt.ok && !errors.Is(err, apperr.ErrUnauthenticated) {
				t.Errorf("%s: err = %v, want ErrUnauthenticated", tt.name, err)
			}
		}
		for _, tok := range []string{"", "not-a-token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
			if _, err := f.svc.Authenticate(ctx, tok); !errors.Is(err, apperr.ErrUnauthenticated) {
				t.Errorf("token %q: err = %v, want ErrUnauthenticated", tok, err)
			}
		}
	})
}

func TestAuthenticateWritesLastSeenAtMostOncePerMinute(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		f.createUser(t, "yang.bo")
		res := f.login(t, "yang.bo", testPassword)
		start := f.clock.Now()
		lastSeen := func() time.Time {
			h := sha256.Sum256([]byte(res.Token))
			s, _, err := f.users.SessionWithUser(ctx, h[:])
			if err != nil {
				t.Fatal(err)
			}
			return s.LastSeenAt
		}
		f.clock.Advance(59 * time.Second)
		if _, err := f.svc.Authenticate(ctx, res.Token); err != nil {
			t.Fatal(err)
		}
		if got := lastSeen(); !got.Equal(start) {
			t.Errorf("last_seen_at written within the minute: %v", got)
		}
		f.clock.Advance(time.Second)
		if _, err := f.svc.Authenticate(ctx, res.Token); err != nil {
			t.Fatal(err)
		}
		if got, want := lastSeen(), start.Add(time.Minute); !got.Equal(want) {
			t.Errorf("last_seen_at = %v, want %v", got, want)
		}
	})
}

// statementCounter counts the statements sent to the database.
type statementCounter struct {
	sqldb.DB
	n atomic.Int64
}

func (c *statementCounter) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	c.n.Add(1)
	return c.DB.Exec(ctx, q, args...)
}

func (c *statementCounter) Query(ctx context.Context, q string, args ...any) (sqldb.Rows, error) {
	c.n.Add(1)
	return c.DB.Query(ctx, q, args...)
}

func (c *statementCounter) QueryRow(ctx context.Context, q string, args ...any) sqldb.Row {
	c.n.Add(1)
	return c.DB.QueryRow(ctx, q, args...)
}

// Authentication runs on every request, so its cost in statements is part
// of its contract: one read per session per SessionCacheTTL, and one write
// at most once a minute.
func TestAuthenticateCostsOneStatement(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		counted := &statementCounter{DB: db}
		f := newFixture(t, counted)
		ctx := context.Background()
		f.createUser(t, "qin.lu", auth.CountyDoctor, auth.Specialist, auth.ReferralDesk)
		res := f.login(t, "qin.lu", testPassword)
		for _, step := range []struct {
			advance time.Duration
			want    int64
		}{
			{0, 1},
			{auth.SessionCacheTTL / 2, 0}, // read again within the cache's time
			{30 * time.Second, 1},
			{30*time.Second - auth.SessionCacheTTL/2, 2}, // a minute since the login: last_seen_at is written
			{0, 0},
			{10 * time.Second, 1},
		} {
			f.clock.Advance(step.advance)
			counted.n.Store(0)
			p, err := f.svc.Authenticate(ctx, res.Token)
			if err != nil {
				t.Fatal(err)
			}
			if got := counted.n.Load(); got != step.want {
				t.Errorf("after %v more: %d statements, want %d", step.advance, got, step.want)
			}
			if len(p.Roles) != 3 {
				t.Errorf("roles %v, want the three held", p.Roles)
			}
		}
	})
}

func TestLogoutRevokesTheSessionAndIsAudited(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		u := f.createUser(t, "xu.hai")
		first, second := f.login(t, "xu.hai", testPassword), f.login(t, "xu.hai", testPassword)
		f.rec.reset()
		if err := f.svc.Logout(ctx, first.Principal); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Authenticate(ctx, first.Token); !errors.Is(err, apperr.ErrUnauthenticated) {
			t.Errorf("logged-out token: err = %v, want ErrUnauthenticated", err)
		}
		if _, err := f.svc.Authenticate(ctx, second.Token); err != nil {
			t.Errorf("the user's other session ended too: %v", err)
		}
		got := f.rec.all()
		if len(got) != 1 || got[0].Action != audit.Logout || got[0].ActorID != u.ID || got[0].ResourceID != first.Principal.SessionID {
			t.Errorf("audit rows %+v", got)
		}
	})
}

func TestSessionTokenIsStoredOnlyAsItsHash(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		f.createUser(t, "fan.bing")
		res := f.login(t, "fan.bing", testPassword)
		raw, err := base64.RawURLEncoding.DecodeString(res.Token)
		if err != nil || len(raw) != 32 {
			t.Fatalf("token %q is not 32 random bytes in base64url", res.Token)
		}
		var id, addr, agent string
		var stored []byte
		err = db.QueryRow(ctx, `SELECT id, token_hash, client_addr, user_agent FROM sessions WHERE id = $1`,
			res.Principal.SessionID).Scan(&id, &stored, &addr, &agent)
		if err != nil {
			t.Fatal(err)
		}
		want := sha256.Sum256([]byte(res.Token))
		if !bytes.Equal(stored, want[:]) {
			t.Errorf("token_hash = %x, want SHA-256 of the token", stored)
		}
		for _, col := range []string{id, string(stored), addr, agent} {
			if bytes.Contains([]byte(col), []byte(res.Token)) || bytes.Contains([]byte(col), raw) {
				t.Errorf("the token itself is stored: %q", col)
			}
		}
		if addr != "192.0.2.1" || agent != "test-agent" {
			t.Errorf("client %q agent %q", addr, agent)
		}
	})
}

func TestCSRFTokenIsTheSessionHMAC(t *testing.T) {
	t.Parallel()
	svc, err := auth.NewService(auth.Config{Store: nopStore{}, Audit: &recorder{}, CSRFKey: csrfKey, Passwords: auth.CheapPasswordParams()})
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, csrfKey)
	m.Write([]byte("session-1"))
	if got, want := svc.CSRFToken("session-1"), base64.RawURLEncoding.EncodeToString(m.Sum(nil)); got != want {
		t.Errorf("CSRFToken = %q, want %q", got, want)
	}
	if svc.CSRFToken("session-1") == svc.CSRFToken("session-2") {
		t.Error("two sessions share a CSRF token")
	}
	if _, err := auth.NewService(auth.Config{Store: nopStore{}, Audit: &recorder{}, CSRFKey: []byte("short")}); err == nil {
		t.Error("a short CSRF key was accepted")
	}
}

// nopStore satisfies auth.Store for tests that never reach the database.
type nopStore struct{ auth.Store }

func TestALockDoesNotEndSessionsAlreadyOpen(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		f.createUser(t, "locked.doctor", auth.CountyDoctor)
		res := f.login(t, "locked.doctor", testPassword)
		// Someone else guesses the password until the account locks.
		for i := 0; i < 5; i++ {
			f.svc.Login(ctx, "locked.doctor", "wrong-password-guess", "10.0.0.2", "ua")
		}
		if _, err := f.svc.Login(ctx, "locked.doctor", testPassword, "10.0.0.1", "ua"); !errors.Is(err, apperr.ErrLocked) {
			t.Fatalf("new login during the lock: %v, want ErrLocked", err)
		}
		if _, err := f.svc.Authenticate(ctx, res.Token); err != nil {
			t.Fatalf("the session opened before the lock must go on: %v", err)
		}
	})
}

// An instance answers for a session from memory for SessionCacheTTL, but a
// change made through it that ends sessions or narrows what they may do is
// seen by the very next request; one made through another instance is seen
// once that time has passed.
func TestAuthenticateSeesSessionChangesDespiteItsCache(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		other, err := auth.NewService(auth.Config{Store: f.users, Audit: f.rec, CSRFKey: csrfKey, Clock: f.clock.Now,
			Passwords: auth.CheapPasswordParams()})
		if err != nil {
			t.Fatal(err)
		}
		changes := []struct {
			name   string
			change func(t *testing.T, svc *auth.Service, u auth.User, res auth.LoginResult)
		}{
			{"logout", func(t *testing.T, svc *auth.Service, _ auth.User, res auth.LoginResult) {
				if err := svc.Logout(ctx, res.Principal); err != nil {
					t.Fatal(err)
				}
			}},
			{"user disabled", func(t *testing.T, svc *auth.Service, u auth.User, _ auth.LoginResult) {
				yes := true
				if _, err := svc.UpdateUser(ctx, f.admin, u.ID, u.Version, auth.UserChanges{Disabled: &yes}); err != nil {
					t.Fatal(err)
				}
			}},
			{"password reset", func(t *testing.T, svc *auth.Service, u auth.User, _ auth.LoginResult) {
				if err := svc.ResetPassword(ctx, f.admin, u.ID, "another-password-2"); err != nil {
					t.Fatal(err)
				}
			}},
		}
		for i, c := range changes {
			for _, through := range []struct {
				name string
				svc  *auth.Service
			}{{"this instance", f.svc}, {"another instance", other}} {
				u := f.createUser(t, fmt.Sprintf("cache.user%d.%s", i, through.name[:4]))
				res := f.login(t, u.Username, testPassword)
				if _, err := f.svc.Authenticate(ctx, res.Token); err != nil { // now cached here
					t.Fatal(err)
				}
				c.change(t, through.svc, u, res)
				_, err := f.svc.Authenticate(ctx, res.Token)
				if through.svc == f.svc && !errors.Is(err, apperr.ErrUnauthenticated) {
					t.Errorf("%s through %s: next request err = %v, want ErrUnauthenticated", c.name, through.name, err)
				}
				f.clock.Advance(auth.SessionCacheTTL)
				if _, err := f.svc.Authenticate(ctx, res.Token); !errors.Is(err, apperr.ErrUnauthenticated) {
					t.Errorf("%s through %s: after the cache's time err = %v, want ErrUnauthenticated", c.name, through.name, err)
				}
			}
		}

		// Roles changed here take effect on the next request.
		u := f.createUser(t, "cache.roles", auth.CountyDoctor)
		res := f.login(t, u.Username, testPassword)
		if p, err := f.svc.Authenticate(ctx, res.Token); err != nil || !p.Has(auth.CountyDoctor) {
			t.Fatalf("principal %+v, %v", p, err)
		}
		if _, err := f.svc.UpdateUser(ctx, f.admin, u.ID, u.Version, auth.UserChanges{Roles: &[]auth.Role{auth.Specialist}}); err != nil {
			t.Fatal(err)
		}
		p, err := f.svc.Authenticate(ctx, res.Token)
		if err != nil || p.Has(auth.CountyDoctor) || !p.Has(auth.Specialist) {
			t.Fatalf("after the role change: roles %v, %v; want specialist only", p.Roles, err)
		}
	})
}

// A change made inside a longer transaction (a request's idempotency
// transaction encloses the change's own) is forgotten when that one
// commits, not when the change returns: a request that reads the session in
// between still finds it open, as the database has it, and what it read
// must not be reused after the commit.
func TestSessionChangeInAnEnclosingTransactionIsForgottenAtItsCommit(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db, func(c *auth.Config) { c.SessionCache = time.Hour })
		ctx := context.Background()
		u := f.createUser(t, "enclosed.logout")
		res := f.login(t, u.Username, testPassword)
		err := db.InTx(ctx, func(ctx context.Context) error {
			if err := f.svc.Logout(ctx, res.Principal); err != nil {
				return err
			}
			if _, err := f.svc.Authenticate(context.Background(), res.Token); err != nil {
				return fmt.Errorf("another request before the commit: %w", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Authenticate(ctx, res.Token); !errors.Is(err, apperr.ErrUnauthenticated) {
			t.Fatalf("after the enclosing commit err = %v, want ErrUnauthenticated", err)
		}

		// Rolled back, the change ends nothing.
		res = f.login(t, u.Username, testPassword)
		boom := errors.New("boom")
		if err := db.InTx(ctx, func(ctx context.Context) error {
			if err := f.svc.Logout(ctx, res.Principal); err != nil {
				return err
			}
			return boom
		}); !errors.Is(err, boom) {
			t.Fatal(err)
		}
		if _, err := f.svc.Authenticate(ctx, res.Token); err != nil {
			t.Fatalf("after a rolled-back logout err = %v", err)
		}
	})
}
