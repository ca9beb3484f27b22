package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"duikou/internal/apperr"
	"duikou/internal/auth"
	"duikou/internal/queue"
	"duikou/referral"
)

// QueueService is what the API needs of the receiving desks' queues.
type QueueService interface {
	Queue(ctx context.Context, p auth.Principal, hospitalID, departmentID string, limit int) ([]queue.Item, error)
	ClaimNext(ctx context.Context, p auth.Principal, hospitalID, departmentID string) (referral.Referral, bool, error)
	RenewLease(ctx context.Context, p auth.Principal, hospitalID, referralID string) (time.Time, error)
}

// mountQueues: a hospital's referral desk works its queue; supervisors may
// watch it. The service keeps each desk to its own hospital's queue.
func (a *API) mountQueues(r chi.Router) {
	r.With(a.allowDeskOrSupervisor).Get("/referral-queues/{hospitalID}", a.queueList)
	r.With(a.allow(auth.ReferralDesk)).Post("/referral-queues/{hospitalID}/claim", a.queueClaim)
	r.With(a.allow(auth.ReferralDesk)).Post("/referral-queues/{hospitalID}/leases/{referralID}", a.queueRenew)
}

// QueueLease is a renewed claim lease.
type QueueLease struct {
	ReferralID  string    `json:"referral_id"`
	LeasedUntil time.Time `json:"leased_until"`
}

func (a *API) queueRenew(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "referralID")
	until, err := a.Queues.RenewLease(r.Context(), auth.FromContext(r.Context()), chi.URLParam(r, "hospitalID"), id)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, QueueLease{ReferralID: id, LeasedUntil: until.UTC()})
}

// allowDeskOrSupervisor is the role gate of watching a queue: a supervisor
// is a flag on any role, so a.allow cannot express it.
func (a *API) allowDeskOrSupervisor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := auth.FromContext(r.Context()); !p.Has(auth.ReferralDesk) && !p.Supervisor {
			a.writeError(w, r, apperr.ErrForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// QueueItem is one line of a desk's queue.
type QueueItem struct {
	ID           string            `json:"id"`
	Number       string            `json:"number"`
	Version      int               `json:"version"`
	DepartmentID string            `json:"department_id"`
	Priority     referral.Priority `json:"priority"`
	GreenChannel bool              `json:"green_channel"`
	Category     referral.Category `json:"green_category,omitempty"`
	WaitingSince time.Time         `json:"waiting_since"`
	// WaitingSeconds is how long the patient has waited since first
	// submitted, at the time of the answer.
	WaitingSeconds int64      `json:"waiting_seconds"`
	QueuedAt       time.Time  `json:"queued_at"`
	ClaimBy        *time.Time `json:"claim_by,omitempty"`
	DecideBy       *time.Time `json:"decide_by,omitempty"`
	LeasedBy       string     `json:"leased_by,omitempty"`
	LeasedUntil    *time.Time `json:"leased_until,omitempty"`
	// Breached lists the deadlines (claim, decide) escalated for this
	// ticket's stay in the queue; empty while none has passed.
	Breached []referral.BreachKind `json:"breached"`
}

// QueueClaimRequest picks the department to claim from; empty means the
// whole hospital's desk view.
type QueueClaimRequest struct {
	DepartmentID string `json:"department_id,omitempty"`
}

const (
	queueDefaultLimit = 100
	queueMaxLimit     = 500
)

func queueItemOf(it queue.Item, now time.Time) QueueItem {
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.UTC()
		return &t
	}
	q := QueueItem{ID: it.ID, Number: it.Number, Version: it.Version, DepartmentID: it.DepartmentID,
		Priority: it.Priority, GreenChannel: it.Green, Category: it.Category,
		WaitingSince: it.WaitingSince.UTC(), QueuedAt: it.QueuedAt.UTC(),
		ClaimBy: opt(it.ClaimBy), DecideBy: opt(it.DecideBy), LeasedBy: it.LeasedBy, LeasedUntil: opt(it.LeasedUntil),
		Breached: it.Breached}
	if q.Breached == nil {
		q.Breached = []referral.BreachKind{}
	}
	if !it.WaitingSince.IsZero() {
		q.WaitingSeconds = max(0, int64(now.Sub(it.WaitingSince)/time.Second))
	}
	return q
}

func (a *API) queueList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var v apperr.Invalid
	dept := strings.TrimSpace(q.Get("department_id"))
	if dept != "" && !apperr.IsID(dept) {
		v.Add("department_id", "must be an id")
	}
	limit := queueDefaultLimit
	if s := strings.TrimSpace(q.Get("limit")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > queueMaxLimit {
			v.Add("limit", "must be a whole number from 1 to "+strconv.Itoa(queueMaxLimit))
		} else {
			limit = n
		}
	}
	if err := v.Err(); err != nil {
		a.writeError(w, r, err)
		return
	}
	items, err := a.Queues.Queue(r.Context(), auth.FromContext(r.Context()), chi.URLParam(r, "hospitalID"), dept, limit)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	now := time.Now()
	out := make([]QueueItem, len(items))
	for i, it := range items {
		out[i] = queueItemOf(it, now)
	}
	// The queue is ordered by priority, not by id: it is read from the head,
	// one page of up to limit items.
	writeJSON(w, http.StatusOK, List[QueueItem]{Items: out})
}

func (a *API) queueClaim(w http.ResponseWriter, r *http.Request) {
	var in QueueClaimRequest
	if r.ContentLength != 0 && !a.readJSON(w, r, &in) {
		return
	}
	t, ok, err := a.Queues.ClaimNext(r.Context(), auth.FromContext(r.Context()), chi.URLParam(r, "hospitalID"), strings.TrimSpace(in.DepartmentID))
	if err == nil && !ok {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	regServeOne(a, w, r, http.StatusOK, t, referralVersion, err)
}
