package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/kv"
	"duikou/internal/kv/kvtest"
	"duikou/internal/queue"
	"duikou/internal/referrals"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/referral"
)

// streamHTTPEnv serves the referral API with its live streams from a real
// HTTP server whose read and write timeouts are far shorter than a stream
// lives, as a server's would be for ordinary requests.
type streamHTTPEnv struct {
	*queueHTTPEnv
	srv    *httptest.Server
	q      *queue.Referrals
	stop   context.CancelFunc // begins the instance's stop
	audits *store.AuditLog
}

const (
	streamTestHeartbeat = 50 * time.Millisecond
	streamTestTimeout   = 200 * time.Millisecond // the server's read and write timeouts
	streamTestWait      = 10 * time.Second       // generous: no test asserts a latency
)

func newStreamHTTPEnv(t *testing.T, db sqldb.DB, conn *kv.Conn) *streamHTTPEnv {
	t.Helper()
	env := &streamHTTPEnv{queueHTTPEnv: newQueueHTTPEnv(t, db, conn), audits: store.NewAuditLog(db)}
	rec := audit.NewLog(env.audits, nil)
	svc := referrals.NewService(db, store.NewReferrals(db), rec, referrals.NewDirectoryRoutes(store.NewDirectory(db), nil), nil, referral.DefaultDeadlines())
	env.q = queue.New(conn, queue.Options{})
	env.relay = referrals.NewRelay(db, store.NewReferrals(db), env.q, referral.DefaultDeadlines(), nil)
	stopping, stop := context.WithCancel(context.Background())
	env.stop = stop
	t.Cleanup(stop)
	desks := referrals.NewDesks(svc, env.q)
	env.h = New(Config{StreamHeartbeat: streamTestHeartbeat, MaxStreamsPerUser: 2}, Deps{Log: slog.New(slog.DiscardHandler),
		Auth: regTestAuth{users: env.users}, Audit: rec, Referrals: svc, Queues: desks, QueueStream: desks,
		ReferralStream: referrals.NewChanges(svc, env.q), Stopping: stopping,
		Idempotency: store.NewIdempotencyKeys(db, 0), Tx: db}).Handler()
	env.srv = httptest.NewUnstartedServer(env.h)
	env.srv.Config.ReadTimeout, env.srv.Config.WriteTimeout = streamTestTimeout, streamTestTimeout
	env.srv.Start()
	t.Cleanup(env.srv.Close)
	return env
}

// sseEvent is one event or heartbeat as a client reads it.
type sseEvent struct {
	name, id, data, retry string
	heartbeat             bool
}

// sseClient reads an event stream in the background.
type sseClient struct {
	t      *testing.T
	res    *http.Response
	events chan sseEvent // closed when the stream ends
	cancel context.CancelFunc
}

// openStream opens path as token; it answers the status and, on 200, the
// client.
func openStream(t *testing.T, base, token, path string) (int, *sseClient) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("open %s: %v", path, err)
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		cancel()
		return res.StatusCode, nil
	}
	c := &sseClient{t: t, res: res, events: make(chan sseEvent, 1024), cancel: cancel}
	t.Cleanup(c.close)
	go func() {
		defer close(c.events)
		sc := bufio.NewScanner(res.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" || ev.heartbeat {
					c.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				ev.heartbeat = true
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			case strings.HasPrefix(line, "retry: "):
				ev.retry = strings.TrimPrefix(line, "retry: ")
			}
		}
	}()
	return res.StatusCode, c
}

func (c *sseClient) close() {
	c.cancel()
	c.res.Body.Close()
}

// next returns the next event named name, skipping heartbeats and other
// events; keep, when given, must also accept the event's data.
func (c *sseClient) next(name string, keep func(data string) bool) sseEvent {
	c.t.Helper()
	deadline := time.After(streamTestWait)
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				c.t.Fatalf("stream ended while waiting for %q", name)
			}
			if ev.name == name && (keep == nil || keep(ev.data)) {
				return ev
			}
		case <-deadline:
			c.t.Fatalf("no %q event within %s", name, streamTestWait)
		}
	}
}

