package consults_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"duikou/consult"
	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/consults"
	"duikou/internal/directory"
	"duikou/internal/patient"
	"duikou/internal/referrals"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/referral"
)

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// world is the program these tests run in: a tertiary hospital paired with a
// county hospital, and a second county hospital paired with neither; the
// tertiary hospital has cardiology, neurology and imaging, each with a
// specialist on the roster.
type world struct {
	db       sqldb.DB
	st       *store.Consults
	patients *store.Patients
	svc      *consults.Service
	refs     *store.Referrals
	now      time.Time

	tertiary, county, otherCounty  string
	countyDept                     string
	cardio, neuro, imaging         string
	doctor, outsider, desk         auth.Principal // county doctor, other county's doctor, county referral desk
	cardiologist, neurologist, rad auth.Principal // tertiary specialists (cardiology, neurology, imaging)
	head                           auth.Principal // tertiary specialist who accepts requests for the department
	patient, unconsented           string         // county patients, with and without both consents
}

func newWorld(t *testing.T, db sqldb.DB) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{db: db, st: store.NewConsults(db), patients: store.NewPatients(db), refs: store.NewReferrals(db),
		now: sqldb.Now().Truncate(time.Second)}
	dir := store.NewDirectory(db)
	hospital := func(n int, tier directory.Tier) string {
		h := directory.Hospital{ID: newID(), Name: fmt.Sprintf("医院%d", n), OrgCode: fmt.Sprintf("12510000%010d", n),
			Tier: tier, Province: "四川省", County: "苍溪县", TimeZone: directory.DefaultTimeZone, Version: 1,
			CreatedAt: w.now, UpdatedAt: w.now}
		if err := dir.CreateHospital(ctx, h); err != nil {
			t.Fatal(err)
		}
		return h.ID
	}
	w.tertiary, w.county, w.otherCounty = hospital(1, directory.Tertiary), hospital(2, directory.Secondary), hospital(3, directory.Secondary)
	if err := dir.CreatePairing(ctx, directory.Pairing{ID: newID(), SupportingHospitalID: w.tertiary, RecipientHospitalID: w.county,
		StartsOn: w.now.AddDate(0, -1, 0).Format(time.DateOnly), Status: directory.PairingActive, Version: 1,
		CreatedAt: w.now, UpdatedAt: w.now}); err != nil {
		t.Fatal(err)
	}
	dept := func(hospital, code string) string {
		d := directory.Department{ID: newID(), HospitalID: hospital, Code: code, Name: "科" + code, Version: 1, CreatedAt: w.now, UpdatedAt: w.now}
		if err := dir.CreateDepartment(ctx, d); err != nil {
			t.Fatal(err)
		}
		return d.ID
	}
	w.countyDept = dept(w.county, "03")
	w.cardio, w.neuro, w.imaging = dept(w.tertiary, "03.04"), dept(w.tertiary, "03.03"), dept(w.tertiary, "32")

	reachOf := func(h string) map[string]bool {
		m := map[string]bool{h: true}
		switch h {
		case w.county:
			m[w.tertiary] = true
		case w.tertiary:
			m[w.county] = true
		}
		return m
	}
	user := func(hospital, department string, roles ...auth.Role) auth.Principal {
		p := auth.Principal{UserID: newID(), HospitalID: hospital, Roles: roles, Reach: reachOf(hospital)}
		var staff *string
		if department != "" {
			st := directory.Staff{ID: newID(), HospitalID: hospital, DepartmentID: &department, Name: "医生",
				Title: "attending_physician", Active: true, Version: 1, CreatedAt: w.now, UpdatedAt: w.now}
			if err := dir.CreateStaff(ctx, st); err != nil {
				t.Fatal(err)
			}
			staff = &st.ID
		}
		if _, err := db.Exec(ctx, `INSERT INTO users (id, username, display_name, hospital_id, staff_id, password_hash, created_at, updated_at)
			VALUES ($1, $2, $2, $3, $4, 'x', $5, $5)`, p.UserID, "u"+p.UserID[len(p.UserID)-12:], hospital, staff, w.now); err != nil {
			t.Fatal(err)
		}
		for _, r := range roles {
			if _, err := db.Exec(ctx, `INSERT INTO user_roles (user_id, role) VALUES ($1, $2)`, p.UserID, string(r)); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	w.doctor = user(w.county, w.countyDept, auth.CountyDoctor)
	w.desk = user(w.county, "", auth.ReferralDesk)
	w.outsider = user(w.otherCounty, "", auth.CountyDoctor)
	w.cardiologist = user(w.tertiary, w.cardio, auth.Specialist)
	w.neurologist = user(w.tertiary, w.neuro, auth.Specialist)
	w.rad = user(w.tertiary, w.imaging, auth.Specialist)
	w.head = user(w.tertiary, w.cardio, auth.Specialist)
	w.patient = w.addPatient(t, true)
	w.unconsented = w.addPatient(t, false)

	rec := audit.NewLog(store.NewAuditLog(db), nil)
	clock := func() time.Time { return w.now }
	reg := patient.NewService(db, w.patients, nil, rec)
	refSvc := referrals.NewService(db, w.refs, rec, referrals.NewDirectoryRoutes(dir, clock), clock, referral.DefaultDeadlines())
	w.svc = consults.NewService(db, w.st, rec, reg, directory.NewService(db, dir, rec), refSvc, consult.Deadlines{}, clock)
	return w
}

// addPatient registers a county patient, with or without the consents a
// remote session needs (remote consultation, and sharing data with the
// tertiary hospital).
func (w *world) addPatient(t *testing.T, consented bool) string {
	t.Helper()
	ctx := context.Background()
	p := patient.Patient{ID: newID(), Name: "王秀英", Sex: patient.Female, BirthDate: "1958-03-02", HomeHospitalID: w.county,
		CreatedBy: w.doctor.UserID, Version: 1, CreatedAt: w.now, UpdatedAt: w.now}
	if err := w.patients.CreatePatient(ctx, p); err != nil {
		t.Fatal(err)
	}
	if consented {
		for _, purpose := range []patient.Purpose{patient.ForRemoteConsultation, patient.ForDataSharing} {
			c := patient.Consent{ID: newID(), PatientID: p.ID, ConsenterKind: patient.ByPatient, ConsenterName: "王秀英",
				Purpose: purpose, GrantedAt: w.now.Add(-time.Hour), RecordedBy: w.doctor.UserID, RecordedAt: w.now, Active: true}
			if purpose == patient.ForDataSharing {
				c.SharedWithHospitalID = &w.tertiary
			}
			if err := w.patients.CreateConsent(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
	}
	return p.ID
}

// consultInput is an urgent consult of patientID with the tertiary cardiology.
func (w *world) consultInput(patientID string) consult.Input {
	return consult.Input{
		Kind: consult.Consult, Urgency: consult.Urgent, RequestingDepartmentID: w.countyDept,
		TargetHospitalID: w.tertiary, TargetDepartmentIDs: []string{w.cardio},
		Question: "胸痛待查，是否需要冠脉造影？", ClinicalSummary: "男，62岁，反复胸闷1周，心电图ST段压低",
		PatientID: patientID,
	}
}

func (w *world) period(from time.Duration) *consult.Period {
	return &consult.Period{Start: w.now.Add(from), End: w.now.Add(from + time.Hour)}
}

func opinionInput(advised bool, dept string) *consult.OpinionInput {
	in := &consult.OpinionInput{Findings: "LAD近段狭窄约70%", Impression: "不稳定型心绞痛", Recommendations: "建议上转行冠脉造影",
		Diagnoses: []referral.Diagnosis{{Code: "I20.0", Text: "不稳定型心绞痛"}}, ReferralAdvised: advised}
	if advised {
		in.SuggestedDepartmentID = dept
	}
	return in
}

// act takes an action that must succeed.
func (w *world) act(t *testing.T, p auth.Principal, s consult.Session, a consult.Action, in consult.ActionInput) consult.Session {
	t.Helper()
	next, err := w.svc.Act(context.Background(), p, s.ID, s.Version, a, in)
	if err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if next.Version != s.Version+1 {
		t.Fatalf("%s: version %d after %d", a, next.Version, s.Version)
	}
	return next
}

func fieldsOf(err error) []string {
	var inv apperr.Invalid
	if !errors.As(err, &inv) {
		return nil
	}
	var out []string
	for _, f := range inv {
		if !slices.Contains(out, f.Field) {
			out = append(out, f.Field)
		}
	}
	return out
}

func count(t *testing.T, db sqldb.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A consult runs its whole course: requested by the county doctor, accepted
// by the tertiary department with a cardiologist assigned, scheduled,
// started, ended, its opinion drafted and signed, and acknowledged. Each
// change leaves its event, an outbox row and an audit row.
func TestConsultFullFlow(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		s, err := w.svc.Request(ctx, w.doctor, w.consultInput(w.patient))
		if err != nil {
			t.Fatal(err)
		}
		if s.Status != consult.Requested || s.RequestingHospitalID != w.county || s.RequesterID != w.doctor.UserID {
			t.Fatalf("requested: %+v", s)
		}
		s = w.act(t, w.head, s, consult.Accept, consult.ActionInput{Specialists: []consult.Assignment{{SpecialistID: w.cardiologist.UserID, DepartmentID: w.cardio}}})
		s = w.act(t, w.head, s, consult.Schedule, consult.ActionInput{Schedule: w.period(time.Hour)})
		// A retried schedule of the same time is answered unchanged, whatever version the caller holds.
		if again, err := w.svc.Act(ctx, w.head, s.ID, 1, consult.Schedule, consult.ActionInput{Schedule: w.period(time.Hour)}); err != nil || again.Version != s.Version {
			t.Fatalf("repeat schedule: %v, %v", again.Version, err)
		}
		// Someone else's move in between makes an old version stale.
		if _, err := w.svc.Act(ctx, w.cardiologist, s.ID, s.Version-1, consult.Start, consult.ActionInput{}); !errors.Is(err, apperr.ErrStale) {
			t.Fatalf("start at an old version: %v", err)
		}
		// Only the assigned specialist runs the session.
		if _, err := w.svc.Act(ctx, w.head, s.ID, s.Version, consult.Start, consult.ActionInput{}); !errors.Is(err, apperr.ErrForbidden) {
			t.Fatalf("start by an unassigned specialist: %v", err)
		}
		w.now = w.now.Add(time.Hour)
		s = w.act(t, w.cardiologist, s, consult.Start, consult.ActionInput{})
		w.now = w.now.Add(40 * time.Minute)
		s = w.act(t, w.cardiologist, s, consult.End, consult.ActionInput{})
		s, err = w.svc.WriteOpinion(ctx, w.cardiologist, s.ID, s.Version, *opinionInput(true, w.cardio))
		if err != nil || s.Opinion == nil || s.Opinion.Signed() {
			t.Fatalf("draft: %+v, %v", s.Opinion, err)
		}
		s = w.act(t, w.cardiologist, s, consult.Sign, consult.ActionInput{})
		if !s.Opinion.Signed() || !s.Opinion.Intact(s.ID) {
			t.Fatalf("signed opinion: %+v", s.Opinion)
		}
		// The requester, not the target, acknowledges.
		if _, err := w.svc.Act(ctx, w.cardiologist, s.ID, s.Version, consult.Acknowledge, consult.ActionInput{}); !errors.Is(err, apperr.ErrForbidden) {
			t.Fatalf("acknowledge by the specialist: %v", err)
		}
		s = w.act(t, w.doctor, s, consult.Acknowledge, consult.ActionInput{})
		if s.Status != consult.Acknowledged || s.AcknowledgedBy != w.doctor.UserID {
			t.Fatalf("acknowledged: %+v", s)
		}

		d, err := w.svc.Get(ctx, w.doctor, s.ID)
		if err != nil || d.Opinion == nil || !d.Opinion.Intact(s.ID) || d.Status != consult.Acknowledged {
			t.Fatalf("read back: %+v, %v", d, err)
		}
		evs, err := w.svc.Events(ctx, w.cardiologist, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		var got []consult.Action
		for _, e := range evs {
			got = append(got, e.Action)
		}
		want := []consult.Action{consult.RequestAction, consult.Accept, consult.Schedule, consult.Start, consult.End, consult.DraftOpinion, consult.Sign, consult.Acknowledge}
		if !slices.Equal(got, want) {
			t.Fatalf("history %v, want %v", got, want)
		}
		if n := count(t, db, `SELECT count(*) FROM outbox WHERE topic = $1 AND key = $2`, consults.TopicChanged, s.ID); n != len(want) {
			t.Errorf("outbox rows %d, want %d", n, len(want))
		}
		for _, a := range want {
			if n := count(t, db, `SELECT count(*) FROM audit_log WHERE resource_id = $1 AND action = $2`, s.ID, "consult."+string(a)); n != 1 {
				t.Errorf("audit rows of %s: %d", a, n)
			}
		}
		if n := count(t, db, `SELECT count(*) FROM audit_log WHERE resource_id = $1 AND action = $2 AND patient_id = $3`, s.ID, consults.ActionRead, w.patient); n != 2 {
			t.Errorf("audited reads: %d, want 2 (the session and its history)", n)
		}
	})
}

// A session about a patient cannot be scheduled (nor, for a clinic slot,
// booked) without the patient's consents to remote consultation and to
// sharing data with the target hospital; nothing is written.
func TestConsultNeedsConsentToSchedule(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		s, err := w.svc.Request(ctx, w.doctor, w.consultInput(w.unconsented))
		if err != nil {
			t.Fatal(err)
		}
		s = w.act(t, w.head, s, consult.Accept, consult.ActionInput{Specialists: []consult.Assignment{{SpecialistID: w.cardiologist.UserID, DepartmentID: w.cardio}}})
		_, err = w.svc.Act(ctx, w.head, s.ID, s.Version, consult.Schedule, consult.ActionInput{Schedule: w.period(time.Hour)})
		if !slices.Equal(fieldsOf(err), []string{"consent"}) {
			t.Fatalf("schedule without consent: %v", err)
		}
		var inv apperr.Invalid
		errors.As(err, &inv)
		if len(inv) != 2 {
			t.Errorf("both missing consents should be named: %v", inv)
		}
		if cur, _ := w.st.Session(ctx, s.ID); cur.Status != consult.Accepted || cur.Version != s.Version {
			t.Fatalf("refused schedule changed the session: %s v%d", cur.Status, cur.Version)
		}
		// Consent to remote consultation alone is not enough: the data goes
		// to the target hospital.
		if err := w.patients.CreateConsent(ctx, patient.Consent{ID: newID(), PatientID: w.unconsented, ConsenterKind: patient.ByPatient,
			ConsenterName: "王秀英", Purpose: patient.ForRemoteConsultation, GrantedAt: w.now.Add(-time.Minute),
			RecordedBy: w.doctor.UserID, RecordedAt: w.now, Active: true}); err != nil {
			t.Fatal(err)
		}
		if _, err = w.svc.Act(ctx, w.head, s.ID, s.Version, consult.Schedule, consult.ActionInput{Schedule: w.period(time.Hour)}); !slices.Equal(fieldsOf(err), []string{"consent"}) {
			t.Fatalf("schedule with one consent: %v", err)
		}
	})
}

// Requests name stored things that must fit: the target is paired with the
// caller, the patient within reach, departments and named specialists of the
// target hospital; assignments name the target's specialists in their own
// departments.
func TestConsultRequestChecksWhatItNames(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		foreignPatient := patient.Patient{ID: newID(), Name: "李四", Sex: patient.Male, BirthDate: "1960-01-01",
			HomeHospitalID: w.otherCounty, CreatedBy: w.outsider.UserID, Version: 1, CreatedAt: w.now, UpdatedAt: w.now}
		if err := w.patients.CreatePatient(ctx, foreignPatient); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name   string
			edit   func(*consult.Input)
			fields []string
		}{
			{"unpaired target", func(in *consult.Input) { in.TargetHospitalID = w.otherCounty }, []string{"target_hospital_id", "target_department_ids[0]"}},
			{"patient beyond reach", func(in *consult.Input) { in.PatientID = foreignPatient.ID }, []string{"patient_id"}},
			{"unknown patient", func(in *consult.Input) { in.PatientID = newID() }, []string{"patient_id"}},
			{"department of another hospital", func(in *consult.Input) { in.TargetDepartmentIDs = []string{w.countyDept} }, []string{"target_department_ids[0]"}},
			{"requesting department of the target", func(in *consult.Input) { in.RequestingDepartmentID = w.cardio }, []string{"requesting_department_id"}},
			{"named county doctor", func(in *consult.Input) { in.RequestedSpecialistIDs = []string{w.doctor.UserID} }, []string{"requested_specialist_ids[0]"}},
		} {
			in := w.consultInput(w.patient)
			c.edit(&in)
			if _, err := w.svc.Request(ctx, w.doctor, in); !slices.Equal(fieldsOf(err), c.fields) {
				t.Errorf("%s: %v, want fields %v", c.name, err, c.fields)
			}
		}
		if n := count(t, db, `SELECT count(*) FROM consult_sessions`); n != 0 {
			t.Fatalf("refused requests were written: %d", n)
		}

		s, err := w.svc.Request(ctx, w.doctor, w.consultInput(w.patient))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name   string
			as     []consult.Assignment
			fields []string
		}{
			{"a county doctor", []consult.Assignment{{SpecialistID: w.doctor.UserID, DepartmentID: w.cardio}}, []string{"specialists[0].specialist_id"}},
			{"a neurologist for cardiology", []consult.Assignment{{SpecialistID: w.neurologist.UserID, DepartmentID: w.cardio}}, []string{"specialists[0].department_id"}},
			{"nobody", []consult.Assignment{{SpecialistID: newID(), DepartmentID: w.cardio}}, []string{"specialists[0].specialist_id"}},
		} {
			if _, err := w.svc.Act(ctx, w.head, s.ID, s.Version, consult.Accept, consult.ActionInput{Specialists: c.as}); !slices.Equal(fieldsOf(err), c.fields) {
				t.Errorf("assign %s: %v, want %v", c.name, err, c.fields)
			}
		}
	})
}

