package audit

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"duikou/internal/apperr"
	"duikou/internal/sqldb"
)

// Actions on the audit log itself: reading the trail is as sensitive as the
// data it describes, so it leaves a trail too.
const (
	SearchLog = "audit.search"
	VerifyLog = "audit.verify"
)

// Limits on what one entry stores. Over-long text is cut with a marker
// rather than refused: failing to audit would fail the change being audited.
const (
	MaxDetail = 2000 // characters
	maxField  = 300  // characters, every other text field
	maxAction = apperr.MaxName

	truncatedMarker = "…[truncated]"
)

// Page sizes for Search.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// ErrInvalidEntry is returned by Record for an entry the code should never
// have built (no action, unknown outcome): a bug, not a caller's mistake.
var ErrInvalidEntry = errors.New("audit: invalid entry")

// Store keeps the rows. The implementation on the platform database is
// store.AuditLog.
type Store interface {
	// Append writes e as the next row of a chain, inside ctx's transaction
	// when there is one (so the row commits or rolls back with the change it
	// records), else in its own. e.Chain is the chain the caller prefers; the
	// store may pick another that no other transaction holds. Append fills
	// Chain, ChainSeq, PrevHash, Hash (see ChainHash) and Seq, except that
	// Seq may stay 0 inside a transaction (the row is written with the
	// transaction's next statement).
	Append(ctx context.Context, e *Entry) error
	// Search returns up to p.Limit+1 rows matching f, newest (highest seq)
	// first, with seq below p.BeforeSeq when that is set.
	Search(ctx context.Context, f Filter, p Page) ([]Entry, error)
	// Heads returns the recorded head (last chain_seq and hash) of every chain.
	Heads(ctx context.Context) ([]Head, error)
	// Walk calls fn for every row in (chain, chain_seq) order without
	// holding the whole log in memory. It stops at fn's first error.
	Walk(ctx context.Context, fn func(Entry) error) error
}

// Head is the last row of a chain as recorded beside the log, which lets
// Verify notice rows deleted from the end of a chain.
type Head struct {
	Chain    int
	ChainSeq int64
	Hash     []byte
}

// Filter selects entries in Search. Empty fields match everything; From is
// inclusive and To exclusive.
type Filter struct {
	ActorID         string
	ActorHospitalID string
	PatientID       string
	Action          string
	ResourceType    string
	ResourceID      string
	Outcome         Outcome
	From            time.Time
	To              time.Time
}

// Page of a Search: entries with seq below BeforeSeq (0: from the newest).
type Page struct {
	BeforeSeq int64
	Limit     int
}

// Log is the platform's audit recorder, searcher and verifier.
type Log struct {
	store Store
	now   func() time.Time
	// next spreads entries that carry no request id over the chains.
	next atomic.Uint64
}

var _ Recorder = (*Log)(nil)

// NewLog returns a Log over store. now is the clock (sqldb.Now when nil).
func NewLog(store Store, now func() time.Time) *Log {
	if now == nil {
		now = sqldb.Now
	}
	return &Log{store: store, now: now}
}

// Record appends e. It stamps the time, takes the request id and client
// address from ctx when e has none, and bounds every field. Called with a
// ctx carrying a transaction, the row is part of that transaction.
//
// Entries of one transaction should share a request id (the HTTP layer sets
// one per request; background work can set its own with WithSource): they
// then prefer the same chain, so a transaction holds one chain head rather
// than several.
func (l *Log) Record(ctx context.Context, e Entry) error {
	if err := clean(&e); err != nil {
		return err
	}
	src := SourceFrom(ctx)
	if e.RequestID == "" {
		e.RequestID = bound(src.RequestID, maxField)
	}
	if e.ClientAddr == "" {
		e.ClientAddr = bound(src.ClientAddr, maxField)
	}
	e.At = l.now().UTC().Truncate(time.Microsecond)
	e.Seq, e.ChainSeq, e.PrevHash, e.Hash = 0, 0, nil, nil
	e.Chain = l.chainFor(e.RequestID)
	if err := l.store.Append(ctx, &e); err != nil {
		return fmt.Errorf("audit: append %s: %w", e.Action, err)
	}
	return nil
}

