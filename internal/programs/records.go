package programs

// What is filed during a posting: attendance, monthly evaluations, work
// logs; the clinic schedule and trainees.

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"duikou/internal/apperr"
	"duikou/internal/auth"
	"duikou/internal/directory"
	"duikou/internal/program"
)

// ---- Attendance ----

// isDoctorOf reports whether p is the posting's dispatched doctor.
func (s *Service) isDoctorOf(ctx context.Context, p auth.Principal, x program.Posting) (bool, error) {
	if !p.Has(auth.DispatchedDoctor) {
		return false, nil
	}
	u, err := s.users.User(ctx, p.UserID)
	if errors.Is(err, apperr.ErrNotFound) {
		return false, nil
	}
	return err == nil && u.StaffID != "" && u.StaffID == x.StaffID, err
}

// RecordAttendance records a day: the doctor checks in or takes leave with
// a reason; the recipient's office may also record leave or an absence.
func (s *Service) RecordAttendance(ctx context.Context, p auth.Principal, id string, in program.AttendanceInput) (program.Attendance, error) {
	x, sd, err := s.posting(ctx, p, id)
	if err != nil {
		return program.Attendance{}, err
	}
	doctor, err := s.isDoctorOf(ctx, p, x)
	if err != nil {
		return program.Attendance{}, err
	}
	office := recipientOffice(p, sd) == nil
	if !doctor && !office {
		return program.Attendance{}, apperr.Forbidden("only the posted doctor and the recipient's program office record attendance")
	}
	if in, err = in.Check(x); err != nil {
		return program.Attendance{}, err
	}
	today := program.Today(s.now())
	switch {
	case in.Status == program.Absent && !office:
		return program.Attendance{}, apperr.Field("status", "an absence is recorded by the recipient hospital")
	case in.Status == program.Present && in.Day != today && !office:
		// A check-in is made on the day; a day missed is the recipient's
		// to record.
		return program.Attendance{}, apperr.Field("day", "a check-in is for today ("+today+")")
	case in.Day > today && in.Status != program.Leave:
		return program.Attendance{}, apperr.Field("day", "must not be in the future")
	}
	a := program.Attendance{PostingID: x.ID, Day: in.Day, Status: in.Status, Reason: in.Reason, RecordedBy: p.UserID, RecordedAt: s.now()}
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		if a, err = s.st.PutAttendance(ctx, a); err != nil {
			return err
		}
		return s.record(ctx, p, ActionAttendance, "program_posting", x.ID, fmt.Sprintf("%s %s", in.Day, in.Status))
	})
	return a, err
}

// ConfirmAttendance confirms a recorded day.
func (s *Service) ConfirmAttendance(ctx context.Context, p auth.Principal, id, day string) (program.Attendance, error) {
	x, sd, err := s.posting(ctx, p, id)
	if err != nil {
		return program.Attendance{}, err
	}
	if err := recipientOffice(p, sd); err != nil {
		return program.Attendance{}, err
	}
	if _, ok := program.ParseDay(day); !ok {
		return program.Attendance{}, apperr.ErrNotFound
	}
	var a program.Attendance
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		if a, err = s.st.ConfirmAttendance(ctx, x.ID, day, p.UserID, s.now()); err != nil {
			return err
		}
		return s.record(ctx, p, ActionAttendanceOK, "program_posting", x.ID, day)
	})
	return a, err
}

// MonthAttendance is a posting's days of a month and its rate.
type MonthAttendance struct {
	Days []program.Attendance   `json:"days"`
	Rate program.AttendanceRate `json:"rate"`
}

