package app

import (
	"errors"

	"duikou/internal/apperr"
	"fmt"
	"net/http"
	"slices"
	"time"

	"duikou/internal/auth"
	"duikou/internal/directory"
	"duikou/internal/program"
	"duikou/internal/programs"
)

// Program records in the authorisation matrix. Every matrix user acts for
// 临溪, the recipient of the own pairing (省人民医院 → 临溪). The paired
// pairing (省人民医院 → 临溪's township centre) has both hospitals within
// 临溪's reach, so 临溪's program office watches it: it reads its records
// but neither writes them nor files the recipient's records (403); other
// roles do not see it (404). The unrelated pairing is outside reach (404;
// a pairing or posting named in a body is a bad field, 400).

func isProgramReader(r auth.Role) bool { return slices.Contains(programs.Readers, r) }

// progReadRule: a record of a pairing.
func progReadRule(r auth.Role, s scope) int {
	switch {
	case !isProgramReader(r):
		return http.StatusForbidden
	case s == own, s == paired && r == auth.ProgramOffice:
		return http.StatusOK
	}
	return http.StatusNotFound
}

// progListRule: lists narrow themselves to what the caller sees.
func progListRule(r auth.Role, _ scope) int {
	if !isProgramReader(r) {
		return http.StatusForbidden
	}
	return http.StatusOK
}

// progWriteRule: a change of a record by the program office of a party
// hospital (for the recipient's records: the recipient's office).
func progWriteRule(ok int) func(auth.Role, scope) int {
	return func(r auth.Role, s scope) int {
		switch {
		case r != auth.ProgramOffice:
			return http.StatusForbidden
		case s == own:
			return ok
		case s == paired:
			return http.StatusForbidden
		}
		return http.StatusNotFound
	}
}

// progCreateRule: a record created in a pairing or posting named by the body.
func progCreateRule(r auth.Role, s scope) int {
	if got := progWriteRule(http.StatusCreated)(r, s); got != http.StatusNotFound {
		return got
	}
	return http.StatusBadRequest
}

// progDoctorRule: what the posted doctor enters. The matrix's dispatched
// doctor is not the doctor of any posting, so it is refused on the posting
// it sees and finds the others not at all; the office may also record a
// day's attendance (officeToo).
func progDoctorRule(officeToo bool) func(auth.Role, scope) int {
	return func(r auth.Role, s scope) int {
		switch {
		case r == auth.ProgramOffice && officeToo:
			return progWriteRule(http.StatusOK)(r, s)
		case r != auth.DispatchedDoctor:
			return http.StatusForbidden
		case s == own:
			return http.StatusForbidden
		}
		return http.StatusNotFound
	}
}

// progClinicListRule: the clinics of a hospital within reach (临溪 and
// 省人民医院) are readable by program readers; 云岭's are not found.
func progClinicListRule(r auth.Role, s scope) int {
	switch {
	case !isProgramReader(r):
		return http.StatusForbidden
	case s == unrelated:
		return http.StatusNotFound
	}
	return http.StatusOK
}

// progWorld is one agreement and one posting per scope's pairing, with the
// office of its recipient and the posted doctor's account to set them up.
type progWorld struct {
	pairing                      directory.Pairing
	office, doctor               auth.Principal
	agreement, posting, recStaff string
	recDept                      string
}