// chainFor keeps one request's entries on one chain and spreads the rest.
func (l *Log) chainFor(requestID string) int {
	if requestID != "" {
		h := fnv.New32a()
		h.Write([]byte(requestID))
		return int(h.Sum32() % Chains)
	}
	return int(l.next.Add(1) % Chains)
}

// clean checks the fields that must be right and bounds the rest.
func clean(e *Entry) error {
	e.Action = sanitize(e.Action)
	if strings.TrimSpace(e.Action) == "" || utf8.RuneCountInString(e.Action) > maxAction {
		return fmt.Errorf("%w: action %q must be 1 to %d characters", ErrInvalidEntry, e.Action, maxAction)
	}
	if !e.Outcome.valid() {
		return fmt.Errorf("%w: outcome %q is not success, denied or failure", ErrInvalidEntry, e.Outcome)
	}
	for _, f := range []*string{&e.ActorID, &e.ActorHospitalID, &e.ResourceType, &e.ResourceID,
		&e.PatientID, &e.RequestID, &e.ClientAddr} {
		*f = bound(sanitize(*f), maxField)
	}
	e.Detail = bound(sanitize(e.Detail), MaxDetail)
	return nil
}

func (o Outcome) valid() bool { return o == Success || o == Denied || o == Failure }

// sanitize makes s storable as text on both engines: PostgreSQL refuses
// invalid UTF-8 and NUL characters.
func sanitize(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// bound cuts s to at most max characters, the last ones saying it was cut.
func bound(s string, max int) string {
	if len(s) <= max || utf8.RuneCountInString(s) <= max {
		return s
	}
	keep := max - utf8.RuneCountInString(truncatedMarker)
	i, n := 0, 0
	for i = range s {
		if n == keep {
			break
		}
		n++
	}
	return s[:i] + truncatedMarker
}

// Search returns entries matching f, newest first: up to p.Limit of them
// (DefaultPageSize when 0), plus one more when a further page exists (the
// caller's cue to offer a cursor: the seq of the last entry shown).
func (l *Log) Search(ctx context.Context, f Filter, p Page) ([]Entry, error) {
	for _, s := range []*string{&f.ActorID, &f.ActorHospitalID, &f.PatientID, &f.Action, &f.ResourceType, &f.ResourceID} {
		*s = strings.TrimSpace(*s)
	}
	if err := CheckSearch(f, p).Err(); err != nil {
		return nil, err
	}
	if p.Limit == 0 {
		p.Limit = DefaultPageSize
	}
	if !f.From.IsZero() {
		f.From = f.From.UTC()
	}
	if !f.To.IsZero() {
		f.To = f.To.UTC()
	}
	return l.store.Search(ctx, f, p)
}

// CheckSearch returns what is wrong with a search, by the names of the
// query fields, or nothing.
func CheckSearch(f Filter, p Page) apperr.Invalid {
	var v apperr.Invalid
	for _, c := range []struct{ field, value string }{
		{"actor_id", f.ActorID}, {"actor_hospital_id", f.ActorHospitalID}, {"patient_id", f.PatientID},
		{"action", f.Action}, {"resource_type", f.ResourceType}, {"resource_id", f.ResourceID},
	} {
		if utf8.RuneCountInString(c.value) > maxField || !utf8.ValidString(c.value) || strings.ContainsRune(c.value, 0) {
			v.Add(c.field, fmt.Sprintf("must be valid text of at most %d characters", maxField))
		}
	}
	if f.Outcome != "" && !f.Outcome.valid() {
		v.Add("outcome", "must be success, denied or failure")
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		v.Add("to", "must be after from")
	}
	if p.BeforeSeq < 0 {
		v.Add("cursor", "is not a cursor this server issued")
	}
	if p.Limit < 0 || p.Limit > MaxPageSize {
		v.Add("limit", fmt.Sprintf("must be from 1 to %d", MaxPageSize))
	}
	return v
}