// Attendance returns a posting's attendance in month (YYYY-MM).
func (s *Service) Attendance(ctx context.Context, p auth.Principal, id, month string) (MonthAttendance, error) {
	x, _, err := s.posting(ctx, p, id)
	if err != nil {
		return MonthAttendance{}, err
	}
	m, ok := program.ParseMonth(month)
	if !ok {
		return MonthAttendance{}, apperr.Field("month", "must be a month YYYY-MM")
	}
	from, to := m.Format(program.DayLayout), m.AddDate(0, 1, -1).Format(program.DayLayout)
	days, err := s.st.AttendanceOf(ctx, x.ID, from, to)
	if err != nil {
		return MonthAttendance{}, err
	}
	if days == nil {
		days = []program.Attendance{}
	}
	return MonthAttendance{Days: days, Rate: program.RateOf(x, month, days, program.Today(s.now()))}, nil
}

// ---- Evaluations ----

// PostingEvaluations are a posting's evaluations, the criteria they score
// and the months overdue.
type PostingEvaluations struct {
	Criteria    []program.Criterion         `json:"criteria"`
	Evaluations []program.Evaluation        `json:"evaluations"`
	Overdue     []program.OverdueEvaluation `json:"overdue"`
}

// Evaluations lists a posting's monthly evaluations and flags those overdue.
func (s *Service) Evaluations(ctx context.Context, p auth.Principal, id string) (PostingEvaluations, error) {
	x, _, err := s.posting(ctx, p, id)
	if err != nil {
		return PostingEvaluations{}, err
	}
	es, err := s.st.Evaluations(ctx, x.ID)
	if err != nil {
		return PostingEvaluations{}, err
	}
	filed := map[string]bool{}
	for _, e := range es {
		filed[e.Month] = true
	}
	out := PostingEvaluations{Criteria: s.cfg.Criteria, Evaluations: es,
		Overdue: s.cfg.OverdueEvaluations(x, filed, program.Today(s.now()))}
	if out.Evaluations == nil {
		out.Evaluations = []program.Evaluation{}
	}
	if out.Overdue == nil {
		out.Overdue = []program.OverdueEvaluation{}
	}
	return out, nil
}

// Evaluate files (version 0) or corrects a month's evaluation. A month is
// evaluated once it has begun; one filed after its due day is marked late.
func (s *Service) Evaluate(ctx context.Context, p auth.Principal, id, month string, version int, in program.EvaluationInput) (program.Evaluation, bool, error) {
	x, sd, err := s.posting(ctx, p, id)
	if err != nil {
		return program.Evaluation{}, false, err
	}
	if err := recipientOffice(p, sd); err != nil {
		return program.Evaluation{}, false, err
	}
	if !slices.Contains(program.MonthsOf(x.StartsOn, x.EndsOn), month) {
		return program.Evaluation{}, false, apperr.ErrNotFound // no such month of this posting
	}
	in, total, err := in.Check(s.cfg.Criteria)
	if err != nil {
		return program.Evaluation{}, false, err
	}
	today := program.Today(s.now())
	if today < month+"-01" {
		return program.Evaluation{}, false, apperr.Field("month", "has not begun")
	}
	due := s.cfg.EvaluationDue(month)
	e := program.Evaluation{PostingID: x.ID, Month: month, Scores: in.Scores, Total: total, Comment: in.Comment,
		EvaluatedBy: p.UserID, EvaluatedAt: s.now(), DueOn: due, Late: today > due}
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		if e, err = s.st.PutEvaluation(ctx, e, version); err != nil {
			return err
		}
		return s.record(ctx, p, ActionEvaluation, "program_posting", x.ID, fmt.Sprintf("%s total %d (due %s)", month, total, due))
	})
	return e, version == 0, err
}

// ---- Work logs ----

// WorkLogs lists a posting's work log.
func (s *Service) WorkLogs(ctx context.Context, p auth.Principal, id string) ([]program.WorkLog, error) {
	x, _, err := s.posting(ctx, p, id)
	if err != nil {
		return nil, err
	}
	ls, err := s.st.WorkLogs(ctx, x.ID)
	if ls == nil {
		ls = []program.WorkLog{}
	}
	return ls, err
}

