package programs_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"duikou/consult"
	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/directory"
	"duikou/internal/program"
	"duikou/internal/programs"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/referral"
)

// reportWorld: 省医院 supports 苍溪县医院 (pairing p) and 旺苍县医院
// (pairing q). Two doctors of 省医院 are posted to 苍溪 for the first half
// of 2026 in one team; the records below are written straight through the
// store with fixed days, and the figures the tests expect are counted by
// hand in the comments.
type reportWorld struct {
	db                      sqldb.DB
	reports                 *programs.Reports
	now                     time.Time
	tert, county, other     directory.Hospital
	p, q                    string
	doctorA, doctorB        string // staff
	userA, userB, countyDoc string // users
	countyOffice, tertOff   auth.Principal
	outsider                auth.Principal
}

// at is 10:00 in Shanghai on day.
func at(day string) time.Time {
	t, _ := program.ParseDay(day)
	return t.Add(10 * time.Hour)
}

func newReportWorld(t *testing.T, db sqldb.DB, countyName string) *reportWorld {
	t.Helper()
	ctx := context.Background()
	w := &reportWorld{db: db, now: at("2026-04-15")}
	dir := store.NewDirectory(db)
	st := store.NewProgram(db)
	now := sqldb.Now()
	n := 0
	hospital := func(name string, tier directory.Tier, county string) directory.Hospital {
		n++
		h := directory.Hospital{ID: newID(), Name: name, OrgCode: fmt.Sprintf("12510000%010d", n), Tier: tier,
			Province: "四川省", County: county, TimeZone: directory.DefaultTimeZone, Version: 1, CreatedAt: now, UpdatedAt: now}
		if err := dir.CreateHospital(ctx, h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	w.tert = hospital("省人民医院", directory.Tertiary, "青羊区")
	w.county = hospital(countyName, directory.Secondary, "苍溪县")
	w.other = hospital("旺苍县人民医院", directory.Secondary, "旺苍县")
	pair := func(a, b string) string {
		p := directory.Pairing{ID: newID(), SupportingHospitalID: a, RecipientHospitalID: b, StartsOn: "2025-01-01",
			Status: directory.PairingActive, Version: 1, CreatedAt: now, UpdatedAt: now}
		if err := dir.CreatePairing(ctx, p); err != nil {
			t.Fatal(err)
		}
		return p.ID
	}
	w.p, w.q = pair(w.tert.ID, w.county.ID), pair(w.tert.ID, w.other.ID)
	staff := func(h, name string, title directory.Title) string {
		s := directory.Staff{ID: newID(), HospitalID: h, Name: name, Title: title, Active: true, Version: 1, CreatedAt: now, UpdatedAt: now}
		if err := dir.CreateStaff(ctx, s); err != nil {
			t.Fatal(err)
		}
		return s.ID
	}
	w.doctorA, w.doctorB = staff(w.tert.ID, "王主治", "attending_physician"), staff(w.tert.ID, "李副主任", "associate_chief_physician")
	nurse, clerk := staff(w.county.ID, "陈护士", "nurse"), staff(w.county.ID, "张检验", "technician")
	user := func(h, staffID string) string {
		id := newID()
		var sid any
		if staffID != "" {
			sid = staffID
		}
		if _, err := db.Exec(ctx, `INSERT INTO users (id, username, display_name, hospital_id, staff_id, password_hash, created_at, updated_at)
			VALUES ($1, $2, $2, $3, $4, 'x', $5, $5)`, id, "u"+id[24:], h, sid, now); err != nil {
			t.Fatal(err)
		}
		return id
	}
	w.userA, w.userB, w.countyDoc = user(w.tert.ID, w.doctorA), user(w.tert.ID, w.doctorB), user(w.county.ID, "")
	reach := map[string]bool{w.tert.ID: true, w.county.ID: true}
	w.countyOffice = auth.Principal{UserID: user(w.county.ID, ""), HospitalID: w.county.ID, Roles: []auth.Role{auth.ProgramOffice}, Reach: reach}
	w.tertOff = auth.Principal{UserID: user(w.tert.ID, ""), HospitalID: w.tert.ID, Roles: []auth.Role{auth.ProgramOffice},
		Reach: map[string]bool{w.tert.ID: true, w.county.ID: true, w.other.ID: true}}
	w.outsider = auth.Principal{UserID: user(w.other.ID, ""), HospitalID: w.other.ID, Roles: []auth.Role{auth.CountyDoctor},
		Reach: map[string]bool{w.other.ID: true}}

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.CreateAgreement(ctx, program.Agreement{ID: newID(), PairingID: w.p, SupportingHospitalID: w.tert.ID, RecipientHospitalID: w.county.ID,
		Version: 1, Terms: program.Terms{StartsOn: "2025-01-01", EndsOn: "2027-12-31",
			Commitments: program.Commitments{TeamsPerYear: 1, DaysPerYear: 100, TraineesPerYear: 1}},
		CreatedAt: now, UpdatedAt: now, UpdatedBy: w.countyOffice.UserID}))
	posting := func(staffID, name, title, arrived string) program.Posting {
		x := program.Posting{ID: newID(), PairingID: w.p, StaffID: staffID, StaffName: name, Title: title, HomeHospitalID: w.tert.ID,
			RecipientHospitalID: w.county.ID, RecipientDepartmentID: newID(), StartsOn: "2026-01-01", EndsOn: "2026-06-30",
			Team: "第一批", Warnings: []program.Warning{}, ArrivalDueOn: "2026-01-08", Version: 1, CreatedAt: now, CreatedBy: w.countyOffice.UserID, UpdatedAt: now}
		x.RecipientDepartmentID = dept(t, dir, w.county.ID)
		must(st.CreatePosting(ctx, x))
		x.Arrival = &program.Arrival{ArrivedOn: arrived, ConfirmedBy: w.countyOffice.UserID, ConfirmedAt: now}
		x, err := st.UpdatePosting(ctx, x, 1)
		must(err)
		return x
	}
	a := posting(w.doctorA, "王主治", "attending_physician", "2026-01-05")        // on time
	b := posting(w.doctorB, "李副主任", "associate_chief_physician", "2026-01-10") // late
	log := func(x program.Posting, day string, confirmed bool, c program.WorkCounts) {
		l := program.WorkLog{ID: newID(), PostingID: x.ID, Day: day, Counts: c, TechniqueNames: []string{}, EnteredBy: w.userA, EnteredAt: at(day)}
		must(st.CreateWorkLog(ctx, l))
		if confirmed {
			_, err := st.ConfirmWorkLog(ctx, l.ID, w.countyOffice.UserID, at(day))
			must(err)
		}
	}
	// March: A logs 35 outpatients, 2 ward rounds, 1 operation, 1 lecture,
	// one free clinic of 80 people, and one consultation and one teaching
	// round held outside Duikou; B 2 operations and a demonstration. A's
	// unconfirmed 99 outpatients and April's 7 are not March's.
	log(a, "2026-03-02", true, program.WorkCounts{Outpatients: 20, WardRounds: 2, Consultations: 1, TeachingRounds: 1})
	log(a, "2026-03-10", true, program.WorkCounts{Outpatients: 15, Operations: 1, Lectures: 1, FreeClinics: 1, FreeClinicPeople: 80})
	log(a, "2026-03-20", false, program.WorkCounts{Outpatients: 99})
	log(a, "2026-04-01", true, program.WorkCounts{Outpatients: 7})
	log(b, "2026-03-05", true, program.WorkCounts{Operations: 2, SurgicalDemos: 1})

	// March attendance: A present 1–25 (3 of them confirmed), leave 26–27,
	// nothing after: 31 days, 25 present, 2 leave, 4 absent. B present
	// 1–30, nothing on the 31st: 31, 30, 0, 1.
	day := func(d int) string { return fmt.Sprintf("2026-03-%02d", d) }
	for d := 1; d <= 31; d++ {
		if d <= 25 {
			_, err := st.PutAttendance(ctx, program.Attendance{PostingID: a.ID, Day: day(d), Status: program.Present, RecordedBy: w.userA, RecordedAt: at(day(d))})
			must(err)
		} else if d <= 27 {
			_, err := st.PutAttendance(ctx, program.Attendance{PostingID: a.ID, Day: day(d), Status: program.Leave, Reason: "病假", RecordedBy: w.userA, RecordedAt: at(day(d))})
			must(err)
		}
		if d <= 30 {
			_, err := st.PutAttendance(ctx, program.Attendance{PostingID: b.ID, Day: day(d), Status: program.Present, RecordedBy: w.userB, RecordedAt: at(day(d))})
			must(err)
		}
	}
	for d := 1; d <= 3; d++ {
		_, err := st.ConfirmAttendance(ctx, a.ID, day(d), w.countyOffice.UserID, at(day(d)))
		must(err)
	}
	// March evaluations: A 85 on time, B 75 late.
	eval := func(x program.Posting, scores map[string]int, total int, late bool) {
		_, err := st.PutEvaluation(ctx, program.Evaluation{PostingID: x.ID, Month: "2026-03", Scores: scores, Total: total, Comment: "好",
			EvaluatedBy: w.countyOffice.UserID, EvaluatedAt: at("2026-04-08"), DueOn: "2026-04-10", Late: late}, 0)
		must(err)
	}
	eval(a, map[string]int{"discipline": 18, "ethics": 19, "clinical": 25, "teaching": 23}, 85, false)
	eval(b, map[string]int{"discipline": 16, "ethics": 17, "clinical": 22, "teaching": 20}, 75, true)
	// Trainees: the nurse 1 March – 15 April (a month or more), the
	// technician 20 February – 5 March (less): in March 31 + 5 days.
	for _, tr := range []struct{ staff, from, to string }{{nurse, "2026-03-01", "2026-04-15"}, {clerk, "2026-02-20", "2026-03-05"}} {
		must(st.CreateTrainee(ctx, program.Trainee{ID: newID(), PairingID: w.p, SupportingHospitalID: w.tert.ID, RecipientHospitalID: w.county.ID,
			StaffID: tr.staff, StaffName: "进修", HostDepartment: "心内科", StartsOn: tr.from, EndsOn: tr.to, CreatedBy: w.countyOffice.UserID, CreatedAt: now}))
	}

	// Duikou sessions.
	cs := store.NewConsults(db)
	session := func(kind consult.Kind, status consult.Status, from, to, requester string, specialists []string, dayOf string) {
		s := consult.Session{ID: newID(), Kind: kind, Urgency: consult.Routine, RequesterID: requester, RequestingHospitalID: from,
			TargetHospitalID: to, TargetDepartmentIDs: []string{}, RequestedSpecialistIDs: []string{}, Attachments: []consult.Attachment{},
			AttendeeHospitalIDs: []string{}, Status: status, Version: 1, CreatedAt: at(dayOf).Add(-48 * time.Hour), UpdatedAt: at(dayOf),
			Schedule: &consult.Period{Start: at(dayOf), End: at(dayOf).Add(time.Hour)}}
		for _, u := range specialists {
			s.Specialists = append(s.Specialists, consult.Assignment{SpecialistID: u, DepartmentID: newID()})
		}
		must(cs.CreateSession(ctx, s))
	}
	session(consult.Consult, consult.Acknowledged, w.county.ID, w.tert.ID, w.countyDoc, []string{w.userA}, "2026-03-12")   // A's consultation
	session(consult.TeachingRound, consult.Ended, w.county.ID, w.tert.ID, w.countyDoc, []string{w.userA}, "2026-03-15")    // A's teaching round
	session(consult.MDT, consult.OpinionSigned, w.county.ID, w.tert.ID, w.userA, []string{w.userA, w.userB}, "2026-03-18") // A requests and sits: once for A, once for B
	session(consult.Consult, consult.Scheduled, w.county.ID, w.tert.ID, w.countyDoc, []string{w.userA}, "2026-03-20")      // not held
	session(consult.ImagingReview, consult.Ended, w.county.ID, w.tert.ID, w.countyDoc, []string{newID()}, "2026-03-22")    // held, nobody posted
	session(consult.Consult, consult.Ended, w.other.ID, w.tert.ID, newID(), []string{w.userA}, "2026-03-10")               // the other pairing
	session(consult.Consult, consult.Ended, w.county.ID, w.tert.ID, w.countyDoc, []string{w.userA}, "2026-02-27")          // February

	// Referrals.
	refs := store.NewReferrals(db)
	ticket := func(dir referral.Direction, from, to, day, code string) {
		submitted := at(day)
		r := referral.Referral{ID: newID(), Direction: dir, Priority: referral.Routine, TransferRisk: referral.RiskI,
			PatientID: newID(), ReferringHospitalID: from, ReferringDepartmentID: newID(), ReferringDoctorID: newID(),
			ReceivingHospitalID: to, ReceivingDepartmentID: newID(), Diagnoses: []referral.Diagnosis{{Code: code, Text: "诊断" + code}},
			Reason: "上级诊治", ClinicalSummary: "略", Transport: referral.Transport{Mode: referral.BySelf, Escort: referral.EscortNone},
			Attachments: []referral.AttachmentRef{}, ConsentID: newID(), Status: referral.Submitted, Version: 2, CreatedBy: newID(),
			CreatedAt: submitted, UpdatedAt: submitted, SubmittedAt: &submitted, QueuedAt: &submitted}
		must(refs.Create(ctx, r))
	}
	ticket(referral.Up, w.county.ID, w.tert.ID, "2026-03-03", "I21.0")
	ticket(referral.Up, w.county.ID, w.tert.ID, "2026-03-04", "I21.0")
	ticket(referral.Up, w.county.ID, w.tert.ID, "2026-03-05", "I21.0")
	ticket(referral.Down, w.tert.ID, w.county.ID, "2026-03-06", "I21.0")
	ticket(referral.Up, w.other.ID, w.tert.ID, "2026-03-07", "J18.9")  // the other pairing
	ticket(referral.Up, w.county.ID, w.tert.ID, "2024-05-01", "I21.0") // within three years
	ticket(referral.Up, w.county.ID, w.tert.ID, "2025-05-01", "K35.8") // two K35.8: under the small-cell
	ticket(referral.Up, w.county.ID, w.tert.ID, "2025-06-01", "K35.8") // threshold, hidden
	ticket(referral.Up, w.county.ID, w.tert.ID, "2023-03-01", "C34.9") // more than three years before April 2026

	w.reports = programs.NewReports(st, dir, store.NewUsers(db), cs, refs, audit.NewLog(store.NewAuditLog(db), nil),
		program.Config{}, func() time.Time { return w.now })
	return w
}

func dept(t *testing.T, dir *store.Directory, h string) string {
	t.Helper()
	d := directory.Department{ID: newID(), HospitalID: h, Code: newID()[30:], Name: "内科", Version: 1, CreatedAt: sqldb.Now(), UpdatedAt: sqldb.Now()}
	if err := dir.CreateDepartment(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	return d.ID
}

func TestAPairingsMonthReportMatchesTheHandCountedRecords(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newReportWorld(t, db, "苍溪县人民医院")
		rep, err := w.reports.Report(context.Background(), w.countyOffice, programs.ReportQuery{PairingID: w.p, Period: "2026-03"})
		if err != nil {
			t.Fatal(err)
		}
		wl := rep.Workload
		// Logged: outpatients 20+15, ward rounds 2, operations 1+2, one
		// demonstration, one lecture, one free clinic of 80; consultations
		// and teaching rounds: 1 each outside Duikou, plus Duikou's
		// sessions: A's consultation and MDT, B's MDT (3), A's teaching
		// round (1). The scheduled consultation, the other pairing's and
		// February's are not counted; nor is the unconfirmed entry.
		want := program.WorkCounts{Outpatients: 35, WardRounds: 2, Operations: 3, SurgicalDemos: 1, Lectures: 1, FreeClinics: 1,
			FreeClinicPeople: 80, Consultations: 1 + 3, TeachingRounds: 1 + 1}
		if wl.Total != want || wl.Unconfirmed != 1 || wl.DuikouConsultations != 3 || wl.DuikouTeachingRounds != 1 ||
			wl.Logged.Consultations != 1 || wl.Logged.TeachingRounds != 1 {
			t.Errorf("workload %+v, want total %+v, 1 unconfirmed, Duikou 3 consultations and 1 teaching round", wl, want)
		}
		if a := rep.Attendance; a.WorkDays != 62 || a.Present != 55 || a.Confirmed != 3 || a.Leave != 2 || a.Absent != 5 || fmt.Sprintf("%.4f", a.Rate) != "0.8871" {
			t.Errorf("attendance %+v, want 62 days, 55 present (3 confirmed), 2 leave, 5 absent, 55/62", a)
		}
		if e := rep.Evaluations; e.Filed != 2 || e.AverageTotal != 80 || e.Late != 1 || e.Overdue != 0 || e.Average["clinical"] != 23.5 {
			t.Errorf("evaluations %+v, want 2 filed averaging 80 (clinical 23.5), 1 late", e)
		}
		if tr := rep.Trainees; tr.Stays != 2 || tr.Staff != 2 || tr.Started != 1 || tr.MonthUp != 1 || tr.InPeriod != 36 {
			t.Errorf("trainees %+v, want 2 stays, 1 started, 1 of a month, 36 days", tr)
		}
		if s := rep.Sessions; s.Total != 4 || s.ByKind["consult"] != 1 || s.ByKind["mdt"] != 1 || s.ByKind["teaching_round"] != 1 ||
			s.ByKind["imaging_review"] != 1 || s.ByKind["expert_clinic"] != 0 {
			t.Errorf("sessions %+v, want one each of consult, mdt, teaching round and imaging review", s)
		}
		r := rep.Referrals
		if r.Up != 3 || r.Down != 1 || r.DiagnosesFrom != "2023-04-01" || r.DiagnosesTo != "2026-03-31" {
			t.Errorf("referrals %+v, want 3 up and 1 down between the pair, diagnoses 2023-04-01..2026-03-31", r)
		}
		if len(r.TopByCounty) != 1 || r.TopByCounty[0].HospitalID != w.county.ID || len(r.TopByCounty[0].Items) != 1 ||
			r.TopByCounty[0].Items[0].Code != "I21.0" || r.TopByCounty[0].Items[0].Count != 4 || r.TopByCounty[0].Hidden != 1 {
			t.Errorf("top diagnoses %+v, want 苍溪's I21.0 ×4 and one hidden", r.TopByCounty)
		}
		if rep.Pairings != 1 || rep.Postings != 2 || len(rep.Compliance) != 1 {
			t.Errorf("%d pairings, %d postings, %d checklists", rep.Pairings, rep.Postings, len(rep.Compliance))
		}
	})
}

