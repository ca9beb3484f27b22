package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"duikou/internal/apperr"
	"duikou/internal/directory"
	"duikou/internal/program"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
)

// progWorld is a tertiary hospital supporting a county hospital, a
// department on each side, a doctor of the tertiary hospital and a nurse of
// the county, and a third hospital's pairing to scope against.
type progWorld struct {
	st                                   *store.Program
	supporting, recipient, other         directory.Hospital
	supportingDept, recipientDept        string
	pairing, otherPairing, doctor, nurse string
}

func newProgWorld(t *testing.T, db sqldb.DB) progWorld {
	t.Helper()
	ctx := context.Background()
	dir := store.NewDirectory(db)
	now := sqldb.Now()
	w := progWorld{st: store.NewProgram(db)}
	w.supporting = dirTestHospital(t, dir, 1, directory.Tertiary, "四川省", "")
	w.recipient = dirTestHospital(t, dir, 2, directory.Secondary, "四川省", "苍溪县")
	w.other = dirTestHospital(t, dir, 3, directory.Secondary, "四川省", "旺苍县")
	dept := func(h string) string {
		d := directory.Department{ID: dirTestID(), HospitalID: h, Code: "03", Name: "内科", Version: 1, CreatedAt: now, UpdatedAt: now}
		if err := dir.CreateDepartment(ctx, d); err != nil {
			t.Fatal(err)
		}
		return d.ID
	}
	w.supportingDept, w.recipientDept = dept(w.supporting.ID), dept(w.recipient.ID)
	staff := func(h, name string, title directory.Title) string {
		s := directory.Staff{ID: dirTestID(), HospitalID: h, Name: name, Title: title, Active: true, Version: 1, CreatedAt: now, UpdatedAt: now}
		if err := dir.CreateStaff(ctx, s); err != nil {
			t.Fatal(err)
		}
		return s.ID
	}
	w.doctor = staff(w.supporting.ID, "王医生", "attending_physician")
	w.nurse = staff(w.recipient.ID, "李护士", "nurse")
	pair := func(a, b string) string {
		p := directory.Pairing{ID: dirTestID(), SupportingHospitalID: a, RecipientHospitalID: b, StartsOn: "2025-01-01",
			Status: directory.PairingActive, Version: 1, CreatedAt: now, UpdatedAt: now}
		if err := dir.CreatePairing(ctx, p); err != nil {
			t.Fatal(err)
		}
		return p.ID
	}
	w.pairing, w.otherPairing = pair(w.supporting.ID, w.recipient.ID), pair(w.supporting.ID, w.other.ID)
	return w
}

func (w progWorld) posting(team, title, from, to string) program.Posting {
	now := sqldb.Now()
	return program.Posting{ID: dirTestID(), PairingID: w.pairing, StaffID: w.doctor, StaffName: "王医生", Title: title,
		HomeHospitalID: w.supporting.ID, RecipientHospitalID: w.recipient.ID, RecipientDepartmentID: w.recipientDept,
		StartsOn: from, EndsOn: to, Team: team, Specialty: "心血管内科", Warnings: []program.Warning{},
		ArrivalDueOn: program.AddDays(from, 7), Version: 1, CreatedAt: now, CreatedBy: "office", UpdatedAt: now}
}