// AddWorkLog enters a day's work; only the posted doctor does.
func (s *Service) AddWorkLog(ctx context.Context, p auth.Principal, id string, in program.WorkLogInput) (program.WorkLog, error) {
	x, _, err := s.posting(ctx, p, id)
	if err != nil {
		return program.WorkLog{}, err
	}
	doctor, err := s.isDoctorOf(ctx, p, x)
	if err != nil {
		return program.WorkLog{}, err
	}
	if !doctor {
		return program.WorkLog{}, apperr.Forbidden("only the posted doctor enters the work log")
	}
	if in, err = in.Check(x); err != nil {
		return program.WorkLog{}, err
	}
	if in.Day > program.Today(s.now()) {
		return program.WorkLog{}, apperr.Field("day", "must not be in the future")
	}
	w := program.WorkLog{ID: newID(), PostingID: x.ID, Day: in.Day, Counts: in.Counts, TechniqueNames: in.TechniqueNames,
		Note: in.Note, EnteredBy: p.UserID, EnteredAt: s.now(), Version: 1}
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		if err := s.st.CreateWorkLog(ctx, w); err != nil {
			return err
		}
		return s.record(ctx, p, ActionWorkLog, "program_work_log", w.ID, "posting "+x.ID+" "+in.Day)
	})
	return w, err
}

// UpdateWorkLog corrects an entry the recipient has not confirmed yet; only
// the posted doctor does, as enters it. A confirmed entry is refused (409):
// what the office confirmed stays as confirmed.
func (s *Service) UpdateWorkLog(ctx context.Context, p auth.Principal, id, logID string, version int, patch program.WorkLogPatch) (program.WorkLog, error) {
	x, _, err := s.posting(ctx, p, id)
	if err != nil {
		return program.WorkLog{}, err
	}
	doctor, err := s.isDoctorOf(ctx, p, x)
	if err != nil {
		return program.WorkLog{}, err
	}
	if !doctor {
		return program.WorkLog{}, apperr.Forbidden("only the posted doctor corrects the work log")
	}
	w, err := s.st.WorkLog(ctx, logID)
	if err != nil {
		return program.WorkLog{}, err
	}
	if w.PostingID != x.ID {
		return program.WorkLog{}, apperr.ErrNotFound
	}
	if w.ConfirmedAt != nil {
		return program.WorkLog{}, apperr.Conflict("this work log entry is confirmed: it is no longer corrected")
	}
	if version != w.Version {
		return program.WorkLog{}, apperr.ErrStale
	}
	in, err := patch.Apply(w).Check(x)
	if err != nil {
		return program.WorkLog{}, err
	}
	if in.Day > program.Today(s.now()) {
		return program.WorkLog{}, apperr.Field("day", "must not be in the future")
	}
	was := w.Day
	w.Day, w.Counts, w.TechniqueNames, w.Note = in.Day, in.Counts, in.TechniqueNames, in.Note
	var out program.WorkLog
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		var err error
		if out, err = s.st.UpdateWorkLog(ctx, w, version); err != nil {
			return err
		}
		return s.record(ctx, p, ActionWorkLogUpdate, "program_work_log", w.ID, "posting "+x.ID+" "+was+" → "+w.Day)
	})
	return out, err
}

// ConfirmWorkLog confirms an entry of a posting.
func (s *Service) ConfirmWorkLog(ctx context.Context, p auth.Principal, id, logID string) (program.WorkLog, error) {
	x, sd, err := s.posting(ctx, p, id)
	if err != nil {
		return program.WorkLog{}, err
	}
	if err := recipientOffice(p, sd); err != nil {
		return program.WorkLog{}, err
	}
	w, err := s.st.WorkLog(ctx, logID)
	if err != nil {
		return w, err
	}
	if w.PostingID != x.ID {
		return program.WorkLog{}, apperr.ErrNotFound
	}
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		if w, err = s.st.ConfirmWorkLog(ctx, logID, p.UserID, s.now()); err != nil {
			return err
		}
		return s.record(ctx, p, ActionWorkLogOK, "program_work_log", logID, "posting "+x.ID)
	})
	return w, err
}