func TestTheQuarterCountsArrivalsAndOverdueEvaluationsAndAHospitalItsPairings(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newReportWorld(t, db, "苍溪县人民医院")
		ctx := context.Background()
		rep, err := w.reports.Report(ctx, w.countyOffice, programs.ReportQuery{PairingID: w.p, Period: "2026-Q1"})
		if err != nil {
			t.Fatal(err)
		}
		// Both postings started in January: A on time, B late. January's and
		// February's evaluations were due on 10 February and 10 March.
		if a := rep.Arrivals; a.Due != 2 || a.OnTime != 1 || a.Late != 1 || a.Missing != 0 {
			t.Errorf("arrivals %+v", a)
		}
		if rep.Evaluations.Overdue != 4 {
			t.Errorf("overdue evaluations %d, want 4", rep.Evaluations.Overdue)
		}
		// 省人民医院's March: both pairings; the other pairing's
		// consultation and up-referral count; each session still once.
		rep, err = w.reports.Report(ctx, w.tertOff, programs.ReportQuery{HospitalID: w.tert.ID, Period: "2026-03"})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Pairings != 2 || rep.Sessions.Total != 5 || rep.Sessions.ByKind["consult"] != 2 || rep.Referrals.Up != 4 || rep.Referrals.Down != 1 {
			t.Errorf("hospital report: %d pairings, sessions %+v, referrals %d up %d down", rep.Pairings, rep.Sessions, rep.Referrals.Up, rep.Referrals.Down)
		}
		if rep.Workload.DuikouConsultations != 3 {
			t.Errorf("the hospital's Duikou consultations %d, want 3 (the other pairing's has no posting)", rep.Workload.DuikouConsultations)
		}
		// The province: the office reaches all three hospitals.
		rep, err = w.reports.Report(ctx, w.tertOff, programs.ReportQuery{Province: "四川省", Period: "2026"})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Scope.Kind != "province" || rep.Pairings != 2 || rep.Workload.Total.Outpatients != 42 {
			t.Errorf("province: %+v, outpatients %d, want 2 pairings and 42", rep.Scope, rep.Workload.Total.Outpatients)
		}
		rep, err = w.reports.Report(ctx, w.tertOff, programs.ReportQuery{Province: "四川省", County: "旺苍县", Period: "2026-03"})
		if err != nil || rep.Pairings != 1 || rep.Postings != 0 || rep.Referrals.Up != 1 {
			t.Errorf("旺苍县: %+v %v", rep, err)
		}
	})
}

