package referrals_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/directory"
	"duikou/internal/patient"
	"duikou/internal/referrals"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/referral"
)

func refID() string { return uuid.Must(uuid.NewV7()).String() }

// refWorld is the program these tests run in: a county hospital paired with
// its tertiary partner, and a second county hospital paired with neither.
type refWorld struct {
	db       sqldb.DB
	st       *store.Referrals
	patients *store.Patients
	svc      *referrals.Service
	// instance builds another service on the same database, as a second
	// server instance would run.
	instance func() *referrals.Service
	beds     *referrals.Beds
	dir      *store.Directory
	now      time.Time

	county, tertiary, otherCounty string
	countyDept, cardio, neuro     string

	doctor  auth.Principal // county doctor who writes the referrals
	desk    auth.Principal // the tertiary hospital's referral desk
	outside auth.Principal // a desk member of the unrelated county
	patient string         // a patient of the county who consented to referral
}

// failingAudit fails the audit write of one action, as a full disk or a lost
// connection would.
type failingAudit struct {
	next   audit.Recorder
	action string
}

func (f failingAudit) Record(ctx context.Context, e audit.Entry) error {
	if e.Action == f.action {
		return errors.New("audit log unavailable")
	}
	return f.next.Record(ctx, e)
}

func newRefWorld(t *testing.T, db sqldb.DB, wrap func(audit.Recorder) audit.Recorder) *refWorld {
	t.Helper()
	ctx := context.Background()
	w := &refWorld{db: db, st: store.NewReferrals(db), patients: store.NewPatients(db), now: sqldb.Now()}
	dir := store.NewDirectory(db)
	hospital := func(n int, tier directory.Tier) string {
		h := directory.Hospital{ID: refID(), Name: fmt.Sprintf("医院%d", n), OrgCode: fmt.Sprintf("12510000%010d", n),
			Tier: tier, Province: "四川省", County: "苍溪县", TimeZone: directory.DefaultTimeZone, Version: 1,
			CreatedAt: w.now, UpdatedAt: w.now}
		if err := dir.CreateHospital(ctx, h); err != nil {
			t.Fatal(err)
		}
		return h.ID
	}
	w.tertiary, w.county, w.otherCounty = hospital(1, directory.Tertiary), hospital(2, directory.Secondary), hospital(3, directory.Secondary)
	if err := dir.CreatePairing(ctx, directory.Pairing{ID: refID(), SupportingHospitalID: w.tertiary, RecipientHospitalID: w.county,
		StartsOn: w.now.AddDate(0, -1, 0).Format(time.DateOnly), Status: directory.PairingActive, Version: 1,
		CreatedAt: w.now, UpdatedAt: w.now}); err != nil {
		t.Fatal(err)
	}
	w.countyDept = refID()
	// The tertiary departments exist in the directory: bed pools belong to them.
	department := func(code, name string) string {
		d := directory.Department{ID: refID(), HospitalID: w.tertiary, Code: code, Name: name, Version: 1, CreatedAt: w.now, UpdatedAt: w.now}
		if err := dir.CreateDepartment(ctx, d); err != nil {
			t.Fatal(err)
		}
		return d.ID
	}
	w.cardio, w.neuro = department("03.04", "心血管内科"), department("03.03", "神经内科")
	w.dir = dir

	w.doctor = w.user(t, w.county, []string{w.county, w.tertiary}, auth.CountyDoctor)
	w.desk = w.user(t, w.tertiary, []string{w.tertiary, w.county}, auth.ReferralDesk)
	w.outside = w.user(t, w.otherCounty, []string{w.otherCounty}, auth.ReferralDesk, auth.CountyDoctor)
	w.patient = w.addPatient(t, true)

	var rec audit.Recorder = audit.NewLog(store.NewAuditLog(db), nil)
	if wrap != nil {
		rec = wrap(rec)
	}
	routes := referrals.NewDirectoryRoutes(dir, func() time.Time { return w.now })
	w.instance = func() *referrals.Service {
		return referrals.NewService(db, w.st, rec, routes, func() time.Time { return w.now }, referral.DefaultDeadlines())
	}
	w.svc = w.instance()
	w.beds = referrals.NewBeds(w.svc, w.st, dir)
	return w
}

