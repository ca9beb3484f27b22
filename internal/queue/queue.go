// Package queue keeps the live referral queues of the receiving desks in
// Redis: one sorted set per receiving hospital and department, ordered by
// referral.QueueScore (lower is served first), the board fields of every
// queued ticket, claim leases and change notifications. All of it is derived
// from the database and can be rebuilt from it (Rebuild, EnsureBuilt).
//
// Memory is budgeted at under 300 bytes per queued ticket, which shapes the
// layout:
//   - ticket ids are stored as 22 characters of an order-preserving base-64
//     form of the UUID instead of 36, so ties inside a millisecond still fall
//     to the time-ordered id;
//   - the board fields of all tickets live in one hash (field = id, value = a
//     short packed string), not in a key per ticket, which would cost a key's
//     overhead each;
//   - the hospital-wide desk view merges the heads of the hospital's
//     department queues instead of keeping a second sorted set of every
//     ticket;
//   - leases live in one hash with their expiry time, compared with the Redis
//     server clock, so they expire on the embedded server too (it does not
//     expire keys by itself) and a Lua script can check any candidate's lease
//     without building key names.
package queue

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"duikou/internal/kv"
	"duikou/referral"
)

// Entry is what a desk board shows of one queued ticket, and what orders it.
type Entry struct {
	ID           string
	Version      int
	HospitalID   string // receiving hospital
	DepartmentID string // receiving department
	Number       string // 转诊单号
	Priority     referral.Priority
	Green        bool
	Category     referral.Category
	// WaitingSince is the first submission: it orders the queue and shows
	// how long the patient has waited.
	WaitingSince time.Time
	// QueuedAt is when the ticket entered this desk's queue; the deadlines
	// run from it.
	QueuedAt time.Time
	ClaimBy  time.Time
	DecideBy time.Time
	// Holder is the desk member who holds the ticket in the database
	// (claimed); Upsert and Rebuild give them a fresh lease unless someone
	// holds a live one. A newer version without a holder ends any lease.
	Holder string
	// Breached lists the deadlines of this entry (ClaimBy, DecideBy) that
	// have been escalated. Upsert ignores it (MarkBreached sets it); Rebuild
	// restores it; List reports it.
	Breached []referral.BreachKind
}

// Item is one line of a listed queue.
type Item struct {
	Entry
	Score int64
	// LeasedBy and LeasedUntil are set while a desk member holds a live lease.
	LeasedBy    string
	LeasedUntil time.Time
}

// OpenTickets is the database's view of every ticket that waits in a queue.
type OpenTickets interface {
	ForEachQueued(ctx context.Context, fn func(Entry) error) error
}

// Options configure the queues.
type Options struct {
	// Lease is how long a claim holds a ticket before it can be claimed
	// again unless renewed (default 2 minutes).
	Lease time.Duration
	// AgingAfter lifts a routine ticket to the urgent band after it waited
	// this long (0: never).
	AgingAfter time.Duration
	// ScanDepth bounds how many members of each queue a claim looks at to
	// find one without a live lease (default 4096: a department may hold
	// many claimed, undecided tickets at its head; the script pages through
	// them 64 at a time).
	ScanDepth int
	// ClaimAttempts bounds how many stale entries one claim discards before
	// giving up (default 8).
	ClaimAttempts int
	// Now is the clock for scores and aging (default time.Now).
	Now func() time.Time
}

// Referrals is the set of live referral queues.
type Referrals struct {
	conn *kv.Conn
	opt  Options
}

// Errors.
var (
	// ErrEmpty: no ticket in the queue can be claimed now.
	ErrEmpty = errors.New("queue: no claimable ticket")
	// ErrNotHolder: the lease is held by someone else or has expired.
	ErrNotHolder = errors.New("queue: lease not held by this user")
)