// Hospitals outside a session get not found for every operation, and the
// attempt is audited.
func TestConsultNonPartiesGetNotFound(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		s, err := w.svc.Request(ctx, w.doctor, w.consultInput(w.patient))
		if err != nil {
			t.Fatal(err)
		}
		o := w.outsider
		for name, call := range map[string]func() error{
			"get":    func() error { _, err := w.svc.Get(ctx, o, s.ID); return err },
			"events": func() error { _, err := w.svc.Events(ctx, o, s.ID); return err },
			"act": func() error {
				_, err := w.svc.Act(ctx, o, s.ID, s.Version, consult.Cancel, consult.ActionInput{Reason: "x"})
				return err
			},
			"opinion": func() error {
				_, err := w.svc.WriteOpinion(ctx, o, s.ID, s.Version, consult.OpinionInput{})
				return err
			},
			"addendum":   func() error { _, err := w.svc.AddAddendum(ctx, o, s.ID, "x"); return err },
			"referral":   func() error { _, err := w.svc.DraftReferral(ctx, o, s.ID); return err },
			"attendance": func() error { _, err := w.svc.Attendance(ctx, o, s.ID); return err },
		} {
			if err := call(); !errors.Is(err, apperr.ErrNotFound) {
				t.Errorf("%s by an outsider: %v", name, err)
			}
		}
		if n := count(t, db, `SELECT count(*) FROM audit_log WHERE action = $1 AND actor_id = $2`, audit.AccessDenied, o.UserID); n != 7 {
			t.Errorf("denied accesses audited: %d, want 7", n)
		}
		list, err := w.svc.List(ctx, o, store.ConsultFilter{Limit: 10})
		if err != nil || len(list) != 0 {
			t.Errorf("outsider's list: %d, %v", len(list), err)
		}
	})
}

