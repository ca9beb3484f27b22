package patient_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
	"duikou/internal/patient"
	"duikou/internal/secret"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
)

// tableRecorder writes audit entries into audit_log with the caller's ctx,
// so that they commit or roll back with the change, as the real log does.
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

type fixture struct {
	t        *testing.T
	db       sqldb.DB
	rec      *tableRecorder
	svc      *patient.Service
	box      *secret.Box
	tert     string
	county   string
	foreign  string
	doctor   auth.Principal // county doctor, paired with tert
	outsider auth.Principal // doctor of the unrelated hospital
}

func newFixture(t *testing.T, db sqldb.DB) *fixture {
	ctx := context.Background()
	dirs := store.NewDirectory(db)
	f := &fixture{t: t, db: db, rec: &tableRecorder{db: db}}
	box, err := secret.New(bytes.Repeat([]byte{7}, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	f.box = box
	f.svc = patient.NewService(db, store.NewPatients(db), box, f.rec)
	mk := func(n int, tier directory.Tier) string {
		now := sqldb.Now()
		h := directory.Hospital{ID: uuid.Must(uuid.NewV7()).String(), Name: fmt.Sprintf("医院%d", n),
			OrgCode: fmt.Sprintf("12510000%010d", n), Tier: tier, Province: "四川省",
			TimeZone: directory.DefaultTimeZone, Version: 1, CreatedAt: now, UpdatedAt: now}
		if err := dirs.CreateHospital(ctx, h); err != nil {
			t.Fatal(err)
		}
		return h.ID
	}
	f.tert, f.county, f.foreign = mk(1, directory.Tertiary), mk(2, directory.Secondary), mk(3, directory.Secondary)
	f.doctor = f.user(f.county, map[string]bool{f.county: true, f.tert: true}, auth.CountyDoctor)
	f.outsider = f.user(f.foreign, map[string]bool{f.foreign: true}, auth.CountyDoctor)
	return f
}

func (f *fixture) user(hospital string, reach map[string]bool, roles ...auth.Role) auth.Principal {
	f.t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	now := sqldb.Now()
	if _, err := f.db.Exec(context.Background(), `INSERT INTO users (id, username, display_name, hospital_id, password_hash,
		created_at, updated_at) VALUES ($1, $2, $2, $3, 'x', $4, $4)`, id, "user-"+id, hospital, now); err != nil {
		f.t.Fatal(err)
	}
	return auth.Principal{UserID: id, HospitalID: hospital, Roles: roles, Reach: reach}
}

// audited lists "action patient_id outcome detail" of audit rows after skip.
func (f *fixture) audited(skip int) []string {
	f.t.Helper()
	rows, err := f.db.Query(context.Background(), `SELECT action, patient_id, outcome, detail FROM audit_log ORDER BY seq`)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a, p, o, d string
		if err := rows.Scan(&a, &p, &o, &d); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, strings.Join(strings.Fields(a+" "+p+" "+o+" "+d), " "))
	}
	return out[min(skip, len(out)):]
}

func (f *fixture) auditCount() int { return len(f.audited(0)) }

func fieldsOf(err error) []string {
	var inv apperr.Invalid
	if !errors.As(err, &inv) {
		return nil
	}
	var out []string
	for _, fe := range inv {
		out = append(out, fe.Field)
	}
	return out
}

