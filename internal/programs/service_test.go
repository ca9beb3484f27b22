package programs_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"duikou/attachment"
	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/directory"
	"duikou/internal/program"
	"duikou/internal/programs"
	"duikou/internal/referrals"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/referral"
)

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// world: 省医院 (tertiary) supports 县医院 (county); 他县 is unrelated. The
// clock starts on 1 March 2026, 09:00 in Shanghai, and tests move it.
type world struct {
	db                                    sqldb.DB
	svc                                   *programs.Service
	beds                                  *referrals.Beds
	now                                   time.Time
	tertiary, county, other               string
	cardio, countyMed                     string
	pairing                               string
	attending, associate, resident, nurse string
	office, countyOffice, otherOffice     auth.Principal
	doctor, countyDoctor                  auth.Principal
}

func newWorld(t *testing.T) *world {
	t.Helper()
	return newWorldOn(t, sqldbtest.SQLite(t))
}

// newWorldOn builds the world on db (one engine of sqldbtest.ForEach).
func newWorldOn(t *testing.T, db sqldb.DB) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{db: db, now: time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)}
	dir := store.NewDirectory(db)
	at := sqldb.Now()
	hospital := func(n int, tier directory.Tier) string {
		h := directory.Hospital{ID: newID(), Name: fmt.Sprintf("医院%d", n), OrgCode: fmt.Sprintf("12510000%010d", n), Tier: tier,
			Province: "四川省", County: "苍溪县", TimeZone: directory.DefaultTimeZone, Version: 1, CreatedAt: at, UpdatedAt: at}
		if err := dir.CreateHospital(ctx, h); err != nil {
			t.Fatal(err)
		}
		return h.ID
	}
	w.tertiary, w.county, w.other = hospital(1, directory.Tertiary), hospital(2, directory.Secondary), hospital(3, directory.Secondary)
	pr := directory.Pairing{ID: newID(), SupportingHospitalID: w.tertiary, RecipientHospitalID: w.county, StartsOn: "2025-01-01",
		Status: directory.PairingActive, Version: 1, CreatedAt: at, UpdatedAt: at}
	if err := dir.CreatePairing(ctx, pr); err != nil {
		t.Fatal(err)
	}
	w.pairing = pr.ID
	dept := func(h, name string) string {
		d := directory.Department{ID: newID(), HospitalID: h, Code: "03", Name: name, Version: 1, CreatedAt: at, UpdatedAt: at}
		if err := dir.CreateDepartment(ctx, d); err != nil {
			t.Fatal(err)
		}
		return d.ID
	}
	w.cardio, w.countyMed = dept(w.tertiary, "心血管内科"), dept(w.county, "内科")
	staff := func(h, name string, title directory.Title, dept *string) string {
		s := directory.Staff{ID: newID(), HospitalID: h, DepartmentID: dept, Name: name, Title: title, Phone: "13800000000",
			Active: true, Version: 1, CreatedAt: at, UpdatedAt: at}
		if err := dir.CreateStaff(ctx, s); err != nil {
			t.Fatal(err)
		}
		return s.ID
	}
	w.attending = staff(w.tertiary, "王主治", "attending_physician", &w.cardio)
	w.associate = staff(w.tertiary, "李副主任", "associate_chief_physician", &w.cardio)
	w.resident = staff(w.tertiary, "赵住院", "resident_physician", nil)
	w.nurse = staff(w.county, "陈护士", "nurse", &w.countyMed)

	both := []string{w.tertiary, w.county}
	w.office = w.user(t, w.tertiary, both, "", auth.ProgramOffice)
	w.countyOffice = w.user(t, w.county, both, "", auth.ProgramOffice)
	w.otherOffice = w.user(t, w.other, []string{w.other}, "", auth.ProgramOffice)
	w.doctor = w.user(t, w.tertiary, both, w.attending, auth.DispatchedDoctor)
	w.countyDoctor = w.user(t, w.county, both, "", auth.CountyDoctor)

	rec := audit.NewLog(store.NewAuditLog(db), nil)
	clock := func() time.Time { return w.now }
	refs := referrals.NewService(db, store.NewReferrals(db), rec, nil, clock, referral.DefaultDeadlines())
	w.beds = referrals.NewBeds(refs, store.NewReferrals(db), dir)
	svc, err := programs.NewService(db, store.NewProgram(db), dir, store.NewUsers(db), store.NewAttachments(db), rec, w.beds, program.Config{}, clock)
	if err != nil {
		t.Fatal(err)
	}
	w.svc = svc
	return w
}

func (w *world) user(t *testing.T, hospital string, reach []string, staffID string, roles ...auth.Role) auth.Principal {
	t.Helper()
	p := auth.Principal{UserID: newID(), HospitalID: hospital, Roles: roles, Reach: map[string]bool{}}
	for _, h := range reach {
		p.Reach[h] = true
	}
	var staff any
	if staffID != "" {
		staff = staffID
	}
	if _, err := w.db.Exec(context.Background(), `INSERT INTO users (id, username, display_name, hospital_id, staff_id, password_hash, created_at, updated_at)
		VALUES ($1, $2, $2, $3, $4, 'x', $5, $5)`, p.UserID, "u"+p.UserID[24:], hospital, staff, sqldb.Now()); err != nil {
		t.Fatal(err)
	}
	return p
}

// day sets the clock to 09:00 of day in Shanghai.
func (w *world) day(d string) {
	t, _ := program.ParseDay(d)
	w.now = t.Add(9 * time.Hour).UTC()
}

