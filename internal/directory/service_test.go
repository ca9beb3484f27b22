package directory_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/directory"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
)

// tableRecorder writes audit entries into audit_log with the caller's ctx, so
// that they commit or roll back with the change they record, as the real log
// does. The hash chain is not this test's concern.
type tableRecorder struct {
	db   sqldb.DB
	seq  atomic.Int64
	fail error
}

func (r *tableRecorder) Record(ctx context.Context, e audit.Entry) error {
	if r.fail != nil {
		return r.fail
	}
	_, err := r.db.Exec(ctx, `INSERT INTO audit_log (chain, chain_seq, at, actor_id, actor_hospital_id, action, resource_type,
		resource_id, patient_id, outcome, request_id, client_addr, detail, prev_hash, hash)
		VALUES (0, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)`,
		r.seq.Add(1), e.At, e.ActorID, e.ActorHospitalID, e.Action, e.ResourceType, e.ResourceID, e.PatientID,
		string(e.Outcome), e.RequestID, e.ClientAddr, e.Detail, []byte{0})
	return err
}

// auditRows lists "action resource_id outcome" for every audit row.
func auditRows(t *testing.T, db sqldb.DB) []string {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT action, resource_id, outcome FROM audit_log ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a, id, o string
		if err := rows.Scan(&a, &id, &o); err != nil {
			t.Fatal(err)
		}
		out = append(out, a+" "+id+" "+o)
	}
	return out
}

