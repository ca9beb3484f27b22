package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"duikou/internal/apperr"
	"duikou/internal/auth"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
)

func usersNewID() string { return uuid.Must(uuid.NewV7()).String() }

// usersHospital inserts a hospital directly: the directory is not under test.
func usersHospital(t *testing.T, db sqldb.DB) string {
	t.Helper()
	id := usersNewID()
	now := sqldb.Now()
	_, err := db.Exec(context.Background(), `
		INSERT INTO hospitals (id, name, org_code, tier, province, created_at, updated_at)
		VALUES ($1, $2, $3, 'tertiary', 'Sichuan', $4, $4)`, id, "Hospital "+id[:8], "ORG-"+id, now)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func usersStaff(t *testing.T, db sqldb.DB, hospitalID string) string {
	t.Helper()
	id := usersNewID()
	now := sqldb.Now()
	_, err := db.Exec(context.Background(), `
		INSERT INTO staff (id, hospital_id, name, title, created_at, updated_at)
		VALUES ($1, $2, 'Li Na', 'attending', $3, $3)`, id, hospitalID, now)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func usersSample(hospitalID, username string, roles ...auth.Role) auth.User {
	now := sqldb.Now()
	return auth.User{
		ID: usersNewID(), Username: username, DisplayName: "Dr " + username, HospitalID: hospitalID,
		Roles: roles, Version: 1, CreatedAt: now, UpdatedAt: now,
	}
}

func TestUsersCreateGetAndDuplicateUsername(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		s := store.NewUsers(db)
		h := usersHospital(t, db)
		u := usersSample(h, "wang.fang", auth.Specialist, auth.CountyDoctor)
		u.StaffID = usersStaff(t, db, h)
		u.Supervisor = true
		if err := s.CreateUser(ctx, u, "$argon2id$hash"); err != nil {
			t.Fatal(err)
		}

		got, err := s.User(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		// Roles come back in the canonical order whatever order they went in.
		want := u
		want.Roles = []auth.Role{auth.CountyDoctor, auth.Specialist}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("stored user\n got %+v\nwant %+v", got, want)
		}

		byName, hash, err := s.UserByUsername(ctx, "wang.fang")
		if err != nil || byName.ID != u.ID || hash != "$argon2id$hash" {
			t.Errorf("UserByUsername = %v, %q, %v", byName.ID, hash, err)
		}
		if h, err := s.PasswordHash(ctx, u.ID); err != nil || h != "$argon2id$hash" {
			t.Errorf("PasswordHash = %q, %v", h, err)
		}

		dup := usersSample(h, "wang.fang", auth.Admin)
		if err := s.CreateUser(ctx, dup, "x"); !errors.Is(err, apperr.ErrConflict) {
			t.Errorf("duplicate username: err = %v, want ErrConflict", err)
		}
		if _, err := s.User(ctx, dup.ID); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("a refused create left a row behind: %v", err)
		}
		if _, err := s.User(ctx, usersNewID()); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("unknown id: err = %v, want ErrNotFound", err)
		}
		if _, _, err := s.UserByUsername(ctx, "nobody"); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("unknown username: err = %v, want ErrNotFound", err)
		}

		if ok, err := s.HospitalExists(ctx, h); !ok || err != nil {
			t.Errorf("HospitalExists(existing) = %v, %v", ok, err)
		}
		if ok, err := s.HospitalExists(ctx, usersNewID()); ok || err != nil {
			t.Errorf("HospitalExists(unknown) = %v, %v", ok, err)
		}
		if got, err := s.StaffHospital(ctx, u.StaffID); got != h || err != nil {
			t.Errorf("StaffHospital = %q, %v", got, err)
		}
		if _, err := s.StaffHospital(ctx, usersNewID()); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("StaffHospital(unknown): %v", err)
		}
	})
}

