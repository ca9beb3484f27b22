// Package apperr holds the errors that domain code returns and the transport
// layer maps to responses. Domain packages know nothing of HTTP; they say
// "not found" or "field x is invalid" and the API layer picks the status.
package apperr

import (
	"errors"
	"strings"
)

var (
	// ErrNotFound: no such resource, or one the caller may not know exists.
	ErrNotFound = errors.New("not found")
	// ErrForbidden: the caller's role does not allow this action.
	ErrForbidden = errors.New("forbidden")
	// ErrUnauthenticated: no valid session.
	ErrUnauthenticated = errors.New("authentication required")
	// ErrConflict: the change clashes with existing data (duplicate key, wrong state).
	ErrConflict = errors.New("conflict")
	// ErrStale: the caller's version is not the current one (If-Match mismatch).
	ErrStale = errors.New("version mismatch")
	// ErrVersionRequired: a change was attempted without saying which version it edits.
	ErrVersionRequired = errors.New("version required")
	// ErrLocked: the account is locked after repeated failures.
	ErrLocked = errors.New("account locked")
	// ErrRateLimited: too many requests.
	ErrRateLimited = errors.New("rate limited")
	// ErrTooLarge: a well-formed request for more than the server answers at
	// once (a range too long, too many rows to read).
	ErrTooLarge = errors.New("request too large")
	// ErrUnavailable: a service the server depends on (the database, Redis)
	// cannot be reached just now; the same request may work shortly.
	ErrUnavailable = errors.New("service unavailable")
)

// FieldError names one field at fault. Field uses JSON names and dotted
// paths ("consent.purpose", "diagnoses[2].code").
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Invalid is a validation failure of one or more fields.
type Invalid []FieldError

func (v Invalid) Error() string {
	parts := make([]string, len(v))
	for i, f := range v {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// Add appends a field error.
func (v *Invalid) Add(field, message string) { *v = append(*v, FieldError{field, message}) }

// Err returns v as an error, or nil when there is nothing in it.
func (v Invalid) Err() error {
	if len(v) == 0 {
		return nil
	}
	return v
}

// Field returns a one-field validation error.
func Field(field, message string) error { return Invalid{{field, message}} }

// TooLarge is a request that asks for too much, blamed on one field.
type TooLarge FieldError

// TooMuch returns a TooLarge error for field.
func TooMuch(field, message string) error { return &TooLarge{field, message} }

func (e *TooLarge) Error() string { return e.Field + ": " + e.Message }
func (e *TooLarge) Unwrap() error { return ErrTooLarge }

// Conflict wraps ErrConflict with a human explanation.
func Conflict(msg string) error { return &withMsg{ErrConflict, msg} }

// Forbidden wraps ErrForbidden with a human explanation.
func Forbidden(msg string) error { return &withMsg{ErrForbidden, msg} }

// Locked wraps ErrLocked with a human explanation.
func Locked(msg string) error { return &withMsg{ErrLocked, msg} }

// Unauthenticated wraps ErrUnauthenticated with a human explanation.
func Unauthenticated(msg string) error { return &withMsg{ErrUnauthenticated, msg} }

type withMsg struct {
	kind error
	msg  string
}

func (e *withMsg) Error() string { return e.msg }
func (e *withMsg) Unwrap() error { return e.kind }

// Public is the message written for the person who made the request.
func (e *withMsg) Public() string { return e.msg }

// Text limits shared by every domain: a name is short, free text is bounded.
const (
	MaxName = 100
	MaxText = 4000
	MaxCode = 40
)
