package httpapi

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"duikou/internal/apperr"
	"duikou/internal/auth"
	"duikou/internal/program"
	"duikou/internal/programs"
)

// ProgramService is what the API needs of the program's records
// (programs.Service).
type ProgramService interface {
	CreateAgreement(ctx context.Context, p auth.Principal, in programs.AgreementInput) (program.Agreement, error)
	Agreement(ctx context.Context, p auth.Principal, id string) (program.Agreement, error)
	Agreements(ctx context.Context, p auth.Principal, q programs.Query) ([]program.Agreement, error)
	AmendAgreement(ctx context.Context, p auth.Principal, id string, version int, terms program.Terms) (program.Agreement, error)
	AgreementVersions(ctx context.Context, p auth.Principal, id string) ([]program.AgreementVersion, error)

	CreatePosting(ctx context.Context, p auth.Principal, in program.PostingInput) (program.Posting, error)
	Posting(ctx context.Context, p auth.Principal, id string) (program.Posting, error)
	Postings(ctx context.Context, p auth.Principal, q programs.Query) ([]program.Posting, error)
	UpdatePosting(ctx context.Context, p auth.Principal, id string, version int, patch program.PostingPatch) (program.Posting, error)
	ConfirmArrival(ctx context.Context, p auth.Principal, id string, version int, in program.ArrivalInput) (program.Posting, error)
	Appraise(ctx context.Context, p auth.Principal, id string, version int, in program.AppraisalInput) (program.Posting, error)

	RecordAttendance(ctx context.Context, p auth.Principal, id string, in program.AttendanceInput) (program.Attendance, error)
	ConfirmAttendance(ctx context.Context, p auth.Principal, id, day string) (program.Attendance, error)
	Attendance(ctx context.Context, p auth.Principal, id, month string) (programs.MonthAttendance, error)

	Evaluations(ctx context.Context, p auth.Principal, id string) (programs.PostingEvaluations, error)
	Evaluate(ctx context.Context, p auth.Principal, id, month string, version int, in program.EvaluationInput) (program.Evaluation, bool, error)

	WorkLogs(ctx context.Context, p auth.Principal, id string) ([]program.WorkLog, error)
	AddWorkLog(ctx context.Context, p auth.Principal, id string, in program.WorkLogInput) (program.WorkLog, error)
	ConfirmWorkLog(ctx context.Context, p auth.Principal, id, logID string) (program.WorkLog, error)
	UpdateWorkLog(ctx context.Context, p auth.Principal, id, logID string, version int, patch program.WorkLogPatch) (program.WorkLog, error)

	PublishClinic(ctx context.Context, p auth.Principal, in program.ClinicSessionInput) (program.ClinicSession, error)
	ChangeClinic(ctx context.Context, p auth.Principal, id string, version int, ch program.ClinicChange) (program.ClinicSession, error)
	CancelClinic(ctx context.Context, p auth.Principal, id string, version int, in program.ClinicCancel) (program.ClinicSession, error)
	ClinicSessions(ctx context.Context, p auth.Principal, hospitalID, from, to string) ([]program.ClinicSession, error)
	Public(ctx context.Context, hospitalID string) (programs.PublicSchedule, error)

	AddTrainee(ctx context.Context, p auth.Principal, in program.TraineeInput) (program.Trainee, error)
	UpdateTrainee(ctx context.Context, p auth.Principal, id string, version int, patch program.TraineePatch) (program.Trainee, error)
	Trainees(ctx context.Context, p auth.Principal, q programs.Query) ([]program.Trainee, error)
}

var _ ProgramService = (*programs.Service)(nil)

// Roles the program gates admit; the service narrows each to the side of
// the pairing that files the record (see programs.Service).
var (
	programReaders  = programs.Readers
	programOffice   = []auth.Role{auth.ProgramOffice}
	programDoctor   = []auth.Role{auth.DispatchedDoctor}
	programCheckIns = []auth.Role{auth.DispatchedDoctor, auth.ProgramOffice}
)