// ---- Clinic schedule ----

// PublishClinic publishes a dispatched doctor's clinic, at least the lead
// time ahead.
func (s *Service) PublishClinic(ctx context.Context, p auth.Principal, in program.ClinicSessionInput) (program.ClinicSession, error) {
	if err := officeOnly(p); err != nil {
		return program.ClinicSession{}, err
	}
	if !apperr.IsID(in.PostingID) {
		return program.ClinicSession{}, apperr.Field("posting_id", "must be a posting id")
	}
	x, sd, err := s.posting(ctx, p, in.PostingID)
	if errors.Is(err, apperr.ErrNotFound) {
		return program.ClinicSession{}, apperr.Field("posting_id", "no such posting")
	}
	if err != nil {
		return program.ClinicSession{}, err
	}
	if err := recipientOffice(p, sd); err != nil {
		return program.ClinicSession{}, err
	}
	now := s.now()
	if in, err = in.Check(s.cfg, x, program.Today(now)); err != nil {
		return program.ClinicSession{}, err
	}
	c := program.ClinicSession{ID: newID(), PostingID: x.ID, RecipientHospitalID: x.RecipientHospitalID, Day: in.Day,
		StartsAt: in.StartsAt, EndsAt: in.EndsAt, Place: in.Place, PublishedBy: p.UserID, PublishedAt: now, Version: 1}
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		if err := s.st.CreateClinicSession(ctx, c); err != nil {
			return err
		}
		return s.record(ctx, p, ActionClinicPublish, "program_clinic", c.ID, fmt.Sprintf("%s %s %s–%s", x.StaffName, c.Day, c.StartsAt, c.EndsAt))
	})
	return c, err
}

// clinic finds a published clinic the recipient hospital's program office
// of its posting may change; one outside p's reach is not found.
func (s *Service) clinic(ctx context.Context, p auth.Principal, id string, version int) (program.ClinicSession, program.Posting, error) {
	if err := officeOnly(p); err != nil {
		return program.ClinicSession{}, program.Posting{}, err
	}
	c, err := s.st.ClinicSession(ctx, id)
	if err != nil {
		return c, program.Posting{}, err
	}
	x, sd, err := s.posting(ctx, p, c.PostingID)
	if errors.Is(err, apperr.ErrNotFound) {
		// The posting's reach is the clinic's: say so of the clinic.
		return program.ClinicSession{}, x, apperr.ErrNotFound
	}
	if err != nil {
		return program.ClinicSession{}, x, err
	}
	if err := recipientOffice(p, sd); err != nil {
		return program.ClinicSession{}, x, err
	}
	if c.Cancelled != nil {
		return program.ClinicSession{}, x, apperr.Conflict("the clinic is cancelled")
	}
	if version != c.Version {
		return program.ClinicSession{}, x, apperr.ErrStale
	}
	return c, x, nil
}

// ChangeClinic moves a published clinic to another day, time or place;
// the new day keeps the publication lead time counted from today, so
// residents still learn of it a week ahead.
func (s *Service) ChangeClinic(ctx context.Context, p auth.Principal, id string, version int, ch program.ClinicChange) (program.ClinicSession, error) {
	c, x, err := s.clinic(ctx, p, id, version)
	if err != nil {
		return c, err
	}
	in, err := ch.Apply(c).Check(s.cfg, x, program.Today(s.now()))
	if err != nil {
		return program.ClinicSession{}, err
	}
	was := fmt.Sprintf("%s %s–%s %s", c.Day, c.StartsAt, c.EndsAt, c.Place)
	c.Day, c.StartsAt, c.EndsAt, c.Place = in.Day, in.StartsAt, in.EndsAt, in.Place
	var out program.ClinicSession
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		var err error
		if out, err = s.st.UpdateClinicSession(ctx, c, version); err != nil {
			return err
		}
		return s.record(ctx, p, ActionClinicChange, "program_clinic", c.ID,
			fmt.Sprintf("%s: %s → %s %s–%s %s", x.StaffName, was, c.Day, c.StartsAt, c.EndsAt, c.Place))
	})
	return out, err
}