func count(t *testing.T, db sqldb.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

type fixture struct {
	db  sqldb.DB
	st  *store.Directory
	rec *tableRecorder
	svc *directory.Service
	n   int
}

func newFixture(t *testing.T, db sqldb.DB) *fixture {
	st := store.NewDirectory(db)
	rec := &tableRecorder{db: db}
	return &fixture{db: db, st: st, rec: rec, svc: directory.NewService(db, st, rec)}
}

// hospital inserts a hospital directly through the store.
func (f *fixture) hospital(t *testing.T, tier directory.Tier, province string) directory.Hospital {
	t.Helper()
	f.n++
	now := sqldb.Now()
	h := directory.Hospital{ID: uuid.Must(uuid.NewV7()).String(), Name: fmt.Sprintf("医院%d", f.n),
		OrgCode: fmt.Sprintf("12510000%010d", f.n), Tier: tier, Province: province,
		TimeZone: directory.DefaultTimeZone, Version: 1, CreatedAt: now, UpdatedAt: now}
	if err := f.st.CreateHospital(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	return h
}

// pairing inserts a pairing directly, dates relative to today in China.
func (f *fixture) pairing(t *testing.T, sup, rec directory.Hospital, startDays int, endDays *int, status directory.PairingStatus) directory.Pairing {
	t.Helper()
	now := sqldb.Now()
	p := directory.Pairing{ID: uuid.Must(uuid.NewV7()).String(), SupportingHospitalID: sup.ID, RecipientHospitalID: rec.ID,
		StartsOn: day(startDays), Status: status, Version: 1, CreatedAt: now, UpdatedAt: now}
	if endDays != nil {
		e := day(*endDays)
		p.EndsOn = &e
	}
	if err := f.st.CreatePairing(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

func day(offset int) string {
	loc, _ := time.LoadLocation(directory.DefaultTimeZone)
	return time.Now().In(loc).AddDate(0, 0, offset).Format(time.DateOnly)
}

func days(n int) *int { return &n }

func TestReach(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		tert := f.hospital(t, directory.Tertiary, "四川省")
		county := f.hospital(t, directory.Secondary, "四川省")
		town := f.hospital(t, directory.Township, "四川省")
		suspended := f.hospital(t, directory.Secondary, "四川省")
		ended := f.hospital(t, directory.Secondary, "四川省")
		future := f.hospital(t, directory.Secondary, "四川省")
		expired := f.hospital(t, directory.Secondary, "四川省")
		elsewhere := f.hospital(t, directory.Secondary, "贵州省")
		commission := f.hospital(t, directory.Authority, "四川省")

		f.pairing(t, tert, county, -100, nil, directory.PairingActive)
		f.pairing(t, county, town, -10, days(10), directory.PairingActive)
		f.pairing(t, tert, suspended, -100, nil, directory.PairingSuspended)
		f.pairing(t, tert, ended, -100, days(-50), directory.PairingEnded)
		f.pairing(t, tert, future, 10, nil, directory.PairingActive)
		f.pairing(t, tert, expired, -100, days(-5), directory.PairingActive)

		sichuan := []directory.Hospital{tert, county, town, suspended, ended, future, expired, commission}
		for _, tc := range []struct {
			name string
			of   directory.Hospital
			want []directory.Hospital
		}{
			{"supporting side sees its active recipient, not its recipient's recipient", tert, []directory.Hospital{tert, county}},
			{"a hospital paired on both sides sees both partners", county, []directory.Hospital{county, tert, town}},
			{"recipient sees its supporter", town, []directory.Hospital{town, county}},
			{"suspended pairing opens nothing", suspended, []directory.Hospital{suspended}},
			{"ended pairing opens nothing", ended, []directory.Hospital{ended}},
			{"pairing that has not started opens nothing", future, []directory.Hospital{future}},
			{"active pairing past its end date opens nothing", expired, []directory.Hospital{expired}},
			{"unpaired hospital sees only itself", elsewhere, []directory.Hospital{elsewhere}},
			{"health authority sees every hospital of its province", commission, sichuan},
		} {
			got, err := f.svc.Reach(ctx, tc.of.ID)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			want := map[string]bool{}
			for _, h := range tc.want {
				want[h.ID] = true
			}
			if !maps.Equal(got, want) {
				t.Errorf("%s: got %d hospitals %v, want %d %v", tc.name, len(got), slices.Sorted(maps.Keys(got)), len(want), slices.Sorted(maps.Keys(want)))
			}
		}
		if _, err := f.svc.Reach(ctx, uuid.Must(uuid.NewV7()).String()); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("unknown hospital: got %v, want ErrNotFound", err)
		}
	})
}

func principal(h directory.Hospital, reach map[string]bool, roles ...auth.Role) auth.Principal {
	return auth.Principal{UserID: uuid.Must(uuid.NewV7()).String(), HospitalID: h.ID, Roles: roles, Reach: reach}
}

func TestDirectoryReadsAreScoped(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		tert := f.hospital(t, directory.Tertiary, "四川省")
		county := f.hospital(t, directory.Secondary, "四川省")
		other := f.hospital(t, directory.Secondary, "贵州省")
		pr := f.pairing(t, tert, county, -1, nil, directory.PairingActive)
		otherPair := f.pairing(t, tert, other, -1, nil, directory.PairingActive)

		doctor := principal(county, map[string]bool{county.ID: true, tert.ID: true}, auth.CountyDoctor)
		if _, err := f.svc.Hospital(ctx, doctor, tert.ID); err != nil {
			t.Errorf("paired hospital: %v", err)
		}
		before := len(auditRows(t, db))
		if _, err := f.svc.Hospital(ctx, doctor, other.ID); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("unreachable hospital: got %v, want ErrNotFound", err)
		}
		if rows := auditRows(t, db)[before:]; !slices.Equal(rows, []string{"access.denied " + other.ID + " denied"}) {
			t.Errorf("denied read audit: got %v", rows)
		}
		list, err := f.svc.Hospitals(ctx, doctor, directory.HospitalQuery{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 {
			t.Errorf("doctor lists %d hospitals, want its own and the paired one", len(list))
		}
		pairs, err := f.svc.Pairings(ctx, doctor, directory.PairingQuery{Limit: 10})
		if err != nil || len(pairs) != 1 || pairs[0].ID != pr.ID {
			t.Errorf("doctor sees pairings %v, %v; want only its own", pairs, err)
		}
		if _, err := f.svc.Pairing(ctx, doctor, otherPair.ID); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("pairing of the supporter with an unreachable hospital: got %v, want ErrNotFound", err)
		}

		for _, role := range []auth.Role{auth.Admin, auth.ProgramOffice, auth.Auditor} {
			p := principal(county, nil, role)
			list, err := f.svc.Hospitals(ctx, p, directory.HospitalQuery{Limit: 10})
			if err != nil || len(list) != 3 {
				t.Errorf("%s lists %d hospitals (%v), want all 3", role, len(list), err)
			}
			if _, err := f.svc.Hospital(ctx, p, other.ID); err != nil {
				t.Errorf("%s reads any hospital: %v", role, err)
			}
		}
	})
}