func TestPatientDataIsForClinicalRolesOnly(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		pt, err := f.svc.Create(ctx, f.doctor, patient.PatientInput{Name: "王秀英", Sex: "female", BirthDate: "1968-05-21"})
		if err != nil {
			t.Fatal(err)
		}
		for _, role := range []auth.Role{auth.Admin, auth.ProgramOffice, auth.Auditor} {
			p := f.user(f.county, map[string]bool{f.county: true}, role)
			if _, err := f.svc.Get(ctx, p, pt.ID); !errors.Is(err, apperr.ErrForbidden) {
				t.Errorf("%s reads a patient: %v", role, err)
			}
			if _, err := f.svc.List(ctx, p, patient.Query{Limit: 10}); !errors.Is(err, apperr.ErrForbidden) {
				t.Errorf("%s lists patients: %v", role, err)
			}
			if _, err := f.svc.Create(ctx, p, patient.PatientInput{Name: "x", Sex: "male", BirthDate: "1990-01-01"}); !errors.Is(err, apperr.ErrForbidden) {
				t.Errorf("%s registers a patient: %v", role, err)
			}
			if _, err := f.svc.Consents(ctx, p, pt.ID, "", 10); !errors.Is(err, apperr.ErrForbidden) {
				t.Errorf("%s reads consents: %v", role, err)
			}
		}
		for _, role := range auth.ClinicalRoles {
			p := f.user(f.county, map[string]bool{f.county: true}, role)
			if _, err := f.svc.Get(ctx, p, pt.ID); err != nil {
				t.Errorf("%s reads a patient of its hospital: %v", role, err)
			}
		}
	})
}

func TestPatientNationalID(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		pt, err := f.svc.Create(ctx, f.doctor, patient.PatientInput{Name: "王秀英", Sex: "female", NationalID: "11010519491231002x"})
		if err != nil {
			t.Fatal(err)
		}
		if pt.BirthDate != "1949-12-31" || pt.NationalIDMasked != "1101**********002X" || pt.HomeHospitalID != f.county {
			t.Errorf("birth date from the ID, masked ID, home defaults to the caller's: %+v", pt)
		}
		if _, err := f.svc.Create(ctx, f.doctor, patient.PatientInput{Name: "重复", Sex: "female", NationalID: "11010519491231002X"}); !errors.Is(err, apperr.ErrConflict) {
			t.Errorf("the same ID again: %v, want ErrConflict", err)
		}
		_, err = f.svc.Create(ctx, f.doctor, patient.PatientInput{Name: "李明", Sex: "male", BirthDate: "1990-03-08", NationalID: "510824199003071230"})
		if got := fieldsOf(err); !slices.Equal(got, []string{"birth_date"}) {
			t.Errorf("birth date not matching the ID: %v", err)
		}
		_, err = f.svc.Create(ctx, f.doctor, patient.PatientInput{Name: "李明", Sex: "male"})
		if got := fieldsOf(err); !slices.Equal(got, []string{"birth_date"}) {
			t.Errorf("neither birth date nor ID: %v", err)
		}

		// Found by exact number, in any spelling of the check character.
		found, err := f.svc.SearchByNationalID(ctx, f.doctor, patient.SearchInput{NationalID: " 11010519491231002x"})
		if err != nil || len(found) != 1 || found[0].ID != pt.ID {
			t.Errorf("search: %v, %v", found, err)
		}
		skip := f.auditCount()
		found, err = f.svc.SearchByNationalID(ctx, f.outsider, patient.SearchInput{NationalID: "11010519491231002X"})
		if err != nil || len(found) != 0 {
			t.Errorf("search from an unrelated hospital: %v, %v", found, err)
		}
		if got := f.audited(skip); len(got) != 1 || !strings.HasPrefix(got[0], "access.denied "+pt.ID+" denied") {
			t.Errorf("search beyond reach is recorded as denied: %v", got)
		}
		if _, err := f.svc.SearchByNationalID(ctx, f.doctor, patient.SearchInput{NationalID: "110105194912310021"}); !slices.Equal(fieldsOf(err), []string{"national_id"}) {
			t.Errorf("search with a bad check digit: %v", err)
		}

		// Change the ID: the birth date must follow.
		newID := "510824199003071230"
		if _, err := f.svc.Update(ctx, f.doctor, pt.ID, 1, patient.PatientPatch{NationalID: &newID}); !slices.Equal(fieldsOf(err), []string{"national_id"}) {
			t.Errorf("new ID with another birth date: %v", err)
		}
		birth := "1990-03-07"
		upd, err := f.svc.Update(ctx, f.doctor, pt.ID, 1, patient.PatientPatch{NationalID: &newID, BirthDate: &birth})
		if err != nil || upd.NationalIDMasked != "5108**********1230" || upd.Version != 2 {
			t.Fatalf("change ID and birth date: %+v, %v", upd, err)
		}
		wrongBirth := "1990-03-08"
		if _, err := f.svc.Update(ctx, f.doctor, pt.ID, 2, patient.PatientPatch{BirthDate: &wrongBirth}); !slices.Equal(fieldsOf(err), []string{"birth_date"}) {
			t.Errorf("birth date against the stored ID: %v", err)
		}
		if _, err := f.svc.Update(ctx, f.doctor, pt.ID, 1, patient.PatientPatch{BirthDate: &birth}); !errors.Is(err, apperr.ErrStale) {
			t.Errorf("update at an old version: %v", err)
		}
		none := ""
		upd, err = f.svc.Update(ctx, f.doctor, pt.ID, 2, patient.PatientPatch{NationalID: &none, BirthDate: &wrongBirth})
		if err != nil || upd.NationalIDMasked != "" {
			t.Errorf("remove the ID: %+v, %v", upd, err)
		}
		// The old number is free again.
		if _, err := f.svc.Create(ctx, f.doctor, patient.PatientInput{Name: "李明", Sex: "male", NationalID: newID}); err != nil {
			t.Errorf("register the freed number: %v", err)
		}
	})
}