func TestReportsAreReadWithinReachOnlyAndAudited(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newReportWorld(t, db, "苍溪县人民医院")
		ctx := context.Background()
		for _, c := range []struct {
			name string
			p    auth.Principal
			q    programs.ReportQuery
			want error
		}{
			{"another county's doctor, the pairing", w.outsider, programs.ReportQuery{PairingID: w.p, Period: "2026-03"}, apperr.ErrNotFound},
			{"another county's doctor, the hospital", w.outsider, programs.ReportQuery{HospitalID: w.county.ID, Period: "2026-03"}, apperr.ErrNotFound},
			{"clinical staff, a province", w.outsider, programs.ReportQuery{Province: "四川省", Period: "2026-03"}, apperr.ErrForbidden},
			{"the county's office, a pairing it does not reach", w.countyOffice, programs.ReportQuery{PairingID: w.q, Period: "2026-03"}, apperr.ErrNotFound},
			{"two scopes", w.countyOffice, programs.ReportQuery{PairingID: w.p, HospitalID: w.county.ID, Period: "2026-03"}, errInvalid},
			{"a period of two years", w.countyOffice, programs.ReportQuery{PairingID: w.p, Period: "2026-2027"}, errInvalid},
		} {
			_, err := w.reports.Report(ctx, c.p, c.q)
			var v apperr.Invalid
			if !errors.Is(err, c.want) && !(c.want == errInvalid && errors.As(err, &v)) {
				t.Errorf("%s: %v, want %v", c.name, err, c.want)
			}
		}
		if _, err := w.reports.Report(ctx, w.countyOffice, programs.ReportQuery{PairingID: w.p, Period: "2026-03"}); err != nil {
			t.Fatal(err)
		}
		var reads, denied int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM audit_log WHERE action = $1`, programs.ActionReport).Scan(&reads); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM audit_log WHERE action = $1`, audit.AccessDenied).Scan(&denied); err != nil {
			t.Fatal(err)
		}
		if reads != 1 || denied != 3 {
			t.Errorf("audit: %d report reads, %d refusals; want 1 and 3", reads, denied)
		}
	})
}