func TestDirectoryChanges(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		home := f.hospital(t, directory.Tertiary, "四川省")
		admin := principal(home, nil, auth.Admin)
		office := principal(home, nil, auth.ProgramOffice)
		doctor := principal(home, nil, auth.Specialist)

		in := directory.HospitalInput{Name: "苍溪县人民医院", OrgCode: "12510824452000000X", Tier: "secondary", Province: "四川省", County: "苍溪县"}
		for _, p := range []auth.Principal{office, doctor} {
			if _, err := f.svc.CreateHospital(ctx, p, in); !errors.Is(err, apperr.ErrForbidden) {
				t.Errorf("%v creates a hospital: got %v, want ErrForbidden", p.Roles, err)
			}
		}
		county, err := f.svc.CreateHospital(ctx, admin, in)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.CreateHospital(ctx, admin, in); !errors.Is(err, apperr.ErrConflict) {
			t.Errorf("same org code again: got %v, want ErrConflict", err)
		}

		// A failing audit write undoes the change it would have recorded.
		f.rec.fail = errors.New("audit log unavailable")
		before := count(t, db, "hospitals")
		in2 := in
		in2.OrgCode = "12510824452000001X"
		if _, err := f.svc.CreateHospital(ctx, admin, in2); err == nil {
			t.Error("create succeeded without its audit row")
		}
		if n := count(t, db, "hospitals"); n != before {
			t.Errorf("hospitals %d → %d after a failed audit write", before, n)
		}
		f.rec.fail = nil

		name := "苍溪县第一人民医院"
		upd, err := f.svc.UpdateHospital(ctx, admin, county.ID, county.Version, directory.HospitalPatch{Name: &name})
		if err != nil || upd.Version != 2 || upd.Name != name {
			t.Fatalf("update: %+v, %v", upd, err)
		}
		if _, err := f.svc.UpdateHospital(ctx, admin, county.ID, 1, directory.HospitalPatch{Name: &name}); !errors.Is(err, apperr.ErrStale) {
			t.Errorf("update at an old version: got %v, want ErrStale", err)
		}

		// A hospital's program office pairs only hospitals it can reach; the
		// refusal is a recorded not-found, like any read beyond reach.
		pairCounty := directory.PairingInput{SupportingHospitalID: home.ID, RecipientHospitalID: county.ID, StartsOn: "2024-01-01"}
		skip := len(auditRows(t, db))
		if _, err := f.svc.CreatePairing(ctx, office, pairCounty); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("program office pairs a hospital beyond its reach: got %v, want ErrNotFound", err)
		}
		if rows := auditRows(t, db)[skip:]; len(rows) != 1 || !strings.HasPrefix(rows[0], "access.denied") {
			t.Errorf("refused pairing audit: %v", rows)
		}
		office.Reach = map[string]bool{home.ID: true, county.ID: true}
		pr, err := f.svc.CreatePairing(ctx, office, pairCounty)
		if err != nil {
			t.Fatalf("program office pairs: %v", err)
		}
		township := "township"
		if _, err := f.svc.UpdateHospital(ctx, admin, home.ID, home.Version, directory.HospitalPatch{Tier: &township}); !errors.Is(err, apperr.ErrConflict) {
			t.Errorf("tier change that breaks an open pairing: got %v, want ErrConflict", err)
		}
		if _, err := f.svc.CreatePairing(ctx, doctor, directory.PairingInput{
			SupportingHospitalID: home.ID, RecipientHospitalID: county.ID, StartsOn: "2030-01-01"}); !errors.Is(err, apperr.ErrForbidden) {
			t.Errorf("doctor pairs: got %v, want ErrForbidden", err)
		}
		ended := "ended"
		pr, err = f.svc.UpdatePairing(ctx, office, pr.ID, pr.Version, directory.PairingPatch{Status: &ended})
		if err != nil || pr.Status != directory.PairingEnded || pr.EndsOn == nil {
			t.Fatalf("end a pairing: %+v, %v", pr, err)
		}
		active := "active"
		if _, err := f.svc.UpdatePairing(ctx, office, pr.ID, pr.Version, directory.PairingPatch{Status: &active}); !errors.Is(err, apperr.ErrConflict) {
			t.Errorf("reopen an ended pairing: got %v, want ErrConflict", err)
		}

		got := auditRows(t, db)
		want := []string{
			"hospital.create " + county.ID + " success",
			"hospital.update " + county.ID + " success",
			"access.denied  denied",
			"pairing.create " + pr.ID + " success",
			"pairing.update " + pr.ID + " success",
		}
		if !slices.Equal(got, want) {
			t.Errorf("audit rows:\n got %v\nwant %v", got, want)
		}
	})
}

