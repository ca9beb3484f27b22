package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"duikou/referral"
)

// upsertScript stores a ticket unless the queue already has this or a newer
// version of it, or it left the queue at this or a newer version (tombstone).
// KEYS: entries, department queue, hospital's departments, slots, tombstone,
// leases. ARGV: id, version, score, packed rest, "hospital|department",
// department, holder, lease ms, channel and message to publish when it
// changed anything ("" for none), prefix of the department queue keys. A
// change without a holder (the claim was released, or the ticket came back to
// the queue) ends any lease at once, so the next desk member can claim it
// without waiting for the lease to run out. A ticket stored at another desk
// (edited while out of the queue, its removal not yet applied here) leaves
// that desk's queue.
var upsertScript = newLua(`
local v = tonumber(ARGV[2])
local gone = redis.call('GET', KEYS[5])
if gone and tonumber(gone) >= v then return 0 end
local old = redis.call('HGET', KEYS[1], ARGV[1])
local oldSlot
if old then
  local ov, os = string.match(old, '^(%d+)|(%d+)|')
  if tonumber(ov) >= v then return 0 end
  oldSlot = os
end
local slot = redis.call('HGET', KEYS[4], ARGV[5])
if not slot then
  slot = tostring(redis.call('HINCRBY', KEYS[4], '#', 1))
  redis.call('HSET', KEYS[4], ARGV[5], slot, '#' .. slot, ARGV[5])
end
if oldSlot and oldSlot ~= slot then
  local name = redis.call('HGET', KEYS[4], '#' .. oldSlot)
  if name then redis.call('ZREM', ARGV[11] .. string.gsub(name, '|', ':'), ARGV[1]) end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. slot .. '|' .. ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[6])
if ARGV[7] == '' then
  redis.call('HDEL', KEYS[6], ARGV[1])
else
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local l = redis.call('HGET', KEYS[6], ARGV[1])
  if not l or tonumber(string.match(l, '|(%d+)$')) <= now then
    redis.call('HSET', KEYS[6], ARGV[1], ARGV[7] .. '|' .. string.format('%.0f', now + tonumber(ARGV[8])))
  end
end
if ARGV[9] ~= '' then redis.call('PUBLISH', ARGV[9], ARGV[10]) end
return 1
`)

// removeScript takes a ticket out of its queue when it left at version (or
// unconditionally when version is -1: a stale entry) and remembers the
// version so a late, older upsert cannot bring it back.
// Its breach marks go with it.
// KEYS: entries, tombstone, leases, the department queue the change names
// (any key when it names none), breach marks, slots. ARGV: id, version,
// "hospital|department" of that queue ("" when unknown), tombstone seconds,
// prefix of the hospitals' event channels ("" to publish nothing), the
// removed event's JSON without its department and closing brace, prefix of
// the department queue keys.
//
// The desk a change names is where the ticket is stored, but for a ticket
// that moved desks while out of the queue and whose moves arrive out of
// order; then, or when the change names none, the script finds the queue from
// the stored entry's slot. Those keys are not declared, which a single Redis
// server (or the embedded one) allows. The event goes to the desk the ticket
// was removed from.
var removeScript = newLua(`
local v = tonumber(ARGV[2])
local old = redis.call('HGET', KEYS[1], ARGV[1])
local zkey, name = KEYS[4], ARGV[3]
if old then
  local ov, slot = string.match(old, '^(%d+)|(%d+)|')
  if v >= 0 and tonumber(ov) > v then return 0 end
  if name == '' or redis.call('HGET', KEYS[6], name) ~= slot then
    name = redis.call('HGET', KEYS[6], '#' .. slot)
    if not name then return redis.error_reply('queue: entry ' .. ARGV[1] .. ' names an unknown slot ' .. slot) end
    zkey = ARGV[7] .. string.gsub(name, '|', ':')
  end
end
if v >= 0 then
  local gone = redis.call('GET', KEYS[2])
  if not gone or tonumber(gone) < v then redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[4]) end
end
if not old then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1] .. ':claim', ARGV[1] .. ':decide')
redis.call('ZREM', zkey, ARGV[1])
if ARGV[5] ~= '' then
  local h, d = string.match(name, '^(.*)|(.*)$')
  redis.call('PUBLISH', ARGV[5] .. h, ARGV[6] .. ',"department_id":"' .. d .. '"}')
end
return 1
`)

