package httpapi

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"

	"duikou/internal/apperr"
	"duikou/internal/auth"
)

// Problem is an RFC 9457 problem document, extended with the fields at fault.
type Problem struct {
	Type      string              `json:"type"`
	Title     string              `json:"title"`
	Status    int                 `json:"status"`
	Detail    string              `json:"detail,omitempty"`
	Instance  string              `json:"instance,omitempty"`
	RequestID string              `json:"request_id,omitempty"`
	Errors    []apperr.FieldError `json:"errors,omitempty"`
}

// writeProblem answers with application/problem+json.
func writeProblem(w http.ResponseWriter, r *http.Request, status int, detail string, fields ...apperr.FieldError) {
	p := Problem{
		Type:      "about:blank",
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    detail,
		Instance:  r.URL.Path,
		RequestID: requestID(r.Context()),
		Errors:    fields,
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

// writeError maps a domain error to a problem response. Unknown errors are
// logged and answered 500 without detail: internals never reach the client.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var inv apperr.Invalid
	var big *apperr.TooLarge
	switch {
	case errors.As(err, &big):
		// Well formed but more than one answer may hold: 422, with the field
		// to change.
		writeProblem(w, r, http.StatusUnprocessableEntity, "the request asks for too much at once", apperr.FieldError(*big))
	case errors.As(err, &inv):
		writeProblem(w, r, http.StatusBadRequest, "the request has invalid fields", inv...)
	case errors.Is(err, apperr.ErrNotFound):
		writeProblem(w, r, http.StatusNotFound, "no such resource")
	case errors.Is(err, apperr.ErrForbidden):
		a.recordDenied(r, err)
		writeProblem(w, r, http.StatusForbidden, publicMessage(err, "your role does not allow this"))
	case errors.Is(err, apperr.ErrUnauthenticated):
		writeProblem(w, r, http.StatusUnauthorized, publicMessage(err, "log in first"))
	case errors.Is(err, apperr.ErrLocked):
		writeProblem(w, r, http.StatusLocked, publicMessage(err, "the account is locked for a while after repeated failed logins"))
	case errors.Is(err, apperr.ErrRateLimited):
		writeProblem(w, r, http.StatusTooManyRequests, "too many requests; slow down")
	case errors.Is(err, apperr.ErrStale):
		writeProblem(w, r, http.StatusPreconditionFailed, "the resource changed since you read it; reload and retry")
	case errors.Is(err, apperr.ErrVersionRequired):
		writeProblem(w, r, http.StatusPreconditionRequired, `send If-Match with the version you read (its ETag)`)
	case errors.Is(err, apperr.ErrConflict):
		writeProblem(w, r, http.StatusConflict, publicMessage(err, "the change conflicts with existing data"))
	case errors.Is(err, apperr.ErrUnavailable) || unreachable(err):
		// The database or Redis is away (restarting, cut off), or the
		// database gave up a transaction that met another (a deadlock): not
		// this request's fault, and worth retrying in a moment.
		a.log.WarnContext(r.Context(), "request failed: a backing service is unavailable or busy", "err", err, "request_id", requestID(r.Context()))
		w.Header().Set("Retry-After", "5")
		writeProblem(w, r, http.StatusServiceUnavailable, "the server cannot complete this just now; retry in a few seconds")
	default:
		a.log.ErrorContext(r.Context(), "request failed", "err", err, "request_id", requestID(r.Context()))
		writeProblem(w, r, http.StatusInternalServerError, "internal error; quote the request id when reporting it")
	}
}

// publicMessage uses the error's own text when domain code wrote one for
// people (apperr.Conflict, apperr.Forbidden, …), else the fallback.
func publicMessage(err error, fallback string) string {
	var m interface{ Public() string }
	if errors.As(err, &m) {
		return m.Public()
	}
	return fallback
}

// recordDenied writes an audit row for a refused access by an authenticated caller.
func (a *API) recordDenied(r *http.Request, err error) {
	p := auth.FromContext(r.Context())
	a.auditDenied(r, p, err.Error())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fieldError(field, message string) apperr.FieldError {
	return apperr.FieldError{Field: field, Message: message}
}

// unreachable reports whether err is a failure to reach a server over the
// network: one of the servers behind (the database, Redis), or the client's
// own connection, whose failure leaves nobody to read the answer anyway.
func unreachable(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}