// user adds a user of hospital with roles, reaching the hospitals in reach.
func (w *refWorld) user(t *testing.T, hospital string, reach []string, roles ...auth.Role) auth.Principal {
	t.Helper()
	p := auth.Principal{UserID: refID(), HospitalID: hospital, Roles: roles, Reach: map[string]bool{}}
	for _, h := range reach {
		p.Reach[h] = true
	}
	if _, err := w.db.Exec(context.Background(), `INSERT INTO users (id, username, display_name, hospital_id, password_hash, created_at, updated_at)
		VALUES ($1, $2, $2, $3, 'x', $4, $4)`, p.UserID, "u"+p.UserID[len(p.UserID)-12:], hospital, w.now); err != nil {
		t.Fatal(err)
	}
	return p
}

// addPatient registers a patient of the county, with or without a recorded
// consent to referral.
func (w *refWorld) addPatient(t *testing.T, consented bool) string {
	t.Helper()
	ctx := context.Background()
	p := patient.Patient{ID: refID(), Name: "王秀英", Sex: patient.Female, BirthDate: "1958-03-02", HomeHospitalID: w.county,
		CreatedBy: w.doctor.UserID, Version: 1, CreatedAt: w.now, UpdatedAt: w.now}
	if err := w.patients.CreatePatient(ctx, p); err != nil {
		t.Fatal(err)
	}
	if consented {
		c := patient.Consent{ID: refID(), PatientID: p.ID, ConsenterKind: patient.ByPatient, ConsenterName: "王秀英",
			Purpose: patient.ForReferral, GrantedAt: w.now.Add(-time.Hour), RecordedBy: w.doctor.UserID, RecordedAt: w.now, Active: true}
		if err := w.patients.CreateConsent(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	return p.ID
}

// input is a complete routine up-referral of patientID to the tertiary
// hospital's cardiology.
func (w *refWorld) input(patientID string) referral.Input {
	return referral.Input{
		Direction: referral.Up, Priority: referral.Urgent, TransferRisk: referral.RiskII,
		PatientID: patientID, ReferringDepartmentID: w.countyDept, ReferringDoctorID: refID(),
		ReceivingHospitalID: w.tertiary, ReceivingDepartmentID: w.cardio,
		Diagnoses: []referral.Diagnosis{{Code: "I20.0", Text: "不稳定型心绞痛"}},
		Reason:    "需冠脉造影评估", ClinicalSummary: "反复胸闷1周", TreatmentGiven: "阿司匹林、他汀",
		Transport:       referral.Transport{Mode: referral.ByHospitalVehicle, Escort: referral.EscortNurse},
		RequestedWindow: &referral.Window{From: w.now, To: w.now.Add(48 * time.Hour)},
		ConsentID:       refID(),
	}
}

func (w *refWorld) draft(t *testing.T, in referral.Input) referral.Referral {
	t.Helper()
	r, err := w.svc.Create(context.Background(), w.doctor, in)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (w *refWorld) act(t *testing.T, p auth.Principal, r referral.Referral, a referral.Action, in referral.ActionInput) referral.Referral {
	t.Helper()
	got, err := w.svc.Act(context.Background(), p, r.ID, r.Version, a, in)
	if err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	return got
}

// written is everything stored about one ticket besides its row.
type written struct {
	events []string // action:from→to
	outbox []string // status@version
	audit  []string // action/outcome
}

func (w *refWorld) written(t *testing.T, id string) written {
	t.Helper()
	ctx := context.Background()
	var out written
	evs, err := w.st.Events(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		out.events = append(out.events, fmt.Sprintf("%s:%s→%s", e.Action, e.From, e.To))
	}
	rows, err := w.db.Query(ctx, `SELECT payload FROM outbox WHERE key = $1 AND topic = $2 ORDER BY id`, id, referrals.TopicChanged)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var payload string
		if err := rows.Scan(&payload); err != nil {
			t.Fatal(err)
		}
		out.outbox = append(out.outbox, payload)
	}
	arows, err := w.db.Query(ctx, `SELECT action, outcome FROM audit_log WHERE resource_id = $1 ORDER BY seq`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer arows.Close()
	for arows.Next() {
		var action, outcome string
		if err := arows.Scan(&action, &outcome); err != nil {
			t.Fatal(err)
		}
		out.audit = append(out.audit, action+"/"+outcome)
	}
	return out
}

func wantFieldError(t *testing.T, err error, field string) {
	t.Helper()
	var v apperr.Invalid
	if !errors.As(err, &v) || !slices.ContainsFunc(v, func(f apperr.FieldError) bool { return f.Field == field }) {
		t.Fatalf("got %v, want a field error on %s", err, field)
	}
}

func TestReferralServiceSubmitClaimAccept(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newRefWorld(t, db, nil)
		r := w.draft(t, w.input(w.patient))
		if r.Status != referral.Draft || r.Version != 1 || r.Number != "" || r.ReferringHospitalID != w.county {
			t.Fatalf("draft: %+v", r)
		}
		r = w.act(t, w.doctor, r, referral.Submit, referral.ActionInput{})
		if r.Status != referral.Submitted || r.Version != 2 || r.Number == "" {
			t.Fatalf("submitted: %+v", r)
		}
		r = w.act(t, w.desk, r, referral.Claim, referral.ActionInput{})
		r = w.act(t, w.desk, r, referral.Accept, referral.ActionInput{Reason: "安排心内科门诊"})
		if r.Status != referral.Accepted || r.Version != 4 || !r.FeeWaived || r.ExamSlipNumber == "" || r.DecidedBy != w.desk.UserID {
			t.Fatalf("accepted: %+v", r)
		}

		stored, err := w.svc.Get(context.Background(), w.doctor, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if stored.Status != referral.Accepted || stored.Version != 4 || stored.Number != r.Number {
			t.Fatalf("stored: %+v", stored)
		}
		got := w.written(t, r.ID)
		wantEvents := []string{"submit:draft→submitted", "claim:submitted→claimed", "accept:claimed→accepted"}
		if !slices.Equal(got.events, wantEvents) {
			t.Errorf("events %v, want %v", got.events, wantEvents)
		}
		if len(got.outbox) != 3 {
			t.Fatalf("outbox %v, want three changes", got.outbox)
		}
		for i, want := range []string{`"status":"submitted"`, `"status":"claimed"`, `"status":"accepted"`} {
			for _, part := range []string{want, `"receiving_hospital_id":"` + w.tertiary + `"`, `"priority":"urgent"`,
				`"green_channel":false`, fmt.Sprintf(`"version":%d`, i+2), `"queued_at":"`} {
				if !strings.Contains(got.outbox[i], part) {
					t.Errorf("outbox row %d %s lacks %s", i, got.outbox[i], part)
				}
			}
		}
		wantAudit := []string{"referral.create/success", "referral.submit/success", "referral.claim/success",
			"referral.accept/success", "referral.read/success"}
		if !slices.Equal(got.audit, wantAudit) {
			t.Errorf("audit %v, want %v", got.audit, wantAudit)
		}
		var patientRows int
		if err := db.QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE resource_id = $1 AND patient_id = $2`,
			r.ID, w.patient).Scan(&patientRows); err != nil || patientRows != len(wantAudit) {
			t.Errorf("audit rows naming the patient: %d (%v), want %d", patientRows, err, len(wantAudit))
		}

		// Accepting again with the old version is a retry: the ticket comes back
		// and nothing is written.
		again, err := w.svc.Act(context.Background(), w.desk, r.ID, 2, referral.Accept, referral.ActionInput{})
		if err != nil || again.Version != 4 {
			t.Fatalf("repeated accept: %v %+v", err, again)
		}
		if after := w.written(t, r.ID); len(after.events) != 3 || len(after.outbox) != 3 || len(after.audit) != len(wantAudit) {
			t.Errorf("a no-op wrote: %+v", after)
		}
	})
}

func TestReferralServiceRefusalsWriteNothing(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newRefWorld(t, db, nil)
		ctx := context.Background()
		onlyCreated := written{audit: []string{"referral.create/success"}}
		tests := []struct {
			name  string
			setup func() referral.Referral
			by    auth.Principal
			ver   func(referral.Referral) int
			check func(t *testing.T, err error)
		}{
			{
				name:  "a version the caller has not seen is stale",
				setup: func() referral.Referral { return w.draft(t, w.input(w.patient)) },
				by:    w.doctor,
				ver:   func(r referral.Referral) int { return r.Version + 1 },
				check: func(t *testing.T, err error) {
					if !errors.Is(err, apperr.ErrStale) {
						t.Fatalf("got %v, want stale", err)
					}
				},
			},
			{
				name:  "a patient without consent to referral cannot be sent",
				setup: func() referral.Referral { return w.draft(t, w.input(w.addPatient(t, false))) },
				by:    w.doctor,
				check: func(t *testing.T, err error) { wantFieldError(t, err, "consent") },
			},
			{
				name: "an up-referral goes only along the pairings",
				setup: func() referral.Referral {
					in := w.input(w.patient)
					in.ReceivingHospitalID = w.otherCounty
					return w.draft(t, in)
				},
				by:    w.doctor,
				check: func(t *testing.T, err error) { wantFieldError(t, err, "receiving_hospital_id") },
			},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := tc.setup()
				ver := r.Version
				if tc.ver != nil {
					ver = tc.ver(r)
				}
				_, err := w.svc.Act(ctx, tc.by, r.ID, ver, referral.Submit, referral.ActionInput{})
				tc.check(t, err)
				stored, gerr := w.st.Get(ctx, r.ID)
				if gerr != nil || stored.Status != referral.Draft || stored.Version != 1 || stored.Number != "" {
					t.Errorf("ticket changed: %v %+v", gerr, stored)
				}
				if got := w.written(t, r.ID); fmt.Sprint(got) != fmt.Sprint(onlyCreated) {
					t.Errorf("wrote %+v", got)
				}
			})
		}
	})
}

func TestReferralServiceHidesTicketsFromNonParties(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newRefWorld(t, db, nil)
		ctx := context.Background()
		r := w.draft(t, w.input(w.patient))

		// A draft is the referrer's own: the receiving desk does not see it yet.
		if _, err := w.svc.Get(ctx, w.desk, r.ID); !errors.Is(err, apperr.ErrNotFound) {
			t.Fatalf("receiver reading a draft: %v, want not found", err)
		}
		r = w.act(t, w.doctor, r, referral.Submit, referral.ActionInput{})
		if _, err := w.svc.Get(ctx, w.outside, r.ID); !errors.Is(err, apperr.ErrNotFound) {
			t.Fatalf("outsider reading: %v, want not found", err)
		}
		if _, err := w.svc.Events(ctx, w.outside, r.ID); !errors.Is(err, apperr.ErrNotFound) {
			t.Fatalf("outsider reading events: %v, want not found", err)
		}
		if _, err := w.svc.Act(ctx, w.outside, r.ID, r.Version, referral.Claim, referral.ActionInput{}); !errors.Is(err, apperr.ErrNotFound) {
			t.Fatalf("outsider claiming: %v, want not found", err)
		}
		list, err := w.svc.List(ctx, w.outside, store.ReferralFilter{ReceivingHospitalID: w.tertiary, Limit: 10})
		if err != nil || len(list) != 0 {
			t.Fatalf("outsider listing: %v %v", list, err)
		}
		if list, err := w.svc.List(ctx, w.desk, store.ReferralFilter{Limit: 10}); err != nil || len(list) != 1 || list[0].ID != r.ID {
			t.Fatalf("desk listing: %v %v", list, err)
		}

		var denied []string
		rows, err := db.Query(ctx, `SELECT actor_id FROM audit_log WHERE resource_id = $1 AND action = $2 AND outcome = $3 ORDER BY seq`,
			r.ID, audit.AccessDenied, string(audit.Denied))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var actor string
			if err := rows.Scan(&actor); err != nil {
				t.Fatal(err)
			}
			denied = append(denied, actor)
		}
		want := []string{w.desk.UserID, w.outside.UserID, w.outside.UserID, w.outside.UserID}
		if !slices.Equal(denied, want) {
			t.Fatalf("access.denied rows by %v, want %v", denied, want)
		}
		if got := w.written(t, r.ID); len(got.events) != 1 || len(got.outbox) != 1 {
			t.Fatalf("a refused claim wrote: %+v", got)
		}
	})
}

func TestReferralServiceNumbersOnSubmit(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newRefWorld(t, db, nil)
		seen := map[string]bool{}
		china, err := time.LoadLocation("Asia/Shanghai")
		if err != nil {
			t.Fatal(err)
		}
		today := w.now.In(china).Format(time.DateOnly)
		for i := range 5 {
			r := w.act(t, w.doctor, w.draft(t, w.input(w.patient)), referral.Submit, referral.ActionInput{})
			day, seq, err := referral.ParseNumber(r.Number)
			if err != nil || day.Format(time.DateOnly) != today || seq != int64(i+1) {
				t.Fatalf("number %q: day %v seq %d err %v; want the %d-th of %s", r.Number, day, seq, err, i+1, today)
			}
			if seen[r.Number] {
				t.Fatalf("number %s given twice", r.Number)
			}
			seen[r.Number] = true
		}
	})
}

// dayCounter is where the day's ticket counter stands (0 before the day's
// first number).
func (w *refWorld) dayCounter(t *testing.T, day time.Time) int64 {
	t.Helper()
	var last int64
	err := w.db.QueryRow(context.Background(), `SELECT last FROM referral_numbers WHERE day = $1`, day.Format("20060102")).Scan(&last)
	if err != nil && !errors.Is(err, sqldb.ErrNoRows) {
		t.Fatal(err)
	}
	return last
}

// Two instances on one database submit concurrently: no number is given
// twice. On SQLite the counter moves by one in each ticket's transaction, so
// the numbers are 1..n; on PostgreSQL each instance takes blocks of 50 from
// the counter, so it moves once per block and never past the blocks the
// numbers needed (each instance may hold one block partly used).
func TestReferralServiceNumbersUniqueAcrossInstances(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		w := newRefWorld(t, db, nil)
		instances := []*referrals.Service{w.svc, w.instance()}
		// SQLite's writers queue on its busy timeout, which makes many slow.
		n := int(pick(db, 60, 240))
		drafts := make([]referral.Referral, n)
		for i := range drafts {
			drafts[i] = w.draft(t, w.input(w.patient))
		}
		numbers := make([]string, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, d := range drafts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r, err := instances[i%len(instances)].Act(ctx, w.doctor, d.ID, d.Version, referral.Submit, referral.ActionInput{})
				numbers[i], errs[i] = r.Number, err
			}()
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}

		china, err := time.LoadLocation("Asia/Shanghai")
		if err != nil {
			t.Fatal(err)
		}
		today := w.now.In(china)
		seqs := make([]int64, n)
		seen := map[string]bool{}
		for i, num := range numbers {
			day, seq, err := referral.ParseNumber(num)
			if err != nil || day.Format(time.DateOnly) != today.Format(time.DateOnly) {
				t.Fatalf("number %q: day %v err %v; want one of %s", num, day, err, today.Format(time.DateOnly))
			}
			if seen[num] {
				t.Fatalf("number %s given twice", num)
			}
			seen[num] = true
			seqs[i] = seq
		}
		slices.Sort(seqs)
		last := w.dayCounter(t, today)
		if db.Dialect() == sqldb.SQLite {
			if seqs[0] != 1 || seqs[n-1] != int64(n) || last != int64(n) {
				t.Fatalf("SQLite numbers run %d..%d, counter at %d; want 1..%d", seqs[0], seqs[n-1], last, n)
			}
			return
		}
		const block = 50
		if last%block != 0 || seqs[n-1] > last || last > int64((n/block+len(instances))*block) {
			t.Fatalf("PostgreSQL counter at %d, highest number %d; want whole blocks of %d, at most %d of them",
				last, seqs[n-1], block, n/block+len(instances))
		}
	})
}

// A new day starts a new block: the day's numbers begin again at one, each
// instance takes its own block of the new day, and what was left of the old
// day's block is abandoned.
func TestReferralServiceNumbersStartAgainEachDay(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newRefWorld(t, db, nil)
		other := w.instance()
		china, err := time.LoadLocation("Asia/Shanghai")
		if err != nil {
			t.Fatal(err)
		}
		submit := func(svc *referrals.Service) (string, int64) {
			t.Helper()
			d := w.draft(t, w.input(w.patient))
			r, err := svc.Act(context.Background(), w.doctor, d.ID, d.Version, referral.Submit, referral.ActionInput{})
			if err != nil {
				t.Fatal(err)
			}
			day, seq, err := referral.ParseNumber(r.Number)
			if err != nil {
				t.Fatal(err)
			}
			return day.Format(time.DateOnly), seq
		}
		type step struct {
			svc              *referrals.Service
			sqlite, postgres int64 // the sequence number each engine gives
		}
		first := w.now.In(china)
		for _, s := range []step{{w.svc, 1, 1}, {w.svc, 2, 2}} {
			if day, seq := submit(s.svc); day != first.Format(time.DateOnly) || seq != pick(db, s.sqlite, s.postgres) {
				t.Fatalf("first day: %s #%d, want %s #%d", day, seq, first.Format(time.DateOnly), pick(db, s.sqlite, s.postgres))
			}
		}

		w.now = w.now.Add(24 * time.Hour)
		second := w.now.In(china)
		for i, s := range []step{{w.svc, 1, 1}, {other, 2, 51}, {w.svc, 3, 2}, {other, 4, 52}} {
			if day, seq := submit(s.svc); day != second.Format(time.DateOnly) || seq != pick(db, s.sqlite, s.postgres) {
				t.Fatalf("second day, submission %d: %s #%d, want %s #%d", i, day, seq, second.Format(time.DateOnly), pick(db, s.sqlite, s.postgres))
			}
		}
		// The first day's block was not touched again.
		if got := w.dayCounter(t, first); got != pick(db, 2, 50) {
			t.Fatalf("first day's counter at %d, want %d", got, pick(db, 2, 50))
		}
	})
}

// pick is the value a test expects on db's engine.
func pick(db sqldb.DB, sqlite, postgres int64) int64 {
	if db.Dialect() == sqldb.Postgres {
		return postgres
	}
	return sqlite
}

func TestReferralServiceAuditFailureRollsBack(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newRefWorld(t, db, func(next audit.Recorder) audit.Recorder {
			return failingAudit{next: next, action: "referral.submit"}
		})
		ctx := context.Background()
		r := w.draft(t, w.input(w.patient))
		if _, err := w.svc.Act(ctx, w.doctor, r.ID, r.Version, referral.Submit, referral.ActionInput{}); err == nil {
			t.Fatal("submit succeeded without its audit row")
		}
		stored, err := w.st.Get(ctx, r.ID)
		if err != nil || stored.Status != referral.Draft || stored.Version != 1 || stored.Number != "" {
			t.Fatalf("ticket changed: %v %+v", err, stored)
		}
		if got := w.written(t, r.ID); len(got.events) != 0 || len(got.outbox) != 0 {
			t.Fatalf("rolled-back submit left %+v", got)
		}
		// No ticket carries the number. (On PostgreSQL the day's counter is
		// advanced on its own, so a failed submission may leave a gap:
		// numbers are unique, not gapless.)
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM referrals WHERE number IS NOT NULL AND number <> ''`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("numbered tickets: %d %v", n, err)
		}
	})
}

// TestReferralServiceEditWhileWithTheReferrer: the referrer rewrites a draft
// and a ticket the desk asked about, each at the version they saw, and the
// history keeps the edit; once the ticket is with the receiving desk, or on a
// version the caller has not seen, nothing changes.
func TestReferralServiceEditWhileWithTheReferrer(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		w := newRefWorld(t, db, nil)
		in := w.input(w.patient)
		d := w.draft(t, in)

		in.Reason = "需冠脉造影评估，肌钙蛋白升高"
		edited, err := w.svc.Edit(ctx, w.doctor, d.ID, d.Version, in)
		if err != nil {
			t.Fatal(err)
		}
		if edited.Reason != in.Reason || edited.Version != d.Version+1 {
			t.Fatalf("edit: reason %q version %d", edited.Reason, edited.Version)
		}
		if _, err := w.svc.Edit(ctx, w.doctor, d.ID, d.Version, in); !errors.Is(err, apperr.ErrStale) {
			t.Fatalf("edit at a version not seen: %v, want stale", err)
		}
		if _, err := w.svc.Edit(ctx, w.outside, d.ID, edited.Version, in); !errors.Is(err, apperr.ErrNotFound) {
			t.Fatalf("edit by a stranger: %v, want not found", err)
		}
		bad := in
		bad.Diagnoses = []referral.Diagnosis{{Code: "心梗", Text: "心梗"}}
		_, err = w.svc.Edit(ctx, w.doctor, d.ID, edited.Version, bad)
		wantFieldError(t, err, "diagnoses[0].code")

		sub := w.act(t, w.doctor, edited, referral.Submit, referral.ActionInput{})
		if _, err := w.svc.Edit(ctx, w.doctor, sub.ID, sub.Version, in); !errors.Is(err, apperr.ErrConflict) {
			t.Fatalf("edit of a submitted ticket: %v, want a conflict", err)
		}
		claimed := w.act(t, w.desk, sub, referral.Claim, referral.ActionInput{})
		asked := w.act(t, w.desk, claimed, referral.RequestInfo, referral.ActionInput{Question: "请补充心电图"})
		in.ClinicalSummary = "反复胸闷1周，心电图V1-V4 ST段压低0.1mV"
		answered, err := w.svc.Edit(ctx, w.doctor, asked.ID, asked.Version, in)
		if err != nil || answered.Status != referral.InfoRequested {
			t.Fatalf("edit after the desk's question: %s %v", answered.Status, err)
		}
		got := w.written(t, d.ID)
		want := []string{"edit:draft→draft", "submit:draft→submitted", "claim:submitted→claimed",
			"request_info:claimed→info_requested", "edit:info_requested→info_requested"}
		if !slices.Equal(got.events, want) {
			t.Errorf("history %v, want %v", got.events, want)
		}
		if !slices.Contains(got.audit, referrals.ActionEdit+"/success") {
			t.Errorf("the edit is not audited: %v", got.audit)
		}
	})
}

