package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"duikou/consult"
	"duikou/internal/apperr"
	"duikou/internal/auth"
	"duikou/internal/consults"
	"duikou/internal/store"
	"duikou/referral"
)

// SessionService is what the API needs of remote sessions and clinic slots.
type SessionService interface {
	Request(ctx context.Context, p auth.Principal, in consult.Input) (consult.Session, error)
	Get(ctx context.Context, p auth.Principal, id string) (consults.Detail, error)
	// List returns up to f.Limit+1 sessions; the extra one only tells that
	// another page follows.
	List(ctx context.Context, p auth.Principal, f store.ConsultFilter) ([]consult.Session, error)
	Act(ctx context.Context, p auth.Principal, id string, version int, a consult.Action, in consult.ActionInput) (consult.Session, error)
	Events(ctx context.Context, p auth.Principal, id string) ([]consult.Event, error)
	Escalations(ctx context.Context, p auth.Principal, id string) ([]consult.Escalation, error)
	WriteOpinion(ctx context.Context, p auth.Principal, id string, version int, in consult.OpinionInput) (consult.Session, error)
	AddAddendum(ctx context.Context, p auth.Principal, id, text string) (consult.Addendum, error)
	DraftReferral(ctx context.Context, p auth.Principal, id string) (referral.Referral, error)
	Attendance(ctx context.Context, p auth.Principal, id string) ([]consult.Attendance, error)

	Publish(ctx context.Context, p auth.Principal, in consult.SlotInput) (consult.ClinicSlot, error)
	Slots(ctx context.Context, p auth.Principal, q consults.SlotQuery) ([]consult.ClinicSlot, error)
	Book(ctx context.Context, p auth.Principal, id string, in consult.BookingInput) (consult.Session, error)
	CancelSlot(ctx context.Context, p auth.Principal, id, reason string) (consult.ClinicSlot, error)
}

// AddendumRequest is the text of a signed addendum.
type AddendumRequest struct {
	Text string `json:"text"`
}

// SlotCancelRequest says why a slot is withdrawn.
type SlotCancelRequest struct {
	Reason string `json:"reason"`
}

// mountSessions: remote sessions carry clinical data, so only clinical roles
// reach them; the service limits each caller to sessions its hospital takes
// part in, and the domain decides which side and role may take each action.
//
// Joining a session's media (POST /sessions/{sessionID}/join: join token,
// WebSocket URL, ICE servers) is mounted by the signalling package beside
// these routes; the room's hooks (internal/rtc) record connections as
// presence rows, from which GET /sessions/{sessionID}/attendance is merged.
func (a *API) mountSessions(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(a.allow(auth.ClinicalRoles...))
		r.Post("/sessions", a.sesCreate)
		r.Get("/sessions", a.sesList)
		r.Get("/sessions/{sessionID}", a.sesGet)
		r.Post("/sessions/{sessionID}/actions/{action}", a.sesAct)
		r.Get("/sessions/{sessionID}/events", a.sesEvents)
		r.Get("/sessions/{sessionID}/escalations", a.sesEscalations)
		r.Put("/sessions/{sessionID}/opinion", a.sesWriteOpinion)
		r.Post("/sessions/{sessionID}/opinion/addenda", a.sesAddendum)
		r.Post("/sessions/{sessionID}/opinion/referral", a.sesDraftReferral)
		r.Get("/sessions/{sessionID}/attendance", a.sesAttendance)

		r.Get("/clinic-slots", a.slotList)
		r.Post("/clinic-slots", a.slotPublish)
		r.Post("/clinic-slots/{slotID}/book", a.slotBook)
		r.Post("/clinic-slots/{slotID}/cancel", a.slotCancel)
	})
}

func sessionVersion(s consult.Session) int     { return s.Version }
func detailVersion(d consults.Detail) int      { return d.Version }
func slotVersion(s consult.ClinicSlot) int     { return s.Version }
func principal(r *http.Request) auth.Principal { return auth.FromContext(r.Context()) }

func (a *API) sesCreate(w http.ResponseWriter, r *http.Request) {
	regServeCreate(a, w, r, a.Sessions.Request, sessionVersion)
}