func TestProgramStoreAgreementVersions(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		w := newProgWorld(t, db)
		now := sqldb.Now()
		a := program.Agreement{ID: dirTestID(), PairingID: w.pairing, SupportingHospitalID: w.supporting.ID, RecipientHospitalID: w.recipient.ID,
			Version: 1, CreatedAt: now, UpdatedAt: now, UpdatedBy: "office",
			Terms: program.Terms{StartsOn: "2026-01-01", EndsOn: "2028-12-31",
				Commitments:  program.Commitments{TeamsPerYear: 2, DaysPerYear: 180, TraineesPerYear: 4, Techniques: []string{"经皮冠状动脉介入"}},
				GreenChannel: program.GreenChannel{ReservedBeds: []program.ReservedBeds{{DepartmentID: w.supportingDept, Beds: 3}}, FeeWaiver: "免挂号费"},
				Targets:      []string{"3年内达到二级甲等"}}}
		if err := w.st.CreateAgreement(ctx, a); err != nil {
			t.Fatal(err)
		}
		amended := a
		amended.Terms.Commitments.DaysPerYear = 240
		amended.Terms.AmendmentReason = "增加驻点天数"
		amended.UpdatedAt = now.Add(time.Hour)
		got, err := w.st.AmendAgreement(ctx, amended, 1)
		if err != nil || got.Version != 2 || got.Terms.Commitments.DaysPerYear != 240 {
			t.Fatalf("amend: %+v %v", got, err)
		}
		if _, err := w.st.AmendAgreement(ctx, amended, 1); !errors.Is(err, apperr.ErrStale) {
			t.Errorf("amend over an old version: %v, want stale", err)
		}
		amended.ID = dirTestID()
		if _, err := w.st.AmendAgreement(ctx, amended, 1); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("amend of nothing: %v, want not found", err)
		}
		vs, err := w.st.AgreementVersions(ctx, a.ID)
		if err != nil || len(vs) != 2 {
			t.Fatalf("versions: %v %v", vs, err)
		}
		// The old version reads as it was written.
		if vs[0].Version != 1 || vs[0].Terms.Commitments.DaysPerYear != 180 || vs[1].Terms.AmendmentReason != "增加驻点天数" {
			t.Errorf("versions: %+v", vs)
		}
		if vs[0].Terms.GreenChannel.ReservedBeds[0].Beds != 3 || vs[0].Terms.Targets[0] != "3年内达到二级甲等" {
			t.Errorf("terms lost: %+v", vs[0].Terms)
		}
		for _, tc := range []struct {
			f    program.Filter
			want int
		}{
			{program.Filter{PairingID: w.pairing}, 1},
			{program.Filter{PairingID: w.otherPairing}, 0},
			{program.Filter{HospitalID: w.recipient.ID}, 1},
			{program.Filter{HospitalID: w.other.ID}, 0},
			{program.Filter{Scoped: true, Within: []string{w.supporting.ID, w.recipient.ID}}, 1},
			{program.Filter{Scoped: true, Within: []string{w.supporting.ID}}, 0}, // both sides must be in scope
			{program.Filter{Scoped: true}, 0},
			{program.Filter{Scoped: true, Party: w.recipient.ID}, 1}, // a party sees it whatever its reach
			{program.Filter{Scoped: true, Party: w.other.ID}, 0},
			{program.Filter{Scoped: true, Party: w.other.ID, Within: []string{w.supporting.ID, w.recipient.ID}}, 1},
			{program.Filter{Scoped: true, Party: w.other.ID, Within: []string{w.other.ID, w.recipient.ID}}, 0},
		} {
			got, err := w.st.Agreements(ctx, tc.f)
			if err != nil || len(got) != tc.want {
				t.Errorf("agreements %+v: %d %v, want %d", tc.f, len(got), err, tc.want)
			}
		}
	})
}

func TestProgramStorePostings(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		w := newProgWorld(t, db)
		p := w.posting("第一批", "attending_physician", "2026-01-01", "2026-03-31")
		p.Warnings = []program.Warning{{Code: program.WarnDuration, Field: "ends_on", Message: "short"}}
		if err := w.st.CreatePosting(ctx, p); err == nil {
			t.Fatal("a posting with warnings and no override was stored")
		}
		p.Override = &program.Override{Reason: "县医院急需", By: "office", At: sqldb.Now()}
		if err := w.st.CreatePosting(ctx, p); err != nil {
			t.Fatal(err)
		}
		q := w.posting("第一批", "chief_physician", "2026-03-01", "2026-08-31")
		if err := w.st.CreatePosting(ctx, q); err != nil {
			t.Fatal(err)
		}
		late := w.posting("第一批", "associate_chief_physician", "2026-04-01", "2026-09-30")
		if err := w.st.CreatePosting(ctx, late); err != nil {
			t.Fatal(err)
		}
		// Team members overlapping January–February: p only (q starts in March).
		titles, err := w.st.TeamTitles(ctx, w.pairing, "第一批", "2026-01-01", "2026-02-28", "")
		if err != nil || !slices.Equal(titles, []string{"attending_physician"}) {
			t.Errorf("team titles: %v %v", titles, err)
		}
		titles, _ = w.st.TeamTitles(ctx, w.pairing, "第一批", "2026-03-15", "2026-03-20", p.ID)
		if !slices.Equal(titles, []string{"chief_physician"}) {
			t.Errorf("team titles without p: %v", titles)
		}

		got, err := w.st.Posting(ctx, p.ID)
		if err != nil || got.Override == nil || got.Override.Reason != "县医院急需" || len(got.Warnings) != 1 || got.Arrival != nil {
			t.Fatalf("posting: %+v %v", got, err)
		}
		got.Arrival = &program.Arrival{ArrivedOn: "2026-01-05", ConfirmedBy: "recipient", ConfirmedAt: sqldb.Now(), Note: "按时报到"}
		got.UpdatedAt = sqldb.Now()
		up, err := w.st.UpdatePosting(ctx, got, 1)
		if err != nil || up.Version != 2 || up.Arrival == nil || up.Arrival.ArrivedOn != "2026-01-05" {
			t.Fatalf("update: %+v %v", up, err)
		}
		if _, err := w.st.UpdatePosting(ctx, got, 1); !errors.Is(err, apperr.ErrStale) {
			t.Errorf("stale update: %v", err)
		}
		up.Appraisal = &program.Appraisal{Grade: program.Excellent, Comment: "好", AppraisedBy: "recipient", AppraisedAt: sqldb.Now()}
		if up, err = w.st.UpdatePosting(ctx, up, 2); err != nil || up.Appraisal == nil || up.Appraisal.Grade != program.Excellent {
			t.Fatalf("appraisal: %+v %v", up, err)
		}

		for _, tc := range []struct {
			f    program.Filter
			want int
		}{
			{program.Filter{PairingID: w.pairing}, 3},
			{program.Filter{HospitalID: w.supporting.ID}, 3},
			{program.Filter{HospitalID: w.other.ID}, 0},
			{program.Filter{StaffID: w.doctor, Limit: 2}, 2},
			{program.Filter{Scoped: true, Within: []string{w.recipient.ID}}, 0},
		} {
			got, err := w.st.Postings(ctx, tc.f)
			if err != nil || len(got) != tc.want {
				t.Errorf("postings %+v: %d %v, want %d", tc.f, len(got), err, tc.want)
			}
		}
	})
}