// ended waits for the server to end the stream.
func (c *sseClient) ended() {
	c.t.Helper()
	deadline := time.After(streamTestWait)
	for {
		select {
		case _, ok := <-c.events:
			if !ok {
				return
			}
		case <-deadline:
			c.t.Fatalf("the stream is still open after %s", streamTestWait)
		}
	}
}

func noticeOf(t *testing.T, data string) queue.Notice {
	t.Helper()
	var n queue.Notice
	if err := json.Unmarshal([]byte(data), &n); err != nil {
		t.Fatalf("notice %s: %v", data, err)
	}
	return n
}

func noticeFor(id string, status referral.Status) func(string) bool {
	return func(data string) bool {
		var n queue.Notice
		return json.Unmarshal([]byte(data), &n) == nil && n.ID == id && n.Status == status
	}
}

func TestStreamsHTTPDeliverQueueEventsToTheDeskAndChangesToBothParties(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newStreamHTTPEnv(t, db, kvtest.Embedded(t))
		base := env.srv.URL
		_, desk := openStream(t, base, env.desk, "/api/v1/referral-queues/"+env.tert.ID+"/stream")
		desk.next("ready", nil)
		if ct := desk.res.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Errorf("content type %q", ct)
		}
		_, doctor := openStream(t, base, env.doctor, "/api/v1/referrals/stream")
		doctor.next("ready", nil)
		_, outsider := openStream(t, base, env.outsider, "/api/v1/referrals/stream")
		outsider.next("ready", nil)

		// The server's read and write timeouts pass several times over; the
		// heartbeats keep coming, and so do events after them.
		beats := 0
		for beats < 4*int(streamTestTimeout/streamTestHeartbeat) {
			select {
			case ev, ok := <-desk.events:
				if !ok {
					t.Fatal("the desk stream ended within the server's timeouts")
				}
				if ev.heartbeat {
					beats++
				}
			case <-time.After(streamTestWait):
				t.Fatal("no heartbeat")
			}
		}

		sub := env.submit(t, false)
		env.flush(t)
		ev := desk.next(queue.EventQueued, nil)
		var qe queue.Event
		if err := json.Unmarshal([]byte(ev.data), &qe); err != nil || qe.ID != sub.ID || qe.Version != sub.Version || ev.id == "" {
			t.Errorf("queued event id %q data %s (%v), want ticket %s v%d", ev.id, ev.data, err, sub.ID, sub.Version)
		}
		if n := noticeOf(t, doctor.next(queue.NoticeChanged, noticeFor(sub.ID, referral.Submitted)).data); n.Number != sub.Number || n.Version != sub.Version {
			t.Errorf("referrer's notice %+v, want number %s v%d", n, sub.Number, sub.Version)
		}

		// The desk claims: the desk screen hears it at once from the queue,
		// the referring doctor through the relay; so for the acceptance.
		claimed := env.claim(t, env.desk, env.tert.ID, http.StatusOK)
		desk.next(queue.EventClaimed, func(d string) bool { return strings.Contains(d, sub.ID) })
		env.flush(t)
		doctor.next(queue.NoticeChanged, noticeFor(sub.ID, referral.Claimed))
		accepted := env.act(t, env.desk, claimed, "accept", map[string]string{"reason": "收入心内科"}, http.StatusOK)
		env.flush(t)
		desk.next(queue.EventRemoved, func(d string) bool { return strings.Contains(d, sub.ID) })
		n := noticeOf(t, doctor.next(queue.NoticeChanged, noticeFor(sub.ID, referral.Accepted)).data)
		if n.Version != accepted.Version {
			t.Errorf("acceptance notice v%d, want v%d", n.Version, accepted.Version)
		}
		if strings.Contains(n.Number, "王秀英") || n.Number != sub.Number {
			t.Errorf("notice %+v", n)
		}

		// The other province's hospital heard nothing of it: a marker sent
		// to its channel after everything arrives first.
		if err := env.q.PublishChange(context.Background(), env.foreign.ID, queue.Notice{ID: "marker", Status: referral.Closed}); err != nil {
			t.Fatal(err)
		}
		for {
			ev := outsider.next(queue.NoticeChanged, nil)
			if noticeOf(t, ev.data).ID == "marker" {
				break
			}
			t.Errorf("an unrelated hospital heard of %s", ev.data)
		}

		// Opening each stream is audited.
		for _, want := range []struct{ action, user string }{
			{referrals.ActionQueueWatch, env.desk}, {referrals.ActionChangesWatch, env.doctor},
		} {
			rows, err := env.audits.Search(context.Background(), audit.Filter{Action: want.action, ActorID: env.users[want.user].UserID}, audit.Page{Limit: 10})
			if err != nil || len(rows) != 1 {
				t.Errorf("audit rows of %s by %s: %d (%v), want 1", want.action, want.user, len(rows), err)
			}
		}
	})
}