// The opinion is immutable once signed: the draft cannot be rewritten and
// signing other text is refused; corrections are signed addenda, appended
// in order, each on the record.
func TestConsultOpinionImmutableAndAddenda(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		s := w.endedConsult(t)
		if _, err := w.svc.AddAddendum(ctx, w.cardiologist, s.ID, "补充"); !errors.Is(err, apperr.ErrConflict) {
			t.Fatalf("addendum to a draft: %v", err)
		}
		s = w.act(t, w.cardiologist, s, consult.Sign, consult.ActionInput{Opinion: opinionInput(false, "")})
		signed := *s.Opinion

		if _, err := w.svc.WriteOpinion(ctx, w.cardiologist, s.ID, s.Version, *opinionInput(true, w.cardio)); !errors.Is(err, apperr.ErrConflict) {
			t.Fatalf("rewrite a signed opinion: %v", err)
		}
		other := opinionInput(false, "")
		other.Impression = "稳定型心绞痛"
		if _, err := w.svc.Act(ctx, w.cardiologist, s.ID, s.Version, consult.Sign, consult.ActionInput{Opinion: other}); !errors.Is(err, apperr.ErrConflict) {
			t.Fatalf("sign other text: %v", err)
		}
		if _, err := w.svc.AddAddendum(ctx, w.neurologist, s.ID, "补充"); !errors.Is(err, apperr.ErrForbidden) {
			t.Fatalf("addendum by an unassigned specialist: %v", err)
		}
		if _, err := w.svc.AddAddendum(ctx, w.cardiologist, s.ID, "  "); !slices.Equal(fieldsOf(err), []string{"text"}) {
			t.Fatalf("empty addendum: %v", err)
		}
		for i, text := range []string{"补充：肌钙蛋白复查阴性", "更正：狭窄约75%"} {
			add, err := w.svc.AddAddendum(ctx, w.cardiologist, s.ID, text)
			if err != nil || add.Seq != i+1 || !add.Intact() || add.SignedBy != w.cardiologist.UserID {
				t.Fatalf("addendum %d: %+v, %v", i, add, err)
			}
		}
		d, err := w.svc.Get(ctx, w.doctor, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Addenda) != 2 || d.Addenda[1].Text != "更正：狭窄约75%" {
			t.Fatalf("addenda read back: %+v", d.Addenda)
		}
		if d.Opinion.Digest != signed.Digest || d.Opinion.Impression != signed.Impression || !d.Opinion.Intact(s.ID) {
			t.Fatalf("signed opinion changed: %+v", d.Opinion)
		}
		if n := count(t, db, `SELECT count(*) FROM consult_events WHERE session_id = $1 AND action = $2`, s.ID, string(consults.AddendumAction)); n != 2 {
			t.Errorf("addendum events: %d", n)
		}
	})
}