func TestProgramStoreAttendanceEvaluationsAndWorkLogs(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		w := newProgWorld(t, db)
		p := w.posting("第一批", "associate_chief_physician", "2026-01-01", "2026-06-30")
		if err := w.st.CreatePosting(ctx, p); err != nil {
			t.Fatal(err)
		}
		now := sqldb.Now()
		day := func(d string, s program.AttendanceStatus, reason string) program.Attendance {
			a, err := w.st.PutAttendance(ctx, program.Attendance{PostingID: p.ID, Day: d, Status: s, Reason: reason, RecordedBy: "doctor", RecordedAt: now})
			if err != nil {
				t.Fatalf("attendance %s: %v", d, err)
			}
			return a
		}
		day("2026-01-05", program.Leave, "家事")
		if a := day("2026-01-05", program.Present, ""); a.Status != program.Present { // corrected before confirmation
			t.Errorf("replaced day: %+v", a)
		}
		day("2026-01-06", program.Present, "")
		a, err := w.st.ConfirmAttendance(ctx, p.ID, "2026-01-05", "recipient", now)
		if err != nil || a.ConfirmedBy == nil || *a.ConfirmedBy != "recipient" {
			t.Fatalf("confirm: %+v %v", a, err)
		}
		if again, err := w.st.ConfirmAttendance(ctx, p.ID, "2026-01-05", "someone else", now); err != nil || *again.ConfirmedBy != "recipient" {
			t.Errorf("confirm twice: %+v %v", again, err)
		}
		if _, err := w.st.ConfirmAttendance(ctx, p.ID, "2026-01-09", "recipient", now); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("confirm an unrecorded day: %v", err)
		}
		if _, err := w.st.PutAttendance(ctx, program.Attendance{PostingID: p.ID, Day: "2026-01-05", Status: program.Leave, Reason: "x", RecordedBy: "doctor", RecordedAt: now}); !errors.Is(err, apperr.ErrConflict) {
			t.Errorf("rewrite a confirmed day: %v, want conflict", err)
		}
		days, err := w.st.AttendanceOf(ctx, p.ID, "2026-01-01", "2026-01-31")
		if err != nil || len(days) != 2 {
			t.Fatalf("days: %v %v", days, err)
		}
		if r := program.RateOf(p, "2026-01", days, "2026-01-06"); r.Present != 2 || r.Confirmed != 1 || r.WorkDays != 6 {
			t.Errorf("rate: %+v", r)
		}

		e := program.Evaluation{PostingID: p.ID, Month: "2026-01", Scores: map[string]int{"discipline": 18}, Total: 18, EvaluatedBy: "recipient",
			EvaluatedAt: now, DueOn: "2026-02-10"}
		got, err := w.st.PutEvaluation(ctx, e, 0)
		if err != nil || got.Version != 1 || got.Scores["discipline"] != 18 {
			t.Fatalf("evaluation: %+v %v", got, err)
		}
		if _, err := w.st.PutEvaluation(ctx, e, 0); !errors.Is(err, apperr.ErrStale) {
			t.Errorf("second create: %v", err)
		}
		e.Total, e.Comment = 19, "改"
		if got, err = w.st.PutEvaluation(ctx, e, 1); err != nil || got.Version != 2 || got.Comment != "改" || got.DueOn != "2026-02-10" {
			t.Errorf("replace: %+v %v", got, err)
		}
		if _, err := w.st.PutEvaluation(ctx, e, 1); !errors.Is(err, apperr.ErrStale) {
			t.Errorf("stale replace: %v", err)
		}
		if es, _ := w.st.Evaluations(ctx, p.ID); len(es) != 1 {
			t.Errorf("evaluations: %v", es)
		}

		log := program.WorkLog{ID: dirTestID(), PostingID: p.ID, Day: "2026-01-06", EnteredBy: "doctor", EnteredAt: now,
			Counts:         program.WorkCounts{Outpatients: 31, Operations: 2, TeachingRounds: 1, FreeClinics: 1, FreeClinicPeople: 120, NewTechniques: 1},
			TechniqueNames: []string{"腹腔镜胆囊切除"}}
		if err := w.st.CreateWorkLog(ctx, log); err != nil {
			t.Fatal(err)
		}
		cl, err := w.st.ConfirmWorkLog(ctx, log.ID, "recipient", now)
		if err != nil || cl.ConfirmedBy == nil || cl.Counts != log.Counts || cl.TechniqueNames[0] != "腹腔镜胆囊切除" {
			t.Fatalf("confirm log: %+v %v", cl, err)
		}
		if _, err := w.st.ConfirmWorkLog(ctx, log.ID, "recipient", now); !errors.Is(err, apperr.ErrConflict) {
			t.Errorf("confirm twice: %v", err)
		}
		if _, err := w.st.ConfirmWorkLog(ctx, dirTestID(), "recipient", now); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("confirm nothing: %v", err)
		}
		if ls, _ := w.st.WorkLogs(ctx, p.ID); len(ls) != 1 {
			t.Errorf("logs: %v", ls)
		}
	})
}