func TestComplianceOfAPairingsYearAsRecorded(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newReportWorld(t, db, "苍溪县人民医院")
		c, err := w.reports.Compliance(context.Background(), w.countyOffice, w.p, "2026")
		if err != nil {
			t.Fatal(err)
		}
		// As of 15 April: Q1 has activity and April's outpatients start Q2;
		// training in Q1 (lecture, teaching rounds) but none yet in Q2; one
		// nurse studied a month; the team has an associate chief; 55 days
		// of service of 100 committed; 2 trainees of 1.
		want := map[string]program.Light{program.CheckActivity: program.Green, program.CheckFreeClinic: program.Green,
			program.CheckTraining: program.Amber, program.CheckStudy: program.Amber, program.CheckComposition: program.Green,
			program.CheckTeams: program.Green, program.CheckDays: program.Amber, program.CheckTrainees: program.Green}
		if len(c.Items) != len(want) {
			t.Errorf("%d items: %+v", len(c.Items), c.Items)
		}
		for _, it := range c.Items {
			if want[it.Code] != it.Light {
				t.Errorf("%s: %s (%s), want %s", it.Code, it.Light, it.Reason, want[it.Code])
			}
			if it.Code == program.CheckDays && !strings.Contains(it.Reason, "55 days") {
				t.Errorf("days of service: %q", it.Reason)
			}
		}
	})
}

