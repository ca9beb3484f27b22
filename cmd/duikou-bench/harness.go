package main

// The harness every subcommand shares: real servers on this machine only, a
// fresh database and key prefix per run, the server started in this process,
// an HTTP client that talks to it as a client would, bounded worker pools and
// latency figures.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"duikou/internal/app"
	"duikou/internal/config"
	"duikou/internal/kv"
	"duikou/internal/logging"
	"duikou/internal/secret"
)

// checkServerURL refuses what would not measure the real thing or would send
// traffic off this machine: an empty URL (the server would fall back to its
// embedded SQLite or Redis) or a host that is not loopback.
func checkServerURL(flagName, raw string) error {
	if raw == "" {
		return fmt.Errorf("-%s is required: the benchmark runs against a real server, not the embedded default (e.g. %s)",
			flagName, map[string]string{"database-url": "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
				"redis-url": "redis://127.0.0.1:6379/0"}[flagName])
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-%s: not a URL with a host", flagName)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); !(host == "localhost" || (ip != nil && ip.IsLoopback())) {
		return fmt.Errorf("-%s: %s is not on this machine; the benchmark sends traffic to loopback addresses only", flagName, host)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// freshDatabase creates an empty database on the server of base and returns
// its URL and a function that drops it.
func freshDatabase(ctx context.Context, base, name string) (string, func(), error) {
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	u, _ := url.Parse(base)
	u.Path = "/" + name
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	}
	return u.String(), drop, nil
}

// deleteKeys removes every key under prefix: the run's own keys only, never
// anyone else's on the shared server.
func deleteKeys(ctx context.Context, conn *kv.Conn, pattern string) (int, error) {
	iter := conn.Scan(ctx, 0, pattern, 1000).Iterator()
	var batch []string
	n := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := conn.Unlink(ctx, batch...).Err()
		n += len(batch)
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 1000 {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return n, err
	}
	return n, flush()
}

// warnWriter passes the server's warnings and errors on and drops the rest:
// the server still formats every access-log line, as in production, but the
// terminal is kept for the figures.
type warnWriter struct{ w io.Writer }

func (ww warnWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(`"level":"WARN"`)) || bytes.Contains(p, []byte(`"level":"ERROR"`)) {
		ww.w.Write(p)
	}
	return len(p), nil
}

// server is a Duikou instance running in this process.
type server struct {
	app  *app.App
	base string // http://127.0.0.1:port
	stop func()
}

// startServer starts Duikou on 127.0.0.1 (a free port) with the demo
// province loaded; opts adjust the configuration (the rtc benchmark keeps
// media on loopback). The port is taken before the server is built, so the
// address the server derives its own URL and allowed Origin from is the one
// clients reach.
func startServer(ctx context.Context, dbURL, redisURL, prefix string, stderr io.Writer, opts ...func(*config.Config)) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cfg := config.Config{
		Listen: ln.Addr().String(), DatabaseURL: dbURL, RedisURL: redisURL, RedisPrefix: prefix,
		DataDir: os.TempDir(), DataKey: secret.EncodeKey(secret.NewKey()), Demo: true,
		LogLevel: slog.LevelInfo, ShutdownTimeout: 5 * time.Second,
	}
	for _, o := range opts {
		o(&cfg)
	}
	log := logging.New(warnWriter{stderr}, cfg.LogLevel)
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("start the server: %w", err)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.Serve(sctx, ln); err != nil {
			fmt.Fprintln(stderr, "duikou-bench: server:", err)
		}
	}()
	return &server{app: a, base: "http://" + ln.Addr().String(), stop: func() {
		cancel()
		<-done
		a.Close()
	}}, nil
}

// client is an HTTP client of the API.
type client struct {
	hc   *http.Client
	base string
}

func newClient(base string, conns int, localIP net.IP) *client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if localIP != nil {
		d.LocalAddr = &net.TCPAddr{IP: localIP}
	}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConns: conns, MaxIdleConnsPerHost: conns,
		IdleConnTimeout: time.Minute, DisableCompression: true}
	return &client{hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}, base: base}
}

func (c *client) close() { c.hc.CloseIdleConnections() }

// call is one request: method, path under the server, bearer token, extra
// headers and a JSON body (nil for none).
type call struct {
	method, path, token string
	ifMatch             int
	idemKey             string
	body                any
}

// httpError is an answer other than the expected one.
type httpError struct {
	status int
	body   string
}

func (e *httpError) Error() string {
	b := e.body
	if len(b) > 300 {
		b = b[:300] + "…"
	}
	return fmt.Sprintf("HTTP %d: %s", e.status, b)
}

