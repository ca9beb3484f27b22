package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"testing"

	"duikou/internal/audit"
	"duikou/internal/kv"
	"duikou/internal/kv/kvtest"
	"duikou/internal/queue"
	"duikou/internal/referrals"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/referral"
)

// queueHTTPEnv is the referral environment with desk queues on a Redis
// server and the relay that feeds them.
type queueHTTPEnv struct {
	*refHTTPEnv
	conn  *kv.Conn
	relay *referrals.Relay
}

func newQueueHTTPEnv(t *testing.T, db sqldb.DB, conn *kv.Conn) *queueHTTPEnv {
	t.Helper()
	env := &queueHTTPEnv{refHTTPEnv: newRefHTTPEnv(t, db), conn: conn}
	rec := audit.NewLog(store.NewAuditLog(db), nil)
	svc := referrals.NewService(db, store.NewReferrals(db), rec, referrals.NewDirectoryRoutes(store.NewDirectory(db), nil), nil, referral.DefaultDeadlines())
	q := queue.New(conn, queue.Options{})
	env.relay = referrals.NewRelay(db, store.NewReferrals(db), q, referral.DefaultDeadlines(), nil)
	env.h = New(Config{}, Deps{Log: slog.New(slog.DiscardHandler), Auth: regTestAuth{users: env.users}, Audit: rec,
		Referrals: svc, Queues: referrals.NewDesks(svc, q), Idempotency: store.NewIdempotencyKeys(db, 0), Tx: db}).Handler()
	return env
}

// submit writes and sends a ticket; green makes it a green-channel one.
func (e *queueHTTPEnv) submit(t *testing.T, green bool) referral.Referral {
	t.Helper()
	in := e.input()
	in["priority"] = "routine"
	if green {
		in["priority"], in["green_channel"], in["green_category"], in["transfer_risk"] = "emergency", true, "chest_pain", 1
		in["transport"] = map[string]string{"mode": "ambulance", "escort": "doctor"}
	}
	res := e.do(e.doctor, http.MethodPost, "/api/v1/referrals", in)
	if res.code != http.StatusCreated {
		t.Fatalf("create: %d %s", res.code, res.body)
	}
	var r referral.Referral
	res.json(t, &r)
	return e.act(t, e.doctor, r, "submit", nil, http.StatusOK)
}

