// Package audit is the append-only, hash-chained record of who did what to
// which data: every read and change of patient data, logins and their
// failures, lockouts, exports, consent changes and denied accesses.
package audit

import (
	"context"
	"time"
)

// Outcome of an audited action.
type Outcome string

const (
	Success Outcome = "success"
	Denied  Outcome = "denied"
	Failure Outcome = "failure"
)

// Actions recorded by the platform. Other packages add their own, written
// as resource.verb.
const (
	Login        = "auth.login"
	LoginFailed  = "auth.login_failed"
	Lockout      = "auth.lockout"
	Logout       = "auth.logout"
	AccessDenied = "access.denied"
	Export       = "data.export"
)

// Entry is one audit row. Seq, Chain, ChainSeq, PrevHash and Hash are
// assigned by the log when the row is appended.
type Entry struct {
	Seq             int64     `json:"seq"`
	Chain           int       `json:"chain"`
	ChainSeq        int64     `json:"chain_seq"`
	At              time.Time `json:"at"`
	ActorID         string    `json:"actor_id"`
	ActorHospitalID string    `json:"actor_hospital_id"`
	Action          string    `json:"action"`
	ResourceType    string    `json:"resource_type"`
	ResourceID      string    `json:"resource_id"`
	PatientID       string    `json:"patient_id"`
	Outcome         Outcome   `json:"outcome"`
	RequestID       string    `json:"request_id"`
	ClientAddr      string    `json:"client_addr"`
	Detail          string    `json:"detail"`
	PrevHash        []byte    `json:"prev_hash"`
	Hash            []byte    `json:"hash"`
}

// Recorder appends entries. Called with a ctx that carries a database
// transaction, the row commits or rolls back with the change it records.
type Recorder interface {
	Record(ctx context.Context, e Entry) error
}

// Source is where a request came from, carried in the context by the
// transport layer so that domain code need not thread it through.
type Source struct {
	RequestID  string
	ClientAddr string
}

type sourceKey struct{}

// WithSource returns ctx carrying s.
func WithSource(ctx context.Context, s Source) context.Context {
	return context.WithValue(ctx, sourceKey{}, s)
}

// SourceFrom returns the request source in ctx, if any.
func SourceFrom(ctx context.Context) Source {
	s, _ := ctx.Value(sourceKey{}).(Source)
	return s
}
