package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/uuid"

	"duikou/internal/apperr"
	"duikou/internal/directory"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
)

func dirTestID() string { return uuid.Must(uuid.NewV7()).String() }

// dirTestOrgCode makes a distinct, well-formed unified social credit code.
func dirTestOrgCode(n int) string { return fmt.Sprintf("12510000%010d", n) }

func dirTestHospital(t *testing.T, st *store.Directory, n int, tier directory.Tier, province, county string) directory.Hospital {
	t.Helper()
	now := sqldb.Now()
	h := directory.Hospital{
		ID: dirTestID(), Name: fmt.Sprintf("医院%d", n), OrgCode: dirTestOrgCode(n), Tier: tier,
		Province: province, County: county, Address: "某路1号", TimeZone: directory.DefaultTimeZone,
		Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	if err := st.CreateHospital(context.Background(), h); err != nil {
		t.Fatalf("create hospital: %v", err)
	}
	return h
}

func dirTestIDs[T any](items []T, id func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = id(it)
	}
	return out
}

func dirTestHospitalID(h directory.Hospital) string { return h.ID }

func TestDirectoryStoreHospitals(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewDirectory(db)
		a := dirTestHospital(t, st, 1, directory.Tertiary, "四川省", "")
		b := dirTestHospital(t, st, 2, directory.Secondary, "四川省", "苍溪县")
		c := dirTestHospital(t, st, 3, directory.Township, "四川省", "苍溪县")
		d := dirTestHospital(t, st, 4, directory.Secondary, "贵州省", "雷山县")

		got, err := st.Hospital(ctx, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got != b {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, b)
		}
		if _, err := st.Hospital(ctx, dirTestID()); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("unknown id: got %v, want ErrNotFound", err)
		}

		dup := b
		dup.ID, dup.Name = dirTestID(), "重复"
		if err := st.CreateHospital(ctx, dup); !errors.Is(err, apperr.ErrConflict) {
			t.Errorf("duplicate org_code: got %v, want ErrConflict", err)
		}

		for _, tc := range []struct {
			name string
			f    directory.HospitalFilter
			want []directory.Hospital
		}{
			{"all", directory.HospitalFilter{}, []directory.Hospital{a, b, c, d}},
			{"tier", directory.HospitalFilter{Tier: directory.Secondary}, []directory.Hospital{b, d}},
			{"province", directory.HospitalFilter{Province: "四川省"}, []directory.Hospital{a, b, c}},
			{"county", directory.HospitalFilter{County: "苍溪县"}, []directory.Hospital{b, c}},
			{"province and tier", directory.HospitalFilter{Province: "四川省", Tier: directory.Township}, []directory.Hospital{c}},
			{"scoped", directory.HospitalFilter{Scoped: true, Within: []string{a.ID, d.ID}}, []directory.Hospital{a, d}},
			{"scoped to nothing", directory.HospitalFilter{Scoped: true}, nil},
			{"first page", directory.HospitalFilter{Limit: 2}, []directory.Hospital{a, b}},
			{"next page", directory.HospitalFilter{After: b.ID, Limit: 2}, []directory.Hospital{c, d}},
			{"last page", directory.HospitalFilter{After: d.ID, Limit: 2}, nil},
		} {
			got, err := st.Hospitals(ctx, tc.f)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if g, w := dirTestIDs(got, dirTestHospitalID), dirTestIDs(tc.want, dirTestHospitalID); !slices.Equal(g, w) {
				t.Errorf("%s: got %v, want %v", tc.name, g, w)
			}
		}

		ids, err := st.HospitalIDsInProvince(ctx, "四川省")
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{a.ID, b.ID, c.ID}; !slices.Equal(ids, want) {
			t.Errorf("province ids: got %v, want %v", ids, want)
		}

		edit := b
		edit.Name, edit.Tier, edit.UpdatedAt = "苍溪县人民医院", directory.Tertiary, sqldb.Now()
		upd, err := st.UpdateHospital(ctx, edit)
		if err != nil {
			t.Fatal(err)
		}
		if upd.Version != 2 || upd.Name != edit.Name || upd.Tier != directory.Tertiary || !upd.CreatedAt.Equal(b.CreatedAt) {
			t.Errorf("update: got %+v", upd)
		}
		if _, err := st.UpdateHospital(ctx, edit); !errors.Is(err, apperr.ErrStale) {
			t.Errorf("update at old version: got %v, want ErrStale", err)
		}
		missing := edit
		missing.ID = dirTestID()
		if _, err := st.UpdateHospital(ctx, missing); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("update unknown: got %v, want ErrNotFound", err)
		}
		clash := upd
		clash.OrgCode = a.OrgCode
		if _, err := st.UpdateHospital(ctx, clash); !errors.Is(err, apperr.ErrConflict) {
			t.Errorf("update to a taken org_code: got %v, want ErrConflict", err)
		}

		err = db.InTx(ctx, func(ctx context.Context) error { return st.LockHospitals(ctx, a.ID, b.ID) })
		if err != nil {
			t.Errorf("lock hospitals: %v", err)
		}
	})
}

