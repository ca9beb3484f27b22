package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"duikou/internal/apperr"
	"duikou/internal/auth"
	"duikou/internal/directory"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
)

// Clinician tells where a user works, in which roles, and in which roster
// department (none when off the roster or the entry is inactive); the
// remote-session service checks assignments with it.
func TestConsultStoreClinicianAndDepartmentHospital(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		dir := store.NewDirectory(db)
		users := store.NewUsers(db)
		st := store.NewConsults(db)
		h := dirTestHospital(t, dir, 1, directory.Tertiary, "四川省", "")
		now := sqldb.Now()
		cardio := directory.Department{ID: dirTestID(), HospitalID: h.ID, Code: "03.04", Name: "心血管内科", Version: 1, CreatedAt: now, UpdatedAt: now}
		if err := dir.CreateDepartment(ctx, cardio); err != nil {
			t.Fatal(err)
		}
		staff := func(active bool) string {
			s := directory.Staff{ID: dirTestID(), HospitalID: h.ID, DepartmentID: &cardio.ID, Name: "王立新", Title: "chief_physician",
				Active: active, Version: 1, CreatedAt: now, UpdatedAt: now}
			if err := dir.CreateStaff(ctx, s); err != nil {
				t.Fatal(err)
			}
			return s.ID
		}
		user := func(name, staffID string, roles ...auth.Role) string {
			u := usersSample(h.ID, name, roles...)
			u.StaffID = staffID
			if err := users.CreateUser(ctx, u, "x"); err != nil {
				t.Fatal(err)
			}
			return u.ID
		}
		onRoster := user("sph.cardio", staff(true), auth.Specialist, auth.DispatchedDoctor)
		retired := user("sph.retired", staff(false), auth.Specialist)
		offRoster := user("sph.office", "", auth.ProgramOffice)

		c, err := st.Clinician(ctx, onRoster)
		if err != nil || c.HospitalID != h.ID || c.DepartmentID != cardio.ID || c.Disabled ||
			!slices.Equal(c.Roles, []auth.Role{auth.DispatchedDoctor, auth.Specialist}) {
			t.Fatalf("on the roster: %+v, %v", c, err)
		}
		if c, err := st.Clinician(ctx, retired); err != nil || c.DepartmentID != "" {
			t.Errorf("inactive roster entry: %+v, %v", c, err)
		}
		if c, err := st.Clinician(ctx, offRoster); err != nil || c.DepartmentID != "" || !slices.Equal(c.Roles, []auth.Role{auth.ProgramOffice}) {
			t.Errorf("off the roster: %+v, %v", c, err)
		}
		for _, id := range []string{dirTestID(), "not-an-id"} {
			if _, err := st.Clinician(ctx, id); !errors.Is(err, apperr.ErrNotFound) {
				t.Errorf("clinician %q: %v", id, err)
			}
			if _, err := st.DepartmentHospital(ctx, id); !errors.Is(err, apperr.ErrNotFound) {
				t.Errorf("department %q: %v", id, err)
			}
		}
		if got, err := st.DepartmentHospital(ctx, cardio.ID); err != nil || got != h.ID {
			t.Errorf("department's hospital: %s, %v", got, err)
		}
	})
}