// breachScript marks a deadline of a queued ticket as escalated, with the
// time it was due; a ticket no longer queued is not marked.
// KEYS: entries, breach marks. ARGV: id, kind, due ms.
var breachScript = newLua(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1] .. ':' .. ARGV[2], ARGV[3])
return 1
`)

// claimScript ages due routine tickets, then leases the first ticket without
// a live lease across the given department queues (lowest score, then id).
// KEYS: leases, department queues... ARGV: user, lease ms, scan depth, aging
// lo, hi, shift.
var claimScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local depth, shift = tonumber(ARGV[3]), tonumber(ARGV[6])
local best, bestScore
for i = 2, #KEYS do
  if shift ~= 0 then
    local due = redis.call('ZRANGEBYSCORE', KEYS[i], ARGV[4], ARGV[5], 'WITHSCORES', 'LIMIT', 0, 1000)
    for j = 1, #due, 2 do
      redis.call('ZADD', KEYS[i], string.format('%.0f', tonumber(due[j+1]) - shift), due[j])
    end
  end
  -- Page through the queue from its head: claimed tickets keep their place
  -- (leased) until decided, so a busy department may have many at the head.
  local off, done = 0, false
  while off < depth and not done do
    local c = redis.call('ZRANGE', KEYS[i], off, math.min(off + 63, depth - 1), 'WITHSCORES')
    if #c == 0 then break end
    for j = 1, #c, 2 do
      local id, sc = c[j], tonumber(c[j+1])
      if best and (sc > bestScore or (sc == bestScore and id > best)) then done = true break end
      local l = redis.call('HGET', KEYS[1], id)
      if not l or tonumber(string.match(l, '|(%d+)$')) <= now then
        best, bestScore = id, sc
        done = true
        break
      end
    end
    off = off + 64
  end
end
if not best then return false end
redis.call('HSET', KEYS[1], best, ARGV[1] .. '|' .. string.format('%.0f', now + tonumber(ARGV[2])))
return best
`)

// ageScript re-scores routine tickets that have waited long enough.
// KEYS: department queues. ARGV: lo, hi, shift.
var ageScript = redis.NewScript(`
for i = 1, #KEYS do
  local due = redis.call('ZRANGEBYSCORE', KEYS[i], ARGV[1], ARGV[2], 'WITHSCORES', 'LIMIT', 0, 1000)
  for j = 1, #due, 2 do
    redis.call('ZADD', KEYS[i], string.format('%.0f', tonumber(due[j+1]) - tonumber(ARGV[3])), due[j])
  end
end
return 0
`)

// leaseScript renews (ARGV[3] = lease ms) or releases (ARGV[3] = "") the
// lease on a ticket, only for its holder; renewal needs a live lease.
// KEYS: leases. ARGV: id, user, lease ms.
var leaseScript = redis.NewScript(`
local l = redis.call('HGET', KEYS[1], ARGV[1])
if not l then return 0 end
local user, exp = string.match(l, '^(.*)|(%d+)$')
if user ~= ARGV[2] then return 0 end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) return 1 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if tonumber(exp) <= now then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], user .. '|' .. string.format('%.0f', now + tonumber(ARGV[3])))
return 1
`)

// lua is a script with its source, which a pipeline needs to load it:
// redis.Script.Load on a pipeline would record the still empty reply as the
// script's hash.
type lua struct {
	*redis.Script
	src string
}

func newLua(src string) *lua { return &lua{Script: redis.NewScript(src), src: src} }

// tombstoneTTL is how long a removed ticket's version is remembered; the
// outbox delivers late duplicates within seconds, not days.
const tombstoneTTL = 24 * time.Hour

// zPrefix starts every department queue key; the scripts append
// "hospital:department" when they find a queue from a stored slot's name.
func (q *Referrals) zPrefix() string { return q.conn.Key("q", "z") + ":" }