func TestPatientScopeAndAudit(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		specialist := f.user(f.tert, map[string]bool{f.tert: true, f.county: true}, auth.Specialist)

		atTert, err := f.svc.Create(ctx, f.doctor, patient.PatientInput{Name: "张伟", Sex: "male", BirthDate: "1970-01-01", HomeHospitalID: f.tert})
		if err != nil || atTert.HomeHospitalID != f.tert {
			t.Fatalf("register at the paired hospital: %+v, %v", atTert, err)
		}
		_, err = f.svc.Create(ctx, f.doctor, patient.PatientInput{Name: "张伟", Sex: "male", BirthDate: "1970-01-01", HomeHospitalID: f.foreign})
		if !slices.Equal(fieldsOf(err), []string{"home_hospital_id"}) {
			t.Errorf("register at an unrelated hospital: %v", err)
		}
		local, _ := f.svc.Create(ctx, f.doctor, patient.PatientInput{Name: "张丽", Sex: "female", BirthDate: "1980-01-01"})
		far, _ := f.svc.Create(ctx, f.outsider, patient.PatientInput{Name: "张强", Sex: "male", BirthDate: "1980-01-01"})

		skip := f.auditCount()
		if _, err := f.svc.Get(ctx, specialist, local.ID); err != nil {
			t.Errorf("specialist of the paired hospital reads: %v", err)
		}
		if _, err := f.svc.Get(ctx, f.doctor, far.ID); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("patient of an unrelated hospital: %v", err)
		}
		foreignHome := f.foreign
		if _, err := f.svc.Update(ctx, f.doctor, local.ID, 1, patient.PatientPatch{HomeHospitalID: &foreignHome}); !slices.Equal(fieldsOf(err), []string{"home_hospital_id"}) {
			t.Errorf("move a patient beyond reach: %v", err)
		}
		want := []string{
			"patient.read " + local.ID + " success",
			"access.denied " + far.ID + " denied home hospital outside the caller's reach",
		}
		if got := f.audited(skip); !slices.Equal(got, want) {
			t.Errorf("audit:\n got %q\nwant %q", got, want)
		}

		// A list writes one row per patient shown; the look-ahead row is not shown.
		skip = f.auditCount()
		list, err := f.svc.List(ctx, f.doctor, patient.Query{Q: "张", Limit: 1})
		if err != nil || len(list) != 2 {
			t.Fatalf("list one page of one: %d, %v", len(list), err)
		}
		if got := f.audited(skip); !slices.Equal(got, []string{"patient.search " + list[0].ID + " success list"}) {
			t.Errorf("list audit: %q", got)
		}
		list, _ = f.svc.List(ctx, f.doctor, patient.Query{Q: "张", Limit: 10})
		if len(list) != 2 {
			t.Errorf("doctor's list has %d patients, want its own and the paired hospital's", len(list))
		}
		skip = f.auditCount()
		list, _ = f.svc.List(ctx, f.doctor, patient.Query{Q: "欧阳", Limit: 10})
		if got := f.audited(skip); len(list) != 0 || !slices.Equal(got, []string{"patient.search success list: no match"}) {
			t.Errorf("empty search is recorded: %q", got)
		}

		// No read without its audit row.
		f.rec.fail = errors.New("audit log down")
		if _, err := f.svc.Get(ctx, f.doctor, local.ID); err == nil {
			t.Error("a patient was read although its audit row could not be written")
		}
		before := count(t, db, "patients")
		if _, err := f.svc.Create(ctx, f.doctor, patient.PatientInput{Name: "赵六", Sex: "male", BirthDate: "1990-01-01"}); err == nil {
			t.Error("a patient was registered without its audit row")
		}
		if n := count(t, db, "patients"); n != before {
			t.Errorf("patients %d → %d after a failed audit write", before, n)
		}
		f.rec.fail = nil
	})
}