func TestUsersListFiltersAndPages(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		s := store.NewUsers(db)
		county, city := usersHospital(t, db), usersHospital(t, db)
		var countyIDs, desks []string
		for i := range 5 {
			u := usersSample(county, fmt.Sprintf("county%d", i), auth.CountyDoctor)
			if i%2 == 0 {
				u.Roles = append(u.Roles, auth.ReferralDesk)
				desks = append(desks, u.ID)
			}
			if err := s.CreateUser(ctx, u, "h"); err != nil {
				t.Fatal(err)
			}
			countyIDs = append(countyIDs, u.ID)
		}
		other := usersSample(city, "city0", auth.ReferralDesk)
		if err := s.CreateUser(ctx, other, "h"); err != nil {
			t.Fatal(err)
		}

		ids := func(users []auth.User) []string {
			var out []string
			for _, u := range users {
				out = append(out, u.ID)
			}
			return out
		}
		tests := []struct {
			name string
			f    auth.UserFilter
			want []string
		}{
			{"one hospital", auth.UserFilter{HospitalID: county, Limit: 10}, countyIDs},
			{"first page", auth.UserFilter{HospitalID: county, Limit: 2}, countyIDs[:2]},
			{"next page", auth.UserFilter{HospitalID: county, After: countyIDs[1], Limit: 2}, countyIDs[2:4]},
			{"one role in one hospital", auth.UserFilter{HospitalID: county, Role: auth.ReferralDesk, Limit: 10}, desks},
			{"one role everywhere", auth.UserFilter{Role: auth.ReferralDesk, Limit: 10}, append(slices.Clone(desks), other.ID)},
			{"nobody", auth.UserFilter{Role: auth.Auditor, Limit: 10}, nil},
		}
		for _, tt := range tests {
			got, err := s.ListUsers(ctx, tt.f)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if !slices.Equal(ids(got), tt.want) {
				t.Errorf("%s: got %v, want %v", tt.name, ids(got), tt.want)
			}
		}
		all, _ := s.ListUsers(ctx, auth.UserFilter{HospitalID: county, Limit: 10})
		if len(all[0].Roles) != 2 || len(all[1].Roles) != 1 {
			t.Errorf("roles not loaded with the list: %v / %v", all[0].Roles, all[1].Roles)
		}
	})
}

func TestUsersUpdateChecksVersion(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		s := store.NewUsers(db)
		u := usersSample(usersHospital(t, db), "zhao.lei", auth.CountyDoctor)
		if err := s.CreateUser(ctx, u, "h"); err != nil {
			t.Fatal(err)
		}
		later := u.CreatedAt.Add(time.Hour)
		edit := u
		edit.DisplayName, edit.Roles, edit.Supervisor, edit.Disabled = "Zhao Lei", []auth.Role{auth.Specialist, auth.Auditor}, true, true
		got, err := s.UpdateUser(ctx, edit, later)
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != 2 || got.DisplayName != "Zhao Lei" || !got.Supervisor || !got.Disabled ||
			!slices.Equal(got.Roles, []auth.Role{auth.Specialist, auth.Auditor}) || !got.UpdatedAt.Equal(later) {
			t.Errorf("after update: %+v", got)
		}

		// A second edit of version 1 was made on stale data.
		edit.DisplayName = "Someone else"
		if _, err := s.UpdateUser(ctx, edit, later); !errors.Is(err, apperr.ErrStale) {
			t.Errorf("stale version: err = %v, want ErrStale", err)
		}
		if cur, _ := s.User(ctx, u.ID); cur.DisplayName != "Zhao Lei" || cur.Version != 2 {
			t.Errorf("a stale update changed the row: %+v", cur)
		}
		missing := edit
		missing.ID = usersNewID()
		if _, err := s.UpdateUser(ctx, missing, later); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("unknown user: err = %v, want ErrNotFound", err)
		}

		if err := s.SetPasswordHash(ctx, u.ID, "new-hash", later); err != nil {
			t.Fatal(err)
		}
		if h, _ := s.PasswordHash(ctx, u.ID); h != "new-hash" {
			t.Errorf("password hash = %q", h)
		}
		if cur, _ := s.User(ctx, u.ID); cur.Version != 2 {
			t.Errorf("a password change moved the profile version to %d", cur.Version)
		}
	})
}