func TestStreamsHTTPAreGatedCappedAndEndWhenTheInstanceStops(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newStreamHTTPEnv(t, db, kvtest.Embedded(t))
		base := env.srv.URL
		queuePath := "/api/v1/referral-queues/" + env.tert.ID + "/stream"
		for _, c := range []struct {
			name, token, path string
			want              int
		}{
			{"a doctor watches a desk queue", env.doctor, queuePath, http.StatusForbidden},
			{"another hospital's desk watches the queue", env.outsider, queuePath, http.StatusNotFound},
			{"the program office watches referrals", env.office, "/api/v1/referrals/stream", http.StatusForbidden},
			{"nobody", "no-such-token", "/api/v1/referrals/stream", http.StatusUnauthorized},
		} {
			if code, _ := openStream(t, base, c.token, c.path); code != c.want {
				t.Errorf("%s: %d, want %d", c.name, code, c.want)
			}
		}

		// Two streams per user in this server; a third is refused until
		// one closes.
		_, first := openStream(t, base, env.desk, queuePath)
		first.next("ready", nil)
		_, second := openStream(t, base, env.desk, "/api/v1/referrals/stream")
		second.next("ready", nil)
		if code, _ := openStream(t, base, env.desk, queuePath); code != http.StatusTooManyRequests {
			t.Errorf("third stream: %d, want 429", code)
		}
		first.close()
		var third *sseClient
		for deadline := time.Now().Add(streamTestWait); third == nil; {
			code, c := openStream(t, base, env.desk, queuePath)
			switch {
			case code == http.StatusOK:
				third = c
			case code != http.StatusTooManyRequests || time.Now().After(deadline):
				t.Fatalf("after closing one stream: %d", code)
			default:
				time.Sleep(20 * time.Millisecond) // the server notices the client left
			}
		}
		third.next("ready", nil)

		// The instance begins to stop: every stream ends.
		env.stop()
		second.ended()
		third.ended()
	})
}

// fakeChanges is a change stream fed by the test.
type fakeChanges struct{ ch chan queue.Notice }

func (f fakeChanges) Watch(context.Context, auth.Principal) (<-chan queue.Notice, func(), error) {
	return f.ch, func() {}, nil
}

// logLines counts the access log's lines per route.
type logLines struct {
	mu    sync.Mutex
	lines []map[string]any
}

func (l *logLines) Enabled(context.Context, slog.Level) bool { return true }
func (l *logLines) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logLines) WithGroup(string) slog.Handler            { return l }
func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	m := map[string]any{"msg": r.Message}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.Any(); return true })
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, m)
	return nil
}

func (l *logLines) requests(route string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, m := range l.lines {
		if m["msg"] == "request" && m["route"] == route {
			out = append(out, m)
		}
	}
	return out
}

