package signaling

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"duikou/internal/kv"
)

// RedisDirectory is the room → instance map shared by every instance,
// with instance heartbeats. An instance is alive while its heartbeat
// deadline, compared with the Redis server's clock, lies ahead; so a room
// whose host died moves to the next instance a client joins through, and
// the embedded server (which does not expire keys by itself) behaves like
// real Redis.
//
// Layout: one hash of instances (field id, value "<deadline ms>|<url>")
// and one string per room holding its host's id, with a long expiry so a
// room nobody released does not stay forever.
type RedisDirectory struct {
	conn *kv.Conn
	self Instance
	ttl  time.Duration
}

// NewRedisDirectory returns the directory for self; heartbeats last ttl
// (default 10 s) and are renewed by Run every ttl/3.
func NewRedisDirectory(conn *kv.Conn, self Instance, ttl time.Duration) (*RedisDirectory, error) {
	if self.ID == "" || self.URL == "" || strings.Contains(self.ID, "|") {
		return nil, errors.New("signaling: an instance needs an id (without '|') and a URL")
	}
	if ttl <= 0 {
		ttl = 10 * time.Second
	}
	return &RedisDirectory{conn: conn, self: self, ttl: ttl}, nil
}

const roomTTL = 24 * time.Hour

func (d *RedisDirectory) instances() string { return d.conn.Key("sig", "inst") }
func (d *RedisDirectory) roomKey(room string) string {
	return d.conn.Key("sig", "room", room)
}

// nowMs is the Redis server's clock in milliseconds.
const nowMs = `local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`

var beatScript = redis.NewScript(nowMs + `
redis.call('HSET', KEYS[1], ARGV[1], tostring(now + tonumber(ARGV[2])) .. '|' .. ARGV[3])
return 1`)

// placeScript returns the live host of a room, or makes ARGV[1] the host.
var placeScript = redis.NewScript(nowMs + `
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then
  local v = redis.call('HGET', KEYS[2], owner)
  if v then
    local sep = string.find(v, '|', 1, true)
    if sep and tonumber(string.sub(v, 1, sep - 1)) > now then
      return {owner, string.sub(v, sep + 1)}
    end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {ARGV[1], ARGV[3]}`)

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// Beat renews this instance's heartbeat once.
func (d *RedisDirectory) Beat(ctx context.Context) error {
	return beatScript.Run(ctx, d.conn, []string{d.instances()}, d.self.ID, d.ttl.Milliseconds(), d.self.URL).Err()
}

// Run beats until ctx ends, then withdraws the heartbeat so this
// instance's rooms move at once (a crash instead lets them move after ttl).
func (d *RedisDirectory) Run(ctx context.Context) error {
	if err := d.Beat(ctx); err != nil {
		return err
	}
	t := time.NewTicker(d.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return d.conn.HDel(c, d.instances(), d.self.ID).Err()
		case <-t.C:
			// A missed beat is retried on the next tick; the ttl allows two.
			_ = d.Beat(ctx)
		}
	}
}

// Place implements Directory.
func (d *RedisDirectory) Place(ctx context.Context, room string, self Instance) (Instance, error) {
	res, err := placeScript.Run(ctx, d.conn, []string{d.roomKey(room), d.instances()}, self.ID, roomTTL.Milliseconds(), self.URL).StringSlice()
	if err != nil {
		return Instance{}, err
	}
	if len(res) != 2 {
		return Instance{}, errors.New("signaling: place: unexpected reply")
	}
	return Instance{ID: res[0], URL: res[1]}, nil
}

// Release implements Directory: the room's entry goes if self still hosts it.
func (d *RedisDirectory) Release(ctx context.Context, room string, self Instance) error {
	return releaseScript.Run(ctx, d.conn, []string{d.roomKey(room)}, self.ID).Err()
}