// Items of lists that are not paged: a posting's evaluations, days or logs
// are bounded by its months.
type (
	// AgreementVersions lists every version of an agreement, oldest first.
	AgreementVersions struct {
		Items []program.AgreementVersion `json:"items"`
	}
	// WorkLogList is a posting's work log by day.
	WorkLogList struct {
		Items []program.WorkLog `json:"items"`
	}
	// ClinicSessionList is a hospital's published clinics by day.
	ClinicSessionList struct {
		Items []program.ClinicSession `json:"items"`
	}
)

func (a *API) mountProgram(r chi.Router) {
	r.With(a.allow(programReaders...)).Get("/agreements", a.progAgreements)
	r.With(a.allow(programOffice...)).Post("/agreements", a.progAgreementCreate)
	r.With(a.allow(programReaders...)).Get("/agreements/{agreementID}", a.progAgreement)
	r.With(a.allow(programOffice...)).Put("/agreements/{agreementID}", a.progAgreementAmend)
	r.With(a.allow(programReaders...)).Get("/agreements/{agreementID}/versions", a.progAgreementVersions)

	r.With(a.allow(programReaders...)).Get("/postings", a.progPostings)
	r.With(a.allow(programOffice...)).Post("/postings", a.progPostingCreate)
	r.With(a.allow(programReaders...)).Get("/postings/{postingID}", a.progPosting)
	r.With(a.allow(programOffice...)).Patch("/postings/{postingID}", a.progPostingUpdate)
	r.With(a.allow(programOffice...)).Put("/postings/{postingID}/arrival", a.progArrival)
	r.With(a.allow(programOffice...)).Put("/postings/{postingID}/appraisal", a.progAppraisal)

	r.With(a.allow(programReaders...)).Get("/postings/{postingID}/attendance", a.progAttendance)
	r.With(a.allow(programCheckIns...)).Post("/postings/{postingID}/attendance", a.progAttendanceRecord)
	r.With(a.allow(programOffice...)).Post("/postings/{postingID}/attendance/{day}/confirmation", a.progAttendanceConfirm)

	r.With(a.allow(programReaders...)).Get("/postings/{postingID}/evaluations", a.progEvaluations)
	r.With(a.allow(programOffice...)).Put("/postings/{postingID}/evaluations/{month}", a.progEvaluate)

	r.With(a.allow(programReaders...)).Get("/postings/{postingID}/work-logs", a.progWorkLogs)
	r.With(a.allow(programDoctor...)).Post("/postings/{postingID}/work-logs", a.progWorkLogAdd)
	r.With(a.allow(programDoctor...)).Patch("/postings/{postingID}/work-logs/{logID}", a.progWorkLogUpdate)
	r.With(a.allow(programOffice...)).Post("/postings/{postingID}/work-logs/{logID}/confirmation", a.progWorkLogConfirm)

	r.With(a.allow(programReaders...)).Get("/clinic-schedules", a.progClinics)
	r.With(a.allow(programOffice...)).Post("/clinic-schedules", a.progClinicPublish)
	r.With(a.allow(programOffice...)).Patch("/clinic-schedules/{clinicID}", a.progClinicChange)
	r.With(a.allow(programOffice...)).Post("/clinic-schedules/{clinicID}/cancel", a.progClinicCancel)

	r.With(a.allow(programReaders...)).Get("/trainees", a.progTrainees)
	r.With(a.allow(programOffice...)).Post("/trainees", a.progTraineeAdd)
	r.With(a.allow(programOffice...)).Patch("/trainees/{traineeID}", a.progTraineeUpdate)
}

func agreementVersion(x program.Agreement) int  { return x.Version }
func postingVersion(x program.Posting) int      { return x.Version }
func clinicVersion(x program.ClinicSession) int { return x.Version }
func evaluationVersion(x program.Evaluation) int {
	return x.Version
}