// New returns the queues on conn.
func New(conn *kv.Conn, opt Options) *Referrals {
	if opt.Lease <= 0 {
		opt.Lease = 2 * time.Minute
	}
	if opt.ScanDepth <= 0 {
		opt.ScanDepth = 4096
	}
	if opt.ClaimAttempts <= 0 {
		opt.ClaimAttempts = 8
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Referrals{conn: conn, opt: opt}
}

// Lease is how long a claim holds a ticket unless renewed.
func (q *Referrals) Lease() time.Duration { return q.opt.Lease }

// Key names. Every one starts with the deployment prefix and "q".
func (q *Referrals) entriesKey() string { return q.conn.Key("q", "e") }
func (q *Referrals) leasesKey() string  { return q.conn.Key("q", "l") }
func (q *Referrals) slotsKey() string   { return q.conn.Key("q", "s") }
func (q *Referrals) builtKey() string   { return q.conn.Key("q", "built") }
func (q *Referrals) breachKey() string  { return q.conn.Key("q", "b") }
func (q *Referrals) deptQueueKey(hospitalID, departmentID string) string {
	return q.conn.Key("q", "z", hospitalID, departmentID)
}
func (q *Referrals) hospitalDeptsKey(hospitalID string) string {
	return q.conn.Key("q", "d", hospitalID)
}
func (q *Referrals) tombKey(cid string) string { return q.conn.Key("q", "x", cid) }
func (q *Referrals) channel(hospitalID string) string {
	return q.conn.Key("q", "ev", hospitalID)
}

// idAlphabet is base 64 in ASCII order, so the short form of time-ordered
// UUIDs sorts like the UUIDs themselves.
const idAlphabet = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"

var idEncoding = base64.NewEncoding(idAlphabet).WithPadding(base64.NoPadding)

// compactID is the 22-character stored form of a UUID.
func compactID(id string) (string, error) {
	h := strings.ReplaceAll(id, "-", "")
	if len(h) != 32 || len(id) != 36 {
		return "", fmt.Errorf("queue: ticket id %q is not a UUID", id)
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return "", fmt.Errorf("queue: ticket id %q is not a UUID", id)
	}
	return idEncoding.EncodeToString(b), nil
}

// fullID turns a stored id back into the UUID string.
func fullID(cid string) (string, error) {
	b, err := idEncoding.DecodeString(cid)
	if err != nil || len(b) != 16 {
		return "", fmt.Errorf("queue: corrupt stored id %q", cid)
	}
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

// score orders e at now.
func (q *Referrals) score(e Entry, now time.Time) int64 {
	ws, qa := e.WaitingSince, e.QueuedAt
	r := referral.Referral{Priority: e.Priority, GreenChannel: e.Green, SubmittedAt: &ws, QueuedAt: &qa}
	if ws.IsZero() {
		r.SubmittedAt = nil
	}
	return referral.QueueScore(r, now, q.opt.AgingAfter)
}

// aging returns the score range of routine tickets that have waited
// AgingAfter at now, and how far aging lowers their score; shift is 0 when
// aging is off. It asks referral.QueueScore rather than assuming its layout.
func (q *Referrals) aging(now time.Time) (lo, hi, shift int64) {
	if q.opt.AgingAfter <= 0 {
		return 0, 0, 0
	}
	epoch := time.UnixMilli(0)
	cut := now.Add(-q.opt.AgingAfter)
	routine := func(at time.Time) int64 {
		return referral.QueueScore(referral.Referral{Priority: referral.Routine, SubmittedAt: &at}, epoch, 0)
	}
	urgent := referral.QueueScore(referral.Referral{Priority: referral.Urgent, SubmittedAt: &epoch}, epoch, 0)
	return routine(epoch), routine(cut), routine(epoch) - urgent
}

// packed board fields: version|slot|number|priority letter (+g)|category|
// queued (ms, base 36)|queued-waiting|claimBy-queued|decideBy-queued.
// Offsets keep the deadlines to a few characters each. Version and slot come
// first because the scripts read them.
func packRest(e Entry) string {
	pg := ""
	if len(e.Priority) > 0 {
		pg = string(e.Priority[0])
	}
	if e.Green {
		pg += "g"
	}
	qa := e.QueuedAt.UnixMilli()
	off := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return strconv.FormatInt(t.UnixMilli()-qa, 36)
	}
	ws := ""
	if !e.WaitingSince.IsZero() {
		ws = strconv.FormatInt(qa-e.WaitingSince.UnixMilli(), 36)
	}
	return e.Number + "|" + pg + "|" + string(e.Category) + "|" + strconv.FormatInt(qa, 36) + "|" + ws + "|" + off(e.ClaimBy) + "|" + off(e.DecideBy)
}

var priorities = map[byte]referral.Priority{'r': referral.Routine, 'u': referral.Urgent, 'e': referral.Emergency}

// unpack reads a stored value back; it returns the slot too.
func unpack(v string) (e Entry, slot string, err error) {
	f := strings.Split(v, "|")
	if len(f) != 9 {
		return e, "", fmt.Errorf("queue: corrupt entry %q", v)
	}
	if e.Version, err = strconv.Atoi(f[0]); err != nil {
		return e, "", fmt.Errorf("queue: corrupt entry %q", v)
	}
	slot, e.Number = f[1], f[2]
	if pg := f[3]; pg != "" {
		e.Priority = priorities[pg[0]]
		e.Green = strings.HasSuffix(pg, "g")
	}
	e.Category = referral.Category(f[4])
	qa, err := strconv.ParseInt(f[5], 36, 64)
	if err != nil {
		return e, "", fmt.Errorf("queue: corrupt entry %q", v)
	}
	e.QueuedAt = time.UnixMilli(qa).UTC()
	at := func(s string, sign int64) time.Time {
		if s == "" {
			return time.Time{}
		}
		d, _ := strconv.ParseInt(s, 36, 64)
		return time.UnixMilli(qa + sign*d).UTC()
	}
	e.WaitingSince, e.ClaimBy, e.DecideBy = at(f[6], -1), at(f[7], 1), at(f[8], 1)
	return e, slot, nil
}