func (w *world) posting(t *testing.T, staff, team, from, to, reason string) program.Posting {
	t.Helper()
	x, err := w.svc.CreatePosting(context.Background(), w.office, program.PostingInput{PairingID: w.pairing, StaffID: staff,
		RecipientDepartmentID: w.countyMed, StartsOn: from, EndsOn: to, Team: team, OverrideReason: reason})
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func fields(err error) []string {
	var v apperr.Invalid
	if !errors.As(err, &v) {
		return nil
	}
	var out []string
	for _, f := range v {
		out = append(out, f.Field)
	}
	return out
}

func TestPostingRulesNeedTheOfficesReasonToBeOverridden(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	in := program.PostingInput{PairingID: w.pairing, StaffID: w.resident, RecipientDepartmentID: w.countyMed,
		StartsOn: "2026-03-10", EndsOn: "2026-05-31", Team: "第一批"}
	_, err := w.svc.CreatePosting(ctx, w.office, in)
	if got := strings.Join(fields(err), ","); got != "staff_id,team,ends_on" {
		t.Fatalf("a resident alone for under three months: %v (fields %s)", err, got)
	}
	in.OverrideReason = "县医院急需，下批补派副主任医师"
	x, err := w.svc.CreatePosting(ctx, w.office, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Warnings) != 3 || x.Override == nil || x.Override.By != w.office.UserID || x.Override.Reason != in.OverrideReason {
		t.Errorf("override not kept: %+v %+v", x.Warnings, x.Override)
	}
	if x.StaffName != "赵住院" || x.Title != "resident_physician" || x.HomeHospitalID != w.tertiary || x.ArrivalDueOn != "2026-03-17" {
		t.Errorf("posting: %+v", x)
	}
	// An associate chief for six months completes the team: no warning.
	y := w.posting(t, w.associate, "第一批", "2026-03-10", "2026-09-09", "")
	if len(y.Warnings) != 0 || y.Override != nil {
		t.Errorf("a compliant posting: %+v", y.Warnings)
	}
	// An attending joins the same team later: the associate chief is there.
	z := w.posting(t, w.attending, "第一批", "2026-04-01", "2026-09-30", "")
	if len(z.Warnings) != 0 {
		t.Errorf("attending joining an associate chief: %+v", z.Warnings)
	}
	// Shortening a posting is checked again and needs a reason again.
	short := "2026-06-30"
	if _, err := w.svc.UpdatePosting(ctx, w.office, z.ID, z.Version, program.PostingPatch{EndsOn: &short}); strings.Join(fields(err), ",") != "ends_on" {
		t.Errorf("shortened without reason: %v", err)
	}
	if _, err := w.svc.UpdatePosting(ctx, w.office, z.ID, z.Version+1, program.PostingPatch{EndsOn: &short, OverrideReason: "x"}); !errors.Is(err, apperr.ErrStale) {
		t.Errorf("stale version: %v", err)
	}
	z2, err := w.svc.UpdatePosting(ctx, w.office, z.ID, z.Version, program.PostingPatch{EndsOn: &short, OverrideReason: "家中有事提前结束"})
	if err != nil || z2.Version != 2 || z2.Override == nil || len(z2.Warnings) != 1 {
		t.Errorf("shortened with reason: %+v %v", z2, err)
	}

	for name, tc := range map[string]struct {
		p    auth.Principal
		in   program.PostingInput
		want error
	}{
		"a county doctor":            {w.countyDoctor, in, apperr.ErrForbidden},
		"an unrelated office":        {w.otherOffice, in, nil}, // pairing_id field error
		"the recipient's staff sent": {w.office, func() program.PostingInput { i := in; i.StaffID = w.nurse; return i }(), nil},
		"before the pairing began":   {w.office, func() program.PostingInput { i := in; i.StartsOn = "2024-12-31"; return i }(), nil},
	} {
		_, err := w.svc.CreatePosting(ctx, tc.p, tc.in)
		if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
		if tc.want == nil && len(fields(err)) == 0 {
			t.Errorf("%s: %v, want a field error", name, err)
		}
	}
}

func TestArrivalIsFlaggedWhenLateOrMissing(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	x := w.posting(t, w.associate, "第一批", "2026-03-02", "2026-09-01", "")
	if x.ArrivalStatus != program.ArrivalPending || x.ArrivalDueOn != "2026-03-09" {
		t.Fatalf("new posting: %s due %s", x.ArrivalStatus, x.ArrivalDueOn)
	}
	w.day("2026-03-09")
	if got, _ := w.svc.Posting(ctx, w.countyOffice, x.ID); got.ArrivalStatus != program.ArrivalPending {
		t.Errorf("on the due day: %s", got.ArrivalStatus)
	}
	w.day("2026-03-10")
	if got, _ := w.svc.Posting(ctx, w.countyOffice, x.ID); got.ArrivalStatus != program.ArrivalMissing {
		t.Errorf("the day after: %s", got.ArrivalStatus)
	}
	// Only the recipient's office confirms.
	if _, err := w.svc.ConfirmArrival(ctx, w.office, x.ID, x.Version, program.ArrivalInput{ArrivedOn: "2026-03-10"}); !errors.Is(err, apperr.ErrForbidden) {
		t.Errorf("the supporting office confirming: %v", err)
	}
	if _, err := w.svc.ConfirmArrival(ctx, w.countyOffice, x.ID, x.Version, program.ArrivalInput{ArrivedOn: "2026-03-11"}); strings.Join(fields(err), ",") != "arrived_on" {
		t.Errorf("an arrival tomorrow: %v", err)
	}
	if _, err := w.svc.ConfirmArrival(ctx, w.countyOffice, x.ID, 0, program.ArrivalInput{ArrivedOn: "2026-03-10"}); !errors.Is(err, apperr.ErrStale) {
		t.Errorf("stale: %v", err)
	}
	got, err := w.svc.ConfirmArrival(ctx, w.countyOffice, x.ID, x.Version, program.ArrivalInput{ArrivedOn: "2026-03-10", Note: "路上耽搁"})
	if err != nil || got.ArrivalStatus != program.ArrivalLate || got.Arrival.ConfirmedBy != w.countyOffice.UserID {
		t.Errorf("late arrival: %+v %v", got, err)
	}
	if _, err := w.svc.Posting(ctx, w.otherOffice, x.ID); !errors.Is(err, apperr.ErrNotFound) {
		t.Errorf("an unrelated office reading: %v, want not found", err)
	}
}

func TestMonthlyEvaluationsAreDueAndOverdueByTheClock(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	x := w.posting(t, w.associate, "第一批", "2026-03-02", "2026-09-01", "")
	scores := map[string]int{"discipline": 18, "ethics": 19, "clinical": 27, "teaching": 25}

	w.day("2026-04-10")
	ev, err := w.svc.Evaluations(ctx, w.office, x.ID)
	if err != nil || len(ev.Overdue) != 0 || len(ev.Criteria) != 4 {
		t.Fatalf("on March's due day: %+v %v", ev, err)
	}
	w.day("2026-04-11")
	if ev, _ = w.svc.Evaluations(ctx, w.office, x.ID); len(ev.Overdue) != 1 || ev.Overdue[0].Month != "2026-03" || ev.Overdue[0].DueOn != "2026-04-10" {
		t.Fatalf("a day after: %+v", ev.Overdue)
	}
	if _, _, err := w.svc.Evaluate(ctx, w.countyOffice, x.ID, "2026-03", 0, program.EvaluationInput{Scores: map[string]int{"discipline": 21}}); strings.Join(fields(err), ",") == "" {
		t.Errorf("bad scores accepted: %v", err)
	}
	if _, _, err := w.svc.Evaluate(ctx, w.countyOffice, x.ID, "2026-05", 0, program.EvaluationInput{Scores: scores}); strings.Join(fields(err), ",") != "month" {
		t.Errorf("a month not begun: %v", err)
	}
	if _, _, err := w.svc.Evaluate(ctx, w.countyOffice, x.ID, "2027-01", 0, program.EvaluationInput{Scores: scores}); !errors.Is(err, apperr.ErrNotFound) {
		t.Errorf("a month outside the posting: %v", err)
	}
	if _, _, err := w.svc.Evaluate(ctx, w.office, x.ID, "2026-03", 0, program.EvaluationInput{Scores: scores}); !errors.Is(err, apperr.ErrForbidden) {
		t.Errorf("the supporting side evaluating: %v", err)
	}
	e, created, err := w.svc.Evaluate(ctx, w.countyOffice, x.ID, "2026-03", 0, program.EvaluationInput{Scores: scores, Comment: "认真负责"})
	if err != nil || !created || e.Total != 89 || !e.Late || e.DueOn != "2026-04-10" {
		t.Fatalf("late evaluation: %+v %v", e, err)
	}
	if ev, _ = w.svc.Evaluations(ctx, w.office, x.ID); len(ev.Overdue) != 0 || len(ev.Evaluations) != 1 {
		t.Errorf("after filing: %+v", ev)
	}
	// April's, filed in time, is not late.
	w.day("2026-05-03")
	if e, _, err := w.svc.Evaluate(ctx, w.countyOffice, x.ID, "2026-04", 0, program.EvaluationInput{Scores: scores}); err != nil || e.Late {
		t.Errorf("in time: %+v %v", e, err)
	}
	if _, _, err := w.svc.Evaluate(ctx, w.countyOffice, x.ID, "2026-04", 0, program.EvaluationInput{Scores: scores}); !errors.Is(err, apperr.ErrStale) {
		t.Errorf("filing twice without If-Match: %v", err)
	}

	// The final appraisal opens in the posting's last month.
	if _, err := w.svc.Appraise(ctx, w.countyOffice, x.ID, x.Version, program.AppraisalInput{Grade: program.Excellent, Comment: "优秀"}); strings.Join(fields(err), ",") != "grade" {
		t.Errorf("appraisal in May: %v", err)
	}
	w.day("2026-08-15")
	got, err := w.svc.Appraise(ctx, w.countyOffice, x.ID, x.Version, program.AppraisalInput{Grade: program.Excellent, Comment: "优秀"})
	if err != nil || got.Appraisal == nil || got.Appraisal.Grade != program.Excellent {
		t.Errorf("appraisal: %+v %v", got, err)
	}
}

func TestAttendanceAndWorkLogsAreTheDoctorsToEnterAndTheRecipientsToConfirm(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	x := w.posting(t, w.attending, "第一批", "2026-03-02", "2026-09-01", "x")
	w.day("2026-03-03")
	if _, err := w.svc.RecordAttendance(ctx, w.doctor, x.ID, program.AttendanceInput{Day: "2026-03-02", Status: program.Present}); strings.Join(fields(err), ",") != "day" {
		t.Errorf("a check-in for yesterday: %v", err)
	}
	if _, err := w.svc.RecordAttendance(ctx, w.doctor, x.ID, program.AttendanceInput{Day: "2026-03-03", Status: program.Leave}); strings.Join(fields(err), ",") != "reason" {
		t.Errorf("leave without a reason: %v", err)
	}
	if _, err := w.svc.RecordAttendance(ctx, w.countyDoctor, x.ID, program.AttendanceInput{Day: "2026-03-03", Status: program.Present}); !errors.Is(err, apperr.ErrForbidden) {
		t.Errorf("someone else checking in: %v", err)
	}
	if _, err := w.svc.RecordAttendance(ctx, w.doctor, x.ID, program.AttendanceInput{Day: "2026-03-03", Status: program.Present}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.RecordAttendance(ctx, w.doctor, x.ID, program.AttendanceInput{Day: "2026-03-05", Status: program.Leave, Reason: "回院参加职称考试"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.RecordAttendance(ctx, w.countyOffice, x.ID, program.AttendanceInput{Day: "2026-03-02", Status: program.Absent}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.ConfirmAttendance(ctx, w.countyOffice, x.ID, "2026-03-03"); err != nil {
		t.Fatal(err)
	}
	w.day("2026-03-05")
	m, err := w.svc.Attendance(ctx, w.office, x.ID, "2026-03")
	if err != nil || m.Rate.WorkDays != 4 || m.Rate.Present != 1 || m.Rate.Confirmed != 1 || m.Rate.Leave != 1 || m.Rate.Absent != 2 || m.Rate.Rate != 0.25 {
		t.Errorf("attendance: %+v %v", m.Rate, err)
	}

	in := program.WorkLogInput{Day: "2026-03-03", Counts: program.WorkCounts{Outpatients: 35, TeachingRounds: 1, NewTechniques: 1}, TechniqueNames: []string{"动态心电图"}}
	if _, err := w.svc.AddWorkLog(ctx, w.countyOffice, x.ID, in); !errors.Is(err, apperr.ErrForbidden) {
		t.Errorf("the office entering the doctor's log: %v", err)
	}
	bad := in
	bad.Counts.Outpatients = -1
	if _, err := w.svc.AddWorkLog(ctx, w.doctor, x.ID, bad); strings.Join(fields(err), ",") != "counts.outpatients" {
		t.Errorf("negative count: %v", err)
	}
	log, err := w.svc.AddWorkLog(ctx, w.doctor, x.ID, in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.ConfirmWorkLog(ctx, w.doctor, x.ID, log.ID); !errors.Is(err, apperr.ErrForbidden) {
		t.Errorf("the doctor confirming their own log: %v", err)
	}
	if c, err := w.svc.ConfirmWorkLog(ctx, w.countyOffice, x.ID, log.ID); err != nil || c.ConfirmedBy == nil {
		t.Errorf("confirm: %+v %v", c, err)
	}
}

func TestTheDoctorCorrectsAWorkLogEntryUntilItIsConfirmed(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newWorldOn(t, db)
		ctx := context.Background()
		x := w.posting(t, w.attending, "第一批", "2026-03-02", "2026-09-01", "x")
		w.day("2026-03-05")
		log, err := w.svc.AddWorkLog(ctx, w.doctor, x.ID, program.WorkLogInput{Day: "2026-03-03", Counts: program.WorkCounts{Outpatients: 35}})
		if err != nil || log.Version != 1 {
			t.Fatalf("log: %+v %v", log, err)
		}
		counts := program.WorkCounts{Outpatients: 30, NewTechniques: 1}
		names := []string{"动态心电图"}
		fix := program.WorkLogPatch{Counts: &counts, TechniqueNames: &names}
		tooMany := []string{"甲", "乙"}
		neg := program.WorkCounts{Operations: -1}
		for _, r := range []struct {
			name  string
			who   auth.Principal
			ver   int
			patch program.WorkLogPatch
			want  error
			field string
		}{
			{"an unrelated office", w.otherOffice, 1, fix, apperr.ErrNotFound, ""},
			{"the recipient office", w.countyOffice, 1, fix, apperr.ErrForbidden, ""},
			{"another doctor", w.countyDoctor, 1, fix, apperr.ErrForbidden, ""},
			{"a stale version", w.doctor, 2, fix, apperr.ErrStale, ""},
			{"a negative count", w.doctor, 1, program.WorkLogPatch{Counts: &neg}, nil, "counts.operations"},
			{"more names than techniques", w.doctor, 1, program.WorkLogPatch{TechniqueNames: &tooMany}, nil, "technique_names"},
			{"a day in the future", w.doctor, 1, program.WorkLogPatch{Day: "2026-03-06"}, nil, "day"},
			{"a day outside the posting", w.doctor, 1, program.WorkLogPatch{Day: "2026-03-01"}, nil, "day"},
		} {
			_, err := w.svc.UpdateWorkLog(ctx, r.who, x.ID, log.ID, r.ver, r.patch)
			if r.field != "" {
				if strings.Join(fields(err), ",") != r.field {
					t.Errorf("%s: %v, want the field %s", r.name, err, r.field)
				}
			} else if !errors.Is(err, r.want) {
				t.Errorf("%s: %v, want %v", r.name, err, r.want)
			}
		}
		if _, err := w.svc.UpdateWorkLog(ctx, w.doctor, x.ID, newID(), 1, fix); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("unknown entry: %v", err)
		}
		got, err := w.svc.UpdateWorkLog(ctx, w.doctor, x.ID, log.ID, 1, fix)
		if err != nil || got.Counts != counts || len(got.TechniqueNames) != 1 || got.Day != "2026-03-03" || got.Version != 2 {
			t.Fatalf("corrected: %+v %v", got, err)
		}
		if ls, err := w.svc.WorkLogs(ctx, w.office, x.ID); err != nil || len(ls) != 1 || ls[0].Counts.Outpatients != 30 {
			t.Errorf("the log after the correction: %+v %v", ls, err)
		}
		if _, err := w.svc.ConfirmWorkLog(ctx, w.countyOffice, x.ID, log.ID); err != nil {
			t.Fatal(err)
		}
		for _, ver := range []int{2, 3} {
			if _, err := w.svc.UpdateWorkLog(ctx, w.doctor, x.ID, log.ID, ver, fix); !errors.Is(err, apperr.ErrConflict) {
				t.Errorf("correcting a confirmed entry (version %d): %v", ver, err)
			}
		}
		var n int
		if err := w.db.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = $1 AND resource_id = $2`, programs.ActionWorkLogUpdate, log.ID).Scan(&n); err != nil || n != 1 {
			t.Errorf("audit rows: %d %v", n, err)
		}
	})
}

func TestAgreementAmendmentsKeepVersionsAndFeedTheBedPools(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	terms := program.Terms{StartsOn: "2026-01-01", EndsOn: "2028-12-31",
		Commitments:  program.Commitments{TeamsPerYear: 2, DaysPerYear: 180, TraineesPerYear: 4},
		GreenChannel: program.GreenChannel{ReservedBeds: []program.ReservedBeds{{DepartmentID: w.cardio, Beds: 3}}, FeeWaiver: "免挂号费", DirectExaminations: true},
		Targets:      []string{"3年内达到二级甲等"}}
	bad := terms
	bad.GreenChannel.ReservedBeds = []program.ReservedBeds{{DepartmentID: w.countyMed, Beds: 3}}
	if _, err := w.svc.CreateAgreement(ctx, w.office, programs.AgreementInput{PairingID: w.pairing, Terms: bad}); strings.Join(fields(err), ",") != "green_channel.reserved_beds[0].department_id" {
		t.Errorf("beds in the recipient's department: %v", err)
	}
	if _, err := w.svc.CreateAgreement(ctx, w.countyDoctor, programs.AgreementInput{PairingID: w.pairing, Terms: terms}); !errors.Is(err, apperr.ErrForbidden) {
		t.Errorf("a doctor writing an agreement: %v", err)
	}
	a, err := w.svc.CreateAgreement(ctx, w.office, programs.AgreementInput{PairingID: w.pairing, Terms: terms})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := w.beds.Pool(ctx, w.office, w.tertiary, w.cardio)
	if err != nil || pool.Size != 3 {
		t.Fatalf("pool after the agreement: %+v %v", pool, err)
	}
	next := terms
	next.GreenChannel.ReservedBeds = []program.ReservedBeds{{DepartmentID: w.cardio, Beds: 5}}
	if _, err := w.svc.AmendAgreement(ctx, w.countyOffice, a.ID, a.Version, next); strings.Join(fields(err), ",") != "amendment_reason" {
		t.Errorf("amendment without reason: %v", err)
	}
	next.AmendmentReason = "心内科床位增加"
	if _, err := w.svc.AmendAgreement(ctx, w.countyOffice, a.ID, a.Version+1, next); !errors.Is(err, apperr.ErrStale) {
		t.Errorf("stale amendment: %v", err)
	}
	b, err := w.svc.AmendAgreement(ctx, w.countyOffice, a.ID, a.Version, next)
	if err != nil || b.Version != 2 {
		t.Fatalf("amend: %+v %v", b, err)
	}
	if pool, _ := w.beds.Pool(ctx, w.office, w.tertiary, w.cardio); pool.Size != 5 {
		t.Errorf("pool after the amendment: %d", pool.Size)
	}
	vs, err := w.svc.AgreementVersions(ctx, w.countyDoctor, a.ID)
	if err != nil || len(vs) != 2 || vs[0].Terms.GreenChannel.ReservedBeds[0].Beds != 3 {
		t.Errorf("versions: %+v %v", vs, err)
	}
	if _, err := w.svc.AgreementVersions(ctx, w.otherOffice, a.ID); !errors.Is(err, apperr.ErrNotFound) {
		t.Errorf("an unrelated office: %v", err)
	}
	if got, _ := w.svc.Agreements(ctx, w.otherOffice, programs.Query{Limit: 50}); len(got) != 0 {
		t.Errorf("an unrelated office's list: %v", got)
	}
	if got, _ := w.svc.Agreements(ctx, w.countyDoctor, programs.Query{Limit: 50}); len(got) != 1 {
		t.Errorf("the county's list: %v", got)
	}
}

func TestClinicScheduleIsPublishedAWeekAheadAndShownToResidents(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	x := w.posting(t, w.associate, "第一批", "2026-03-02", "2026-09-01", "")
	w.day("2026-03-05")
	in := program.ClinicSessionInput{PostingID: x.ID, Day: "2026-03-11", StartsAt: "08:30", EndsAt: "11:30", Place: "门诊三楼"}
	if _, err := w.svc.PublishClinic(ctx, w.countyOffice, in); strings.Join(fields(err), ",") != "day" {
		t.Errorf("six days ahead: %v", err)
	}
	in.Day = "2026-03-12"
	if _, err := w.svc.PublishClinic(ctx, w.office, in); !errors.Is(err, apperr.ErrForbidden) {
		t.Errorf("the supporting office publishing: %v", err)
	}
	if _, err := w.svc.PublishClinic(ctx, w.countyOffice, in); err != nil {
		t.Fatal(err)
	}
	pub, err := w.svc.Public(ctx, w.county)
	if err != nil || len(pub.Sessions) != 1 {
		t.Fatalf("public: %+v %v", pub, err)
	}
	if s := pub.Sessions[0]; s.DoctorName != "李副主任" || s.TitleLabel != "副主任医师" || s.HomeHospital != "医院1" || s.Specialty != "心血管内科" {
		t.Errorf("public row: %+v", s)
	}
	if _, err := w.svc.ClinicSessions(ctx, w.otherOffice, w.county, "", ""); !errors.Is(err, apperr.ErrNotFound) {
		t.Errorf("an unrelated office: %v", err)
	}
	if _, err := w.svc.Public(ctx, newID()); !errors.Is(err, apperr.ErrNotFound) {
		t.Errorf("unknown hospital: %v", err)
	}
}

func TestPublishedClinicIsChangedOrCancelledByTheRecipientOffice(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newWorldOn(t, db)
		ctx := context.Background()
		x := w.posting(t, w.associate, "第一批", "2026-03-02", "2026-09-01", "")
		w.day("2026-03-05")
		c, err := w.svc.PublishClinic(ctx, w.countyOffice, program.ClinicSessionInput{PostingID: x.ID, Day: "2026-03-12", StartsAt: "08:30", EndsAt: "11:30", Place: "门诊三楼"})
		if err != nil || c.Version != 1 {
			t.Fatalf("publish: %+v %v", c, err)
		}
		audited := func(action string) int {
			var n int
			if err := w.db.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = $1 AND resource_id = $2`, action, c.ID).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		move := program.ClinicChange{Day: "2026-03-13", StartsAt: "14:00", EndsAt: "17:00", Place: "门诊二楼"}
		refusals := []struct {
			name  string
			who   auth.Principal
			ver   int
			ch    program.ClinicChange
			want  error
			field string
		}{
			{"an unrelated office", w.otherOffice, 1, move, apperr.ErrNotFound, ""},
			{"the supporting office", w.office, 1, move, apperr.ErrForbidden, ""},
			{"a stale version", w.countyOffice, 2, move, apperr.ErrStale, ""},
			{"ends before it starts", w.countyOffice, 1, program.ClinicChange{EndsAt: "08:00"}, nil, "ends_at"},
			{"less than the lead time ahead", w.countyOffice, 1, program.ClinicChange{Day: "2026-03-11"}, nil, "day"},
			{"outside the posting", w.countyOffice, 1, program.ClinicChange{Day: "2026-09-02"}, nil, "day"},
		}
		for _, r := range refusals {
			_, err := w.svc.ChangeClinic(ctx, r.who, c.ID, r.ver, r.ch)
			if r.field != "" {
				if strings.Join(fields(err), ",") != r.field {
					t.Errorf("%s: %v, want the field %s", r.name, err, r.field)
				}
			} else if !errors.Is(err, r.want) {
				t.Errorf("%s: %v, want %v", r.name, err, r.want)
			}
		}
		if _, err := w.svc.ChangeClinic(ctx, w.countyOffice, newID(), 1, move); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("unknown clinic: %v", err)
		}
		got, err := w.svc.ChangeClinic(ctx, w.countyOffice, c.ID, 1, move)
		if err != nil || got.Day != "2026-03-13" || got.StartsAt != "14:00" || got.EndsAt != "17:00" || got.Place != "门诊二楼" || got.Version != 2 {
			t.Fatalf("changed: %+v %v", got, err)
		}
		pub, err := w.svc.Public(ctx, w.county)
		if err != nil || len(pub.Sessions) != 1 || pub.Sessions[0].Day != "2026-03-13" || pub.Sessions[0].Place != "门诊二楼" {
			t.Fatalf("public after the change: %+v %v", pub, err)
		}

		if _, err := w.svc.CancelClinic(ctx, w.countyOffice, c.ID, 2, program.ClinicCancel{Reason: "  "}); strings.Join(fields(err), ",") != "reason" {
			t.Errorf("cancel without a reason: %v", err)
		}
		if _, err := w.svc.CancelClinic(ctx, w.countyOffice, c.ID, 1, program.ClinicCancel{Reason: "医生返院"}); !errors.Is(err, apperr.ErrStale) {
			t.Errorf("cancel on a stale version: %v", err)
		}
		if _, err := w.svc.CancelClinic(ctx, w.otherOffice, c.ID, 2, program.ClinicCancel{Reason: "医生返院"}); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("cancel by an unrelated office: %v", err)
		}
		got, err = w.svc.CancelClinic(ctx, w.countyOffice, c.ID, 2, program.ClinicCancel{Reason: "医生返院"})
		if err != nil || got.Cancelled == nil || got.Cancelled.Reason != "医生返院" || got.Version != 3 {
			t.Fatalf("cancelled: %+v %v", got, err)
		}
		if pub, err := w.svc.Public(ctx, w.county); err != nil || len(pub.Sessions) != 0 {
			t.Errorf("the public page still shows a cancelled clinic: %+v %v", pub, err)
		}
		list, err := w.svc.ClinicSessions(ctx, w.countyOffice, w.county, "", "")
		if err != nil || len(list) != 1 || list[0].Cancelled == nil {
			t.Errorf("the office's list keeps the cancelled clinic marked: %+v %v", list, err)
		}
		if _, err := w.svc.ChangeClinic(ctx, w.countyOffice, c.ID, 3, move); !errors.Is(err, apperr.ErrConflict) {
			t.Errorf("changing a cancelled clinic: %v", err)
		}
		if audited(programs.ActionClinicChange) != 1 || audited(programs.ActionClinicCancel) != 1 {
			t.Errorf("audit rows: %d changes, %d cancellations", audited(programs.ActionClinicChange), audited(programs.ActionClinicCancel))
		}
	})
}

