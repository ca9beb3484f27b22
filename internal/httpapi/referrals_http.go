package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"duikou/internal/apperr"
	"duikou/internal/auth"
	"duikou/internal/store"
	"duikou/referral"
)

// ReferralService is what the API needs of two-way referral.
type ReferralService interface {
	Create(ctx context.Context, p auth.Principal, in referral.Input) (referral.Referral, error)
	Edit(ctx context.Context, p auth.Principal, id string, version int, in referral.Input) (referral.Referral, error)
	Get(ctx context.Context, p auth.Principal, id string) (referral.Referral, error)
	// List returns up to f.Limit+1 tickets; the extra one only tells that
	// another page follows.
	List(ctx context.Context, p auth.Principal, f store.ReferralFilter) ([]referral.Referral, error)
	Act(ctx context.Context, p auth.Principal, id string, version int, a referral.Action, in referral.ActionInput) (referral.Referral, error)
	Events(ctx context.Context, p auth.Principal, id string) ([]referral.Event, error)
	Escalations(ctx context.Context, p auth.Principal, id string) ([]referral.Escalation, error)
}

// mountReferrals: referral tickets carry clinical data, so only clinical
// roles reach them; the service limits each caller to tickets its hospital
// is a party to, and the domain decides which side and role may take each
// action.
func (a *API) mountReferrals(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(a.allow(auth.ClinicalRoles...))
		r.Post("/referrals", a.refCreate)
		r.Get("/referrals", a.refList)
		r.Get("/referrals/{referralID}", a.refGet)
		r.Put("/referrals/{referralID}", a.refEdit)
		r.Post("/referrals/{referralID}/actions/{action}", a.refAct)
		r.Get("/referrals/{referralID}/events", a.refEvents)
		r.Get("/referrals/{referralID}/escalations", a.refEscalations)
	})
	// Statistics are aggregates: the program office reads them too.
	r.With(a.allow(referral.StatsReaders...)).Get("/referral-stats", a.refStats)
}

func referralVersion(r referral.Referral) int { return r.Version }

func (a *API) refCreate(w http.ResponseWriter, r *http.Request) {
	regServeCreate(a, w, r, a.Referrals.Create, referralVersion)
}

func (a *API) refGet(w http.ResponseWriter, r *http.Request) {
	t, err := a.Referrals.Get(r.Context(), auth.FromContext(r.Context()), chi.URLParam(r, "referralID"))
	regServeOne(a, w, r, http.StatusOK, t, referralVersion, err)
}

// refEdit replaces the content of a draft or of a ticket the receiving desk
// asked about; the whole input is sent, as on create.
func (a *API) refEdit(w http.ResponseWriter, r *http.Request) {
	regServeUpdate(a, w, r, chi.URLParam(r, "referralID"), func(ctx context.Context, p auth.Principal, id string, ver int, in referral.Input) (referral.Referral, error) {
		return a.Referrals.Edit(ctx, p, id, ver, in)
	}, referralVersion)
}

// refAct applies one state-machine action. If-Match is checked first: every
// action is a change, whatever its name.
func (a *API) refAct(w http.ResponseWriter, r *http.Request) {
	ver, err := ifMatch(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	act := referral.Action(chi.URLParam(r, "action"))
	if !slices.Contains(referral.Actions, act) {
		writeProblem(w, r, http.StatusNotFound, "no such referral action; actions are "+joinReferralActions())
		return
	}
	var in referral.ActionInput
	if !a.readJSON(w, r, &in) {
		return
	}
	t, err := a.Referrals.Act(r.Context(), auth.FromContext(r.Context()), chi.URLParam(r, "referralID"), ver, act, in)
	regServeOne(a, w, r, http.StatusOK, t, referralVersion, err)
}

func joinReferralActions() string {
	names := make([]string, len(referral.Actions))
	for i, act := range referral.Actions {
		names[i] = string(act)
	}
	return strings.Join(names, ", ")
}

func (a *API) refEvents(w http.ResponseWriter, r *http.Request) {
	evs, err := a.Referrals.Events(r.Context(), auth.FromContext(r.Context()), chi.URLParam(r, "referralID"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if evs == nil {
		evs = []referral.Event{}
	}
	// A ticket's history is short and read whole: one page, no cursor.
	writeJSON(w, http.StatusOK, List[referral.Event]{Items: evs})
}

// refEscalations lists the ticket's breached deadlines: raised by the
// deadline watcher, never changing the ticket.
func (a *API) refEscalations(w http.ResponseWriter, r *http.Request) {
	es, err := a.Referrals.Escalations(r.Context(), auth.FromContext(r.Context()), chi.URLParam(r, "referralID"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if es == nil {
		es = []referral.Escalation{}
	}
	// Two deadlines per queue visit: short, read whole.
	writeJSON(w, http.StatusOK, List[referral.Escalation]{Items: es})
}

func (a *API) refList(w http.ResponseWriter, r *http.Request) {
	f, err := referralFilter(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	regServeLookAheadPage(a, w, r, func(pg Page) ([]referral.Referral, error) {
		f.After, f.Limit = pg.Cursor, pg.Limit
		return a.Referrals.List(r.Context(), auth.FromContext(r.Context()), f)
	}, func(t referral.Referral) string { return t.ID })
}

// referralFilter reads the list filters, reporting every bad one at once by
// its parameter name.
func referralFilter(r *http.Request) (store.ReferralFilter, error) {
	q := r.URL.Query()
	var f store.ReferralFilter
	var v apperr.Invalid
	oneOf := func(name string, allowed []string) string {
		s := strings.TrimSpace(q.Get(name))
		if s != "" && !slices.Contains(allowed, s) {
			v.Add(name, "must be one of "+strings.Join(allowed, ", "))
			return ""
		}
		return s
	}
	f.Direction = referral.Direction(oneOf("direction", []string{string(referral.Up), string(referral.Down)}))
	statuses := make([]string, len(referral.Statuses))
	for i, s := range referral.Statuses {
		statuses[i] = string(s)
	}
	f.Status = referral.Status(oneOf("status", statuses))
	f.Priority = referral.Priority(oneOf("priority", []string{string(referral.Routine), string(referral.Urgent), string(referral.Emergency)}))
	if s := strings.TrimSpace(q.Get("green_channel")); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil || (s != "true" && s != "false") {
			v.Add("green_channel", "must be true or false")
		} else {
			f.GreenChannel = &b
		}
	}
	id := func(name string) string {
		s := strings.TrimSpace(q.Get(name))
		if s != "" && !apperr.IsID(s) {
			v.Add(name, "must be an id")
			return ""
		}
		return s
	}
	f.ReferringHospitalID = id("referring_hospital_id")
	f.ReceivingHospitalID = id("receiving_hospital_id")
	f.DepartmentID = id("department_id")
	f.PatientID = id("patient_id")
	instant := func(name string) *time.Time {
		s := strings.TrimSpace(q.Get(name))
		if s == "" {
			return nil
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			v.Add(name, "must be an instant in RFC 3339, like 2026-11-22T08:00:00Z")
			return nil
		}
		t = t.UTC()
		return &t
	}
	f.SubmittedFrom, f.SubmittedTo = instant("from"), instant("to")
	if f.SubmittedFrom != nil && f.SubmittedTo != nil && !f.SubmittedTo.After(*f.SubmittedFrom) {
		v.Add("to", "must be after from")
	}
	return f, v.Err()
}
