package roomtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jsonv2 "github.com/chromedp/cdproto/cdp/jsonv2"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"duikou/consult"
	"duikou/internal/app"
	"duikou/internal/config"
	"duikou/internal/store"
)

// chromium finds Debian's Chromium. Without it the browser tests skip,
// unless services are required (CI), where a missing browser is a failure.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("DUIKOU_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("DUIKOU_TEST_SERVICES") == "required" {
		t.Fatal("Chromium is not installed (apt-get install -y chromium) and DUIKOU_TEST_SERVICES=required")
	}
	t.Skip("Chromium is not installed: apt-get install -y chromium")
	return ""
}

// server is one in-process Duikou instance (SQLite, embedded Redis, media
// relay on loopback) with the demo province, on a real listener.
type server struct {
	app  *app.App
	base string
}

func startServer(t *testing.T) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{base: "http://" + ln.Addr().String()}
	cfg := config.Config{DataDir: t.TempDir(), PublicURL: s.base, ICELoopback: true, Demo: true, ShutdownTimeout: 5 * time.Second}
	s.app, err = app.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.app.Serve(ctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		s.app.Close()
	})
	return s
}

// client calls the API as one demo user with a bearer token (setting up
// what the browsers then show).
type client struct {
	t     *testing.T
	base  string
	token string
	me    map[string]any
}

func (s *server) login(t *testing.T, user string) *client {
	t.Helper()
	c := &client{t: t, base: s.base}
	out := c.do("POST", "/api/v1/auth/login", "application/json", jsonBody(t, map[string]string{"username": user, "password": "duikou-demo-2026"}), http.StatusOK)
	c.token = out["token"].(string)
	c.me = c.do("GET", "/api/v1/auth/me", "", nil, http.StatusOK)["user"].(map[string]any)
	return c
}

func jsonBody(t *testing.T, v any) io.Reader {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}

func (c *client) do(method, path, ctype string, body io.Reader, want int, header ...string) map[string]any {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, res.StatusCode, b, want)
	}
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

func (c *client) str(key string) string { return c.me[key].(string) }

// upload stores a test file as the user's hospital's attachment.
func (c *client) upload(file, ctype, patientID string) consult.Attachment {
	c.t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		c.t.Fatal(err)
	}
	out := c.do("POST", "/api/v1/attachments?patient_id="+patientID, ctype, bytes.NewReader(b), http.StatusCreated,
		"Content-Disposition", `attachment; filename="`+filepath.Base(file)+`"`)
	kind := consult.Image
	if ctype == "application/dicom" {
		kind = consult.DICOM
	}
	return consult.Attachment{ID: out["id"].(string), Kind: kind, Name: filepath.Base(file), ContentType: ctype, Size: int64(out["size"].(float64))}
}

// world is a session the 临溪 county doctor asked of 省人民医院's
// cardiologist about one of 临溪's patients, scheduled to start now.
type world struct {
	srv                *server
	doctor, specialist *client
	patientID          string
}

func newWorld(t *testing.T) *world {
	s := startServer(t)
	w := &world{srv: s, doctor: s.login(t, "linxi.doctor"), specialist: s.login(t, "sph.cardio")}
	pt := w.doctor.do("POST", "/api/v1/patients", "application/json", jsonBody(t, map[string]any{
		"name": "会诊患者", "sex": "male", "birth_date": "1958-03-02"}), http.StatusCreated)
	w.patientID = pt["id"].(string)
	return w
}

func (w *world) department(t *testing.T, hospitalID, name string) string {
	out := w.doctor.do("GET", "/api/v1/hospitals/"+hospitalID+"/departments?limit=200", "", nil, http.StatusOK)
	for _, it := range out["items"].([]any) {
		if d := it.(map[string]any); d["name"] == name {
			return d["id"].(string)
		}
	}
	t.Fatalf("no department %s", name)
	return ""
}