func TestTraineesAreRecipientStaff(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	in := program.TraineeInput{PairingID: w.pairing, StaffID: w.attending, HostDepartment: "重症医学科", StartsOn: "2026-04-01", EndsOn: "2026-06-30"}
	if _, err := w.svc.AddTrainee(ctx, w.countyOffice, in); strings.Join(fields(err), ",") != "staff_id" {
		t.Errorf("supporting staff as trainee: %v", err)
	}
	in.StaffID = w.nurse
	tr, err := w.svc.AddTrainee(ctx, w.countyOffice, in)
	if err != nil || tr.StaffName != "陈护士" || tr.DepartmentID == nil || *tr.DepartmentID != w.countyMed {
		t.Fatalf("trainee: %+v %v", tr, err)
	}
	if got, _ := w.svc.Trainees(ctx, w.office, programs.Query{PairingID: w.pairing, Limit: 50}); len(got) != 1 {
		t.Errorf("list: %v", got)
	}
}

func TestATraineeRecordIsCorrectedByAProgramOfficeOfThePairing(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newWorldOn(t, db)
		ctx := context.Background()
		tr, err := w.svc.AddTrainee(ctx, w.countyOffice, program.TraineeInput{PairingID: w.pairing, StaffID: w.nurse, HostDepartment: "重症医学科",
			StartsOn: "2026-04-01", EndsOn: "2026-06-30"})
		if err != nil || tr.Version != 1 {
			t.Fatalf("trainee: %+v %v", tr, err)
		}
		commission := auth.Principal{UserID: newID(), HospitalID: newID(), Roles: []auth.Role{auth.ProgramOffice},
			Reach: map[string]bool{w.tertiary: true, w.county: true}}
		fix := program.TraineePatch{HostDepartment: "心血管内科", EndsOn: "2026-07-31"}
		for _, r := range []struct {
			name  string
			who   auth.Principal
			ver   int
			patch program.TraineePatch
			want  error
			field string
		}{
			{"an unrelated office", w.otherOffice, 1, fix, apperr.ErrNotFound, ""},
			{"a health commission watching the pairing", commission, 1, fix, apperr.ErrForbidden, ""},
			{"a stale version", w.countyOffice, 2, fix, apperr.ErrStale, ""},
			{"ends before it starts", w.countyOffice, 1, program.TraineePatch{EndsOn: "2026-03-31"}, nil, "ends_on"},
			{"not a day", w.countyOffice, 1, program.TraineePatch{StartsOn: "2026-4-1"}, nil, "starts_on"},
			{"a blank department", w.countyOffice, 1, program.TraineePatch{HostDepartment: "  "}, nil, "host_department"},
		} {
			_, err := w.svc.UpdateTrainee(ctx, r.who, tr.ID, r.ver, r.patch)
			if r.field != "" {
				if strings.Join(fields(err), ",") != r.field {
					t.Errorf("%s: %v, want the field %s", r.name, err, r.field)
				}
			} else if !errors.Is(err, r.want) {
				t.Errorf("%s: %v, want %v", r.name, err, r.want)
			}
		}
		if _, err := w.svc.UpdateTrainee(ctx, w.countyOffice, newID(), 1, fix); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("unknown trainee: %v", err)
		}
		// The supporting hospital's office may correct it too.
		got, err := w.svc.UpdateTrainee(ctx, w.office, tr.ID, 1, fix)
		if err != nil || got.HostDepartment != "心血管内科" || got.StartsOn != "2026-04-01" || got.EndsOn != "2026-07-31" || got.Version != 2 || got.StaffName != "陈护士" {
			t.Fatalf("corrected: %+v %v", got, err)
		}
		list, _ := w.svc.Trainees(ctx, w.countyOffice, programs.Query{PairingID: w.pairing, Limit: 50})
		if len(list) != 1 || list[0].EndsOn != "2026-07-31" || list[0].Version != 2 {
			t.Errorf("list after the correction: %+v", list)
		}
		var n int
		if err := w.db.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = $1 AND resource_id = $2`, programs.ActionTraineeUpdate, tr.ID).Scan(&n); err != nil || n != 1 {
			t.Errorf("audit rows: %d %v", n, err)
		}
	})
}

func TestAHealthCommissionReadsThePairingsItReachesButDoesNotWriteThem(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	commission := auth.Principal{UserID: newID(), HospitalID: newID(), Roles: []auth.Role{auth.ProgramOffice},
		Reach: map[string]bool{w.tertiary: true, w.county: true, w.other: true}}
	x := w.posting(t, w.associate, "第一批", "2026-03-02", "2026-09-01", "")
	if got, err := w.svc.Posting(ctx, commission, x.ID); err != nil || got.ID != x.ID {
		t.Errorf("read: %v", err)
	}
	if got, _ := w.svc.Postings(ctx, commission, programs.Query{Limit: 50}); len(got) != 1 {
		t.Errorf("list: %v", got)
	}
	if _, err := w.svc.CreatePosting(ctx, commission, program.PostingInput{PairingID: w.pairing, StaffID: w.associate,
		RecipientDepartmentID: w.countyMed, StartsOn: "2026-03-10", EndsOn: "2026-12-31", Team: "第二批"}); !errors.Is(err, apperr.ErrForbidden) {
		t.Errorf("create: %v, want forbidden", err)
	}
	late := "2026-12-31"
	if _, err := w.svc.UpdatePosting(ctx, commission, x.ID, x.Version, program.PostingPatch{EndsOn: &late}); !errors.Is(err, apperr.ErrForbidden) {
		t.Errorf("update: %v, want forbidden", err)
	}
	if _, err := w.svc.ConfirmArrival(ctx, commission, x.ID, x.Version, program.ArrivalInput{ArrivedOn: "2026-03-02"}); !errors.Is(err, apperr.ErrForbidden) {
		t.Errorf("arrival: %v, want forbidden", err)
	}
	// The county's office still lists the posting once the pairing has
	// ended and its partner left its reach.
	county := w.countyOffice
	county.Reach = map[string]bool{w.county: true}
	if got, _ := w.svc.Postings(ctx, county, programs.Query{Limit: 50}); len(got) != 1 {
		t.Errorf("after the pairing: %v", got)
	}
}

func TestEveryChangeIsAuditedWithItAndARefusedOneLeavesNothing(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	count := func(action string) int {
		var n int
		if err := w.db.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = $1`, action).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var postings int
	x := w.posting(t, w.associate, "第一批", "2026-03-02", "2026-09-01", "")
	if err := w.db.QueryRow(ctx, `SELECT count(*) FROM program_postings`).Scan(&postings); err != nil || postings != 1 {
		t.Fatalf("postings: %d %v", postings, err)
	}
	if count(programs.ActionPostingCreate) != 1 {
		t.Errorf("posting created without its audit row")
	}
	// Refused by the rules: neither the posting nor an audit row.
	if _, err := w.svc.CreatePosting(ctx, w.office, program.PostingInput{PairingID: w.pairing, StaffID: w.resident,
		RecipientDepartmentID: w.countyMed, StartsOn: "2026-03-10", EndsOn: "2026-04-30", Team: "第二批"}); err == nil {
		t.Fatal("a resident for seven weeks accepted without reason")
	}
	if err := w.db.QueryRow(ctx, `SELECT count(*) FROM program_postings`).Scan(&postings); err != nil || postings != 1 || count(programs.ActionPostingCreate) != 1 {
		t.Errorf("after a refusal: %d postings, %d audit rows", postings, count(programs.ActionPostingCreate))
	}
	w.day("2026-03-04")
	if _, err := w.svc.ConfirmArrival(ctx, w.countyOffice, x.ID, x.Version, program.ArrivalInput{ArrivedOn: "2026-03-03"}); err != nil {
		t.Fatal(err)
	}
	if count(programs.ActionArrival) != 1 {
		t.Errorf("arrival without its audit row")
	}
	// Reading outside reach is refused and recorded.
	before := count("access.denied")
	if _, err := w.svc.Posting(ctx, w.otherOffice, x.ID); !errors.Is(err, apperr.ErrNotFound) {
		t.Fatal(err)
	}
	if count("access.denied") != before+1 {
		t.Errorf("refusal not audited")
	}
}

