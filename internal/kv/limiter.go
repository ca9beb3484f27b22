package kv

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// reserveScript hands out up to ARGV[4] hits of key's current fixed window,
// never more than the limit in total, and returns {granted, window end}.
// A window starts at the first reservation after the previous one ended.
//
// The window's end is kept in the value and compared with the caller's
// clock instead of being left to the key's expiry: the embedded server
// expires nothing by itself, so a window bound to a TTL never reopened there.
// PX only lets Redis drop the key a window after it stopped mattering.
// An end further away than one window (a clock that ran ahead) is pulled in.
// The hash lives under a name of its own ("rate-window"), so instances of
// the previous plain INCR counter ("rate") running alongside during an
// upgrade count apart instead of failing on each other's key type.
//
// KEYS: counter. ARGV: now (Unix ms), window ms, limit, wanted.
var reserveScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local v = redis.call('HMGET', KEYS[1], 'n', 'end')
local n = tonumber(v[1]) or 0
local e = tonumber(v[2])
if not e or e <= now then
  n = 0
  e = now + window
elseif e > now + window then
  e = now + window
end
local grant = math.max(0, math.min(want, limit - n))
redis.call('HSET', KEYS[1], 'n', string.format('%.0f', n + grant), 'end', string.format('%.0f', e))
redis.call('PEXPIRE', KEYS[1], string.format('%.0f', e - now + window))
return {grant, e}
`)

// maxChunk bounds one reservation whatever the limit.
const maxChunk = 64

// defaultMaxKeys bounds the keys whose allowance an instance remembers; an
// entry costs a few hundred bytes.
const defaultMaxKeys = 10000

// chunkCap is the largest reservation an instance makes for limit: a
// sixteenth of it, at most maxChunk, at least one. Below 32 (login attempts,
// uploads) it is one, so every hit is counted in Redis as it happens, exactly
// as without reservations.
func chunkCap(limit int) int { return max(1, min(limit/16, maxChunk)) }

// Limiter is a fixed-window rate limiter shared by all instances through
// Redis.
//
// An instance does not ask Redis on every hit: it reserves a chunk of the
// key's window in Redis (the counter grows by the whole chunk at once) and
// admits hits from that reservation in memory until it is used up. The
// first reservation of a window is one hit, so a key used a few times costs
// what it did before; each further one, needed because the key ran out
// within the window, is twice the last (or as many as hits are waiting for
// it, if more), up to chunkCap(limit). Concurrent hits on a key wait for the
// one reservation in flight instead of each calling Redis.
//
// Why the limit still holds across instances: Redis grants at most
// limit - counter, and the counter includes what instances reserved but have
// not used yet, so the sum of all reservations in a window, and with it all
// hits admitted by all instances, never exceeds the limit. Reserved hits are
// only used while the window they were granted for lasts. The price is the
// other way round: hits one instance holds unused are refused elsewhere, so a
// key spread over k instances may be refused after admitting as few as
// limit - (k-1)·chunkCap(limit) hits (≈ 1/16 of the limit per other
// instance, at most 64). The windows' ends are compared with each instance's
// own clock, so instances whose clocks differ by s may together admit up to
// one chunk per instance more in the s around a window's end.
//
// The memory kept per key is bounded: entries of past windows go when new
// keys come, and beyond maxKeys the least recently used key is forgotten
// (its unused reservation is lost, which can only refuse early).
type Limiter struct {
	conn    *Conn
	now     func() time.Time
	maxKeys int

	mu     sync.Mutex
	keys   map[string]*allowance
	recent list.List // of *allowance, most recently used first
}

// allowance is what an instance holds of one key's current window.
type allowance struct {
	key     string
	elem    *list.Element
	end     int64        // the window's end, Unix ms; 0 before the first reservation
	left    int          // hits reserved in Redis and not yet admitted
	next    int          // the size of the next reservation in this window
	spent   bool         // Redis has no more hits for this window
	fetch   *reservation // the reservation in flight, which others wait for
	waiting int          // hits waiting for fetch: demand to reserve for
}

// reservation is one call to Redis for a key, shared by the hits waiting
// for it.
type reservation struct {
	done chan struct{}
	err  error
	// abandoned: the hit making the call went away (its context ended), so
	// its error says nothing about Redis and a waiter makes its own call.
	abandoned bool
}

// NewLimiter returns a limiter on conn.
func NewLimiter(conn *Conn) *Limiter {
	return &Limiter{conn: conn, now: time.Now, maxKeys: defaultMaxKeys, keys: map[string]*allowance{}}
}

// Allow counts one hit on key and reports whether it stays within limit per
// window; when not, retry says when the window reopens. If Redis is down the
// hit is allowed and the error returned: rate limiting protects the service,
// it must not take it down with it.
func (l *Limiter) Allow(ctx context.Context, key string, limit int, window time.Duration) (ok bool, retry time.Duration, err error) {
	l.mu.Lock()
	for {
		now := l.now().UnixMilli()
		a := l.entry(key, now)
		if now < a.end {
			if a.left > 0 {
				a.left--
				l.mu.Unlock()
				return true, 0, nil
			}
			if a.spent {
				l.mu.Unlock()
				return false, time.Duration(a.end-now) * time.Millisecond, nil
			}
		}
		r := a.fetch
		if r == nil {
			return l.reserve(ctx, a, now, limit, window)
		}
		a.waiting++
		l.mu.Unlock()
		select {
		case <-r.done:
		case <-ctx.Done():
		}
		l.mu.Lock()
		a.waiting--
		if err := ctx.Err(); err != nil {
			l.mu.Unlock()
			return true, 0, err
		}
		if r.err != nil && !r.abandoned {
			l.mu.Unlock()
			return true, 0, r.err
		}
		// The reservation is in (or failed for its caller alone): look again.
	}
}

// reserve asks Redis for the next chunk of a's window and admits this hit
// from it. It is called with l.mu held and releases it, for the call to
// Redis too: the hits on a meanwhile wait for this reservation.
func (l *Limiter) reserve(ctx context.Context, a *allowance, now int64, limit int, window time.Duration) (bool, time.Duration, error) {
	want := 1
	if now < a.end {
		want = a.next // ran out within the window
	}
	want = min(max(want, a.waiting+1), chunkCap(limit))
	r := &reservation{done: make(chan struct{})}
	a.fetch = r
	l.mu.Unlock()

	res, err := reserveScript.Run(ctx, l.conn, []string{l.conn.Key("rate-window", a.key)},
		now, max(window.Milliseconds(), 1), limit, want).Int64Slice()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("rate limit script answered %v", res)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	defer close(r.done)
	if a.fetch == r {
		a.fetch = nil
	}
	if err != nil {
		r.err, r.abandoned = err, ctx.Err() != nil
		return true, 0, err
	}
	granted, end := int(res[0]), res[1]
	// Whatever was left belonged to a window that is over.
	a.end, a.left, a.spent = end, granted, granted < want
	a.next = min(2*want, chunkCap(limit))
	if a.left > 0 {
		a.left--
		return true, 0, nil
	}
	return false, time.Duration(end-now) * time.Millisecond, nil
}

// entry returns key's allowance, creating it when the instance holds none.
// A new key first makes room: entries of past windows go from the least
// recently used end, and beyond maxKeys the least recently used go anyway
// (one with a reservation in flight finishes it unlisted, for its waiters).
// Called with l.mu held.
func (l *Limiter) entry(key string, now int64) *allowance {
	if a, ok := l.keys[key]; ok {
		l.recent.MoveToFront(a.elem)
		return a
	}
	for e := l.recent.Back(); e != nil; e = l.recent.Back() {
		old := e.Value.(*allowance)
		live := old.end > now || old.fetch != nil
		if live && l.recent.Len() < l.maxKeys {
			break
		}
		l.recent.Remove(e)
		delete(l.keys, old.key)
	}
	a := &allowance{key: key, next: 1}
	a.elem = l.recent.PushFront(a)
	l.keys[key] = a
	return a
}