// do sends c, expects one of want and decodes the answer into out (when not
// nil). It returns the status.
func (cl *client) do(ctx context.Context, c call, out any, want ...int) (int, error) {
	var body io.Reader
	if c.body != nil {
		b, err := json.Marshal(c.body)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, cl.base+c.path, body)
	if err != nil {
		return 0, err
	}
	if c.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.ifMatch > 0 {
		req.Header.Set("If-Match", `"`+strconv.Itoa(c.ifMatch)+`"`)
	}
	if c.idemKey != "" {
		req.Header.Set("Idempotency-Key", c.idemKey)
	}
	res, err := cl.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, err
	}
	if !slices.Contains(want, res.StatusCode) {
		return res.StatusCode, &httpError{status: res.StatusCode, body: string(b)}
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return res.StatusCode, fmt.Errorf("decode %s %s: %w", c.method, c.path, err)
		}
	}
	return res.StatusCode, nil
}

// loginSource returns the loopback address the k-th login comes from. The
// server allows 20 logins a minute per address, as against password
// guessing; many users logging in at once come from many addresses, which on
// this machine are addresses in 127.0.0.0/8.
func loginSource(k int) net.IP {
	n := 2 + k/15
	return net.IPv4(127, 0, byte(n/250), byte(1+n%250))
}

// stepStats collects one step's latencies and errors.
type stepStats struct {
	name    string
	mu      sync.Mutex
	lat     []time.Duration
	errs    map[string]int
	elapsed time.Duration
	ok      int
}

func newStep(name string) *stepStats { return &stepStats{name: name, errs: map[string]int{}} }

func (s *stepStats) record(d time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		key := err.Error()
		var he *httpError
		if errors.As(err, &he) {
			key = "HTTP " + strconv.Itoa(he.status)
		} else if len(key) > 80 {
			key = key[:80]
		}
		s.errs[key]++
		return
	}
	s.ok++
	s.lat = append(s.lat, d)
}

func (s *stepStats) errorCount() int {
	n := 0
	for _, c := range s.errs {
		n += c
	}
	return n
}

// percentile of the successful samples, nearest rank.
func (s *stepStats) percentile(p float64) time.Duration {
	if len(s.lat) == 0 {
		return 0
	}
	sorted := slices.Clone(s.lat)
	slices.Sort(sorted)
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func (s *stepStats) rate() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.ok) / s.elapsed.Seconds()
}

func (s *stepStats) errorText() string {
	if len(s.errs) == 0 {
		return "0"
	}
	var parts []string
	for k, n := range s.errs {
		parts = append(parts, fmt.Sprintf("%d× %s", n, k))
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

// pool runs fn for i in [0, n) on workers goroutines until all are done,
// the deadline passes or ctx ends, and records each call's latency in st.
// It returns how many calls were started.
func pool(ctx context.Context, workers, n int, bound time.Duration, st *stepStats, fn func(ctx context.Context, worker, i int) error) int {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t := time.Now()
				err := fn(ctx, w, i)
				if ctx.Err() != nil && err != nil {
					return // cut off by the bound: not a server error
				}
				st.record(time.Since(t), err)
			}
		}()
	}
	wg.Wait()
	st.elapsed = time.Since(start)
	return min(int(next.Load()), n)
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64)
}

// machine describes where and how the figures were taken.
func machine(ctx context.Context, db *pgx.Conn, conn *kv.Conn, sub string, args []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "- command: `%s`\n", commandLine(sub, args))
	fmt.Fprintf(&b, "- date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- Go %s, GOMAXPROCS %d, nproc %d, %s/%s\n", strings.TrimPrefix(runtime.Version(), "go"),
		runtime.GOMAXPROCS(0), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	var pgv string
	if db != nil && db.QueryRow(ctx, "SHOW server_version").Scan(&pgv) == nil {
		fmt.Fprintf(&b, "- PostgreSQL %s", pgv)
	}
	if info, err := conn.Info(ctx, "server").Result(); err == nil {
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
				fmt.Fprintf(&b, ", Redis %s", v)
			}
		}
	}
	b.WriteString(", both on this machine beside the load tool and the server (one process)\n")
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(&b, "- load average at start: %s (the machine is shared; other work runs beside the benchmark)\n",
			strings.Join(strings.Fields(string(la))[:3], " "))
	}
	return b.String()
}