func TestDirectoryStoreDepartments(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewDirectory(db)
		h1 := dirTestHospital(t, st, 1, directory.Tertiary, "四川省", "")
		h2 := dirTestHospital(t, st, 2, directory.Secondary, "四川省", "苍溪县")
		now := sqldb.Now()
		mk := func(h directory.Hospital, code, name string) directory.Department {
			d := directory.Department{ID: dirTestID(), HospitalID: h.ID, Code: code, Name: name, Version: 1, CreatedAt: now, UpdatedAt: now}
			if err := st.CreateDepartment(ctx, d); err != nil {
				t.Fatalf("create department %s: %v", code, err)
			}
			return d
		}
		internal := mk(h1, "03", "内科")
		cardio := mk(h1, "03.04", "心血管内科")
		surgery := mk(h1, "04", "外科")
		other := mk(h2, "03", "内科") // the same code in another hospital is fine

		dup := directory.Department{ID: dirTestID(), HospitalID: h1.ID, Code: "03", Name: "又一个内科", Version: 1, CreatedAt: now, UpdatedAt: now}
		if err := st.CreateDepartment(ctx, dup); !errors.Is(err, apperr.ErrConflict) {
			t.Errorf("duplicate code in one hospital: got %v, want ErrConflict", err)
		}

		got, err := st.Department(ctx, cardio.ID)
		if err != nil || got != cardio {
			t.Errorf("round trip: got %+v, %v", got, err)
		}
		if _, err := st.Department(ctx, dirTestID()); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("unknown id: got %v", err)
		}

		depID := func(d directory.Department) string { return d.ID }
		page1, err := st.Departments(ctx, directory.DepartmentFilter{HospitalID: h1.ID, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		page2, err := st.Departments(ctx, directory.DepartmentFilter{HospitalID: h1.ID, After: page1[len(page1)-1].ID, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		if g, w := dirTestIDs(append(page1, page2...), depID), []string{internal.ID, cardio.ID, surgery.ID}; !slices.Equal(g, w) {
			t.Errorf("pages of h1: got %v, want %v", g, w)
		}
		only2, _ := st.Departments(ctx, directory.DepartmentFilter{HospitalID: h2.ID})
		if g := dirTestIDs(only2, depID); !slices.Equal(g, []string{other.ID}) {
			t.Errorf("h2 departments: got %v", g)
		}

		edit := surgery
		edit.Name, edit.UpdatedAt = "普通外科", sqldb.Now()
		upd, err := st.UpdateDepartment(ctx, edit)
		if err != nil || upd.Version != 2 || upd.Name != "普通外科" {
			t.Errorf("update: got %+v, %v", upd, err)
		}
		if _, err := st.UpdateDepartment(ctx, edit); !errors.Is(err, apperr.ErrStale) {
			t.Errorf("stale update: got %v", err)
		}
		clash := upd
		clash.Code = "03"
		if _, err := st.UpdateDepartment(ctx, clash); !errors.Is(err, apperr.ErrConflict) {
			t.Errorf("update to a taken code: got %v", err)
		}
	})
}

func TestDirectoryStoreStaff(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewDirectory(db)
		h1 := dirTestHospital(t, st, 1, directory.Tertiary, "四川省", "")
		h2 := dirTestHospital(t, st, 2, directory.Secondary, "四川省", "苍溪县")
		now := sqldb.Now()
		dep := directory.Department{ID: dirTestID(), HospitalID: h1.ID, Code: "03", Name: "内科", Version: 1, CreatedAt: now, UpdatedAt: now}
		if err := st.CreateDepartment(ctx, dep); err != nil {
			t.Fatal(err)
		}
		mk := func(h directory.Hospital, depID *string, name string, title directory.Title, active bool) directory.Staff {
			s := directory.Staff{ID: dirTestID(), HospitalID: h.ID, DepartmentID: depID, Name: name, Title: title,
				TitleLabel: title.Label(), Phone: "0839-5222222", Active: active, Version: 1, CreatedAt: now, UpdatedAt: now}
			if err := st.CreateStaff(ctx, s); err != nil {
				t.Fatalf("create staff: %v", err)
			}
			return s
		}
		zhang := mk(h1, &dep.ID, "张医生", "chief_physician", true)
		li := mk(h1, nil, "李护士", "nurse", false)
		wang := mk(h2, nil, "王医生", "attending_physician", true)
		zhao := mk(h2, nil, "赵医生", "chief_physician", true)

		got, err := st.StaffMember(ctx, zhang.ID)
		if err != nil || got.DepartmentID == nil || *got.DepartmentID != dep.ID || got.TitleLabel != "主任医师" || !got.Active {
			t.Errorf("round trip with department: got %+v, %v", got, err)
		}
		got, err = st.StaffMember(ctx, li.ID)
		if err != nil || got.DepartmentID != nil || got.Active {
			t.Errorf("round trip without department, inactive: got %+v, %v", got, err)
		}
		if _, err := st.StaffMember(ctx, dirTestID()); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("unknown id: got %v", err)
		}

		staffID := func(s directory.Staff) string { return s.ID }
		for _, tc := range []struct {
			name string
			f    directory.StaffFilter
			want []directory.Staff
		}{
			{"all", directory.StaffFilter{}, []directory.Staff{zhang, li, wang, zhao}},
			{"hospital", directory.StaffFilter{HospitalID: h2.ID}, []directory.Staff{wang, zhao}},
			{"department", directory.StaffFilter{DepartmentID: dep.ID}, []directory.Staff{zhang}},
			{"title", directory.StaffFilter{Title: "chief_physician"}, []directory.Staff{zhang, zhao}},
			{"scoped", directory.StaffFilter{Scoped: true, Within: []string{h1.ID}}, []directory.Staff{zhang, li}},
			{"scoped and hospital outside", directory.StaffFilter{Scoped: true, Within: []string{h1.ID}, HospitalID: h2.ID}, nil},
			{"paged", directory.StaffFilter{After: li.ID, Limit: 1}, []directory.Staff{wang}},
		} {
			got, err := st.Staff(ctx, tc.f)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if g, w := dirTestIDs(got, staffID), dirTestIDs(tc.want, staffID); !slices.Equal(g, w) {
				t.Errorf("%s: got %v, want %v", tc.name, g, w)
			}
		}

		edit := zhang
		edit.DepartmentID, edit.Title, edit.Active, edit.UpdatedAt = nil, "associate_chief_physician", false, sqldb.Now()
		upd, err := st.UpdateStaff(ctx, edit)
		if err != nil || upd.Version != 2 || upd.DepartmentID != nil || upd.Title != "associate_chief_physician" || upd.Active {
			t.Errorf("update: got %+v, %v", upd, err)
		}
		if _, err := st.UpdateStaff(ctx, edit); !errors.Is(err, apperr.ErrStale) {
			t.Errorf("stale update: got %v", err)
		}
	})
}