func TestHalfYearRemindersShowFromTwoWeeksBeforeTheDueDay(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newReportWorld(t, db, "苍溪县人民医院")
		ctx := context.Background()
		for _, c := range []struct {
			today string
			n     int
		}{{"2026-06-05", 0}, {"2026-06-06", 1}, {"2026-06-20", 1}, {"2026-06-21", 0}, {"2026-12-10", 1}} {
			w.now = at(c.today)
			rs, err := w.reports.Reminders(ctx, w.countyOffice)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != c.n || (c.n == 1 && rs[0].PairingID != w.p) {
				t.Errorf("%s: %+v, want %d for the county's pairing", c.today, rs, c.n)
			}
		}
		w.now = at("2026-12-10")
		rs, err := w.reports.Reminders(ctx, w.tertOff)
		if err != nil || len(rs) != 2 || rs[0].DueOn != "2026-12-20" || rs[0].Period.Label != "2026-H2" || rs[0].DaysLeft != 10 {
			t.Errorf("the supporting office: %+v %v, want both pairings due 20 December", rs, err)
		}
		if _, err := w.reports.Reminders(ctx, w.outsider); !errors.Is(err, apperr.ErrForbidden) {
			t.Errorf("a doctor's reminders: %v", err)
		}
	})
}

// errInvalid stands for a field error (apperr.Invalid).
var errInvalid = errors.New("invalid field")