// upsertArgs are the keys and arguments of upsertScript for e; the script
// publishes ev on the hospital's channel if it changes anything, unless ev is
// nil.
func (q *Referrals) upsertArgs(e Entry, now time.Time, ev *Event) ([]string, []any, error) {
	cid, err := compactID(e.ID)
	if err != nil {
		return nil, nil, err
	}
	if e.HospitalID == "" || e.DepartmentID == "" || strings.ContainsAny(e.HospitalID+e.DepartmentID, "|\"\\") {
		return nil, nil, fmt.Errorf("queue: ticket %s needs a receiving hospital and department", e.ID)
	}
	channel, msg, err := q.message(e.HospitalID, ev)
	if err != nil {
		return nil, nil, err
	}
	keys := []string{q.entriesKey(), q.deptQueueKey(e.HospitalID, e.DepartmentID), q.hospitalDeptsKey(e.HospitalID),
		q.slotsKey(), q.tombKey(cid), q.leasesKey()}
	return keys, []any{cid, e.Version, q.score(e, now), packRest(e), e.HospitalID + "|" + e.DepartmentID, e.DepartmentID,
		e.Holder, q.opt.Lease.Milliseconds(), channel, msg, q.zPrefix()}, nil
}

// message is the channel and payload of ev for hospitalID's desks, or two
// empty strings when ev is nil.
func (q *Referrals) message(hospitalID string, ev *Event) (channel, msg string, err error) {
	if ev == nil {
		return "", "", nil
	}
	if ev.At.IsZero() {
		ev.At = time.Now().UTC()
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return "", "", err
	}
	return q.channel(hospitalID), string(b), nil
}

// Upsert puts the ticket in its department's queue or updates it. Applying
// the same version again, or an older one, changes nothing; changed reports
// whether it did change.
func (q *Referrals) Upsert(ctx context.Context, e Entry) (changed bool, err error) {
	b := q.NewBatch()
	res, err := b.Upsert(e)
	if err != nil {
		return false, err
	}
	if _, err := b.Exec(ctx); err != nil {
		return false, err
	}
	return res.Changed, nil
}

// removeArgs are the keys and arguments of removeScript for ticket id
// leaving at version; hospitalID and departmentID name its desk when the
// caller knows it ("" when not). A removal publishes a removed event at to
// the desk it removed the ticket from.
func (q *Referrals) removeArgs(id string, version int, hospitalID, departmentID string, at time.Time) ([]string, []any, error) {
	cid, err := compactID(id)
	if err != nil {
		return nil, nil, err
	}
	zkey, name := q.entriesKey(), ""
	if hospitalID != "" && departmentID != "" && !strings.Contains(hospitalID+departmentID, "|") {
		zkey, name = q.deptQueueKey(hospitalID, departmentID), hospitalID+"|"+departmentID
	}
	b, err := json.Marshal(Event{Type: EventRemoved, ID: id, Version: version, At: at})
	if err != nil {
		return nil, nil, err
	}
	head := strings.TrimSuffix(string(b), "}") // the script adds the department
	return []string{q.entriesKey(), q.tombKey(cid), q.leasesKey(), zkey, q.breachKey(), q.slotsKey()},
		[]any{cid, version, name, int(tombstoneTTL.Seconds()), q.conn.Key("q", "ev") + ":", head, q.zPrefix()}, nil
}

// Remove takes the ticket out of the queue because it left it at version
// (accepted, rejected, cancelled …). A newer version in the queue stays, and
// an older upsert arriving later does not bring the ticket back.
func (q *Referrals) Remove(ctx context.Context, id string, version int) error {
	_, err := q.remove(ctx, id, version)
	return err
}

func (q *Referrals) remove(ctx context.Context, id string, version int) (bool, error) {
	b := q.NewBatch()
	res, err := b.Remove(id, version, "", "")
	if err != nil {
		return false, err
	}
	if _, err := b.Exec(ctx); err != nil {
		return false, err
	}
	return res.Changed, nil
}

// queueKeys are the department queues a desk works: one department, or all
// of the hospital's when department is empty.
func (q *Referrals) queueKeys(ctx context.Context, hospitalID, department string) (keys, depts []string, err error) {
	if department != "" {
		return []string{q.deptQueueKey(hospitalID, department)}, []string{department}, nil
	}
	depts, err = q.conn.SMembers(ctx, q.hospitalDeptsKey(hospitalID)).Result()
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(depts)
	for _, d := range depts {
		keys = append(keys, q.deptQueueKey(hospitalID, d))
	}
	return keys, depts, nil
}

