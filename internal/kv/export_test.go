package kv

import "time"

// SetClock makes l read the time from now.
func (l *Limiter) SetClock(now func() time.Time) { l.now = now }

// SetMaxKeys bounds the keys l remembers.
func (l *Limiter) SetMaxKeys(n int) { l.maxKeys = n }

// LocalKeys is how many keys l holds an allowance for.
func (l *Limiter) LocalKeys() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// ChunkCap is the largest reservation l makes for limit.
func ChunkCap(limit int) int { return chunkCap(limit) }

// SetListenPing sets how long c's listening connection may stay silent
// before it is pinged; call it before the first Listen.
func (c *Conn) SetListenPing(d time.Duration) { c.hub.ping = d }