func TestDirectoryStorePairings(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewDirectory(db)
		tert := dirTestHospital(t, st, 1, directory.Tertiary, "四川省", "")
		county := dirTestHospital(t, st, 2, directory.Secondary, "四川省", "苍溪县")
		town := dirTestHospital(t, st, 3, directory.Township, "四川省", "苍溪县")
		now := sqldb.Now()
		end := "2026-12-31"
		mk := func(sup, rec directory.Hospital, starts string, ends *string, status directory.PairingStatus) directory.Pairing {
			p := directory.Pairing{ID: dirTestID(), SupportingHospitalID: sup.ID, RecipientHospitalID: rec.ID,
				StartsOn: starts, EndsOn: ends, Status: status, Version: 1, CreatedAt: now, UpdatedAt: now}
			if err := st.CreatePairing(ctx, p); err != nil {
				t.Fatalf("create pairing: %v", err)
			}
			return p
		}
		p1 := mk(tert, county, "2024-01-01", &end, directory.PairingActive)
		p2 := mk(county, town, "2025-03-01", nil, directory.PairingActive)
		p3 := mk(tert, town, "2023-01-01", nil, directory.PairingSuspended)

		got, err := st.Pairing(ctx, p1.ID)
		if err != nil || got.StartsOn != "2024-01-01" || got.EndsOn == nil || *got.EndsOn != end || got.Status != directory.PairingActive {
			t.Errorf("round trip with end: got %+v, %v", got, err)
		}
		got, err = st.Pairing(ctx, p2.ID)
		if err != nil || got.StartsOn != "2025-03-01" || got.EndsOn != nil {
			t.Errorf("round trip open-ended: got %+v, %v", got, err)
		}
		if _, err := st.Pairing(ctx, dirTestID()); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("unknown id: got %v", err)
		}

		same := p1
		same.ID = dirTestID()
		if err := st.CreatePairing(ctx, same); !errors.Is(err, apperr.ErrConflict) {
			t.Errorf("same pair, same start: got %v, want ErrConflict", err)
		}

		pairID := func(p directory.Pairing) string { return p.ID }
		for _, tc := range []struct {
			name string
			f    directory.PairingFilter
			want []directory.Pairing
		}{
			{"all", directory.PairingFilter{}, []directory.Pairing{p1, p2, p3}},
			{"hospital as supporter or recipient", directory.PairingFilter{HospitalID: county.ID}, []directory.Pairing{p1, p2}},
			{"status", directory.PairingFilter{Status: directory.PairingSuspended}, []directory.Pairing{p3}},
			{"scoped needs both sides", directory.PairingFilter{Scoped: true, Within: []string{tert.ID, county.ID}}, []directory.Pairing{p1}},
			{"paged", directory.PairingFilter{After: p1.ID, Limit: 1}, []directory.Pairing{p2}},
		} {
			got, err := st.Pairings(ctx, tc.f)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if g, w := dirTestIDs(got, pairID), dirTestIDs(tc.want, pairID); !slices.Equal(g, w) {
				t.Errorf("%s: got %v, want %v", tc.name, g, w)
			}
		}

		of, err := st.PairingsOf(ctx, town.ID)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := dirTestIDs(of, pairID), []string{p2.ID, p3.ID}; !slices.Equal(g, w) {
			t.Errorf("pairings of the township hospital: got %v, want %v", g, w)
		}

		edit := p2
		ends := "2027-02-28"
		edit.EndsOn, edit.Status, edit.UpdatedAt = &ends, directory.PairingEnded, sqldb.Now()
		upd, err := st.UpdatePairing(ctx, edit)
		if err != nil || upd.Version != 2 || upd.EndsOn == nil || *upd.EndsOn != ends || upd.Status != directory.PairingEnded {
			t.Errorf("update: got %+v, %v", upd, err)
		}
		if _, err := st.UpdatePairing(ctx, edit); !errors.Is(err, apperr.ErrStale) {
			t.Errorf("stale update: got %v", err)
		}
	})
}