// List returns the first limit tickets of a department's queue, or of the
// hospital-wide desk view when department is empty, in serving order.
func (q *Referrals) List(ctx context.Context, hospitalID, department string, limit int) ([]Item, error) {
	if limit <= 0 {
		return nil, nil
	}
	keys, depts, err := q.queueKeys(ctx, hospitalID, department)
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	if lo, hi, shift := q.aging(q.opt.Now()); shift != 0 {
		if err := ageScript.Run(ctx, q.conn, keys, lo, hi, shift).Err(); err != nil {
			return nil, fmt.Errorf("queue list: %w", err)
		}
	}
	pipe := q.conn.Pipeline()
	cmds := make([]*redis.ZSliceCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.ZRangeWithScores(ctx, k, 0, int64(limit-1))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("queue list: %w", err)
	}
	type member struct {
		cid, dept string
		score     int64
	}
	var ms []member
	for i, c := range cmds {
		for _, z := range c.Val() {
			ms = append(ms, member{cid: z.Member.(string), dept: depts[i], score: int64(z.Score)})
		}
	}
	sort.Slice(ms, func(i, j int) bool {
		if ms[i].score != ms[j].score {
			return ms[i].score < ms[j].score
		}
		return ms[i].cid < ms[j].cid
	})
	if len(ms) > limit {
		ms = ms[:limit]
	}
	if len(ms) == 0 {
		return nil, nil
	}
	cids := make([]string, len(ms))
	for i, m := range ms {
		cids[i] = m.cid
	}
	marks := make([]string, 0, 2*len(cids))
	for _, cid := range cids {
		marks = append(marks, breachField(cid, referral.ClaimBreach), breachField(cid, referral.DecideBreach))
	}
	pipe = q.conn.Pipeline()
	vals := pipe.HMGet(ctx, q.entriesKey(), cids...)
	leases := pipe.HMGet(ctx, q.leasesKey(), cids...)
	breached := pipe.HMGet(ctx, q.breachKey(), marks...)
	tm := pipe.Time(ctx)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("queue list: %w", err)
	}
	now := tm.Val()
	items := make([]Item, 0, len(ms))
	for i, m := range ms {
		v, ok := vals.Val()[i].(string)
		if !ok {
			continue // removed between the two reads
		}
		e, _, err := unpack(v)
		if err != nil {
			return nil, err
		}
		if e.ID, err = fullID(m.cid); err != nil {
			return nil, err
		}
		e.HospitalID, e.DepartmentID = hospitalID, m.dept
		// A mark counts for the deadline it was raised for: after the
		// ticket's deadlines moved (it re-entered a queue) it is history.
		for k, due := range []time.Time{e.ClaimBy, e.DecideBy} {
			if ms, ok := breached.Val()[2*i+k].(string); ok && !due.IsZero() && ms == strconv.FormatInt(due.UnixMilli(), 10) {
				e.Breached = append(e.Breached, []referral.BreachKind{referral.ClaimBreach, referral.DecideBreach}[k])
			}
		}
		it := Item{Entry: e, Score: m.score}
		if l, ok := leases.Val()[i].(string); ok {
			if user, until, ok := parseLease(l); ok && until.After(now) {
				it.LeasedBy, it.LeasedUntil = user, until
			}
		}
		items = append(items, it)
	}
	return items, nil
}

func parseLease(l string) (user string, until time.Time, ok bool) {
	i := strings.LastIndexByte(l, '|')
	if i < 0 {
		return "", time.Time{}, false
	}
	ms, err := strconv.ParseInt(l[i+1:], 10, 64)
	if err != nil {
		return "", time.Time{}, false
	}
	return l[:i], time.UnixMilli(ms).UTC(), true
}

// Claim leases the next ticket of a hospital's desk view (or of one
// department) to user and returns its id. confirm checks the ticket against
// the database: when it says the ticket can no longer be claimed, the entry
// is stale, so it is dropped from the queue and the next ticket is tried. A
// failing confirm releases the lease and returns its error. ErrEmpty when
// nothing can be claimed.
func (q *Referrals) Claim(ctx context.Context, hospitalID, department, user string, confirm func(ctx context.Context, id string) (bool, error)) (string, error) {
	if user == "" || strings.Contains(user, "|") {
		return "", errors.New("queue claim: invalid user")
	}
	keys, _, err := q.queueKeys(ctx, hospitalID, department)
	if err != nil {
		return "", fmt.Errorf("queue claim: %w", err)
	}
	if len(keys) == 0 {
		return "", ErrEmpty
	}
	keys = append([]string{q.leasesKey()}, keys...)
	for range q.opt.ClaimAttempts {
		lo, hi, shift := q.aging(q.opt.Now())
		cid, err := claimScript.Run(ctx, q.conn, keys, user, q.opt.Lease.Milliseconds(), q.opt.ScanDepth, lo, hi, shift).Text()
		if errors.Is(err, redis.Nil) {
			return "", ErrEmpty
		}
		if err != nil {
			return "", fmt.Errorf("queue claim: %w", err)
		}
		id, err := fullID(cid)
		if err != nil {
			return "", err
		}
		if confirm != nil {
			ok, err := confirm(ctx, id)
			if err != nil {
				_ = q.Release(context.WithoutCancel(ctx), id, user)
				return "", err
			}
			if !ok {
				if _, err := q.remove(ctx, id, -1); err != nil {
					return "", err
				}
				continue
			}
		}
		q.publish(ctx, hospitalID, Event{Type: EventClaimed, ID: id, By: user})
		return id, nil
	}
	return "", ErrEmpty
}