func (e *queueHTTPEnv) flush(t *testing.T) int {
	t.Helper()
	n, err := e.relay.Flush(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// board is the ticket ids of the desk's queue, in serving order.
func (e *queueHTTPEnv) board(t *testing.T) []string {
	t.Helper()
	res := e.do(e.desk, http.MethodGet, "/api/v1/referral-queues/"+e.tert.ID, nil)
	if res.code != http.StatusOK {
		t.Fatalf("queue: %d %s", res.code, res.body)
	}
	var l List[QueueItem]
	res.json(t, &l)
	ids := []string{}
	for _, it := range l.Items {
		if it.ClaimBy == nil || it.DecideBy == nil || it.WaitingSince.IsZero() || it.Number == "" {
			t.Errorf("queue item without its deadlines or number: %+v", it)
		}
		if it.GreenChannel && it.Category == "" {
			t.Errorf("green-channel item without its category (the desk needs to see why): %+v", it)
		}
		ids = append(ids, it.ID)
	}
	return ids
}

func (e *queueHTTPEnv) claim(t *testing.T, token, hospitalID string, want int) referral.Referral {
	t.Helper()
	res := e.do(token, http.MethodPost, "/api/v1/referral-queues/"+hospitalID+"/claim", map[string]any{})
	if res.code != want {
		t.Fatalf("claim: got %d, want %d: %s", res.code, want, res.body)
	}
	var r referral.Referral
	if want == http.StatusOK {
		res.json(t, &r)
	}
	return r
}

func queueHTTPServers(t *testing.T, fn func(t *testing.T, conn *kv.Conn)) {
	for _, s := range []struct {
		name string
		open func(testing.TB) *kv.Conn
	}{{"embedded-redis", kvtest.Embedded}, {"redis", kvtest.ForTest}} {
		t.Run(s.name, func(t *testing.T) { fn(t, s.open(t)) })
	}
}

func dropQueueKeys(t *testing.T, conn *kv.Conn) {
	t.Helper()
	ctx := context.Background()
	keys, err := conn.Keys(ctx, conn.Key("*")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) > 0 {
		if err := conn.Del(ctx, keys...).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestQueuesHTTPGreenChannelIsClaimedFirstAndTheQueueSurvivesRedisLoss(t *testing.T) {
	queueHTTPServers(t, func(t *testing.T, conn *kv.Conn) {
		sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
			env := newQueueHTTPEnv(t, db, conn)
			ctx := context.Background()
			routine := env.submit(t, false)
			green := env.submit(t, true)
			if n := env.flush(t); n != 2 {
				t.Errorf("relayed %d changes, want the 2 submissions", n)
			}
			if n := env.flush(t); n != 0 {
				t.Errorf("relayed %d changes again", n)
			}
			if got, want := env.board(t), []string{green.ID, routine.ID}; !slices.Equal(got, want) {
				t.Fatalf("queue %v, want green first %v", got, want)
			}

			// Redis loses everything: the relay's check rebuilds the queue
			// from the database, with each ticket once.
			dropQueueKeys(t, conn)
			if rebuilt, err := env.relay.EnsureBuilt(ctx); err != nil || !rebuilt {
				t.Fatalf("rebuild: %v %v", rebuilt, err)
			}
			if got, want := env.board(t), []string{green.ID, routine.ID}; !slices.Equal(got, want) {
				t.Fatalf("rebuilt queue %v, want %v", got, want)
			}

			env.claim(t, env.outsider, env.tert.ID, http.StatusNotFound)
			if res := env.do(env.doctor, http.MethodGet, "/api/v1/referral-queues/"+env.tert.ID, nil); res.code != http.StatusForbidden {
				t.Errorf("a doctor reads the desk queue: %d", res.code)
			}
			if res := env.do(env.outsider, http.MethodGet, "/api/v1/referral-queues/"+env.tert.ID, nil); res.code != http.StatusNotFound {
				t.Errorf("another hospital's desk reads the queue: %d", res.code)
			}

			first := env.claim(t, env.desk, env.tert.ID, http.StatusOK)
			if first.ID != green.ID || first.Status != referral.Claimed || first.ClaimedBy != env.users[env.desk].UserID {
				t.Fatalf("first claim %s %s, want the green ticket claimed by the desk", first.ID, first.Status)
			}
			stored, err := store.NewReferrals(db).Get(ctx, green.ID)
			if err != nil || stored.Status != referral.Claimed || stored.Version != first.Version {
				t.Fatalf("stored green ticket %s v%d (%v), want claimed v%d", stored.Status, stored.Version, err, first.Version)
			}
			second := env.claim(t, env.desk, env.tert.ID, http.StatusOK)
			if second.ID != routine.ID || second.Status != referral.Claimed {
				t.Fatalf("second claim %s %s, want the routine ticket", second.ID, second.Status)
			}
			env.claim(t, env.desk, env.tert.ID, http.StatusNoContent)

			// The claims reach the queue through the outbox too, and the
			// claimed tickets stay on the board, held by the desk.
			if n := env.flush(t); n != 2 {
				t.Errorf("relayed %d claims, want 2", n)
			}
			if got := env.board(t); len(got) != 2 {
				t.Errorf("board after the claims %v, want both tickets held", got)
			}
			env.claim(t, env.desk, env.tert.ID, http.StatusNoContent)
		})
	})
}

func TestQueuesHTTPRejectsBadInput(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newQueueHTTPEnv(t, db, kvtest.Embedded(t))
		for _, path := range []string{
			"/api/v1/referral-queues/" + env.tert.ID + "?department_id=cardio",
			"/api/v1/referral-queues/" + env.tert.ID + "?limit=0",
			"/api/v1/referral-queues/" + env.tert.ID + "?limit=many",
		} {
			if res := env.do(env.desk, http.MethodGet, path, nil); res.code != http.StatusBadRequest {
				t.Errorf("%s: %d, want 400", path, res.code)
			}
		}
		res := env.do(env.desk, http.MethodPost, "/api/v1/referral-queues/"+env.tert.ID+"/claim", map[string]any{"department_id": "cardio"})
		if res.code != http.StatusBadRequest {
			t.Errorf("claim from a bad department: %d, want 400", res.code)
		}
		res = env.do(env.desk, http.MethodPost, "/api/v1/referral-queues/"+env.tert.ID+"/claim", map[string]any{"queue": "x"})
		if res.code != http.StatusBadRequest {
			t.Errorf("claim with an unknown field: %d, want 400", res.code)
		}
	})
}