// CancelClinic calls a published clinic off with a reason; it leaves the
// public page and stays on record.
func (s *Service) CancelClinic(ctx context.Context, p auth.Principal, id string, version int, in program.ClinicCancel) (program.ClinicSession, error) {
	c, x, err := s.clinic(ctx, p, id, version)
	if err != nil {
		return c, err
	}
	if in, err = in.Check(); err != nil {
		return program.ClinicSession{}, err
	}
	c.Cancelled = &program.Cancellation{Reason: in.Reason, By: p.UserID, At: s.now()}
	var out program.ClinicSession
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		var err error
		if out, err = s.st.UpdateClinicSession(ctx, c, version); err != nil {
			return err
		}
		return s.record(ctx, p, ActionClinicCancel, "program_clinic", c.ID, fmt.Sprintf("%s %s %s–%s: %s", x.StaffName, c.Day, c.StartsAt, c.EndsAt, in.Reason))
	})
	return out, err
}

// ClinicSessions lists a hospital's published clinics from one day to
// another (default: today and the next four weeks).
func (s *Service) ClinicSessions(ctx context.Context, p auth.Principal, hospitalID, from, to string) ([]program.ClinicSession, error) {
	if err := mayRead(p); err != nil {
		return nil, err
	}
	if !apperr.IsID(hospitalID) {
		return nil, apperr.Field("hospital_id", "must be a hospital id")
	}
	if !p.CanReach(hospitalID) {
		return nil, s.outOfReach(ctx, p, "hospital", hospitalID)
	}
	from, to, err := s.window(from, to)
	if err != nil {
		return nil, err
	}
	cs, err := s.st.ClinicSessions(ctx, program.ClinicFilter{HospitalID: hospitalID, FromDay: from, ToDay: to, Limit: 1000})
	if cs == nil {
		cs = []program.ClinicSession{}
	}
	return cs, err
}

// PublicWeeks is how far ahead the public page shows.
const PublicWeeks = 4

func (s *Service) window(from, to string) (string, string, error) {
	var v apperr.Invalid
	today := program.Today(s.now())
	if from == "" {
		from = today
	} else if _, ok := program.ParseDay(from); !ok {
		v.Add("from", "must be a day YYYY-MM-DD")
	}
	if to == "" {
		to = program.AddDays(from, 7*PublicWeeks)
	} else if _, ok := program.ParseDay(to); !ok {
		v.Add("to", "must be a day YYYY-MM-DD")
	} else if to < from {
		v.Add("to", "must not be before from")
	}
	return from, to, v.Err()
}

// PublicSchedule is the page residents read: a hospital's name and the
// dispatched doctors' clinics from today for PublicWeeks. It needs no login
// and shows nothing but the doctor's name, title, home hospital and
// specialty.
type PublicSchedule struct {
	HospitalName string
	From, To     string
	Sessions     []program.PublicSession
}

// Public returns the public clinic schedule of a hospital; an unknown
// hospital or one that is not a hospital (an authority) is not found.
func (s *Service) Public(ctx context.Context, hospitalID string) (PublicSchedule, error) {
	if !apperr.IsID(hospitalID) {
		return PublicSchedule{}, apperr.ErrNotFound
	}
	h, err := s.dir.Hospital(ctx, hospitalID)
	if err != nil {
		return PublicSchedule{}, err
	}
	if h.Tier == directory.Authority {
		return PublicSchedule{}, apperr.ErrNotFound
	}
	from, to, _ := s.window("", "")
	rows, err := s.st.PublicSchedule(ctx, hospitalID, from, to)
	for i := range rows {
		if l := directory.Title(rows[i].TitleLabel).Label(); l != "" {
			rows[i].TitleLabel = l
		}
	}
	return PublicSchedule{HospitalName: h.Name, From: from, To: to, Sessions: rows}, err
}