// clinic publishes a fresh clinic of the scope's posting, by its recipient
// office, for one request to change or cancel.
func (f *fixture) clinic(s scope) program.ClinicSession {
	w := f.prog(s)
	c, err := f.app.svc.programs.PublishClinic(f.ctx, w.office, program.ClinicSessionInput{PostingID: w.posting,
		Day: program.AddDays(program.Today(time.Now()), 10), StartsAt: "08:00", EndsAt: "11:30", Place: "门诊"})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fixture) prog(s scope) progWorld {
	if f.progs == nil {
		f.progs = map[scope]progWorld{}
	}
	if w, ok := f.progs[s]; ok {
		return w
	}
	t, ctx, dir := f.t, f.ctx, f.app.svc.directory
	var w progWorld
	pr, err := dir.Pairing(ctx, f.admin, f.pairing[s])
	if err != nil {
		t.Fatal(err)
	}
	w.pairing = pr
	reach := map[string]bool{pr.SupportingHospitalID: true, pr.RecipientHospitalID: true}
	w.office = auth.Principal{UserID: f.user[own], HospitalID: pr.RecipientHospitalID, Roles: []auth.Role{auth.ProgramOffice}, Reach: reach}
	ds, err := dir.Departments(ctx, f.admin, pr.RecipientHospitalID, "", 1)
	if err != nil || len(ds) == 0 {
		t.Fatalf("departments of the recipient: %v", err)
	}
	w.recDept = ds[0].ID
	doc, err := dir.CreateStaff(ctx, f.admin, directory.StaffInput{HospitalID: pr.SupportingHospitalID, Name: "派驻" + s.String(), Title: "associate_chief_physician"})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := dir.CreateStaff(ctx, f.admin, directory.StaffInput{HospitalID: pr.RecipientHospitalID, Name: "进修" + s.String(), Title: "resident_physician"})
	if err != nil {
		t.Fatal(err)
	}
	w.recStaff = rs.ID
	u, err := f.app.svc.auth.CreateUser(ctx, f.admin, auth.NewUser{Username: "matrix.posted." + s.String(), DisplayName: "派驻",
		HospitalID: pr.SupportingHospitalID, StaffID: doc.ID, Roles: []auth.Role{auth.DispatchedDoctor}, Password: "posted-password-1"})
	if err != nil {
		t.Fatal(err)
	}
	w.doctor = auth.Principal{UserID: u.ID, HospitalID: pr.SupportingHospitalID, Roles: []auth.Role{auth.DispatchedDoctor}, Reach: reach}
	svc := f.app.svc.programs
	today := program.Today(time.Now())
	a, err := svc.CreateAgreement(ctx, w.office, programs.AgreementInput{PairingID: pr.ID,
		Terms: program.Terms{StartsOn: "2025-01-01", EndsOn: "2027-12-31", Commitments: program.Commitments{TeamsPerYear: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	w.agreement = a.ID
	// A posting in its last month (so the appraisal is open), long enough
	// to meet the rules.
	x, err := svc.CreatePosting(ctx, w.office, program.PostingInput{PairingID: pr.ID, StaffID: doc.ID, RecipientDepartmentID: w.recDept,
		StartsOn: program.AddDays(today, -170), EndsOn: program.AddDays(today, 20), Team: "矩阵"})
	if err != nil {
		t.Fatal(err)
	}
	w.posting = x.ID
	f.progs[s] = w
	return w
}

func (f *fixture) postingVersion(s scope) int {
	x, err := f.app.svc.programs.Posting(f.ctx, f.prog(s).office, f.prog(s).posting)
	if err != nil {
		f.t.Fatal(err)
	}
	return x.Version
}

func programMatrix() []row {
	today := func() string { return program.Today(time.Now()) }
	postingPath := func(f *fixture, s scope, rest string) string {
		return "/api/v1/postings/" + f.prog(s).posting + rest
	}
	return []row{
		{"GET", "/api/v1/agreements", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/agreements?pairing_id=" + f.pairing[s]}
		}, progListRule},
		{"POST", "/api/v1/agreements", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/agreements", body: map[string]any{"pairing_id": f.pairing[s],
				"terms": map[string]any{"starts_on": "2026-01-01", "ends_on": "2026-12-31"}}}
		}, progCreateRule},
		{"GET", "/api/v1/agreements/{agreementID}", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/agreements/" + f.prog(s).agreement}
		}, progReadRule},
		{"PUT", "/api/v1/agreements/{agreementID}", func(f *fixture, _ auth.Role, s scope) request {
			a, err := f.app.svc.programs.Agreement(f.ctx, f.prog(s).office, f.prog(s).agreement)
			if err != nil {
				f.t.Fatal(err)
			}
			return request{path: "/api/v1/agreements/" + a.ID, ifMatch: a.Version,
				body: map[string]any{"starts_on": "2025-01-01", "ends_on": "2027-12-31", "amendment_reason": "矩阵修订"}}
		}, progWriteRule(http.StatusOK)},
		{"GET", "/api/v1/agreements/{agreementID}/versions", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/agreements/" + f.prog(s).agreement + "/versions"}
		}, progReadRule},

		{"GET", "/api/v1/postings", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/postings?hospital_id=" + f.hospital[s]}
		}, progListRule},
		{"POST", "/api/v1/postings", func(f *fixture, _ auth.Role, s scope) request {
			w := f.prog(s)
			doc, err := f.app.svc.directory.CreateStaff(f.ctx, f.admin, directory.StaffInput{HospitalID: w.pairing.SupportingHospitalID,
				Name: fmt.Sprintf("新派%d", f.seq()), Title: "chief_physician"})
			if err != nil {
				f.t.Fatal(err)
			}
			return request{path: "/api/v1/postings", body: map[string]any{"pairing_id": f.pairing[s], "staff_id": doc.ID,
				"recipient_department_id": w.recDept, "starts_on": today(), "ends_on": program.AddDays(today(), 200), "team": "新队"}}
		}, progCreateRule},
		{"GET", "/api/v1/postings/{postingID}", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: postingPath(f, s, "")}
		}, progReadRule},
		{"PATCH", "/api/v1/postings/{postingID}", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: postingPath(f, s, ""), ifMatch: f.postingVersion(s), body: map[string]any{"specialty": "心内科"}}
		}, progWriteRule(http.StatusOK)},
		{"PUT", "/api/v1/postings/{postingID}/arrival", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: postingPath(f, s, "/arrival"), ifMatch: f.postingVersion(s),
				body: map[string]any{"arrived_on": program.AddDays(today(), -168)}}
		}, progWriteRule(http.StatusOK)},
		{"PUT", "/api/v1/postings/{postingID}/appraisal", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: postingPath(f, s, "/appraisal"), ifMatch: f.postingVersion(s),
				body: map[string]any{"grade": "excellent", "comment": "矩阵"}}
		}, progWriteRule(http.StatusOK)},

		{"GET", "/api/v1/postings/{postingID}/attendance", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: postingPath(f, s, "/attendance?month=") + today()[:7]}
		}, progReadRule},
		// Each call records another past day, so none meets a confirmed one.
		{"POST", "/api/v1/postings/{postingID}/attendance", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: postingPath(f, s, "/attendance"),
				body: map[string]any{"day": program.AddDays(today(), -(f.seq() % 160)), "status": "leave", "reason": "矩阵"}}
		}, progDoctorRule(true)},
		{"POST", "/api/v1/postings/{postingID}/attendance/{day}/confirmation", func(f *fixture, _ auth.Role, s scope) request {
			w := f.prog(s)
			day := program.AddDays(today(), -165)
			if _, err := f.app.svc.programs.RecordAttendance(f.ctx, w.office, w.posting, program.AttendanceInput{Day: day, Status: program.Leave, Reason: "矩阵"}); err != nil && !isConflict(err) {
				f.t.Fatal(err)
			}
			return request{path: postingPath(f, s, "/attendance/"+day+"/confirmation"), body: map[string]any{}}
		}, progWriteRule(http.StatusOK)},

		{"GET", "/api/v1/postings/{postingID}/evaluations", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: postingPath(f, s, "/evaluations")}
		}, progReadRule},
		// Each call files a month not yet evaluated.
		{"PUT", "/api/v1/postings/{postingID}/evaluations/{month}", func(f *fixture, _ auth.Role, s scope) request {
			w := f.prog(s)
			ev, err := f.app.svc.programs.Evaluations(f.ctx, w.office, w.posting)
			if err != nil {
				f.t.Fatal(err)
			}
			month := today()[:7]
			if len(ev.Overdue) > 0 {
				month = ev.Overdue[0].Month
			}
			scores := map[string]int{}
			for _, c := range ev.Criteria {
				scores[c.Code] = c.Max
			}
			return request{path: postingPath(f, s, "/evaluations/"+month), header: map[string]string{"If-None-Match": "*"},
				body: map[string]any{"scores": scores, "comment": "矩阵"}}
		}, progWriteRule(http.StatusCreated)},

		{"GET", "/api/v1/postings/{postingID}/work-logs", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: postingPath(f, s, "/work-logs")}
		}, progReadRule},
		{"POST", "/api/v1/postings/{postingID}/work-logs", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: postingPath(f, s, "/work-logs"), body: map[string]any{"day": today(), "counts": map[string]int{"outpatients": 3}}}
		}, progDoctorRule(false)},
		{"PATCH", "/api/v1/postings/{postingID}/work-logs/{logID}", func(f *fixture, _ auth.Role, s scope) request {
			w := f.prog(s)
			l, err := f.app.svc.programs.AddWorkLog(f.ctx, w.doctor, w.posting, program.WorkLogInput{Day: today(), Counts: program.WorkCounts{Outpatients: 1}})
			if err != nil {
				f.t.Fatal(err)
			}
			return request{path: postingPath(f, s, "/work-logs/"+l.ID), ifMatch: l.Version, body: map[string]any{"note": "更正"}}
		}, progDoctorRule(false)},
		{"POST", "/api/v1/postings/{postingID}/work-logs/{logID}/confirmation", func(f *fixture, _ auth.Role, s scope) request {
			w := f.prog(s)
			l, err := f.app.svc.programs.AddWorkLog(f.ctx, w.doctor, w.posting, program.WorkLogInput{Day: today(), Counts: program.WorkCounts{Outpatients: 1}})
			if err != nil {
				f.t.Fatal(err)
			}
			return request{path: postingPath(f, s, "/work-logs/"+l.ID+"/confirmation"), body: map[string]any{}}
		}, progWriteRule(http.StatusOK)},

		{"GET", "/api/v1/clinic-schedules", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/clinic-schedules?hospital_id=" + f.hospital[s]}
		}, progClinicListRule},
		{"POST", "/api/v1/clinic-schedules", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/clinic-schedules", body: map[string]any{"posting_id": f.prog(s).posting,
				"day": program.AddDays(today(), 10), "starts_at": "08:00", "ends_at": "11:30", "place": "门诊"}}
		}, progCreateRule},
		{"PATCH", "/api/v1/clinic-schedules/{clinicID}", func(f *fixture, _ auth.Role, s scope) request {
			c := f.clinic(s)
			return request{path: "/api/v1/clinic-schedules/" + c.ID, ifMatch: c.Version, body: map[string]any{"place": "门诊二楼"}}
		}, progWriteRule(http.StatusOK)},
		{"POST", "/api/v1/clinic-schedules/{clinicID}/cancel", func(f *fixture, _ auth.Role, s scope) request {
			c := f.clinic(s)
			return request{path: "/api/v1/clinic-schedules/" + c.ID + "/cancel", ifMatch: c.Version, body: map[string]any{"reason": "医生返院"}}
		}, progWriteRule(http.StatusOK)},

		{"GET", "/api/v1/trainees", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/trainees?pairing_id=" + f.pairing[s]}
		}, progListRule},
		{"POST", "/api/v1/trainees", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/trainees", body: map[string]any{"pairing_id": f.pairing[s], "staff_id": f.prog(s).recStaff,
				"host_department": "心内科", "starts_on": "2026-01-01", "ends_on": "2026-03-31"}}
		}, progCreateRule},
		{"PATCH", "/api/v1/trainees/{traineeID}", func(f *fixture, _ auth.Role, s scope) request {
			w := f.prog(s)
			tr, err := f.app.svc.programs.AddTrainee(f.ctx, w.office, program.TraineeInput{PairingID: f.pairing[s], StaffID: w.recStaff,
				HostDepartment: "心内科", StartsOn: "2026-01-01", EndsOn: "2026-03-31"})
			if err != nil {
				f.t.Fatal(err)
			}
			return request{path: "/api/v1/trainees/" + tr.ID, ifMatch: tr.Version, body: map[string]any{"ends_on": "2026-04-30"}}
		}, progWriteRule(http.StatusOK)},

		// Reports: a pairing's or a hospital's within reach, as its records.
		{"GET", "/api/v1/program-reports", func(f *fixture, r auth.Role, s scope) request {
			if f.seq()%2 == 0 {
				return request{path: "/api/v1/program-reports?format=xlsx&period=" + today()[:7] + "&pairing_id=" + f.pairing[s]}
			}
			return request{path: "/api/v1/program-reports?period=" + today()[:4] + "-Q1&hospital_id=" + f.hospital[s]}
		}, progReadRule},
		{"GET", "/api/v1/program-reports/compliance", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/program-reports/compliance?format=csv&year=" + today()[:4] + "&pairing_id=" + f.pairing[s]}
		}, progReadRule},
		{"GET", "/api/v1/program-reports/reminders", func(*fixture, auth.Role, scope) request {
			return request{path: "/api/v1/program-reports/reminders"}
		}, func(r auth.Role, _ scope) int {
			if r == auth.ProgramOffice {
				return http.StatusOK
			}
			return http.StatusForbidden
		}},
	}
}

// isConflict: the day was confirmed by an earlier call already.
func isConflict(err error) bool { return errors.Is(err, apperr.ErrConflict) }