// session writes a scheduled session straight through the consult store:
// how a request becomes scheduled is the session API's tests' business;
// these tests start at the room.
func (w *world) session(t *testing.T, kind consult.Kind, files []consult.Attachment) string {
	t.Helper()
	now := time.Now().UTC()
	cardio := w.department(t, w.specialist.str("hospital_id"), "心血管内科")
	s := consult.Session{ID: uuid.Must(uuid.NewV7()).String(), Kind: kind, Urgency: consult.Urgent,
		RequesterID: w.doctor.str("id"), RequestingHospitalID: w.doctor.str("hospital_id"),
		TargetHospitalID: w.specialist.str("hospital_id"), TargetDepartmentIDs: []string{cardio},
		Question: "胸痛待查，是否需要介入？", ClinicalSummary: "男，68岁，反复胸痛", PatientID: w.patientID,
		Attachments: files, Status: consult.Scheduled, Version: 3, CreatedAt: now, UpdatedAt: now,
		Specialists: []consult.Assignment{{SpecialistID: w.specialist.str("id"), DepartmentID: cardio}},
		Schedule:    &consult.Period{Start: now.Add(time.Minute), End: now.Add(time.Hour)}, ScheduledAt: &now}
	if s.Attachments == nil {
		s.Attachments = []consult.Attachment{}
	}
	if err := store.NewConsults(w.srv.app.DB).CreateSession(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return s.ID
}

// browser is one headless Chromium with a fake camera and microphone; each
// page is a browser context of its own (its own cookies: another user).
type browser struct {
	t     *testing.T
	alloc context.Context
	root  context.Context
	dir   string // where screenshots and logs go
}

func newBrowser(t *testing.T) *browser {
	exe := chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		// Two pages share the machine's two cores: do not starve the one
		// in the background.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	root, cancelRoot := chromedp.NewContext(alloc)
	if err := chromedp.Do(root); err != nil {
		cancelRoot()
		cancelAlloc()
		t.Fatalf("start Chromium: %v", err)
	}
	t.Cleanup(func() {
		cancelRoot()
		cancelAlloc()
	})
	dir := t.TempDir()
	if a := os.Getenv("DUIKOU_TEST_ARTIFACTS"); a != "" {
		dir = filepath.Join(a, t.Name())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots and logs in %s", dir)
	return &browser{t: t, alloc: alloc, root: root, dir: dir}
}

// page is one user's tab.
type page struct {
	b    *browser
	name string
	ctx  context.Context
	mu   sync.Mutex
	logs []string
}

func (b *browser) page(name string) *page {
	ctx, cancel := chromedp.NewContext(b.root, chromedp.WithNewBrowserContext())
	p := &page{b: b, name: name, ctx: ctx}
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("%s: new page: %v", name, err)
	}
	// The console (calls, uncaught exceptions, the browser's log), kept to
	// be written out if the test fails.
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			line := string(m.Type) + " " + m.Text
			if m.Stack != nil {
				for _, f := range m.Stack.CallFrames {
					line += fmt.Sprintf("\n    at %s (%s:%d:%d)", f.FunctionName, f.URL, f.LineNumber+1, f.ColumnNumber+1)
				}
			}
			p.addLog(line)
		}
	}()
	b.t.Cleanup(func() {
		if b.t.Failed() {
			p.saveLog()
		}
		cancel()
	})
	return p
}

func (p *page) addLog(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.logs = append(p.logs, time.Now().Format("15:04:05.000")+" "+s)
}

// saveLog writes the page's console and the room's own event log.
func (p *page) saveLog() {
	ctx, cancel := context.WithTimeout(p.ctx, 3*time.Second)
	defer cancel()
	room, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.duikouLog || []`))
	p.mu.Lock()
	defer p.mu.Unlock()
	out := strings.Join(p.logs, "\n") + "\n--- room log ---\n" + strings.Join(room, "\n") + "\n"
	f := filepath.Join(p.b.dir, p.name+"-console.log")
	if err := os.WriteFile(f, []byte(out), 0o644); err != nil {
		p.b.t.Log(err)
	}
	p.b.t.Logf("%s: console log in %s", p.name, f)
}

func (p *page) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.b.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		p.b.t.Fatalf("%s: %s: %v", p.name, what, err)
	}
}

// eval evaluates a script (a promise is awaited) into out.
func (p *page) eval(js string, out any) error {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[jsonv2.Value](js, chromedp.EvalAwaitPromise))
	if err != nil {
		return err
	}
	return json.Unmarshal(v, out)
}

// waitJS polls a script until it returns true.
func (p *page) waitJS(what, js string, within time.Duration) {
	p.b.t.Helper()
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		var ok bool
		if last = p.eval(js, &ok); last == nil && ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
	p.b.t.Fatalf("%s: %s: not within %s (%v)", p.name, what, within, last)
}

func (p *page) shot(name string) {
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.b.t.Logf("%s: screenshot %s: %v", p.name, name, err)
		return
	}
	f := filepath.Join(p.b.dir, p.name+"-"+name+".png")
	if err := os.WriteFile(f, png, 0o644); err != nil {
		p.b.t.Log(err)
	}
}

// open signs in on the room's page of a session.
func (p *page) open(base, user, sessionID, query string) {
	p.run("sign in",
		chromedp.Navigate(base+"/room/test.html?session="+sessionID+query),
		chromedp.WaitVisible(chromedp.ID("u")),
		chromedp.SendKeys(chromedp.ID("u"), user),
		chromedp.SendKeys(chromedp.ID("p"), "duikou-demo-2026"),
		chromedp.Click(chromedp.CSS(`#login button[type=submit]`)),
	)
}
