package auth_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"duikou/internal/apperr"
	"duikou/internal/auth"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
)

func TestUserAdministrationIsForAdminsOnly(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		target := f.createUser(t, "target.user")
		f.rec.reset()
		for _, role := range []auth.Role{auth.CountyDoctor, auth.Specialist, auth.ReferralDesk, auth.DispatchedDoctor, auth.ProgramOffice, auth.Auditor} {
			p := auth.Principal{UserID: uuid.Must(uuid.NewV7()).String(), HospitalID: f.hospital, Roles: []auth.Role{role}}
			name := "new"
			calls := map[string]error{}
			_, calls["create"] = f.svc.CreateUser(ctx, p, auth.NewUser{Username: "x" + string(role)[:3], DisplayName: "X", HospitalID: f.hospital, Roles: []auth.Role{role}, Password: testPassword})
			_, calls["get"] = f.svc.GetUser(ctx, p, target.ID)
			_, calls["list"] = f.svc.ListUsers(ctx, p, auth.UserFilter{Limit: 10})
			_, calls["update"] = f.svc.UpdateUser(ctx, p, target.ID, 1, auth.UserChanges{DisplayName: &name})
			calls["reset password"] = f.svc.ResetPassword(ctx, p, target.ID, "another-password")
			_, calls["unlock"] = f.svc.Unlock(ctx, p, target.ID)
			for op, err := range calls {
				if !errors.Is(err, apperr.ErrForbidden) {
					t.Errorf("%s may %s: err = %v", role, op, err)
				}
			}
		}
		if len(f.rec.all()) != 0 {
			t.Errorf("refused calls changed something: %v", f.rec.actions())
		}
		if cur, _ := f.users.User(ctx, target.ID); cur.Version != 1 || cur.DisplayName != "TARGET.USER" {
			t.Errorf("target changed: %+v", cur)
		}
	})
}

func TestCreateUserValidatesEveryField(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		valid := auth.NewUser{Username: "li.hua", DisplayName: "Li Hua", HospitalID: f.hospital,
			Roles: []auth.Role{auth.CountyDoctor}, Password: testPassword}
		tests := []struct {
			name   string
			edit   func(*auth.NewUser)
			fields []string
		}{
			{"username too short", func(u *auth.NewUser) { u.Username = "ab" }, []string{"username"}},
			{"username with a space", func(u *auth.NewUser) { u.Username = "li hua" }, []string{"username"}},
			{"username too long", func(u *auth.NewUser) { u.Username = strings.Repeat("a", 65) }, []string{"username"}},
			{"username not ASCII", func(u *auth.NewUser) { u.Username = "李华" }, []string{"username"}},
			{"display name blank", func(u *auth.NewUser) { u.DisplayName = "  " }, []string{"display_name"}},
			{"display name too long", func(u *auth.NewUser) { u.DisplayName = strings.Repeat("名", 101) }, []string{"display_name"}},
			{"display name with a control character", func(u *auth.NewUser) { u.DisplayName = "Zhang\x00Wei" }, []string{"display_name"}},
			{"no hospital", func(u *auth.NewUser) { u.HospitalID = "" }, []string{"hospital_id"}},
			{"malformed hospital", func(u *auth.NewUser) { u.HospitalID = "h1" }, []string{"hospital_id"}},
			{"unknown hospital", func(u *auth.NewUser) { u.HospitalID = uuid.Must(uuid.NewV7()).String() }, []string{"hospital_id"}},
			{"unknown staff", func(u *auth.NewUser) { u.StaffID = uuid.Must(uuid.NewV7()).String() }, []string{"staff_id"}},
			{"no roles", func(u *auth.NewUser) { u.Roles = nil }, []string{"roles"}},
			{"unknown role", func(u *auth.NewUser) { u.Roles = []auth.Role{auth.Admin, "surgeon"} }, []string{"roles[1]"}},
			{"password too short", func(u *auth.NewUser) { u.Password = "short" }, []string{"password"}},
			{"password too long", func(u *auth.NewUser) { u.Password = strings.Repeat("p", 129) }, []string{"password"}},
			{"everything wrong at once", func(u *auth.NewUser) { *u = auth.NewUser{} },
				[]string{"username", "display_name", "hospital_id", "roles", "password"}},
		}
		for _, tt := range tests {
			in := valid
			tt.edit(&in)
			_, err := f.svc.CreateUser(ctx, f.admin, in)
			var inv apperr.Invalid
			if !errors.As(err, &inv) {
				t.Errorf("%s: err = %v, want field errors", tt.name, err)
				continue
			}
			var fields []string
			for _, fe := range inv {
				fields = append(fields, fe.Field)
			}
			if !slices.Equal(fields, tt.fields) {
				t.Errorf("%s: fields %v, want %v", tt.name, fields, tt.fields)
			}
		}
		if users, _ := f.users.ListUsers(ctx, auth.UserFilter{Limit: 10}); len(users) != 1 {
			t.Errorf("bad input created users: %d accounts", len(users))
		}
		if len(f.rec.all()) != 0 {
			t.Errorf("bad input was audited as a change: %v", f.rec.actions())
		}

		// A good request is stored, normalised and audited; a second with the same username conflicts.
		in := valid
		in.Username = " Li.Hua "
		in.Roles = []auth.Role{auth.Specialist, auth.CountyDoctor, auth.Specialist}
		u, err := f.svc.CreateUser(ctx, f.admin, in)
		if err != nil {
			t.Fatal(err)
		}
		if u.Username != "li.hua" || !slices.Equal(u.Roles, []auth.Role{auth.CountyDoctor, auth.Specialist}) || u.Version != 1 {
			t.Errorf("created %+v", u)
		}
		if got := f.rec.all(); len(got) != 1 || got[0].Action != auth.ActionUserCreate || got[0].ResourceID != u.ID ||
			got[0].ActorID != f.admin.UserID || strings.Contains(got[0].Detail, testPassword) {
			t.Errorf("audit %+v", got)
		}
		if _, err := f.svc.CreateUser(ctx, f.admin, valid); !errors.Is(err, apperr.ErrConflict) {
			t.Errorf("duplicate username: err = %v, want ErrConflict", err)
		}
	})
}