// endedConsult drives a consult of the consented patient to ended, with
// the cardiologist assigned.
func (w *world) endedConsult(t *testing.T) consult.Session {
	t.Helper()
	s, err := w.svc.Request(context.Background(), w.doctor, w.consultInput(w.patient))
	if err != nil {
		t.Fatal(err)
	}
	s = w.act(t, w.head, s, consult.Accept, consult.ActionInput{Specialists: []consult.Assignment{{SpecialistID: w.cardiologist.UserID, DepartmentID: w.cardio}}})
	s = w.act(t, w.head, s, consult.Schedule, consult.ActionInput{Schedule: w.period(time.Hour)})
	s = w.act(t, w.cardiologist, s, consult.Start, consult.ActionInput{})
	return w.act(t, w.cardiologist, s, consult.End, consult.ActionInput{})
}

// "Draft the up-referral" turns a signed opinion that advises referral into
// a referral draft from the requesting hospital to the suggested department;
// an opinion that does not advise it, or is not signed, drafts nothing.
func TestConsultDraftsTheUpReferral(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		s := w.endedConsult(t)
		if _, err := w.svc.DraftReferral(ctx, w.doctor, s.ID); !errors.Is(err, apperr.ErrConflict) {
			t.Fatalf("draft before an opinion: %v", err)
		}
		s = w.act(t, w.cardiologist, s, consult.Sign, consult.ActionInput{Opinion: opinionInput(true, w.cardio)})
		if _, err := w.svc.DraftReferral(ctx, w.cardiologist, s.ID); !errors.Is(err, apperr.ErrForbidden) {
			t.Fatalf("draft by the target side: %v", err)
		}
		r, err := w.svc.DraftReferral(ctx, w.doctor, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != referral.Draft || r.Direction != referral.Up || r.PatientID != w.patient ||
			r.ReferringHospitalID != w.county || r.ReceivingHospitalID != w.tertiary || r.ReceivingDepartmentID != w.cardio ||
			len(r.Diagnoses) != 1 || r.Diagnoses[0].Code != "I20.0" || r.Priority != referral.Urgent {
			t.Fatalf("drafted referral: %+v", r)
		}
		if stored, err := w.refs.Get(ctx, r.ID); err != nil || stored.ID != r.ID {
			t.Fatalf("draft not stored: %v", err)
		}
		if n := count(t, db, `SELECT count(*) FROM audit_log WHERE resource_id = $1 AND action = $2`, s.ID, consults.ActionDraftReferral); n != 1 {
			t.Errorf("draft audited %d times", n)
		}

		plain := w.endedConsult(t)
		plain = w.act(t, w.cardiologist, plain, consult.Sign, consult.ActionInput{Opinion: opinionInput(false, "")})
		if _, err := w.svc.DraftReferral(ctx, w.doctor, plain.ID); !errors.Is(err, apperr.ErrConflict) {
			t.Fatalf("draft from an opinion that advises no referral: %v", err)
		}
	})
}