func TestUsersFailedLoginCounterAndLock(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		s := store.NewUsers(db)
		u := usersSample(usersHospital(t, db), "chen.jie", auth.CountyDoctor)
		if err := s.CreateUser(ctx, u, "h"); err != nil {
			t.Fatal(err)
		}
		now := sqldb.Now()
		until := now.Add(15 * time.Minute)
		state := func() (int, *time.Time) {
			t.Helper()
			cur, err := s.User(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if cur.Version != 1 {
				t.Errorf("login failures moved the profile version to %d", cur.Version)
			}
			return cur.FailedLogins, cur.LockedUntil
		}
		steps := []struct {
			name      string
			at        time.Time
			want      auth.LoginFailure
			wantCount int
			wantLock  *time.Time
		}{
			{"first failure", now, auth.FailureCounted, 1, nil},
			{"second failure", now, auth.FailureCounted, 2, nil},
			{"third failure locks and restarts the count", now, auth.FailureLocked, 0, &until},
			{"failure while locked is not counted", until.Add(-time.Second), auth.FailureWhileLocked, 0, &until},
			{"failure after the lock counts afresh and clears it", until, auth.FailureCounted, 1, nil},
		}
		for _, st := range steps {
			got, err := s.RegisterFailedLogin(ctx, u.ID, st.at, 3, until)
			if err != nil || got != st.want {
				t.Fatalf("%s: result %v err %v, want %v", st.name, got, err, st.want)
			}
			count, lock := state()
			if count != st.wantCount || (lock == nil) != (st.wantLock == nil) || (lock != nil && !lock.Equal(*st.wantLock)) {
				t.Errorf("%s: count %d lock %v, want %d and %v", st.name, count, lock, st.wantCount, st.wantLock)
			}
		}

		if _, err := s.RegisterFailedLogin(ctx, u.ID, now, 3, until); err != nil {
			t.Fatal(err)
		}
		if err := s.ClearFailedLogins(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if count, lock := state(); count != 0 || lock != nil {
			t.Errorf("after clear: count %d lock %v", count, lock)
		}
		if _, err := s.RegisterFailedLogin(ctx, usersNewID(), now, 3, until); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("unknown user: %v", err)
		}
	})
}

func TestUsersSessions(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		s := store.NewUsers(db)
		u := usersSample(usersHospital(t, db), "liu.yang", auth.Specialist)
		if err := s.CreateUser(ctx, u, "h"); err != nil {
			t.Fatal(err)
		}
		now := sqldb.Now()
		open := func(token string) auth.Session {
			t.Helper()
			sess := auth.Session{ID: usersNewID(), UserID: u.ID, CreatedAt: now, LastSeenAt: now,
				ExpiresAt: now.Add(12 * time.Hour), ClientAddr: "10.0.0.7", UserAgent: "test"}
			h := sha256.Sum256([]byte(token))
			if err := s.CreateSession(ctx, sess, h[:]); err != nil {
				t.Fatal(err)
			}
			return sess
		}
		lookup := func(token string) (auth.Session, error) {
			h := sha256.Sum256([]byte(token))
			sess, _, err := s.SessionWithUser(ctx, h[:])
			return sess, err
		}
		a, b, c := open("token-a"), open("token-b"), open("token-c")

		got, err := lookup("token-a")
		if err != nil || fmt.Sprint(got) != fmt.Sprint(a) {
			t.Errorf("lookup\n got %+v %v\nwant %+v", got, err, a)
		}
		if _, err := lookup("token-x"); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("unknown token: %v", err)
		}
		// Only the hash is in the table, never the token itself.
		var stored []byte
		if err := db.QueryRow(ctx, `SELECT token_hash FROM sessions WHERE id = $1`, a.ID).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if want := sha256.Sum256([]byte("token-a")); !bytes.Equal(stored, want[:]) {
			t.Errorf("token_hash = %x, want the SHA-256 of the token", stored)
		}

		// Touch moves last_seen_at forward only.
		later := now.Add(5 * time.Minute)
		if err := s.TouchSession(ctx, a.ID, later); err != nil {
			t.Fatal(err)
		}
		if err := s.TouchSession(ctx, a.ID, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got, _ := lookup("token-a"); !got.LastSeenAt.Equal(later) {
			t.Errorf("last_seen_at = %v, want %v", got.LastSeenAt, later)
		}

		if err := s.RevokeSession(ctx, a.ID, later); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeSession(ctx, a.ID, later.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got, _ := lookup("token-a"); got.RevokedAt == nil || !got.RevokedAt.Equal(later) {
			t.Errorf("revoked_at = %v, want %v", got.RevokedAt, later)
		}

		// Revoking the user's sessions keeps the one asked for.
		n, err := s.RevokeUserSessions(ctx, u.ID, c.ID, later)
		if err != nil || n != 1 {
			t.Errorf("RevokeUserSessions = %d, %v; want 1 (b only)", n, err)
		}
		if got, _ := lookup("token-b"); got.RevokedAt == nil {
			t.Errorf("session b %s still live", b.ID)
		}
		if got, _ := lookup("token-c"); got.RevokedAt != nil {
			t.Errorf("kept session c was revoked")
		}
		if n, err := s.RevokeUserSessions(ctx, u.ID, "", later); err != nil || n != 1 {
			t.Errorf("RevokeUserSessions(all) = %d, %v; want 1 (c)", n, err)
		}
	})
}

