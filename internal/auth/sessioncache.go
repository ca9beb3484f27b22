package auth

import (
	"sync"
	"time"
)

// SessionCacheTTL is how long an instance answers for a session from
// memory. Every request is authenticated, and reading the session with its
// user and roles was one database round trip in each: on a busy path, about
// a tenth of the server's work. A session ended or a user changed through
// this instance is forgotten at once; through another instance, as soon as
// its notice arrives over Redis (Config.Notices, milliseconds), and within
// this time should the notice be lost.
const SessionCacheTTL = time.Second

// sessionCacheMax bounds the sessions kept; an entry is a few hundred
// bytes. Beyond it the cache is emptied and fills again with the sessions
// in use.
const sessionCacheMax = 10000

// sessionCache keeps sessions read by Authenticate for its ttl.
// Expiry, idle time, revocation and a disabled user are still judged on
// every request against the cached rows, so only changes made elsewhere in
// the last SessionCacheTTL go unseen.
//
// A change made through this instance raises the generation after its
// transaction commits: entries of older generations are not used, and a
// read that began before the change is not stored, so a request racing
// the change cannot put back what it ended.
type sessionCache struct {
	ttl     time.Duration // zero: SessionCacheTTL
	mu      sync.Mutex
	gen     uint64
	entries map[string]cachedSession
}

type cachedSession struct {
	sess      Session
	user      User
	principal Principal
	read      time.Time // when the rows were read, by the service's clock
	gen       uint64
}

// generation is the cache's generation, read before the database is.
func (c *sessionCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// get returns the entry for key if it was read less than SessionCacheTTL
// before now, in the current generation.
func (c *sessionCache) get(key string, now time.Time) (cachedSession, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ttl := c.ttl
	if ttl <= 0 {
		ttl = SessionCacheTTL
	}
	e, ok := c.entries[key]
	if !ok || e.gen != c.gen || now.Before(e.read) || now.Sub(e.read) >= ttl {
		return cachedSession{}, false
	}
	return e, true
}

// put stores e for key unless the generation moved since e's read began.
func (c *sessionCache) put(key string, e cachedSession) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.gen != c.gen {
		return
	}
	if c.entries == nil || len(c.entries) >= sessionCacheMax {
		c.entries = make(map[string]cachedSession)
	}
	c.entries[key] = e
}

// touched records that the session's last_seen_at moved to at.
func (c *sessionCache) touched(key string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok && e.sess.LastSeenAt.Before(at) {
		e.sess.LastSeenAt = at
		c.entries[key] = e
	}
}

// forget drops every entry: a session ended or a user changed. Such
// changes are rare beside requests, so the cache starts over rather than
// tracking which entries they concern.
func (c *sessionCache) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.entries = nil
}
