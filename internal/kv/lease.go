package kv

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// holdScript takes the lease when it is free or expired, or renews it when
// this owner holds it (compare and set), in one step. The value carries the
// expiry as Redis server time, which the script compares, so the lease
// expires on the embedded server too (it does not expire keys by itself);
// PX also lets real Redis drop an abandoned key.
// KEYS: lease. ARGV: owner, ttl ms.
var holdScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('GET', KEYS[1])
if v then
  local owner, exp = string.match(v, '^(.*)|(%d+)$')
  if owner ~= ARGV[1] and exp and tonumber(exp) > now then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. string.format('%.0f', now + tonumber(ARGV[2])), 'PX', ARGV[2])
return 1
`)

// dropScript gives the lease up, only for its owner.
// KEYS: lease. ARGV: owner.
var dropScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.match(v, '^(.*)|%d+$') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`)

// Lease is a named lock with an expiry that one owner at a time holds, to
// elect the one instance that runs a singleton job. The holder renews it
// well within its ttl; when it stops renewing (stopped, crashed, cut off
// from Redis) another takes over after the ttl. It does not fence: a holder
// paused past its ttl may still be working when the next one starts, so the
// job it guards must stay correct when that happens.
type Lease struct {
	conn  *Conn
	key   string
	owner string
	ttl   time.Duration
}

// NewLease returns owner's handle on the lease name. owner must be unique
// per instance.
func NewLease(conn *Conn, name, owner string, ttl time.Duration) (*Lease, error) {
	if owner == "" || strings.Contains(owner, "|") {
		return nil, fmt.Errorf("lease %s: owner %q must be non-empty and without '|'", name, owner)
	}
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("lease %s: ttl %v too short", name, ttl)
	}
	return &Lease{conn: conn, key: conn.Key("lease", name), owner: owner, ttl: ttl}, nil
}

// Hold takes or renews the lease for another ttl and reports whether this
// owner holds it.
func (l *Lease) Hold(ctx context.Context) (bool, error) {
	n, err := holdScript.Run(ctx, l.conn, []string{l.key}, l.owner, l.ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("lease: %w", err)
	}
	return n == 1, nil
}

// Release gives the lease up if this owner holds it, so that another
// instance takes over at once instead of after the ttl.
func (l *Lease) Release(ctx context.Context) error {
	if err := dropScript.Run(ctx, l.conn, []string{l.key}, l.owner).Err(); err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	return nil
}