func TestPairingRules(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		tert := f.hospital(t, directory.Tertiary, "四川省")
		tert2 := f.hospital(t, directory.Tertiary, "四川省")
		county := f.hospital(t, directory.Secondary, "四川省")
		county2 := f.hospital(t, directory.Secondary, "四川省")
		town := f.hospital(t, directory.Township, "四川省")
		commission := f.hospital(t, directory.Authority, "四川省")
		province, err := f.svc.Reach(ctx, commission.ID)
		if err != nil {
			t.Fatal(err)
		}
		office := principal(commission, province, auth.ProgramOffice) // the health commission's office

		if _, err := f.svc.CreatePairing(ctx, office, directory.PairingInput{
			SupportingHospitalID: tert.ID, RecipientHospitalID: county.ID, StartsOn: "2024-01-01", EndsOn: "2026-12-31"}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name               string
			sup, rec           directory.Hospital
			starts, ends, stat string
			want               error // nil, apperr.ErrConflict, or a field name
			field              string
		}{
			{"tertiary supports township", tert, town, "2024-01-01", "", "", nil, ""},
			{"secondary supports township", county, town, "2024-01-01", "", "", nil, ""},
			{"a second supporter for the same recipient", tert2, county, "2024-06-01", "", "", nil, ""},
			{"secondary cannot support tertiary", county2, tert, "2024-01-01", "", "", nil, "recipient_hospital_id"},
			{"secondary cannot support secondary", county, county2, "2024-01-01", "", "", nil, "recipient_hospital_id"},
			{"township supports nobody", town, county2, "2024-01-01", "", "", nil, "recipient_hospital_id"},
			{"an authority is not a party", commission, county2, "2024-01-01", "", "", nil, "recipient_hospital_id"},
			{"overlapping active pairing of the same two", tert, county, "2026-06-01", "", "", apperr.ErrConflict, ""},
			{"an overlapping suspended one is fine", tert, county, "2026-07-01", "", "suspended", nil, ""},
			{"the next period after the first ends", tert, county, "2027-01-01", "", "", nil, ""},
		} {
			_, err := f.svc.CreatePairing(ctx, office, directory.PairingInput{SupportingHospitalID: tc.sup.ID,
				RecipientHospitalID: tc.rec.ID, StartsOn: tc.starts, EndsOn: tc.ends, Status: tc.stat})
			var inv apperr.Invalid
			switch {
			case tc.field != "":
				if !errors.As(err, &inv) || inv[0].Field != tc.field {
					t.Errorf("%s: got %v, want a %s field error", tc.name, err, tc.field)
				}
			case tc.want != nil:
				if !errors.Is(err, tc.want) {
					t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
				}
			case err != nil:
				t.Errorf("%s: refused: %v", tc.name, err)
			}
		}
	})
}

func TestStaffDepartmentMustBeOfTheSameHospital(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		h1 := f.hospital(t, directory.Tertiary, "四川省")
		h2 := f.hospital(t, directory.Secondary, "四川省")
		admin := principal(h1, nil, auth.Admin)
		dep, err := f.svc.CreateDepartment(ctx, admin, h1.ID, directory.DepartmentInput{Code: "03.04", Name: "心血管内科"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.CreateStaff(ctx, admin, directory.StaffInput{HospitalID: h2.ID, DepartmentID: dep.ID, Name: "王医生", Title: "attending_physician"})
		var inv apperr.Invalid
		if !errors.As(err, &inv) || inv[0].Field != "department_id" {
			t.Errorf("department of another hospital: got %v", err)
		}
		s, err := f.svc.CreateStaff(ctx, admin, directory.StaffInput{HospitalID: h1.ID, DepartmentID: dep.ID, Name: "王医生", Title: "attending_physician"})
		if err != nil || s.TitleLabel != "主治医师" {
			t.Fatalf("staff: %+v, %v", s, err)
		}
		detach := ""
		s, err = f.svc.UpdateStaff(ctx, admin, s.ID, s.Version, directory.StaffPatch{DepartmentID: &detach})
		if err != nil || s.DepartmentID != nil || s.Version != 2 {
			t.Errorf("detach from department: %+v, %v", s, err)
		}
	})
}