// joined writes p's connection to session id at w.now, held by an
// instance, as the room's join hook does, and returns its id for left.
func (w *world) joined(t *testing.T, p auth.Principal, id string) string {
	t.Helper()
	pr := consult.Presence{SessionID: id, UserID: p.UserID, HospitalID: p.HospitalID, JoinedAt: w.now}
	presence, err := w.st.RecordJoin(context.Background(), pr, "instance-1")
	if err != nil {
		t.Fatal(err)
	}
	return presence
}

// left closes connection id at w.now, as the room's leave hook does.
func (w *world) left(t *testing.T, id string) {
	t.Helper()
	if err := w.st.RecordLeave(context.Background(), id, w.now); err != nil {
		t.Fatal(err)
	}
}

// A teaching round has no patient and needs no consent; the presenter runs
// it for the requesting and invited hospitals, and attendance is merged from
// connections: a reconnect within the grace counts once, time outside the
// live session does not count.
func TestTeachingRoundAttendance(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		in := consult.Input{Kind: consult.TeachingRound, Urgency: consult.Routine, TargetHospitalID: w.tertiary,
			TargetDepartmentIDs: []string{w.cardio}, Question: "急性冠脉综合征的基层识别"}
		with := in
		with.PatientID = w.patient
		if _, err := w.svc.Request(ctx, w.doctor, with); !slices.Equal(fieldsOf(err), []string{"patient_id"}) {
			t.Fatalf("teaching round with a patient: %v", err)
		}
		beyond := in
		beyond.AttendeeHospitalIDs = []string{w.otherCounty}
		if _, err := w.svc.Request(ctx, w.doctor, beyond); !slices.Equal(fieldsOf(err), []string{"attendee_hospital_ids[0]"}) {
			t.Fatalf("teaching round for an unpaired hospital: %v", err)
		}
		s, err := w.svc.Request(ctx, w.doctor, in)
		if err != nil {
			t.Fatal(err)
		}
		s = w.act(t, w.head, s, consult.Accept, consult.ActionInput{Specialists: []consult.Assignment{{SpecialistID: w.cardiologist.UserID, DepartmentID: w.cardio}}})
		s = w.act(t, w.head, s, consult.Schedule, consult.ActionInput{Schedule: w.period(time.Hour)})

		// Connections are written as the room's hooks write them (rtc.Service
		// Joined and Left): a presence row per connection, held by an instance.
		// The county doctor waits in the room before the start.
		early := w.joined(t, w.doctor, s.ID)
		w.now = w.now.Add(10 * time.Minute)
		s = w.act(t, w.cardiologist, s, consult.Start, consult.ActionInput{})
		start := w.now
		w.joined(t, w.cardiologist, s.ID)
		w.now = w.now.Add(20 * time.Minute)
		w.left(t, early) // the line drops …
		w.now = w.now.Add(30 * time.Second)
		w.joined(t, w.doctor, s.ID) // … and comes back within the grace
		desk := w.joined(t, w.desk, s.ID)
		w.now = w.now.Add(5 * time.Minute)
		w.left(t, desk) // the desk leaves early
		w.now = start.Add(45 * time.Minute)
		s = w.act(t, w.cardiologist, s, consult.End, consult.ActionInput{})
		w.now = w.now.Add(time.Hour) // connections still open after the end count up to it

		att, err := w.svc.Attendance(ctx, w.doctor, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]consult.Attendance{}
		for _, a := range att {
			got[a.UserID] = a
		}
		if len(att) != 3 {
			t.Fatalf("attendance lines %d: %+v", len(att), att)
		}
		if a := got[w.doctor.UserID]; a.Duration != 45*time.Minute || a.Periods != 1 || a.HospitalID != w.county {
			t.Errorf("county doctor: %+v", a)
		}
		if a := got[w.desk.UserID]; a.Duration != 5*time.Minute {
			t.Errorf("county desk: %+v", a)
		}
		if a := got[w.cardiologist.UserID]; a.Duration != 45*time.Minute || a.HospitalID != w.tertiary {
			t.Errorf("presenter: %+v", a)
		}
		// A teaching round has no opinion.
		if _, err := w.svc.WriteOpinion(ctx, w.cardiologist, s.ID, s.Version, *opinionInput(false, "")); !errors.Is(err, apperr.ErrConflict) {
			t.Errorf("opinion of a teaching round: %v", err)
		}
	})
}