func TestTheSignedAgreementIsAFileOfThePairingThatBothHospitalsReach(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	files := store.NewAttachments(w.db)
	upload := func(p auth.Principal, patientID string) string {
		a := attachment.Attachment{ID: newID(), HospitalID: p.HospitalID, UploadedBy: p.UserID, PatientID: patientID, Name: "协议书.pdf",
			ContentType: "application/pdf", Size: 10, SHA256: strings.Repeat("0", 64), CreatedAt: sqldb.Now(), BlobKey: newID()}
		if err := files.Create(ctx, a); err != nil {
			t.Fatal(err)
		}
		return a.ID
	}
	foreign := upload(w.otherOffice, "")
	terms := program.Terms{StartsOn: "2026-01-01", EndsOn: "2028-12-31", SignedDocumentID: &foreign}
	if _, err := w.svc.CreateAgreement(ctx, w.office, programs.AgreementInput{PairingID: w.pairing, Terms: terms}); strings.Join(fields(err), ",") != "signed_document_id" {
		t.Errorf("another hospital's file: %v", err)
	}
	signed := upload(w.office, "")
	terms.SignedDocumentID = &signed
	if _, err := w.svc.CreateAgreement(ctx, w.office, programs.AgreementInput{PairingID: w.pairing, Terms: terms}); err != nil {
		t.Fatal(err)
	}
	holder := store.NewProgram(w.db)
	for _, tc := range []struct {
		hospital string
		want     bool
	}{{w.county, true}, {w.tertiary, true}, {w.other, false}} {
		if got, err := holder.CarriesAttachment(ctx, signed, tc.hospital); err != nil || got != tc.want {
			t.Errorf("hospital %s reaches the signed file: %v %v, want %v", tc.hospital, got, err, tc.want)
		}
	}
	if got, _ := holder.CarriesAttachment(ctx, foreign, w.county); got {
		t.Error("a file no agreement names is carried")
	}
}
