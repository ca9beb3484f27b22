package httpapi

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
)

// AuditLogService is what the API needs of the audit log (audit.Log).
type AuditLogService interface {
	Search(ctx context.Context, f audit.Filter, p audit.Page) ([]audit.Entry, error)
	Verify(ctx context.Context) (audit.Report, error)
}

func (a *API) mountAudit(r chi.Router) {
	r.With(a.allow(auth.Auditor)).Get("/audit-events", a.searchAuditEvents)
	r.With(a.allow(auth.Auditor)).Get("/audit-events/verify", a.verifyAuditLog)
}

// auditEvent is one audit row as the API shows it; hashes are hex.
type auditEvent struct {
	Seq             int64         `json:"seq"`
	Chain           int           `json:"chain"`
	ChainSeq        int64         `json:"chain_seq"`
	At              time.Time     `json:"at"`
	ActorID         string        `json:"actor_id"`
	ActorHospitalID string        `json:"actor_hospital_id"`
	Action          string        `json:"action"`
	ResourceType    string        `json:"resource_type"`
	ResourceID      string        `json:"resource_id"`
	PatientID       string        `json:"patient_id"`
	Outcome         audit.Outcome `json:"outcome"`
	RequestID       string        `json:"request_id"`
	ClientAddr      string        `json:"client_addr"`
	Detail          string        `json:"detail"`
	PrevHash        string        `json:"prev_hash"`
	Hash            string        `json:"hash"`
}

func auditEventOf(e audit.Entry) auditEvent {
	return auditEvent{
		Seq: e.Seq, Chain: e.Chain, ChainSeq: e.ChainSeq, At: e.At.UTC(),
		ActorID: e.ActorID, ActorHospitalID: e.ActorHospitalID, Action: e.Action,
		ResourceType: e.ResourceType, ResourceID: e.ResourceID, PatientID: e.PatientID,
		Outcome: e.Outcome, RequestID: e.RequestID, ClientAddr: e.ClientAddr, Detail: e.Detail,
		PrevHash: hex.EncodeToString(e.PrevHash), Hash: hex.EncodeToString(e.Hash),
	}
}

// auditTextFilters are the query parameters matched exactly against a column.
var auditTextFilters = []string{"actor_id", "actor_hospital_id", "patient_id", "action", "resource_type", "resource_id", "outcome"}

// auditQuery reads the search's query string. An unknown parameter is
// refused rather than ignored: a misspelt filter would otherwise widen the
// search silently.
func auditQuery(r *http.Request) (audit.Filter, audit.Page, map[string]string, error) {
	q := r.URL.Query()
	var v apperr.Invalid
	known := map[string]bool{"from": true, "to": true, "cursor": true, "limit": true}
	for _, name := range auditTextFilters {
		known[name] = true
	}
	for name, values := range q {
		switch {
		case !known[name]:
			v.Add(name, "is not a parameter of this search")
		case len(values) > 1:
			v.Add(name, "may be given once")
		}
	}

	used := map[string]string{}
	for _, name := range auditTextFilters {
		if s := strings.TrimSpace(q.Get(name)); s != "" {
			used[name] = s
		}
	}
	f := audit.Filter{
		ActorID: used["actor_id"], ActorHospitalID: used["actor_hospital_id"], PatientID: used["patient_id"],
		Action: used["action"], ResourceType: used["resource_type"], ResourceID: used["resource_id"],
		Outcome: audit.Outcome(used["outcome"]),
	}
	for _, b := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		s := q.Get(b.name)
		if s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			v.Add(b.name, "must be an RFC 3339 instant, e.g. 2025-03-01T08:00:00Z")
			continue
		}
		*b.dst = t
		used[b.name] = t.UTC().Format(time.RFC3339Nano)
	}

	page := audit.Page{Limit: defaultPageSize}
	pg, err := pageFrom(r)
	var inv apperr.Invalid
	if errors.As(err, &inv) {
		v = append(v, inv...)
	} else if err == nil {
		page.Limit = pg.Limit
		if pg.Cursor != "" {
			seq, err := strconv.ParseInt(pg.Cursor, 10, 64)
			if err != nil || seq <= 0 {
				v.Add("cursor", "is not a cursor this server issued")
			} else {
				page.BeforeSeq = seq
				used["cursor"] = pg.Cursor
			}
		}
	}
	// Field errors from the query's form and from the log's own rules
	// (outcome, lengths, from before to) come back together.
	v = append(v, audit.CheckSearch(f, page)...)
	return f, page, used, v.Err()
}

// searchAuditEvents lists audit rows newest first. The search itself is
// recorded: who looked into the trail, and for which patient.
func (a *API) searchAuditEvents(w http.ResponseWriter, r *http.Request) {
	f, page, used, err := auditQuery(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	entries, err := a.AuditLog.Search(r.Context(), f, page)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	detail, _ := json.Marshal(used)
	if err := a.recordAuditAccess(r, audit.Entry{
		Action: audit.SearchLog, ResourceType: "audit_log", PatientID: f.PatientID,
		Outcome: audit.Success, Detail: string(detail),
	}); err != nil {
		a.writeError(w, r, err)
		return
	}
	events := make([]auditEvent, len(entries))
	for i, e := range entries {
		events[i] = auditEventOf(e)
	}
	writeJSON(w, http.StatusOK, listOf(events, page.Limit, func(e auditEvent) string {
		return strconv.FormatInt(e.Seq, 10)
	}))
}

// verifyAuditLog checks every chain and answers the report: 200 with
// ok=false when the log is broken, since the check itself succeeded.
func (a *API) verifyAuditLog(w http.ResponseWriter, r *http.Request) {
	rep, err := a.AuditLog.Verify(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.recordAuditAccess(r, audit.Entry{
		Action: audit.VerifyLog, ResourceType: "audit_log", Outcome: audit.Success,
		Detail: fmt.Sprintf("ok=%t rows_checked=%d chains=%d breaks=%d", rep.OK, rep.RowsChecked, rep.Chains, len(rep.Breaks)),
	}); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// recordAuditAccess records the caller's use of the audit log. Unlike a
// refusal, a read of the trail that cannot be recorded is not answered.
func (a *API) recordAuditAccess(r *http.Request, e audit.Entry) error {
	if a.Audit == nil {
		return errors.New("no audit recorder configured: audit log access cannot be recorded")
	}
	p := auth.FromContext(r.Context())
	e.ActorID, e.ActorHospitalID = p.UserID, p.HospitalID
	return a.Audit.Record(r.Context(), e)
}