// TestUsersSessionWithUser is the read behind every authenticated request:
// the session, its user and every role of the user, whatever their number,
// with what the authenticator needs to refuse ended sessions and disabled
// users passed through as stored.
func TestUsersSessionWithUser(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		s := store.NewUsers(db)
		h := usersHospital(t, db)
		now := sqldb.Now()
		revokedAt := now.Add(-time.Minute)

		tests := []struct {
			name    string
			roles   []auth.Role // in the order they are stored
			want    []auth.Role // in the canonical order
			disable bool
			session func(*auth.Session)
		}{
			{name: "no role"},
			{name: "one role", roles: []auth.Role{auth.Specialist}, want: []auth.Role{auth.Specialist}},
			{
				name:  "several roles",
				roles: []auth.Role{auth.Admin, auth.Specialist, auth.ReferralDesk, auth.CountyDoctor},
				want:  []auth.Role{auth.CountyDoctor, auth.Specialist, auth.ReferralDesk, auth.Admin},
			},
			{name: "disabled user", roles: []auth.Role{auth.CountyDoctor}, want: []auth.Role{auth.CountyDoctor}, disable: true},
			{
				name: "revoked session", roles: []auth.Role{auth.CountyDoctor, auth.Specialist},
				want:    []auth.Role{auth.CountyDoctor, auth.Specialist},
				session: func(sess *auth.Session) { sess.RevokedAt = &revokedAt },
			},
			{
				name: "expired session", roles: []auth.Role{auth.Specialist}, want: []auth.Role{auth.Specialist},
				session: func(sess *auth.Session) {
					sess.CreatedAt, sess.LastSeenAt, sess.ExpiresAt = now.Add(-13*time.Hour), now.Add(-2*time.Hour), now.Add(-time.Hour)
				},
			},
		}
		for i, tt := range tests {
			u := usersSample(h, fmt.Sprintf("session.user%d", i), tt.roles...)
			u.Disabled = tt.disable
			u.StaffID = usersStaff(t, db, h)
			if err := s.CreateUser(ctx, u, "h"); err != nil {
				t.Fatal(err)
			}
			// A second user's session beside it must not lend it roles.
			other := usersSample(h, fmt.Sprintf("session.other%d", i), auth.ProgramOffice)
			if err := s.CreateUser(ctx, other, "h"); err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{u.ID, other.ID} {
				sess := auth.Session{ID: usersNewID(), UserID: id, CreatedAt: now, LastSeenAt: now,
					ExpiresAt: now.Add(12 * time.Hour), ClientAddr: "10.0.0.9", UserAgent: "agent " + tt.name}
				if id == u.ID && tt.session != nil {
					tt.session(&sess)
				}
				tok := sha256.Sum256([]byte(tt.name + id))
				if err := s.CreateSession(ctx, sess, tok[:]); err != nil {
					t.Fatal(err)
				}
				if sess.RevokedAt != nil {
					if err := s.RevokeSession(ctx, sess.ID, *sess.RevokedAt); err != nil {
						t.Fatal(err)
					}
				}
				if id != u.ID {
					continue
				}
				gotSess, gotUser, err := s.SessionWithUser(ctx, tok[:])
				if err != nil {
					t.Fatalf("%s: %v", tt.name, err)
				}
				if fmt.Sprint(gotSess) != fmt.Sprint(sess) {
					t.Errorf("%s: session\n got %+v\nwant %+v", tt.name, gotSess, sess)
				}
				want := u
				want.Roles = tt.want
				if fmt.Sprint(gotUser) != fmt.Sprint(want) {
					t.Errorf("%s: user\n got %+v\nwant %+v", tt.name, gotUser, want)
				}
				// The same user as the separate read gives.
				if byID, err := s.User(ctx, u.ID); err != nil || fmt.Sprint(byID) != fmt.Sprint(gotUser) {
					t.Errorf("%s: User = %+v, %v; SessionWithUser gave %+v", tt.name, byID, err, gotUser)
				}
			}
		}

		unknown := sha256.Sum256([]byte("no such token"))
		if _, _, err := s.SessionWithUser(ctx, unknown[:]); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("unknown token: err = %v, want ErrNotFound", err)
		}
	})
}