func TestCreateUserStaffMustBelongToTheHospital(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		staffID := uuid.Must(uuid.NewV7()).String()
		now := sqldb.Now()
		if _, err := db.Exec(ctx, `INSERT INTO staff (id, hospital_id, name, title, created_at, updated_at)
			VALUES ($1, $2, 'Deng Ke', 'chief', $3, $3)`, staffID, f.paired, now); err != nil {
			t.Fatal(err)
		}
		in := auth.NewUser{Username: "deng.ke", DisplayName: "Deng Ke", HospitalID: f.hospital, StaffID: staffID,
			Roles: []auth.Role{auth.DispatchedDoctor}, Password: testPassword}
		if _, err := f.svc.CreateUser(ctx, f.admin, in); err == nil || !strings.Contains(err.Error(), "staff_id") {
			t.Errorf("staff of another hospital: err = %v", err)
		}
		in.HospitalID = f.paired
		u, err := f.svc.CreateUser(ctx, f.admin, in)
		if err != nil || u.StaffID != staffID {
			t.Errorf("staff of its hospital: %+v %v", u, err)
		}
	})
}

func TestUpdateUserNeedsTheCurrentVersion(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		u := f.createUser(t, "cao.xue")
		f.rec.reset()
		name, yes := "Cao Xue", true
		roles := []auth.Role{auth.Specialist}
		got, err := f.svc.UpdateUser(ctx, f.admin, u.ID, 1, auth.UserChanges{DisplayName: &name, Roles: &roles, Supervisor: &yes})
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != 2 || got.DisplayName != name || !got.Supervisor || !slices.Equal(got.Roles, roles) {
			t.Errorf("updated %+v", got)
		}
		if a := f.rec.all(); len(a) != 1 || a[0].Action != auth.ActionUserUpdate || a[0].ResourceID != u.ID {
			t.Errorf("audit %+v", a)
		}
		other := "Someone"
		if _, err := f.svc.UpdateUser(ctx, f.admin, u.ID, 1, auth.UserChanges{DisplayName: &other}); !errors.Is(err, apperr.ErrStale) {
			t.Errorf("stale version: err = %v, want ErrStale", err)
		}
		bad := []auth.Role{}
		if _, err := f.svc.UpdateUser(ctx, f.admin, u.ID, 2, auth.UserChanges{Roles: &bad}); err == nil || !strings.Contains(err.Error(), "roles") {
			t.Errorf("no roles: err = %v", err)
		}
		if _, err := f.svc.UpdateUser(ctx, f.admin, u.ID, 2, auth.UserChanges{}); err == nil {
			t.Error("an empty change was accepted")
		}
		if _, err := f.svc.UpdateUser(ctx, f.admin, uuid.Must(uuid.NewV7()).String(), 1, auth.UserChanges{DisplayName: &name}); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("unknown user: err = %v", err)
		}
		if cur, _ := f.users.User(ctx, u.ID); cur.Version != 2 || cur.DisplayName != name {
			t.Errorf("refused changes were stored: %+v", cur)
		}
	})
}

func TestAdminCannotLockThemselvesOut(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		yes := true
		roles := []auth.Role{auth.Auditor}
		for name, c := range map[string]auth.UserChanges{
			"disable self":        {Disabled: &yes},
			"drop own admin role": {Roles: &roles},
		} {
			if _, err := f.svc.UpdateUser(ctx, f.admin, f.admin.UserID, 1, c); !errors.Is(err, apperr.ErrConflict) {
				t.Errorf("%s: err = %v, want ErrConflict", name, err)
			}
		}
	})
}