// A stream is one request: the access log writes its line once, when it
// ends. An event whose type could break the framing is not sent.
func TestStreamsHTTPAreLoggedOnceAtTheEndAndKeepTheirFraming(t *testing.T) {
	logs := &logLines{}
	feed := fakeChanges{ch: make(chan queue.Notice, 4)}
	users := map[string]auth.Principal{"doc": {UserID: "u1", HospitalID: "h1", Roles: []auth.Role{auth.CountyDoctor}}}
	h := New(Config{StreamHeartbeat: time.Hour, StreamMaxAge: time.Hour}, Deps{Log: slog.New(logs), Auth: regTestAuth{users: users}, ReferralStream: feed}).Handler()
	srv := httptest.NewServer(h)
	defer srv.Close()
	const route = "/api/v1/referrals/stream"

	_, c := openStream(t, srv.URL, "doc", route)
	c.next("ready", nil)
	feed.ch <- queue.Notice{Type: "changed\nevent: forged", ID: "a"}
	feed.ch <- queue.Notice{Type: queue.NoticeChanged, ID: "b"}
	if ev := c.next(queue.NoticeChanged, nil); noticeOf(t, ev.data).ID != "b" || ev.id != "1" {
		t.Errorf("first event sent: id %q data %s, want the well-formed one as 1", ev.id, ev.data)
	}
	if n := len(logs.requests(route)); n != 0 {
		t.Errorf("%d access log lines while the stream is open", n)
	}
	c.close()
	deadline := time.Now().Add(streamTestWait)
	for len(logs.requests(route)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	lines := logs.requests(route)
	if len(lines) != 1 || lines[0]["status"] != int64(http.StatusOK) {
		t.Errorf("access log lines after the stream: %v, want one with status 200", lines)
	}
}

// A stream ends at its maximum age, so a session ended meanwhile (logout,
// revocation, a disabled account) stops being served when the client
// reconnects.
func TestStreamsHTTPEndAtTheirMaximumAge(t *testing.T) {
	users := map[string]auth.Principal{"doc": {UserID: "u1", HospitalID: "h1", Roles: []auth.Role{auth.CountyDoctor}}}
	feed := fakeChanges{ch: make(chan queue.Notice)}
	h := New(Config{StreamMaxAge: 100 * time.Millisecond}, Deps{Log: slog.New(slog.DiscardHandler), Auth: regTestAuth{users: users}, ReferralStream: feed}).Handler()
	srv := httptest.NewServer(h)
	defer srv.Close()
	_, c := openStream(t, srv.URL, "doc", "/api/v1/referrals/stream")
	c.next("ready", nil)
	c.ended()
	delete(users, "doc") // the session ends: the reconnect is refused
	if code, _ := openStream(t, srv.URL, "doc", "/api/v1/referrals/stream"); code != http.StatusUnauthorized {
		t.Errorf("reconnect after the session ended: %d", code)
	}
}

// Each stream tells its browser its own reconnection delay, between 1 and 5
// seconds, so that streams ending together (Redis gone, an instance
// stopping) do not all come back in the same instant.
func TestStreamsHTTPSpreadTheirReconnections(t *testing.T) {
	users := map[string]auth.Principal{}
	for i := range 24 {
		users[fmt.Sprint("doc", i)] = auth.Principal{UserID: fmt.Sprint("u", i), HospitalID: "h1", Roles: []auth.Role{auth.CountyDoctor}}
	}
	feed := fakeChanges{ch: make(chan queue.Notice)}
	h := New(Config{StreamHeartbeat: time.Hour, StreamMaxAge: time.Hour}, Deps{Log: slog.New(slog.DiscardHandler), Auth: regTestAuth{users: users}, ReferralStream: feed}).Handler()
	srv := httptest.NewServer(h)
	defer srv.Close()
	delays := map[string]bool{}
	for name := range users {
		_, c := openStream(t, srv.URL, name, "/api/v1/referrals/stream")
		ev := c.next("ready", nil)
		c.close()
		ms, err := strconv.Atoi(ev.retry)
		if err != nil || ms < 1000 || ms >= 5000 {
			t.Fatalf("retry %q, want 1000–4999 ms", ev.retry)
		}
		delays[ev.retry] = true
	}
	if len(delays) < 2 {
		t.Fatalf("24 streams all told to reconnect after %v", delays)
	}
}