// An MDT gathers several departments: the acceptance assigns a specialist
// for each, each must work in the department they are assigned for, and any
// of them may run the session and sign.
func TestMDTWithSeveralDepartments(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		in := w.consultInput(w.patient)
		in.Kind = consult.MDT
		in.TargetDepartmentIDs = []string{w.cardio, w.neuro, w.imaging}
		in.RequestedSpecialistIDs = []string{w.cardiologist.UserID, w.neurologist.UserID}
		s, err := w.svc.Request(ctx, w.doctor, in)
		if err != nil {
			t.Fatal(err)
		}
		partial := []consult.Assignment{{SpecialistID: w.cardiologist.UserID, DepartmentID: w.cardio}, {SpecialistID: w.neurologist.UserID, DepartmentID: w.neuro}}
		if _, err := w.svc.Act(ctx, w.head, s.ID, s.Version, consult.Accept, consult.ActionInput{Specialists: partial}); !slices.Equal(fieldsOf(err), []string{"specialists"}) {
			t.Fatalf("MDT missing a department: %v", err)
		}
		swapped := []consult.Assignment{{SpecialistID: w.cardiologist.UserID, DepartmentID: w.cardio}, {SpecialistID: w.rad.UserID, DepartmentID: w.neuro}, {SpecialistID: w.neurologist.UserID, DepartmentID: w.imaging}}
		if _, err := w.svc.Act(ctx, w.head, s.ID, s.Version, consult.Accept, consult.ActionInput{Specialists: swapped}); !slices.Equal(fieldsOf(err), []string{"specialists[1].department_id", "specialists[2].department_id"}) {
			t.Fatalf("MDT with specialists in the wrong departments: %v", err)
		}
		all := append(partial, consult.Assignment{SpecialistID: w.rad.UserID, DepartmentID: w.imaging})
		s = w.act(t, w.head, s, consult.Accept, consult.ActionInput{Specialists: all})
		s = w.act(t, w.head, s, consult.Schedule, consult.ActionInput{Schedule: w.period(2 * time.Hour)})
		s = w.act(t, w.neurologist, s, consult.Start, consult.ActionInput{})
		s = w.act(t, w.rad, s, consult.End, consult.ActionInput{})
		s = w.act(t, w.cardiologist, s, consult.Sign, consult.ActionInput{Opinion: opinionInput(false, "")})
		if len(s.Specialists) != 3 || s.Status != consult.OpinionSigned {
			t.Fatalf("MDT: %+v", s)
		}
		list, err := w.svc.List(ctx, w.neurologist, store.ConsultFilter{Kind: consult.MDT, Limit: 10})
		if err != nil || len(list) != 1 || list[0].ID != s.ID {
			t.Fatalf("list MDTs: %v, %v", list, err)
		}
	})
}