// TestReferralServiceWakesTheRelayOnlyAfterCommit: the relay is woken once a
// change has committed, including when the change runs inside a caller's
// transaction (a retried request's), and never for a change rolled back.
func TestReferralServiceWakesTheRelayOnlyAfterCommit(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		w := newRefWorld(t, db, nil)
		woken := 0
		w.svc.OnChange(func() { woken++ })
		d := w.draft(t, w.input(w.patient))

		err := db.InTx(ctx, func(ctx context.Context) error {
			if _, err := w.svc.Act(ctx, w.doctor, d.ID, d.Version, referral.Submit, referral.ActionInput{}); err != nil {
				return err
			}
			if woken != 0 {
				t.Errorf("the relay was woken before the outer transaction committed")
			}
			return nil
		})
		if err != nil || woken != 1 {
			t.Fatalf("after commit: woken %d times (%v), want once", woken, err)
		}

		sub, err := w.st.Get(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		_ = db.InTx(ctx, func(ctx context.Context) error {
			if _, err := w.svc.Act(ctx, w.desk, sub.ID, sub.Version, referral.Claim, referral.ActionInput{}); err != nil {
				t.Fatal(err)
			}
			return errors.New("the request failed later")
		})
		if woken != 1 {
			t.Errorf("a rolled-back change woke the relay (%d)", woken)
		}
	})
}