func count(t *testing.T, db sqldb.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestConsents(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		pt, err := f.svc.Create(ctx, f.doctor, patient.PatientInput{Name: "王秀英", Sex: "female", BirthDate: "1968-05-21"})
		if err != nil {
			t.Fatal(err)
		}
		other, _ := f.svc.Create(ctx, f.doctor, patient.PatientInput{Name: "李明", Sex: "male", BirthDate: "1990-01-01"})

		for _, tc := range []struct {
			name   string
			in     patient.ConsentInput
			fields []string
		}{
			{"nothing", patient.ConsentInput{}, []string{"consenter_kind", "consenter_name", "purpose"}},
			{"guardian without relationship", patient.ConsentInput{ConsenterKind: "guardian", ConsenterName: "王建国", Purpose: "referral"}, []string{"relationship"}},
			{"data sharing without hospital", patient.ConsentInput{ConsenterKind: "patient", ConsenterName: "王秀英", Purpose: "data_sharing"}, []string{"shared_with_hospital_id"}},
			{"data sharing with an unreachable hospital", patient.ConsentInput{ConsenterKind: "patient", ConsenterName: "王秀英", Purpose: "data_sharing", SharedWithHospitalID: f.foreign}, []string{"shared_with_hospital_id"}},
			{"hospital on a referral consent", patient.ConsentInput{ConsenterKind: "patient", ConsenterName: "王秀英", Purpose: "referral", SharedWithHospitalID: f.tert}, []string{"shared_with_hospital_id"}},
			{"unknown purpose", patient.ConsentInput{ConsenterKind: "patient", ConsenterName: "王秀英", Purpose: "research"}, []string{"purpose"}},
			{"granted in the future", patient.ConsentInput{ConsenterKind: "patient", ConsenterName: "王秀英", Purpose: "referral", GrantedAt: time.Now().Add(time.Hour).Format(time.RFC3339)}, []string{"granted_at"}},
			{"granted at a malformed time", patient.ConsentInput{ConsenterKind: "patient", ConsenterName: "王秀英", Purpose: "referral", GrantedAt: "yesterday"}, []string{"granted_at"}},
		} {
			_, err := f.svc.RecordConsent(ctx, f.doctor, pt.ID, tc.in)
			if got := fieldsOf(err); !slices.Equal(got, tc.fields) {
				t.Errorf("%s: fields %v (%v), want %v", tc.name, got, err, tc.fields)
			}
		}
		if n := count(t, db, "consents"); n != 0 {
			t.Fatalf("refused consents were written: %d", n)
		}

		sharing, err := f.svc.RecordConsent(ctx, f.doctor, pt.ID, patient.ConsentInput{ConsenterKind: "guardian", ConsenterName: "王建国",
			Relationship: "儿子", Purpose: "data_sharing", SharedWithHospitalID: f.tert, GrantedAt: "2025-03-01T09:30:00+08:00"})
		if err != nil || !sharing.GrantedAt.Equal(time.Date(2025, 3, 1, 1, 30, 0, 0, time.UTC)) {
			t.Fatalf("record sharing consent: %+v, %v", sharing, err)
		}
		referral, err := f.svc.RecordConsent(ctx, f.doctor, pt.ID, patient.ConsentInput{ConsenterKind: "patient", ConsenterName: "王秀英", Purpose: "referral"})
		if err != nil {
			t.Fatal(err)
		}

		check := func(label, patientID, purpose, hospital string, want bool) {
			t.Helper()
			got, err := f.svc.HasConsent(ctx, patientID, purpose, hospital)
			if err != nil || got != want {
				t.Errorf("%s: HasConsent = %v, %v; want %v", label, got, err, want)
			}
		}
		check("data sharing with the named hospital", pt.ID, "data_sharing", f.tert, true)
		check("data sharing with another hospital", pt.ID, "data_sharing", f.foreign, false)
		check("referral", pt.ID, "referral", "", true)
		check("remote consultation never given", pt.ID, "remote_consultation", "", false)
		check("another patient", other.ID, "referral", "", false)
		if _, err := f.svc.HasConsent(ctx, pt.ID, "research", ""); err == nil {
			t.Error("unknown purpose accepted")
		}

		if _, err := f.svc.WithdrawConsent(ctx, f.doctor, pt.ID, referral.ID, patient.WithdrawInput{Reason: " "}); !slices.Equal(fieldsOf(err), []string{"reason"}) {
			t.Errorf("withdraw without a reason: %v", err)
		}
		if _, err := f.svc.WithdrawConsent(ctx, f.doctor, other.ID, referral.ID, patient.WithdrawInput{Reason: "x"}); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("withdraw through another patient: %v", err)
		}
		w, err := f.svc.WithdrawConsent(ctx, f.doctor, pt.ID, referral.ID, patient.WithdrawInput{Reason: "患者改变主意"})
		if err != nil || w.Active || w.WithdrawReason != "患者改变主意" || *w.WithdrawnBy != f.doctor.UserID {
			t.Fatalf("withdraw: %+v, %v", w, err)
		}
		if _, err := f.svc.WithdrawConsent(ctx, f.doctor, pt.ID, referral.ID, patient.WithdrawInput{Reason: "again"}); !errors.Is(err, apperr.ErrConflict) {
			t.Errorf("withdraw twice: %v", err)
		}
		check("withdrawn referral", pt.ID, "referral", "", false)

		if _, err := f.svc.Consents(ctx, f.outsider, pt.ID, "", 10); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("consents of a patient beyond reach: %v", err)
		}
		skip := f.auditCount()
		list, err := f.svc.Consents(ctx, f.doctor, pt.ID, "", 10)
		if err != nil || len(list) != 2 {
			t.Errorf("consents: %d, %v", len(list), err)
		}
		if got := f.audited(skip); !slices.Equal(got, []string{"consent.read " + pt.ID + " success"}) {
			t.Errorf("consent list audit: %q", got)
		}
		var actions []string
		for _, row := range f.audited(0) {
			if strings.HasPrefix(row, "consent.") {
				actions = append(actions, strings.Fields(row)[0])
			}
		}
		if want := []string{"consent.record", "consent.record", "consent.withdraw", "consent.read"}; !slices.Equal(actions, want) {
			t.Errorf("consent audit trail: %v, want %v", actions, want)
		}
	})
}