// hostile is a hospital name a careless or malicious administrator might
// type.
const hostile = `=HYPERLINK("http://x")<script>alert(1)</script>`

func TestExportsReadBackAndEscapeHostileText(t *testing.T) {
	db := sqldbtest.SQLite(t)
	w := newReportWorld(t, db, hostile)
	rep, err := w.reports.Report(context.Background(), w.countyOffice, programs.ReportQuery{PairingID: w.p, Period: "2026-03"})
	if err != nil {
		t.Fatal(err)
	}
	tables := rep.Tables()

	var xb bytes.Buffer
	if err := programs.WriteXLSX(&xb, tables); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&xb)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.GetSheetList(); len(got) != len(tables) || got[0] != "概况" || got[1] != "工作量" {
		t.Errorf("sheets %v", got)
	}
	for cell, want := range map[string]string{"A2": "项目", "A10": "会诊", "B10": "1", "C10": "3", "D10": "4", "D3": "35"} {
		if v, err := f.GetCellValue("工作量", cell); err != nil || v != want {
			t.Errorf("工作量!%s = %q %v, want %q", cell, v, err, want)
		}
	}
	if typ, _ := f.GetCellType("工作量", "D10"); typ != excelize.CellTypeNumber && typ != excelize.CellTypeUnset {
		t.Errorf("figures are numbers, D10 is %v", typ)
	}
	if v, _ := f.GetCellValue("考勤与到岗", "B8"); v != "88.7%" {
		t.Errorf("attendance rate cell %q", v)
	}
	if v, _ := f.GetCellValue("双向转诊", "C3"); v != "I21.0" {
		t.Errorf("top diagnosis cell %q", v)
	}

	var cb bytes.Buffer
	if err := programs.WriteCSV(&cb, tables); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(cb.Bytes(), []byte("\xEF\xBB\xBF")) {
		t.Fatal("the CSV has no byte-order mark")
	}
	r := csv.NewReader(bytes.NewReader(cb.Bytes()[3:]))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, row := range rows {
		if len(row) == 4 && row[0] == "会诊" {
			found = row[1] == "1" && row[2] == "3" && row[3] == "4"
		}
		for _, c := range row {
			if strings.HasPrefix(c, "=") {
				t.Errorf("a CSV cell starts a formula: %q", c)
			}
		}
	}
	if !found {
		t.Errorf("no consultation row 1/3/4 in the CSV: %v", rows)
	}

	var hb bytes.Buffer
	if err := programs.WriteHTML(&hb, programs.DocumentTitle(rep), rep, tables); err != nil {
		t.Fatal(err)
	}
	page := hb.String()
	if strings.Contains(page, "<script>") || !strings.Contains(page, "&lt;script&gt;") {
		t.Errorf("the hostile name is not escaped")
	}
	for _, want := range []string{"对口支援月度工作报告", "@media print", "会诊", `class="amber"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}