// Renew extends user's live lease on the ticket; ErrNotHolder when the lease
// is someone else's or has expired.
func (q *Referrals) Renew(ctx context.Context, id, user string) error {
	return q.lease(ctx, id, user, strconv.FormatInt(q.opt.Lease.Milliseconds(), 10))
}

// Release gives the ticket back to the queue; only its holder may.
func (q *Referrals) Release(ctx context.Context, id, user string) error {
	if err := q.lease(ctx, id, user, ""); err != nil {
		return err
	}
	return nil
}

func (q *Referrals) lease(ctx context.Context, id, user, ms string) error {
	cid, err := compactID(id)
	if err != nil {
		return err
	}
	n, err := leaseScript.Run(ctx, q.conn, []string{q.leasesKey()}, cid, user, ms).Int()
	if err != nil {
		return fmt.Errorf("queue lease: %w", err)
	}
	if n == 0 {
		return ErrNotHolder
	}
	return nil
}

// Rebuild replaces the queues with the database's open tickets: after Redis
// lost its data, or to repair drift. Entries are sent in pipelined batches.
func (q *Referrals) Rebuild(ctx context.Context, source OpenTickets) (int, error) {
	if err := q.clear(ctx); err != nil {
		return 0, fmt.Errorf("queue rebuild: %w", err)
	}
	if err := upsertScript.Load(ctx, q.conn).Err(); err != nil {
		return 0, fmt.Errorf("queue rebuild: %w", err)
	}
	now := q.opt.Now()
	const batch = 1000
	// A full pipeline goes to Redis from another goroutine while the next
	// one fills from the database, so the two round trips overlap.
	sends, sent := make(chan redis.Pipeliner, 1), make(chan error, 1)
	go func() {
		var first error
		for p := range sends {
			if _, err := p.Exec(ctx); err != nil && first == nil {
				first = err
			}
		}
		sent <- first
	}()
	pipe := q.conn.Pipeline()
	n, pending := 0, 0
	flush := func() {
		if pending > 0 {
			sends <- pipe
			pipe, pending = q.conn.Pipeline(), 0
		}
	}
	err := source.ForEachQueued(ctx, func(e Entry) error {
		cid, err := compactID(e.ID)
		if err != nil {
			return err
		}
		if e.HospitalID == "" || e.DepartmentID == "" {
			return fmt.Errorf("queue: ticket %s needs a receiving hospital and department", e.ID)
		}
		keys := []string{q.entriesKey(), q.deptQueueKey(e.HospitalID, e.DepartmentID), q.hospitalDeptsKey(e.HospitalID),
			q.slotsKey(), q.tombKey(cid), q.leasesKey()}
		upsertScript.EvalSha(ctx, pipe, keys, cid, e.Version, q.score(e, now), packRest(e),
			e.HospitalID+"|"+e.DepartmentID, e.DepartmentID, e.Holder, q.opt.Lease.Milliseconds(), "", "", q.zPrefix())
		for _, k := range e.Breached {
			if due := dueOf(e, k); !due.IsZero() {
				pipe.HSet(ctx, q.breachKey(), breachField(cid, k), due.UnixMilli())
			}
		}
		n++
		if pending++; pending == batch {
			flush()
		}
		return nil
	})
	if err == nil {
		flush()
	}
	close(sends)
	if serr := <-sent; err == nil {
		err = serr
	}
	if err != nil {
		return n, fmt.Errorf("queue rebuild: %w", err)
	}
	if err := q.conn.Set(ctx, q.builtKey(), time.Now().UTC().Format(time.RFC3339), 0).Err(); err != nil {
		return n, fmt.Errorf("queue rebuild: %w", err)
	}
	return n, nil
}