// Sessions are listed for the hospitals taking part, with filters.
func TestConsultListFilters(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		urgent, err := w.svc.Request(ctx, w.doctor, w.consultInput(w.patient))
		if err != nil {
			t.Fatal(err)
		}
		in := w.consultInput(w.patient)
		in.Urgency = consult.Routine
		routine, err := w.svc.Request(ctx, w.doctor, in)
		if err != nil {
			t.Fatal(err)
		}
		routine = w.act(t, w.head, routine, consult.Accept, consult.ActionInput{Specialists: []consult.Assignment{{SpecialistID: w.cardiologist.UserID, DepartmentID: w.cardio}}})
		routine = w.act(t, w.head, routine, consult.Schedule, consult.ActionInput{Schedule: w.period(72 * time.Hour)})
		day := func(d time.Duration) *time.Time { t := w.now.Add(d); return &t }
		for _, c := range []struct {
			name string
			f    store.ConsultFilter
			want []string
		}{
			{"all", store.ConsultFilter{}, []string{urgent.ID, routine.ID}},
			{"urgent", store.ConsultFilter{Urgency: consult.Urgent}, []string{urgent.ID}},
			{"scheduled", store.ConsultFilter{Status: consult.Scheduled}, []string{routine.ID}},
			{"with the tertiary hospital", store.ConsultFilter{HospitalID: w.tertiary}, []string{urgent.ID, routine.ID}},
			{"with another hospital", store.ConsultFilter{HospitalID: w.otherCounty}, nil},
			{"today", store.ConsultFilter{From: day(-time.Hour), To: day(24 * time.Hour)}, []string{urgent.ID}},
			{"in three days", store.ConsultFilter{From: day(48 * time.Hour), To: day(96 * time.Hour)}, []string{routine.ID}},
			{"mdt", store.ConsultFilter{Kind: consult.MDT}, nil},
		} {
			c.f.Limit = 10
			list, err := w.svc.List(ctx, w.cardiologist, c.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range list {
				got = append(got, s.ID)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("%s: %v, want %v", c.name, got, c.want)
			}
		}
		page, err := w.svc.List(ctx, w.doctor, store.ConsultFilter{Limit: 1})
		if err != nil || len(page) != 2 {
			t.Fatalf("a page of one returns the look-ahead row: %d, %v", len(page), err)
		}
		if n := count(t, db, `SELECT count(*) FROM audit_log WHERE action = $1 AND actor_id = $2`, consults.ActionList, w.doctor.UserID); n != 1 {
			t.Errorf("look-ahead row audited as seen: %d list rows", n)
		}
	})
}