// noVersion: records that are never edited carry no ETag.
func noVersion[T any](T) int { return 0 }

// progQuery reads the list filters shared by agreements, postings and
// trainees, reporting every bad one by its parameter name.
func progQuery(r *http.Request) (programs.Query, error) {
	q := r.URL.Query()
	var v apperr.Invalid
	out := programs.Query{PairingID: q.Get("pairing_id"), HospitalID: q.Get("hospital_id"), StaffID: q.Get("staff_id")}
	for _, f := range []struct{ name, id string }{{"pairing_id", out.PairingID}, {"hospital_id", out.HospitalID}, {"staff_id", out.StaffID}} {
		if f.id != "" && !apperr.IsID(f.id) {
			v.Add(f.name, "must be an id")
		}
	}
	return out, v.Err()
}

func progList[T any](a *API, w http.ResponseWriter, r *http.Request, list func(ctx context.Context, p auth.Principal, q programs.Query) ([]T, error), key func(T) string) {
	q, err := progQuery(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	regServePage(a, w, r, func(pg Page) ([]T, error) {
		q.After, q.Limit = pg.Cursor, pg.Limit
		return list(r.Context(), principal(r), q)
	}, key)
}

// ---- Agreements ----

func (a *API) progAgreements(w http.ResponseWriter, r *http.Request) {
	progList(a, w, r, a.Program.Agreements, func(x program.Agreement) string { return x.ID })
}

func (a *API) progAgreementCreate(w http.ResponseWriter, r *http.Request) {
	regServeCreate(a, w, r, a.Program.CreateAgreement, agreementVersion)
}

func (a *API) progAgreement(w http.ResponseWriter, r *http.Request) {
	x, err := a.Program.Agreement(r.Context(), principal(r), chi.URLParam(r, "agreementID"))
	regServeOne(a, w, r, http.StatusOK, x, agreementVersion, err)
}

// The service is called through closures: a method value of a nil
// service would panic before If-Match is checked.

// progAgreementAmend writes the whole terms again as the next version.
func (a *API) progAgreementAmend(w http.ResponseWriter, r *http.Request) {
	regServeUpdate(a, w, r, chi.URLParam(r, "agreementID"), func(ctx context.Context, p auth.Principal, id string, ver int, in program.Terms) (program.Agreement, error) {
		return a.Program.AmendAgreement(ctx, p, id, ver, in)
	}, agreementVersion)
}

func (a *API) progAgreementVersions(w http.ResponseWriter, r *http.Request) {
	vs, err := a.Program.AgreementVersions(r.Context(), principal(r), chi.URLParam(r, "agreementID"))
	regServeOne(a, w, r, http.StatusOK, AgreementVersions{Items: vs}, noVersion, err)
}

// ---- Postings ----

func (a *API) progPostings(w http.ResponseWriter, r *http.Request) {
	progList(a, w, r, a.Program.Postings, func(x program.Posting) string { return x.ID })
}

func (a *API) progPostingCreate(w http.ResponseWriter, r *http.Request) {
	regServeCreate(a, w, r, a.Program.CreatePosting, postingVersion)
}

func (a *API) progPosting(w http.ResponseWriter, r *http.Request) {
	x, err := a.Program.Posting(r.Context(), principal(r), chi.URLParam(r, "postingID"))
	regServeOne(a, w, r, http.StatusOK, x, postingVersion, err)
}

func (a *API) progPostingUpdate(w http.ResponseWriter, r *http.Request) {
	regServeUpdate(a, w, r, chi.URLParam(r, "postingID"), func(ctx context.Context, p auth.Principal, id string, ver int, in program.PostingPatch) (program.Posting, error) {
		return a.Program.UpdatePosting(ctx, p, id, ver, in)
	}, postingVersion)
}

// progArrival: the arrival is part of the posting, so it is written under
// the posting's If-Match.
func (a *API) progArrival(w http.ResponseWriter, r *http.Request) {
	regServeUpdate(a, w, r, chi.URLParam(r, "postingID"), func(ctx context.Context, p auth.Principal, id string, ver int, in program.ArrivalInput) (program.Posting, error) {
		return a.Program.ConfirmArrival(ctx, p, id, ver, in)
	}, postingVersion)
}

func (a *API) progAppraisal(w http.ResponseWriter, r *http.Request) {
	regServeUpdate(a, w, r, chi.URLParam(r, "postingID"), func(ctx context.Context, p auth.Principal, id string, ver int, in program.AppraisalInput) (program.Posting, error) {
		return a.Program.Appraise(ctx, p, id, ver, in)
	}, postingVersion)
}

// ---- Attendance ----

func (a *API) progAttendance(w http.ResponseWriter, r *http.Request) {
	m, err := a.Program.Attendance(r.Context(), principal(r), chi.URLParam(r, "postingID"), r.URL.Query().Get("month"))
	regServeOne(a, w, r, http.StatusOK, m, noVersion, err)
}

func (a *API) progAttendanceRecord(w http.ResponseWriter, r *http.Request) {
	var in program.AttendanceInput
	if !a.readJSON(w, r, &in) {
		return
	}
	x, err := a.Program.RecordAttendance(r.Context(), principal(r), chi.URLParam(r, "postingID"), in)
	regServeOne(a, w, r, http.StatusOK, x, noVersion, err)
}

func (a *API) progAttendanceConfirm(w http.ResponseWriter, r *http.Request) {
	x, err := a.Program.ConfirmAttendance(r.Context(), principal(r), chi.URLParam(r, "postingID"), chi.URLParam(r, "day"))
	regServeOne(a, w, r, http.StatusOK, x, noVersion, err)
}

// ---- Evaluations ----

func (a *API) progEvaluations(w http.ResponseWriter, r *http.Request) {
	x, err := a.Program.Evaluations(r.Context(), principal(r), chi.URLParam(r, "postingID"))
	regServeOne(a, w, r, http.StatusOK, x, noVersion, err)
}

// progEvaluate files a month's evaluation with If-None-Match: * (201) or
// corrects it under If-Match, like a bed pool's size.
func (a *API) progEvaluate(w http.ResponseWriter, r *http.Request) {
	version := 0
	if strings.TrimSpace(r.Header.Get("If-Match")) != "" || strings.TrimSpace(r.Header.Get("If-None-Match")) != "*" {
		var err error
		if version, err = ifMatch(r); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	var in program.EvaluationInput
	if !a.readJSON(w, r, &in) {
		return
	}
	e, created, err := a.Program.Evaluate(r.Context(), principal(r), chi.URLParam(r, "postingID"), chi.URLParam(r, "month"), version, in)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	regServeOne(a, w, r, status, e, evaluationVersion, err)
}

// ---- Work logs ----

func (a *API) progWorkLogs(w http.ResponseWriter, r *http.Request) {
	ls, err := a.Program.WorkLogs(r.Context(), principal(r), chi.URLParam(r, "postingID"))
	regServeOne(a, w, r, http.StatusOK, WorkLogList{Items: ls}, noVersion, err)
}

func (a *API) progWorkLogAdd(w http.ResponseWriter, r *http.Request) {
	var in program.WorkLogInput
	if !a.readJSON(w, r, &in) {
		return
	}
	x, err := a.Program.AddWorkLog(r.Context(), principal(r), chi.URLParam(r, "postingID"), in)
	regServeOne(a, w, r, http.StatusCreated, x, workLogVersion, err)
}

func (a *API) progWorkLogConfirm(w http.ResponseWriter, r *http.Request) {
	x, err := a.Program.ConfirmWorkLog(r.Context(), principal(r), chi.URLParam(r, "postingID"), chi.URLParam(r, "logID"))
	regServeOne(a, w, r, http.StatusOK, x, workLogVersion, err)
}

func workLogVersion(x program.WorkLog) int { return x.Version }

func (a *API) progWorkLogUpdate(w http.ResponseWriter, r *http.Request) {
	postingID := chi.URLParam(r, "postingID")
	regServeUpdate(a, w, r, chi.URLParam(r, "logID"), func(ctx context.Context, p auth.Principal, logID string, ver int, in program.WorkLogPatch) (program.WorkLog, error) {
		return a.Program.UpdateWorkLog(ctx, p, postingID, logID, ver, in)
	}, workLogVersion)
}

// ---- Clinic schedule and trainees ----

func (a *API) progClinics(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	cs, err := a.Program.ClinicSessions(r.Context(), principal(r), q.Get("hospital_id"), q.Get("from"), q.Get("to"))
	regServeOne(a, w, r, http.StatusOK, ClinicSessionList{Items: cs}, noVersion, err)
}

func (a *API) progClinicPublish(w http.ResponseWriter, r *http.Request) {
	regServeCreate(a, w, r, a.Program.PublishClinic, clinicVersion)
}

func (a *API) progClinicChange(w http.ResponseWriter, r *http.Request) {
	regServeUpdate(a, w, r, chi.URLParam(r, "clinicID"), func(ctx context.Context, p auth.Principal, id string, ver int, in program.ClinicChange) (program.ClinicSession, error) {
		return a.Program.ChangeClinic(ctx, p, id, ver, in)
	}, clinicVersion)
}

func (a *API) progClinicCancel(w http.ResponseWriter, r *http.Request) {
	regServeUpdate(a, w, r, chi.URLParam(r, "clinicID"), func(ctx context.Context, p auth.Principal, id string, ver int, in program.ClinicCancel) (program.ClinicSession, error) {
		return a.Program.CancelClinic(ctx, p, id, ver, in)
	}, clinicVersion)
}

func (a *API) progTrainees(w http.ResponseWriter, r *http.Request) {
	progList(a, w, r, a.Program.Trainees, func(x program.Trainee) string { return x.ID })
}

func (a *API) progTraineeAdd(w http.ResponseWriter, r *http.Request) {
	regServeCreate(a, w, r, a.Program.AddTrainee, traineeVersion)
}

func traineeVersion(x program.Trainee) int { return x.Version }

func (a *API) progTraineeUpdate(w http.ResponseWriter, r *http.Request) {
	regServeUpdate(a, w, r, chi.URLParam(r, "traineeID"), func(ctx context.Context, p auth.Principal, id string, ver int, in program.TraineePatch) (program.Trainee, error) {
		return a.Program.UpdateTrainee(ctx, p, id, ver, in)
	}, traineeVersion)
}

// ---- The public clinic schedule ----

//go:embed templates/clinic_schedule.html
var clinicScheduleFiles embed.FS

// clinicScheduleTemplate: html/template escapes every value by its context,
// so a name or place typed with markup shows as text.
var clinicScheduleTemplate = template.Must(template.ParseFS(clinicScheduleFiles, "templates/clinic_schedule.html"))

// publicPageCSP: the page uses its own inline style and nothing else.
const publicPageCSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// mountPublicPages serves the pages residents read without an account,
// outside /api/v1: the dispatched doctors' clinic schedule of a hospital.
// They carry no patient data and no contact details, and are rate limited
// per address like any anonymous call.
func (a *API) mountPublicPages(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(a.rateLimit)
		r.Get("/public/clinic-schedule/{hospitalID}", a.publicClinicSchedule)
	})
}

func (a *API) publicClinicSchedule(w http.ResponseWriter, r *http.Request) {
	s, err := a.Program.Public(r.Context(), chi.URLParam(r, "hospitalID"))
	if errors.Is(err, apperr.ErrNotFound) {
		http.Error(w, "没有这家医院", http.StatusNotFound)
		return
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var buf bytes.Buffer
	if err := clinicScheduleTemplate.Execute(&buf, s); err != nil {
		a.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", publicPageCSP)
	h.Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}