func (a *API) sesGet(w http.ResponseWriter, r *http.Request) {
	d, err := a.Sessions.Get(r.Context(), principal(r), chi.URLParam(r, "sessionID"))
	regServeOne(a, w, r, http.StatusOK, d, detailVersion, err)
}

// sesAct applies one state-machine action. If-Match is checked first: every
// action is a change, whatever its name.
func (a *API) sesAct(w http.ResponseWriter, r *http.Request) {
	ver, err := ifMatch(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	act := consult.Action(chi.URLParam(r, "action"))
	if !slices.Contains(consult.Actions, act) {
		writeProblem(w, r, http.StatusNotFound, "no such session action; actions are "+joinSessionActions())
		return
	}
	var in consult.ActionInput
	if !a.readJSON(w, r, &in) {
		return
	}
	s, err := a.Sessions.Act(r.Context(), principal(r), chi.URLParam(r, "sessionID"), ver, act, in)
	regServeOne(a, w, r, http.StatusOK, s, sessionVersion, err)
}

func joinSessionActions() string {
	names := make([]string, len(consult.Actions))
	for i, act := range consult.Actions {
		names[i] = string(act)
	}
	return strings.Join(names, ", ")
}

func (a *API) sesEvents(w http.ResponseWriter, r *http.Request) {
	evs, err := a.Sessions.Events(r.Context(), principal(r), chi.URLParam(r, "sessionID"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if evs == nil {
		evs = []consult.Event{}
	}
	// A session's history is short and read whole: one page, no cursor.
	writeJSON(w, http.StatusOK, List[consult.Event]{Items: evs})
}

// sesEscalations lists the session's escalations: few, read whole.
func (a *API) sesEscalations(w http.ResponseWriter, r *http.Request) {
	es, err := a.Sessions.Escalations(r.Context(), principal(r), chi.URLParam(r, "sessionID"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, List[consult.Escalation]{Items: es})
}

// sesWriteOpinion saves the opinion draft, whole, at the version read.
func (a *API) sesWriteOpinion(w http.ResponseWriter, r *http.Request) {
	regServeUpdate(a, w, r, chi.URLParam(r, "sessionID"), func(ctx context.Context, p auth.Principal, id string, ver int, in consult.OpinionInput) (consult.Session, error) {
		return a.Sessions.WriteOpinion(ctx, p, id, ver, in)
	}, sessionVersion)
}

func (a *API) sesAddendum(w http.ResponseWriter, r *http.Request) {
	var in AddendumRequest
	if !a.readJSON(w, r, &in) {
		return
	}
	add, err := a.Sessions.AddAddendum(r.Context(), principal(r), chi.URLParam(r, "sessionID"), in.Text)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, add)
}

// sesDraftReferral writes the up-referral draft the signed opinion advises
// and answers it like POST /referrals does.
func (a *API) sesDraftReferral(w http.ResponseWriter, r *http.Request) {
	var in struct{}
	if r.ContentLength != 0 && !a.readJSON(w, r, &in) {
		return
	}
	ref, err := a.Sessions.DraftReferral(r.Context(), principal(r), chi.URLParam(r, "sessionID"))
	regServeOne(a, w, r, http.StatusCreated, ref, referralVersion, err)
}

func (a *API) sesAttendance(w http.ResponseWriter, r *http.Request) {
	att, err := a.Sessions.Attendance(r.Context(), principal(r), chi.URLParam(r, "sessionID"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, List[consult.Attendance]{Items: att})
}

func (a *API) sesList(w http.ResponseWriter, r *http.Request) {
	f, err := sessionFilter(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	regServeLookAheadPage(a, w, r, func(pg Page) ([]consult.Session, error) {
		f.After, f.Limit = pg.Cursor, pg.Limit
		return a.Sessions.List(r.Context(), principal(r), f)
	}, func(s consult.Session) string { return s.ID })
}

// queryReader reads query parameters, collecting every bad one by name.
type queryReader struct {
	q url.Values
	v apperr.Invalid
}

func (qr *queryReader) get(name string) string { return strings.TrimSpace(qr.q.Get(name)) }

func (qr *queryReader) oneOf(name string, allowed []string) string {
	s := qr.get(name)
	if s != "" && !slices.Contains(allowed, s) {
		qr.v.Add(name, "must be one of "+strings.Join(allowed, ", "))
		return ""
	}
	return s
}

func (qr *queryReader) id(name string) string {
	s := qr.get(name)
	if s != "" && !apperr.IsID(s) {
		qr.v.Add(name, "must be an id")
		return ""
	}
	return s
}

func (qr *queryReader) instant(name string) *time.Time {
	s := qr.get(name)
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		qr.v.Add(name, "must be an instant in RFC 3339, like 2026-11-22T08:00:00Z")
		return nil
	}
	t = t.UTC()
	return &t
}

func names[T ~string](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = string(x)
	}
	return out
}

// sessionFilter reads the list filters, reporting every bad one at once by
// its parameter name.
func sessionFilter(r *http.Request) (store.ConsultFilter, error) {
	qr := &queryReader{q: r.URL.Query()}
	var f store.ConsultFilter
	f.Kind = consult.Kind(qr.oneOf("kind", names(consult.Kinds)))
	f.Status = consult.Status(qr.oneOf("status", names(consult.Statuses)))
	f.Urgency = consult.Urgency(qr.oneOf("urgency", names(consult.Urgencies)))
	f.HospitalID = qr.id("hospital_id")
	f.PatientID = qr.id("patient_id")
	f.From, f.To = qr.instant("from"), qr.instant("to")
	if f.From != nil && f.To != nil && !f.To.After(*f.From) {
		qr.v.Add("to", "must be after from")
	}
	return f, qr.v.Err()
}

// ---- Clinic slots ----

// defaultSlotWindow is what a slot list shows without from/to: the coming
// two weeks, which holds next week's published schedule.
const defaultSlotWindow = 14 * 24 * time.Hour

func (a *API) slotList(w http.ResponseWriter, r *http.Request) {
	qr := &queryReader{q: r.URL.Query()}
	q := consults.SlotQuery{SpecialistID: qr.id("specialist_id"), DepartmentID: qr.id("department_id"), Limit: defaultPageSize}
	from, to := qr.instant("from"), qr.instant("to")
	if s := qr.get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageSize {
			qr.v.Add("limit", "must be a whole number from 1 to "+strconv.Itoa(maxPageSize))
		}
		q.Limit = n
	}
	if err := qr.v.Err(); err != nil {
		a.writeError(w, r, err)
		return
	}
	q.From = time.Now().UTC()
	if from != nil {
		q.From = *from
	}
	q.To = q.From.Add(defaultSlotWindow)
	if to != nil {
		q.To = *to
	}
	list, err := a.Sessions.Slots(r.Context(), principal(r), q)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if list == nil {
		list = []consult.ClinicSlot{}
	}
	// A window of slots is one page: the earliest limit slots of it. A
	// schedule is browsed by moving the window (from = the last start seen),
	// which a calendar does anyway.
	writeJSON(w, http.StatusOK, List[consult.ClinicSlot]{Items: list})
}

func (a *API) slotPublish(w http.ResponseWriter, r *http.Request) {
	regServeCreate(a, w, r, a.Sessions.Publish, slotVersion)
}

func (a *API) slotBook(w http.ResponseWriter, r *http.Request) {
	var in consult.BookingInput
	if !a.readJSON(w, r, &in) {
		return
	}
	s, err := a.Sessions.Book(r.Context(), principal(r), chi.URLParam(r, "slotID"), in)
	regServeOne(a, w, r, http.StatusCreated, s, sessionVersion, err)
}

func (a *API) slotCancel(w http.ResponseWriter, r *http.Request) {
	var in SlotCancelRequest
	if !a.readJSON(w, r, &in) {
		return
	}
	s, err := a.Sessions.CancelSlot(r.Context(), principal(r), chi.URLParam(r, "slotID"), in.Reason)
	regServeOne(a, w, r, http.StatusOK, s, slotVersion, err)
}
