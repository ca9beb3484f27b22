package kv

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// fixedWindow counts hits in the current window and tells the caller how long
// until it resets. One round trip, atomic, shared by every instance.
var fixedWindow = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}
`)

// Limiter is a rate limiter shared by all instances through Redis.
type Limiter struct {
	conn *Conn
}

// NewLimiter returns a limiter on conn.
func NewLimiter(conn *Conn) *Limiter { return &Limiter{conn: conn} }

// Allow counts one hit on key and reports whether it stays within limit per
// window; when not, retry says when the window reopens. If Redis is down the
// request is allowed: rate limiting protects the service, it must not take it
// down with it.
func (l *Limiter) Allow(ctx context.Context, key string, limit int, window time.Duration) (ok bool, retry time.Duration, err error) {
	res, err := fixedWindow.Run(ctx, l.conn, []string{l.conn.Key("rate", key)}, window.Milliseconds()).Int64Slice()
	if err != nil {
		return true, 0, err
	}
	if res[0] > int64(limit) {
		return false, time.Duration(res[1]) * time.Millisecond, nil
	}
	return true, 0, nil
}