// commandLine is the command as typed, quoted where a shell needs it.
func commandLine(sub string, args []string) string {
	parts := []string{"go run ./cmd/duikou-bench", sub}
	for _, a := range args {
		if strings.ContainsAny(a, " '\"&?;|$<>*") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// waitSampler samples, every 50 ms, what the run database's sessions are
// doing: running or waiting on a lock or I/O (with the statement), or idle
// inside a transaction while the server prepares its next statement. It
// tells where a transaction's time goes without instrumenting the server.
type waitSampler struct {
	mu      sync.Mutex
	counts  map[string]int
	samples int
	stop    func()
}

func sampleWaits(ctx context.Context, db *pgxpool.Pool) *waitSampler {
	w := &waitSampler{counts: map[string]int{}}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	w.stop = func() { cancel(); <-done }
	go func() {
		defer close(done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			rows, err := db.Query(ctx, `SELECT CASE WHEN state = 'active' THEN coalesce(wait_event_type || ':' || wait_event, 'running')
					ELSE state END,
				CASE WHEN state = 'active' THEN left(regexp_replace(query, '\s+', ' ', 'g'), 70) ELSE '' END, count(*)
				FROM pg_stat_activity
				WHERE datname = current_database() AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')
				GROUP BY 1, 2`)
			if err != nil {
				continue
			}
			w.mu.Lock()
			w.samples++
			for rows.Next() {
				var what, query string
				var n int
				if rows.Scan(&what, &query, &n) == nil {
					key := what
					if query != "" {
						key += " — " + query
					}
					w.counts[key] += n
				}
			}
			w.mu.Unlock()
			rows.Close()
		}
	}()
	return w
}

// report lists the top states as the average number of sessions in each.
func (w *waitSampler) report(top int) string {
	w.stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.samples == 0 {
		return "(no samples)\n"
	}
	type kv struct {
		k string
		n int
	}
	var all []kv
	total := 0
	for k, n := range w.counts {
		all = append(all, kv{k, n})
		total += n
	}
	slices.SortFunc(all, func(a, b kv) int { return b.n - a.n })
	var b strings.Builder
	fmt.Fprintf(&b, "  - %.1f sessions busy on average (%d samples)\n", float64(total)/float64(w.samples), w.samples)
	for _, e := range all[:min(top, len(all))] {
		fmt.Fprintf(&b, "  - %.1f: %s\n", float64(e.n)/float64(w.samples), strings.ReplaceAll(e.k, "|", "/"))
	}
	return b.String()
}

// cpuMeter reads, at its start and end, the CPU time of this process (the
// server and its HTTP clients in the referral benchmark), of every process
// named postgres and redis-server on this machine, and of the machine as a
// whole, from /proc: where a phase's CPU went. Zero where /proc cannot be
// read (another OS, another user's processes hidden).
type cpuMeter struct {
	at                    time.Time
	self, pg, rd, machine time.Duration
}

func startCPU() cpuMeter {
	m := cpuMeter{at: time.Now()}
	m.self, m.pg, m.rd, m.machine = cpuNow()
	return m
}

// cpuPhase is a phase's CPU in cores, per process group.
type cpuPhase struct {
	seconds                     float64
	self, pg, redis, machineAll float64 // cores
}

func (m cpuMeter) stop() cpuPhase {
	self, pg, rd, machine := cpuNow()
	el := time.Since(m.at).Seconds()
	if el <= 0 {
		return cpuPhase{}
	}
	c := func(d time.Duration) float64 { return d.Seconds() / el }
	return cpuPhase{seconds: el, self: c(self - m.self), pg: c(pg - m.pg), redis: c(rd - m.rd), machineAll: c(machine - m.machine)}
}

// perItem renders the phase's CPU as cores and as CPU time per item.
func (p cpuPhase) perItem(n int, what string) string {
	if p.seconds == 0 || n == 0 {
		return "not measured"
	}
	us := func(cores float64) float64 { return cores * p.seconds / float64(n) * 1e6 }
	return fmt.Sprintf("machine %.2f cores busy; PostgreSQL %.2f cores (%.0f µs per %s), this process %.2f cores (%.0f µs per %s), Redis %.2f cores (%.0f µs per %s)",
		p.machineAll, p.pg, us(p.pg), what, p.self, us(p.self), what, p.redis, us(p.redis), what)
}

// cpuNow sums utime+stime of this process, of the postgres and redis-server
// processes, and the machine's busy time (all CPUs, /proc/stat).
func cpuNow() (self, pg, rd, machine time.Duration) {
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		_, self = statCPU(string(b))
	}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		if d.Name()[0] < '0' || d.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		switch name, t := statCPU(string(b)); name {
		case "postgres":
			pg += t
		case "redis-server":
			rd += t
		}
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		for k, v := range f[1:] {
			if k == 3 || k == 4 || k >= 7 { // idle, iowait; steal; guest (already in user)
				continue
			}
			n, _ := strconv.ParseInt(v, 10, 64)
			machine += time.Duration(n) * time.Second / 100
		}
	}
	return self, pg, rd, machine
}

// statCPU reads a /proc/<pid>/stat line: the command name and the CPU
// time (user + system) the process has used.
func statCPU(stat string) (string, time.Duration) {
	i, j := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
	if i < 0 || j < i {
		return "", 0
	}
	// Fields after the command name (which may hold spaces) start at ')'.
	f := strings.Fields(stat[j+1:])
	if len(f) < 13 {
		return "", 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return stat[i+1 : j], time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}