func TestProgramStoreClinicScheduleAndTrainees(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		w := newProgWorld(t, db)
		p := w.posting("第一批", "associate_chief_physician", "2026-01-01", "2026-06-30")
		if err := w.st.CreatePosting(ctx, p); err != nil {
			t.Fatal(err)
		}
		now := sqldb.Now()
		for _, d := range []string{"2026-01-20", "2026-01-13", "2026-03-01"} {
			if err := w.st.CreateClinicSession(ctx, program.ClinicSession{ID: dirTestID(), PostingID: p.ID, RecipientHospitalID: w.recipient.ID,
				Day: d, StartsAt: "08:00", EndsAt: "12:00", Place: "门诊二楼", PublishedBy: "office", PublishedAt: now}); err != nil {
				t.Fatal(err)
			}
		}
		cs, err := w.st.ClinicSessions(ctx, program.ClinicFilter{HospitalID: w.recipient.ID, FromDay: "2026-01-01", ToDay: "2026-01-31"})
		if err != nil || len(cs) != 2 || cs[0].Day != "2026-01-13" {
			t.Fatalf("sessions: %+v %v", cs, err)
		}
		pub, err := w.st.PublicSchedule(ctx, w.recipient.ID, "2026-01-01", "2026-02-28")
		if err != nil || len(pub) != 2 {
			t.Fatalf("public: %+v %v", pub, err)
		}
		if x := pub[0]; x.DoctorName != "王医生" || x.HomeHospital != w.supporting.Name || x.Specialty != "心血管内科" || x.TitleLabel != "associate_chief_physician" {
			t.Errorf("public row: %+v", x)
		}
		if pub, _ := w.st.PublicSchedule(ctx, w.other.ID, "2026-01-01", "2026-12-31"); len(pub) != 0 {
			t.Errorf("another hospital's schedule: %v", pub)
		}

		tr := program.Trainee{ID: dirTestID(), PairingID: w.pairing, SupportingHospitalID: w.supporting.ID, RecipientHospitalID: w.recipient.ID,
			StaffID: w.nurse, StaffName: "李护士", HostDepartment: "重症医学科", StartsOn: "2026-03-01", EndsOn: "2026-05-31", CreatedBy: "office", CreatedAt: now}
		if err := w.st.CreateTrainee(ctx, tr); err != nil {
			t.Fatal(err)
		}
		got, err := w.st.Trainees(ctx, program.Filter{HospitalID: w.recipient.ID})
		if err != nil || len(got) != 1 || got[0].HostDepartment != "重症医学科" || got[0].DepartmentID != nil {
			t.Fatalf("trainees: %+v %v", got, err)
		}
		if got, _ := w.st.Trainees(ctx, program.Filter{PairingID: w.otherPairing}); len(got) != 0 {
			t.Errorf("other pairing: %v", got)
		}
	})
}
