package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"duikou/internal/config"
	"duikou/internal/kv/kvtest"
	"duikou/internal/queue"
	"duikou/internal/secret"
	"duikou/internal/sqldb/sqldbtest"
)

// apiClient is one signed-in user talking to one instance over its handler,
// as a browser or desk screen would: bearer token, JSON, If-Match.
type apiClient struct {
	t     *testing.T
	h     http.Handler
	token string
}

func (c apiClient) call(method, path string, body any, header ...string) (int, map[string]any, http.Header) {
	c.t.Helper()
	var buf bytes.Buffer
	if body != nil {
		if err := json.NewEncoder(&buf).Encode(body); err != nil {
			c.t.Fatal(err)
		}
	}
	r := httptest.NewRequest(method, path, &buf)
	r.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		r.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	c.h.ServeHTTP(w, r)
	var out map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	return w.Code, out, w.Header()
}

// must calls and fails the test unless the answer has status want.
func (c apiClient) must(want int, method, path string, body any, header ...string) map[string]any {
	c.t.Helper()
	out, err := c.expect(want, method, path, body, header...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// expect is must for goroutines other than the test's, which may not stop
// the test themselves.
func (c apiClient) expect(want int, method, path string, body any, header ...string) (map[string]any, error) {
	code, out, _ := c.call(method, path, body, header...)
	if code != want {
		return out, fmt.Errorf("%s %s: %d, want %d: %v", method, path, code, want, out)
	}
	return out, nil
}

func demoLogin(t *testing.T, h http.Handler, username string) apiClient {
	t.Helper()
	c := apiClient{t: t, h: h}
	out := c.must(http.StatusOK, "POST", "/api/v1/auth/login", map[string]string{"username": username, "password": "duikou-demo-2026"})
	c.token = out["token"].(string)
	return c
}

// demoReferralWorld is the demo province seen by a 临溪 county doctor who
// refers up to 省人民医院's cardiology, whose referral desk works the queue.
type demoReferralWorld struct {
	doctor, desk         apiClient
	doctorID             string
	linxi, sph           string
	linxiDept, sphCardio string
}

func newDemoReferralWorld(t *testing.T, doctorOn, deskOn http.Handler) *demoReferralWorld {
	t.Helper()
	w := &demoReferralWorld{doctor: demoLogin(t, doctorOn, "linxi.doctor"), desk: demoLogin(t, deskOn, "sph.desk")}
	me := w.doctor.must(http.StatusOK, "GET", "/api/v1/auth/me", nil)
	user := me["user"].(map[string]any)
	w.doctorID, w.linxi = user["id"].(string), user["hospital_id"].(string)
	w.sph = w.desk.must(http.StatusOK, "GET", "/api/v1/auth/me", nil)["user"].(map[string]any)["hospital_id"].(string)
	w.linxiDept = departmentNamed(t, w.doctor, w.linxi, "内科")
	w.sphCardio = departmentNamed(t, w.doctor, w.sph, "心血管内科")
	return w
}

func departmentNamed(t *testing.T, c apiClient, hospitalID, name string) string {
	t.Helper()
	out := c.must(http.StatusOK, "GET", "/api/v1/hospitals/"+hospitalID+"/departments?limit=200", nil)
	for _, it := range out["items"].([]any) {
		d := it.(map[string]any)
		if d["name"] == name {
			return d["id"].(string)
		}
	}
	t.Fatalf("hospital %s has no department %s", hospitalID, name)
	return ""
}

// submit registers a consenting patient and sends an urgent up-referral for
// them through the doctor's instance; it returns the submitted ticket.
func (w *demoReferralWorld) submit(t *testing.T, label string) map[string]any {
	t.Helper()
	r, err := w.trySubmit(label)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (w *demoReferralWorld) trySubmit(label string) (map[string]any, error) {
	pt, err := w.doctor.expect(http.StatusCreated, "POST", "/api/v1/patients", map[string]any{
		"name": "患者" + label, "sex": "male", "birth_date": "1961-03-02"})
	if err != nil {
		return nil, err
	}
	pid := pt["id"].(string)
	consent, err := w.doctor.expect(http.StatusCreated, "POST", "/api/v1/patients/"+pid+"/consents", map[string]any{
		"consenter_kind": "patient", "consenter_name": "患者" + label, "purpose": "referral"})
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	draft, err := w.doctor.expect(http.StatusCreated, "POST", "/api/v1/referrals", map[string]any{
		"direction": "up", "priority": "urgent", "transfer_risk": 2,
		"patient_id": pid, "referring_department_id": w.linxiDept, "referring_doctor_id": w.doctorID,
		"receiving_hospital_id": w.sph, "receiving_department_id": w.sphCardio,
		"diagnoses": []map[string]string{{"code": "I20.0", "text": "不稳定型心绞痛"}},
		"reason":    "需冠脉造影评估", "clinical_summary": "反复胸闷1周",
		"transport":        map[string]string{"mode": "hospital_vehicle", "escort": "nurse"},
		"requested_window": map[string]string{"from": now.Format(time.RFC3339), "to": now.Add(48 * time.Hour).Format(time.RFC3339)},
		"consent_id":       consent["id"],
	}, "Idempotency-Key", uuid.NewString())
	if err != nil {
		return nil, err
	}
	return w.doctor.expect(http.StatusOK, "POST", "/api/v1/referrals/"+draft["id"].(string)+"/actions/submit", map[string]any{},
		"If-Match", `"`+strconv.Itoa(int(draft["version"].(float64)))+`"`)
}

// queueIDs lists the ids on the desk's queue board, in order.
func (w *demoReferralWorld) queueIDs(t *testing.T) []string {
	t.Helper()
	out := w.desk.must(http.StatusOK, "GET", "/api/v1/referral-queues/"+w.sph+"?limit=500", nil)
	var ids []string
	for _, it := range out["items"].([]any) {
		ids = append(ids, it.(map[string]any)["id"].(string))
	}
	return ids
}

// eventually retries check until it returns nil or the wait is over. It
// bounds how long a test waits for background work, it measures nothing.
func eventually(t *testing.T, wait time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", wait, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func startInstance(t *testing.T, name string, cfg config.Config) *App {
	t.Helper()
	a, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler).With("instance", name))
	if err != nil {
		t.Fatalf("instance %s: %v", name, err)
	}
	t.Cleanup(a.Close)
	return a
}

// TestTwoInstancesWorkOneReferralQueue: a ticket submitted through one
// instance is queued, claimed and accepted through the other, and the
// referrer sees the decision through the first, as behind a load balancer.
func TestTwoInstancesWorkOneReferralQueue(t *testing.T) {
	dbURL := sqldbtest.PostgresURL(t)
	redisURL := os.Getenv("DUIKOU_TEST_REDIS_URL")
	if redisURL == "" {
		kvtest.ForTest(t) // fails when services are required, else skips below
		t.Skip("no Redis server: set DUIKOU_TEST_REDIS_URL")
	}
	cfg := config.Config{DatabaseURL: dbURL, RedisURL: redisURL, RedisPrefix: "refq-" + uuid.NewString()[:8],
		DataKey: secret.EncodeKey(secret.NewKey()), Demo: true}
	cfg.DataDir = t.TempDir()
	one := startInstance(t, "one", cfg).Handler()
	cfg.DataDir = t.TempDir()
	two := startInstance(t, "two", cfg).Handler()

	w := newDemoReferralWorld(t, one, two)
	ticket := w.submit(t, "双实例")
	id := ticket["id"].(string)

	eventually(t, 10*time.Second, func() error {
		if ids := w.queueIDs(t); len(ids) != 1 || ids[0] != id {
			return fmt.Errorf("the desk on instance two sees %v, want [%s]", ids, id)
		}
		return nil
	})
	claimed := w.desk.must(http.StatusOK, "POST", "/api/v1/referral-queues/"+w.sph+"/claim", map[string]any{})
	if claimed["id"] != id || claimed["status"] != "claimed" {
		t.Fatalf("claim through instance two: %v", claimed)
	}
	w.desk.must(http.StatusOK, "POST", "/api/v1/referrals/"+id+"/actions/accept", map[string]any{"reason": "心内科收治"},
		"If-Match", `"`+strconv.Itoa(int(claimed["version"].(float64)))+`"`)

	got := w.doctor.must(http.StatusOK, "GET", "/api/v1/referrals/"+id, nil)
	if got["status"] != "accepted" || got["fee_waived"] != true || !strings.HasPrefix(got["exam_slip_number"].(string), "JC-") {
		t.Fatalf("the referrer reads through instance one: %v", got)
	}
	eventually(t, 10*time.Second, func() error {
		if ids := w.queueIDs(t); len(ids) != 0 {
			return fmt.Errorf("an accepted ticket still waits on the board: %v", ids)
		}
		return nil
	})
}

// privateRedis is a redis-server of the test's own, so the test may kill it
// and start it again empty on the same port.
type privateRedis struct {
	t    *testing.T
	bin  string
	port int
	dir  string
	cmd  *exec.Cmd
}

func startPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	bin := os.Getenv("DUIKOU_TEST_REDIS_SERVER")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("redis-server"); err != nil {
			if sqldbtest.Required() {
				t.Fatal("redis-server not found but DUIKOU_TEST_SERVICES=required")
			}
			t.Skip("redis-server not found")
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r := &privateRedis{t: t, bin: bin, port: port, dir: t.TempDir()}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *privateRedis) url() string { return "redis://127.0.0.1:" + strconv.Itoa(r.port) + "/0" }

func (r *privateRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(r.port), "--save", "", "--appendonly", "no",
		"--dir", r.dir)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(r.port))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on port %d did not start: %v", r.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *privateRedis) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

