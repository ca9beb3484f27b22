// Package browsertest drives the web UI in headless Chromium (Debian's
// package) against a whole server started in this process on the embedded
// defaults: SQLite, the in-process Redis and the demo province.
package browsertest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"duikou/internal/app"
	"duikou/internal/config"
)

// chromiumPath is the browser to drive: DUIKOU_TEST_CHROMIUM, else Debian's.
// Without one the test skips, or fails when the test command promised every
// service (DUIKOU_TEST_SERVICES=required).
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("DUIKOU_TEST_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("DUIKOU_TEST_SERVICES") == "required" {
			t.Fatalf("no Chromium at %s (DUIKOU_TEST_SERVICES=required): install it with apt-get install -y chromium", p)
		}
		t.Skipf("no Chromium at %s: set DUIKOU_TEST_CHROMIUM or apt-get install -y chromium", p)
	}
	return p
}

// startServer runs a whole Duikou with the demo province and returns its URL.
// Extra flags (short deadlines) go after the defaults.
func startServer(t *testing.T, flags ...string) string {
	t.Helper()
	args := append([]string{"-demo", "-data-dir", t.TempDir(), "-listen", "127.0.0.1:0", "-shutdown-timeout", "2s"}, flags...)
	cfg, err := config.Load(args, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		a.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the server did not stop")
		}
		a.Close()
	})
	return "http://" + ln.Addr().String()
}

// browser is one Chromium process; each page gets its own browser context
// (its own cookies), as two people on two machines would.
type browser struct {
	ctx       context.Context
	artifacts []string // directories screenshots and logs go to
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("lang", "zh-CN"),
		chromedp.WindowSize(1366, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil { // start the browser
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("starting Chromium: %v", err)
	}
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	dirs := []string{filepath.Join(t.TempDir(), "screenshots")}
	if a := os.Getenv("DUIKOU_TEST_ARTIFACTS"); a != "" {
		dirs = append(dirs, filepath.Join(a, "browser", t.Name()))
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &browser{ctx: bctx, artifacts: dirs}
}

// page is one tab in its own browser context, with its console kept.
type page struct {
	t    *testing.T
	b    *browser
	name string
	ctx  context.Context
	base string

	mu      sync.Mutex
	console []string
	shots   int
}

func (b *browser) page(t *testing.T, name, base string) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	p := &page{t: t, b: b, name: name, ctx: ctx, base: base}
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		t.Fatalf("opening page %s: %v", name, err)
	}
	// Console subscribes when it returns; the messages are read until the
	// page closes.
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			line := m.String()
			if m.URL != "" {
				line += " (" + m.URL + ")"
			}
			p.log(line)
		}
	}()
	t.Cleanup(func() {
		// A failing test leaves the page's console beside its screenshots.
		if t.Failed() {
			p.mu.Lock()
			log := strings.Join(p.console, "\n")
			p.mu.Unlock()
			for _, d := range b.artifacts {
				_ = os.WriteFile(filepath.Join(d, p.name+"-console.log"), []byte(log+"\n"), 0o644)
			}
			t.Logf("console of %s:\n%s", p.name, log)
			p.shot("failed")
		}
		cancel()
	})
	return p
}

func (p *page) log(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.console = append(p.console, time.Now().Format("15:04:05.000")+" "+line)
}

// problems are console lines that mean the UI is broken: exceptions,
// errors, and strings missing from the catalogue.
func (p *page) problems() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, l := range p.console {
		if strings.Contains(l, " exception") || strings.Contains(l, " error") || strings.Contains(l, "i18n: missing") {
			out = append(out, l)
		}
	}
	return out
}

// run runs actions with a bound, failing the test with what was being done.
func (p *page) run(what string, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %s: %v", p.name, what, err)
	}
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

// shot saves a full-page screenshot named after the moment it shows.
func (p *page) shot(moment string) {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100 is PNG; below is JPEG
	if err != nil {
		p.t.Logf("screenshot %s of %s: %v", moment, p.name, err)
		return
	}
	p.mu.Lock()
	p.shots++
	name := fmt.Sprintf("%02d-%s-%s.png", p.shots, p.name, unsafeName.ReplaceAllString(moment, "-"))
	p.mu.Unlock()
	for _, d := range p.b.artifacts {
		if err := os.WriteFile(filepath.Join(d, name), buf, 0o644); err != nil {
			p.t.Errorf("saving screenshot: %v", err)
		}
	}
}

// login signs in through the login form and waits for the role's home.
func (p *page) login(username, home string) {
	p.t.Helper()
	p.run("log in as "+username, 20*time.Second,
		chromedp.Navigate(p.base+"/#/login"),
		chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), username),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), "duikou-demo-2026"),
		chromedp.Click(chromedp.CSS(`form.login-form button[type=submit]`)),
		waitHash(home),
	)
}

// waitHash waits until the location's hash starts with prefix.
func waitHash(prefix string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](fmt.Sprintf(`location.hash.startsWith(%q)`, prefix), chromedp.WithPollingInterval(50*time.Millisecond))
}

// choose sets a <select> (or input) by a JavaScript expression for the value
// and fires change, as a user's pick would.
func choose(sel, valueJS string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const el = document.querySelector(%q); el.value = %s; el.dispatchEvent(new Event("change", {bubbles: true})); return el.value; })()`, sel, valueJS))
}

// pollTrue waits until a JavaScript expression is true.
func pollTrue(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond))
}

// text reads an element's text.
func (p *page) text(sel string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("%s: text of %s: %v", p.name, sel, err)
	}
	return s
}

// css, wait and click are the common steps with a CSS selector.
func wait(sel string) chromedp.Action[chromedp.Void]  { return chromedp.WaitVisible(chromedp.CSS(sel)) }
func click(sel string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(sel)) }
func keys(sel, v string) chromedp.Action[chromedp.Void] {
	return chromedp.SendKeys(chromedp.CSS(sel), v)
}
func eval(js string) chromedp.Action[chromedp.Void] { return chromedp.Evaluate[chromedp.Void](js) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// clickLive clicks an element of a list that pushes redraw: finding and
// clicking it in one step, so a redraw between the two cannot leave the
// click on a node that is gone.
func clickLive(sel string) chromedp.Action[chromedp.Void] {
	return pollTrue(fmt.Sprintf(`(() => { const el = document.querySelector(%q); if (!el) return false; el.click(); return true; })()`, sel))
}