// ---- Trainees ----

// AddTrainee records recipient staff sent to the supporting hospital.
func (s *Service) AddTrainee(ctx context.Context, p auth.Principal, in program.TraineeInput) (program.Trainee, error) {
	if err := officeOnly(p); err != nil {
		return program.Trainee{}, err
	}
	in, err := in.Check()
	if err != nil {
		return program.Trainee{}, err
	}
	pr, sd, err := s.pairing(ctx, p, in.PairingID)
	if err != nil {
		return program.Trainee{}, notFoundAsField(err)
	}
	if err := partyOffice(p, sd); err != nil {
		return program.Trainee{}, err
	}
	st, err := s.dir.StaffMember(ctx, in.StaffID)
	if errors.Is(err, apperr.ErrNotFound) || (err == nil && st.HospitalID != pr.RecipientHospitalID) {
		return program.Trainee{}, apperr.Field("staff_id", "is not on the recipient hospital's staff")
	}
	if err != nil {
		return program.Trainee{}, err
	}
	t := program.Trainee{ID: newID(), PairingID: pr.ID, SupportingHospitalID: pr.SupportingHospitalID, RecipientHospitalID: pr.RecipientHospitalID,
		StaffID: st.ID, StaffName: st.Name, DepartmentID: st.DepartmentID, HostDepartment: in.HostDepartment,
		StartsOn: in.StartsOn, EndsOn: in.EndsOn, CreatedBy: p.UserID, CreatedAt: s.now(), Version: 1}
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		if err := s.st.CreateTrainee(ctx, t); err != nil {
			return err
		}
		return s.record(ctx, p, ActionTraineeCreate, "program_trainee", t.ID, fmt.Sprintf("%s to %s, %s to %s", st.Name, in.HostDepartment, in.StartsOn, in.EndsOn))
	})
	return t, err
}

// UpdateTrainee corrects a trainee's host department or period: a program
// office of the pairing, as adds the record.
func (s *Service) UpdateTrainee(ctx context.Context, p auth.Principal, id string, version int, patch program.TraineePatch) (program.Trainee, error) {
	if err := officeOnly(p); err != nil {
		return program.Trainee{}, err
	}
	t, err := s.st.Trainee(ctx, id)
	if err != nil {
		return t, err
	}
	sd := sideOf(p, t.SupportingHospitalID, t.RecipientHospitalID)
	if sd == noSide {
		return program.Trainee{}, s.outOfReach(ctx, p, "program_trainee", id)
	}
	if err := partyOffice(p, sd); err != nil {
		return program.Trainee{}, err
	}
	if version != t.Version {
		return program.Trainee{}, apperr.ErrStale
	}
	was := fmt.Sprintf("%s, %s to %s", t.HostDepartment, t.StartsOn, t.EndsOn)
	if t, err = patch.Apply(t); err != nil {
		return program.Trainee{}, err
	}
	var out program.Trainee
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		var err error
		if out, err = s.st.UpdateTrainee(ctx, t, version); err != nil {
			return err
		}
		return s.record(ctx, p, ActionTraineeUpdate, "program_trainee", t.ID, fmt.Sprintf("%s: %s → %s, %s to %s", t.StaffName, was, t.HostDepartment, t.StartsOn, t.EndsOn))
	})
	return out, err
}

// Trainees lists the trainees p sees.
func (s *Service) Trainees(ctx context.Context, p auth.Principal, q Query) ([]program.Trainee, error) {
	if err := mayRead(p); err != nil {
		return nil, err
	}
	return s.st.Trainees(ctx, listFilter(p, q))
}