// EnsureBuilt rebuilds the queues when the marker that the last rebuild set
// is missing: Redis restarted empty or was flushed. rebuilt says whether it
// did. Two instances may both rebuild; the result is the same.
func (q *Referrals) EnsureBuilt(ctx context.Context, source OpenTickets) (rebuilt bool, err error) {
	n, err := q.conn.Exists(ctx, q.builtKey()).Result()
	if err != nil {
		return false, fmt.Errorf("queue: %w", err)
	}
	if n == 1 {
		return false, nil
	}
	_, err = q.Rebuild(ctx, source)
	return err == nil, err
}

// clear deletes every queue key of this deployment.
func (q *Referrals) clear(ctx context.Context) error {
	iter := q.conn.Scan(ctx, 0, q.conn.Key("q", "*"), 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 1000 {
			if err := q.conn.Del(ctx, keys...).Err(); err != nil {
				return err
			}
			keys = keys[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(keys) > 0 {
		return q.conn.Del(ctx, keys...).Err()
	}
	return nil
}

// Event is a change a desk screen shows.
type Event struct {
	Type         string    `json:"type"`
	ID           string    `json:"id,omitempty"`
	Version      int       `json:"version,omitempty"`
	DepartmentID string    `json:"department_id,omitempty"`
	By           string    `json:"by,omitempty"`
	At           time.Time `json:"at"`
	// Escalations (Type EventEscalated) also say which deadline passed,
	// when it was due, and the escalation's id: delivery is at least once,
	// so a screen drops an id it has shown.
	EscalationID string              `json:"escalation_id,omitempty"`
	Kind         referral.BreachKind `json:"kind,omitempty"`
	Due          *time.Time          `json:"due,omitempty"`
	Number       string              `json:"number,omitempty"`
	// Supervisors is set on events supervisors must see as well as the
	// desk (escalations): they watch the same hospital channel.
	Supervisors bool `json:"supervisors,omitempty"`
}

// Event types the queue publishes; EventEscalated comes from the deadline
// watcher through the outbox relay.
const (
	EventQueued    = "queued"
	EventRemoved   = "removed"
	EventClaimed   = "claimed"
	EventEscalated = "escalated"
)

// breachField names a deadline's mark in the breach hash.
func breachField(cid string, k referral.BreachKind) string { return cid + ":" + string(k) }

func dueOf(e Entry, k referral.BreachKind) time.Time {
	if k == referral.ClaimBreach {
		return e.ClaimBy
	}
	return e.DecideBy
}

// MarkBreached records that the queued ticket's deadline of kind k, due at
// due, was escalated, so that List reports it; marked is false when the
// ticket is not queued (it left meanwhile). Marking again changes nothing.
func (q *Referrals) MarkBreached(ctx context.Context, id string, k referral.BreachKind, due time.Time) (marked bool, err error) {
	cid, err := compactID(id)
	if err != nil {
		return false, err
	}
	if k != referral.ClaimBreach && k != referral.DecideBreach {
		return false, fmt.Errorf("queue: unknown deadline %q", k)
	}
	n, err := breachScript.Run(ctx, q.conn, []string{q.entriesKey(), q.breachKey()}, cid, string(k), due.UnixMilli()).Int()
	if err != nil {
		return false, fmt.Errorf("queue mark breach: %w", err)
	}
	return n == 1, nil
}

// publish tells desks about a change the queue made. A lost notification
// costs a screen one refresh, never a ticket, so failures are ignored.
func (q *Referrals) publish(ctx context.Context, hospitalID string, ev Event) {
	if hospitalID != "" {
		_ = q.Publish(context.WithoutCancel(ctx), hospitalID, ev)
	}
}

// Publish sends ev to every desk screen of the hospital, on any instance.
func (q *Referrals) Publish(ctx context.Context, hospitalID string, ev Event) error {
	if ev.At.IsZero() {
		ev.At = time.Now().UTC()
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return q.conn.Publish(ctx, q.channel(hospitalID), b).Err()
}

// Subscribe delivers the hospital's events until stop is called or ctx
// ends; the channel is then closed. When Subscribe returns the subscription
// is active, so no later event is missed.
func (q *Referrals) Subscribe(ctx context.Context, hospitalID string) (<-chan Event, func(), error) {
	return subscribe[Event](ctx, q.conn, q.channel(hospitalID))
}