// TestRedisLostMidRunLosesNoTicket: doctors keep submitting while Redis dies
// and comes back empty. The database is the truth: once Redis is back, the
// desk's queue holds every submitted ticket exactly once, and a ticket a
// desk member had claimed before the loss is still theirs.
func TestRedisLostMidRunLosesNoTicket(t *testing.T) {
	dbURL := sqldbtest.PostgresURL(t)
	rd := startPrivateRedis(t)
	cfg := config.Config{DatabaseURL: dbURL, RedisURL: rd.url(), RedisPrefix: "loss",
		DataKey: secret.EncodeKey(secret.NewKey()), DataDir: t.TempDir(), Demo: true}
	a := startInstance(t, "one", cfg)
	w := newDemoReferralWorld(t, a.Handler(), a.Handler())

	// Before the loss: tickets queued and relayed, one of them claimed.
	submitted := map[string]bool{}
	first := w.submit(t, "先到")
	submitted[first["id"].(string)] = true
	for i := range 4 {
		submitted[w.submit(t, fmt.Sprintf("早%d", i))["id"].(string)] = true
	}
	eventually(t, 10*time.Second, func() error {
		if ids := w.queueIDs(t); len(ids) != len(submitted) {
			return fmt.Errorf("queue %v, want %d tickets", ids, len(submitted))
		}
		return nil
	})
	claimed := w.desk.must(http.StatusOK, "POST", "/api/v1/referral-queues/"+w.sph+"/claim", map[string]any{})
	if claimed["id"] != first["id"] {
		t.Fatalf("claimed %v, want the first ticket", claimed["id"])
	}
	// Everything so far has reached Redis, so only a rebuild from the
	// database can bring it back after the loss.
	eventually(t, 10*time.Second, func() error {
		var n int
		if err := a.DB.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&n); err != nil {
			return err
		}
		if n != 0 {
			return fmt.Errorf("%d changes not yet relayed", n)
		}
		return nil
	})

	// A desk screen watches the queue through the loss.
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close) // after the streams' own cleanups have closed them
	screen := openAppStream(t, srv.URL, w.desk.token, "/api/v1/referral-queues/"+w.sph+"/stream")
	if name, _ := screen.next(t, time.After(streamWait)); name != "ready" {
		t.Fatalf("the stream opened with %q, want ready", name)
	}

	const doctors, each = 3, 6
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for d := range doctors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r, err := w.trySubmit(fmt.Sprintf("%d-%d", d, i))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				submitted[r["id"].(string)] = true
				mu.Unlock()
			}
		}()
	}
	// Redis dies while the doctors are at work and comes back empty.
	rd.kill()
	// What was published while Redis was away is lost to the screen, so its
	// stream ends rather than go on with a gap: the browser reconnects and
	// reads the queue again.
	screen.ended(t)
	// Meanwhile the desk's queue answers that Redis is away, for now.
	if code, _, h := w.desk.call("GET", "/api/v1/referral-queues/"+w.sph, nil); code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Errorf("the queue answered %d (Retry-After %q) while Redis was down, want 503 with Retry-After", code, h.Get("Retry-After"))
	}
	time.Sleep(500 * time.Millisecond)
	rd.start()
	wg.Wait()

	eventually(t, 30*time.Second, func() error {
		ids := w.queueIDs(t)
		seen := map[string]int{}
		for _, id := range ids {
			seen[id]++
		}
		for id, n := range seen {
			if n > 1 {
				return fmt.Errorf("ticket %s is on the board %d times", id, n)
			}
			if !submitted[id] {
				return fmt.Errorf("ticket %s on the board was never submitted", id)
			}
		}
		if len(seen) != len(submitted) {
			return fmt.Errorf("the board holds %d of %d submitted tickets", len(seen), len(submitted))
		}
		return nil
	})
	// A screen that reconnects hears the queue again.
	eventually(t, 10*time.Second, func() error {
		code, _, _ := w.desk.call("GET", "/api/v1/referral-queues/"+w.sph, nil)
		if code != http.StatusOK {
			return fmt.Errorf("queue answered %d", code)
		}
		return nil
	})
	screen = openAppStream(t, srv.URL, w.desk.token, "/api/v1/referral-queues/"+w.sph+"/stream")
	if name, _ := screen.next(t, time.After(streamWait)); name != "ready" {
		t.Fatalf("the stream reopened with %q, want ready", name)
	}
	late := w.submit(t, "重连后")
	submitted[late["id"].(string)] = true
	screen.await(t, queue.EventQueued, late["id"].(string))

	// The claim survived the loss: the holder still decides the ticket, and
	// nobody else can claim it from the rebuilt queue.
	board := w.desk.must(http.StatusOK, "GET", "/api/v1/referral-queues/"+w.sph+"?limit=500", nil)
	for _, it := range board["items"].([]any) {
		item := it.(map[string]any)
		if item["id"] == first["id"] && item["leased_by"] == nil {
			t.Fatalf("the claimed ticket lost its holder in the rebuild: %v", item)
		}
	}
	w.desk.must(http.StatusOK, "POST", "/api/v1/referrals/"+first["id"].(string)+"/actions/accept", map[string]any{},
		"If-Match", `"`+strconv.Itoa(int(claimed["version"].(float64)))+`"`)
}