// TestUsersPurgeSessions: a statement deletes at most its limit of the
// sessions whose absolute expiry is before the cutoff, oldest first, and
// never one expiring later, revoked or not.
func TestUsersPurgeSessions(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		s := store.NewUsers(db)
		u := usersSample(usersHospital(t, db), "zhao.lei", auth.CountyDoctor)
		if err := s.CreateUser(ctx, u, "h"); err != nil {
			t.Fatal(err)
		}
		now := sqldb.Now()
		cutoff := now.Add(-30 * 24 * time.Hour)
		ago := func(d time.Duration) time.Time { return cutoff.Add(-d) }
		sessions := []struct {
			name    string
			expires time.Time
			revoked *time.Time
			purged  bool
		}{
			{name: "expired-long-ago", expires: ago(20 * 24 * time.Hour), purged: true},
			{name: "revoked-long-ago", expires: ago(10 * 24 * time.Hour), revoked: ptr(ago(10*24*time.Hour + 11*time.Hour)), purged: true},
			{name: "expired-before-cutoff", expires: ago(time.Hour), purged: true},
			{name: "just-before-cutoff", expires: ago(time.Microsecond), purged: true},
			{name: "at-cutoff", expires: cutoff},
			// Revoked before the cutoff but expiring after it: kept until its
			// absolute expiry passes the cutoff (at most a lifetime later).
			{name: "revoked-before-cutoff-expiring-after", expires: cutoff.Add(time.Hour), revoked: ptr(ago(time.Hour))},
			{name: "revoked-yesterday", expires: now.Add(-12 * time.Hour), revoked: ptr(now.Add(-24 * time.Hour))},
			{name: "expired-yesterday", expires: now.Add(-24 * time.Hour)},
			{name: "live", expires: now.Add(6 * time.Hour)},
		}
		ids := map[string]string{}
		for i, c := range sessions {
			id := usersNewID()
			ids[id] = c.name
			created := c.expires.Add(-12 * time.Hour)
			h := sha256.Sum256([]byte(c.name))
			sess := auth.Session{ID: id, UserID: u.ID, CreatedAt: created, LastSeenAt: created, ExpiresAt: c.expires,
				ClientAddr: fmt.Sprintf("10.0.0.%d", i), UserAgent: "test"}
			if err := s.CreateSession(ctx, sess, h[:]); err != nil {
				t.Fatal(err)
			}
			if c.revoked != nil {
				if err := s.RevokeSession(ctx, id, *c.revoked); err != nil {
					t.Fatal(err)
				}
			}
		}
		left := func() map[string]bool {
			t.Helper()
			rows, err := db.Query(ctx, `SELECT id FROM sessions`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			out := map[string]bool{}
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					t.Fatal(err)
				}
				out[ids[id]] = true
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			return out
		}

		// Statements of 3: the first takes the three oldest, the second the
		// fourth and finds nothing more, the third deletes nothing.
		for i, want := range []int64{3, 1, 0} {
			n, err := s.PurgeSessions(ctx, cutoff, 3)
			if err != nil || n != want {
				t.Fatalf("purge %d = %d, %v; want %d", i+1, n, err, want)
			}
			if i == 0 {
				if got := left(); got["expired-long-ago"] || got["revoked-long-ago"] || got["expired-before-cutoff"] || !got["just-before-cutoff"] {
					t.Errorf("first purge left %v; want the three oldest gone", got)
				}
			}
		}
		got := left()
		for _, c := range sessions {
			if got[c.name] == c.purged {
				t.Errorf("%s: left %v, want purged %v", c.name, got[c.name], c.purged)
			}
		}
	})
}