func TestResetPasswordEndsTheUsersSessions(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		u := f.createUser(t, "jiang.tao")
		s1, s2 := f.login(t, "jiang.tao", testPassword), f.login(t, "jiang.tao", testPassword)
		if err := f.svc.ResetPassword(ctx, f.admin, u.ID, "short"); err == nil {
			t.Error("a short new password was accepted")
		}
		if err := f.svc.ResetPassword(ctx, f.admin, u.ID, "reset-by-admin-1"); err != nil {
			t.Fatal(err)
		}
		for _, s := range []auth.LoginResult{s1, s2} {
			if _, err := f.svc.Authenticate(ctx, s.Token); !errors.Is(err, apperr.ErrUnauthenticated) {
				t.Errorf("session survived the reset: %v", err)
			}
		}
		if _, err := f.svc.Login(ctx, "jiang.tao", testPassword, "192.0.2.1", ""); !errors.Is(err, apperr.ErrUnauthenticated) {
			t.Errorf("old password still works: %v", err)
		}
		f.login(t, "jiang.tao", "reset-by-admin-1")
		if !slices.Contains(f.rec.actions(), auth.ActionUserPasswordReset) {
			t.Errorf("reset not audited: %v", f.rec.actions())
		}
	})
}

func TestChangeOwnPassword(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		u := f.createUser(t, "pan.yue")
		here, elsewhere := f.login(t, "pan.yue", testPassword), f.login(t, "pan.yue", testPassword)

		err := f.svc.ChangePassword(ctx, here.Principal, "not-my-password", "brand-new-password")
		var inv apperr.Invalid
		if !errors.As(err, &inv) || inv[0].Field != "current_password" {
			t.Errorf("wrong current password: err = %v", err)
		}
		if cur, _ := f.users.User(ctx, u.ID); cur.FailedLogins != 1 {
			t.Errorf("a wrong current password was not counted as a failure: %d", cur.FailedLogins)
		}
		if err := f.svc.ChangePassword(ctx, here.Principal, testPassword, "tiny"); err == nil {
			t.Error("a short new password was accepted")
		}
		if err := f.svc.ChangePassword(ctx, here.Principal, testPassword, "brand-new-password"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Authenticate(ctx, here.Token); err != nil {
			t.Errorf("the session that changed the password ended: %v", err)
		}
		if _, err := f.svc.Authenticate(ctx, elsewhere.Token); !errors.Is(err, apperr.ErrUnauthenticated) {
			t.Errorf("the other session survived: %v", err)
		}
		f.login(t, "pan.yue", "brand-new-password")
		if !slices.Contains(f.rec.actions(), auth.ActionUserPasswordChange) {
			t.Errorf("change not audited: %v", f.rec.actions())
		}
	})
}

func TestUnlockLiftsTheLock(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		u := f.createUser(t, "luo.yi")
		for range 5 {
			f.svc.Login(ctx, "luo.yi", "wrong-password", "192.0.2.1", "")
		}
		if _, err := f.svc.Login(ctx, "luo.yi", testPassword, "192.0.2.1", ""); !errors.Is(err, apperr.ErrLocked) {
			t.Fatalf("not locked: %v", err)
		}
		got, err := f.svc.Unlock(ctx, f.admin, u.ID)
		if err != nil || got.LockedUntil != nil || got.FailedLogins != 0 {
			t.Fatalf("unlock: %+v %v", got, err)
		}
		f.login(t, "luo.yi", testPassword)
		if !slices.Contains(f.rec.actions(), auth.ActionUserUnlock) {
			t.Errorf("unlock not audited: %v", f.rec.actions())
		}
	})
}

func TestListUsersPagesAndFilters(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		a := f.createUser(t, "list.a", auth.Specialist)
		b := f.createUser(t, "list.b", auth.Specialist)
		page, err := f.svc.ListUsers(ctx, f.admin, auth.UserFilter{Role: auth.Specialist, Limit: 1})
		if err != nil || len(page) != 1 || page[0].ID != a.ID {
			t.Fatalf("first page %v %v", page, err)
		}
		page, err = f.svc.ListUsers(ctx, f.admin, auth.UserFilter{Role: auth.Specialist, After: a.ID, Limit: 5})
		if err != nil || len(page) != 1 || page[0].ID != b.ID {
			t.Errorf("second page %v %v", page, err)
		}
		_, err = f.svc.ListUsers(ctx, f.admin, auth.UserFilter{HospitalID: "x", Role: "surgeon", After: "y", Limit: 5})
		var inv apperr.Invalid
		if !errors.As(err, &inv) || len(inv) != 3 {
			t.Errorf("bad filter: err = %v", err)
		}
	})
}

func TestBootstrapAdminOnlyOnAFreshInstallation(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db) // has bootstrapped "admin"
		created, err := f.svc.BootstrapAdmin(context.Background(), auth.NewUser{
			Username: "second.admin", DisplayName: "Second", HospitalID: f.hospital, Password: testPassword,
		})
		if err != nil || created {
			t.Errorf("second bootstrap: created=%v err=%v", created, err)
		}
		if !f.admin.Has(auth.Admin) {
			t.Errorf("bootstrapped user is not an admin: %v", f.admin.Roles)
		}
	})
}
