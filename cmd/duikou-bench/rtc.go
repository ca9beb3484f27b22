package main

// `duikou-bench rtc`: signalling, media join and teaching-round fan-out
// against a Duikou server running in a process of its own (this binary
// re-executed in its hidden serve mode), so the CPU and memory figures are
// the server's alone, read from /proc/<pid>.
//
// Users are created and logged in through the API; the sessions (live
// consults and teaching rounds) are written through the consult store
// directly, because thousands of rooms through request → accept → schedule
// → start would take the run's time and measure the referral API instead.
// Every participant gets its token from the real join route
// (POST /api/v1/sessions/{id}/join) and joins over the real WebSocket.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/pion/webrtc/v4"
	"golang.org/x/time/rate"

	"duikou/consult"
	"duikou/internal/config"
	"duikou/internal/demo"
	"duikou/internal/kv"
	"duikou/internal/sqldb"
	"duikou/internal/store"
	"duikou/signaling"
)

type rtcOpts struct {
	dbURL, redisURL string
	scenarios       []string
	conns           int
	interval        time.Duration
	duration        time.Duration
	media           int
	subscribers     []int
	window          time.Duration
	iceLoopback     bool
	keep            bool
	serverEnv       []string
	messagesOnly    bool
}

var rtcScenarios = []string{"signalling", "media", "fanout"}

func parseRTCFlags(args []string, stderr io.Writer) (rtcOpts, error) {
	var o rtcOpts
	fs := flag.NewFlagSet("rtc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.dbURL, "database-url", "", "PostgreSQL server on this machine (a fresh database is created and dropped)")
	fs.StringVar(&o.redisURL, "redis-url", "", "Redis server on this machine (a private key prefix is used and removed)")
	scen := fs.String("scenarios", strings.Join(rtcScenarios, ","), "which scenarios to run")
	fs.IntVar(&o.conns, "conns", 5000, "signalling: concurrent participants, in rooms of 2–4")
	fs.DurationVar(&o.interval, "interval", time.Second, "signalling: each participant sends one chat or viewport message this often")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "signalling: how long the measured traffic runs")
	fs.BoolVar(&o.messagesOnly, "messages-only", true, "signalling: participants join with no_media (the server opens no PeerConnection for them; the media scenarios measure those)")
	fs.IntVar(&o.media, "media", 500, "media join: participants, in rooms of 2–4, each publishing VP8 and Opus")
	subs := fs.String("subscribers", "25,50,100,150,200", "fan-out: subscriber counts, one teaching round each")
	fs.DurationVar(&o.window, "window", 10*time.Second, "fan-out: the steady window measured at each count")
	fs.BoolVar(&o.iceLoopback, "ice-loopback", true, "media on 127.0.0.1 only (required: the tool sends nothing off this machine)")
	fs.BoolVar(&o.keep, "keep", false, "keep the database and Redis keys")
	senv := fs.String("server-env", "", "space-separated KEY=VALUE settings for the server process only, e.g. 'GOGC=400 GOMEMLIMIT=1GiB'")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, c := range []struct{ name, v string }{{"database-url", o.dbURL}, {"redis-url", o.redisURL}} {
		if err := checkServerURL(c.name, c.v); err != nil {
			return o, err
		}
	}
	if !o.iceLoopback {
		return o, errors.New("-ice-loopback=false: the tool keeps media on 127.0.0.1")
	}
	for _, kv := range strings.Fields(*senv) {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" || k == serveEnv {
			return o, fmt.Errorf("-server-env: %q is not KEY=VALUE", kv)
		}
		o.serverEnv = append(o.serverEnv, kv)
	}
	for _, s := range strings.Split(*scen, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(rtcScenarios, s) {
			return o, fmt.Errorf("unknown scenario %q (want some of %s)", s, strings.Join(rtcScenarios, ","))
		}
		o.scenarios = append(o.scenarios, s)
	}
	for _, s := range strings.Split(*subs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 1000 {
			return o, fmt.Errorf("-subscribers: %q is not a count in 1–1000", s)
		}
		o.subscribers = append(o.subscribers, n)
	}
	if o.conns < 2 || o.conns > 20000 || o.media < 2 || o.media > 2000 {
		return o, errors.New("-conns must be 2–20000 and -media 2–2000")
	}
	if o.interval < 10*time.Millisecond || o.duration <= 0 || o.duration > 10*time.Minute || o.window <= 0 || o.window > 10*time.Minute {
		return o, errors.New("-interval ≥ 10ms; -duration and -window in (0, 10m]")
	}
	return o, nil
}

// serveEnv marks the re-executed server process.
const serveEnv = "DUIKOU_BENCH_SERVE"

// serveMain is the server process: Duikou with media on loopback, on the
// database and key prefix the parent set up, until its stdin closes.
func serveMain() int {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "serve mode: DATABASE_URL REDIS_URL PREFIX")
		return 2
	}
	ctx := context.Background()
	srv, err := startServer(ctx, os.Args[1], os.Args[2], os.Args[3], os.Stderr, func(c *config.Config) { c.ICELoopback = true })
	if err != nil {
		fmt.Fprintln(os.Stderr, "duikou-bench serve:", err)
		return 1
	}
	fmt.Printf("ready %s\n", srv.base)
	_, _ = io.Copy(io.Discard, os.Stdin) // the parent closes it (or dies)
	srv.stop()
	return 0
}

// child is the server process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	base  string
}

func startChild(ctx context.Context, dbURL, redisURL, prefix string, env []string, stderr io.Writer) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, dbURL, redisURL, prefix)
	cmd.Env = append(append(os.Environ(), env...), serveEnv+"=1")
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := &child{cmd: cmd, stdin: stdin}
	ready := make(chan string, 1)
	go func() {
		b := make([]byte, 256)
		var line []byte
		for {
			n, err := out.Read(b)
			line = append(line, b[:n]...)
			if i := slices.Index(line, '\n'); i >= 0 {
				ready <- string(line[:i])
				_, _ = io.Copy(io.Discard, out)
				return
			}
			if err != nil {
				ready <- ""
				return
			}
		}
	}()
	select {
	case l := <-ready:
		if base, ok := strings.CutPrefix(l, "ready "); ok {
			ch.base = base
			return ch, nil
		}
	case <-time.After(2 * time.Minute):
	case <-ctx.Done():
	}
	ch.stop()
	return nil, errors.New("the server process did not start")
}

func (c *child) stop() {
	c.stdin.Close()
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

// cpu is the process's user+system time so far.
func (c *child) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	_, t := statCPU(string(b))
	return t
}

// rss is the process's resident memory, bytes.
func (c *child) rss() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// metric reads one Go runtime figure from the server's /metrics (0 when
// it cannot).
func (b *rtcBench) metric(ctx context.Context, name string) float64 {
	req, err := http.NewRequestWithContext(ctx, "GET", b.srv.base+"/metrics", nil)
	if err != nil {
		return 0
	}
	res, err := b.cl.hc.Do(req)
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

type rtcBench struct {
	o       rtcOpts
	stderr  io.Writer
	dbName  string
	prefix  string
	dbURL   string
	dropDB  func()
	conn    *kv.Conn
	db      sqldb.DB
	srv     *child
	cl      *client
	origin  string
	api     *webrtc.API
	sph     string // the target hospital
	linxi   string // the requesting one
	other   string // invited to teaching rounds
	dept    string
	specs   []account // specialists of sph: hosts
	doctors []account // county doctors of linxi: consult participants
	viewers []account // doctors of the invited hospital: teaching-round viewers
}

func runRTC(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseRTCFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "duikou-bench rtc:", err)
		}
		return 2
	}
	// The server process's stderr is copied by a goroutine of its own
	// into the same writer the tool reports progress to.
	stderr = &syncWriter{w: stderr}
	b, err := newRTCBench(ctx, o, stderr)
	if b != nil {
		defer b.close()
	}
	if err != nil {
		fmt.Fprintln(stderr, "duikou-bench rtc:", err)
		return 1
	}
	fmt.Fprintf(stdout, "## duikou-bench rtc\n\n%s", b.header(ctx, args))
	fmt.Fprintf(stdout, "- setup: server process pid %d (this binary re-executed; its environment adds %q) on %s, database %s, Redis prefix %q; users through the API (%d specialists, %d doctors, %d viewers), live sessions written through the consult store, tokens from the join route\n\n",
		b.srv.cmd.Process.Pid, strings.Join(o.serverEnv, " "), b.srv.base, b.dbName, b.prefix,
		len(b.specs), len(b.doctors), len(b.viewers))
	code := 0
	for _, s := range o.scenarios {
		var err error
		switch s {
		case "signalling":
			err = b.signalling(ctx, stdout)
		case "media":
			err = b.mediaJoin(ctx, stdout)
		case "fanout":
			err = b.fanout(ctx, stdout)
		}
		if err != nil {
			fmt.Fprintf(stderr, "duikou-bench rtc %s: %v\n", s, err)
			code = 1
		}
	}
	return code
}

func (b *rtcBench) header(ctx context.Context, args []string) string {
	var db *pgx.Conn
	if c, err := pgx.Connect(ctx, b.dbURL); err == nil {
		defer c.Close(ctx)
		db = c
	}
	h := machine(ctx, db, b.conn, "rtc", args)
	return strings.Replace(h, "both on this machine beside the load tool and the server (one process)",
		"on this machine; the server runs in a process of its own beside the load tool's synthetic peers", 1)
}

func (b *rtcBench) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if b.cl != nil {
		b.cl.close()
	}
	if b.srv != nil {
		b.srv.stop()
	}
	if b.db != nil {
		b.db.Close()
	}
	if b.conn != nil {
		if !b.o.keep {
			deleteKeys(ctx, b.conn, b.prefix+":*")
		}
		b.conn.Close()
	}
	if b.dropDB != nil && !b.o.keep {
		b.dropDB()
	}
}

func newRTCBench(ctx context.Context, o rtcOpts, stderr io.Writer) (*rtcBench, error) {
	tag := randomHex(4)
	b := &rtcBench{o: o, dbName: "duikou_bench_" + tag, prefix: "bench-" + tag, stderr: stderr}
	var err error
	if b.dbURL, b.dropDB, err = freshDatabase(ctx, o.dbURL, b.dbName); err != nil {
		return b, err
	}
	if b.conn, err = kv.Open(ctx, o.redisURL, b.prefix); err != nil {
		return b, err
	}
	fmt.Fprintln(stderr, "starting the server process…")
	if b.srv, err = startChild(ctx, b.dbURL, o.redisURL, b.prefix, o.serverEnv, stderr); err != nil {
		return b, err
	}
	b.origin = b.srv.base
	if b.db, err = sqldb.OpenPostgres(ctx, b.dbURL); err != nil {
		return b, err
	}
	b.cl = newClient(b.srv.base, 64, nil)
	if b.api, err = benchAPI(); err != nil {
		return b, err
	}
	return b, b.setup(ctx)
}

// setup creates the users through the API: enough specialists and doctors
// that none passes the API's per-user rate limit with its share of the
// joins, and one viewer per fan-out subscriber (a participant is a user, once
// per room).
func (b *rtcBench) setup(ctx context.Context) error {
	admin, err := b.login(ctx, "admin", demo.Password, 0)
	if err != nil {
		return fmt.Errorf("admin login: %w", err)
	}
	var hs struct {
		Items []struct{ ID, Name string } `json:"items"`
	}
	if _, err := b.cl.do(ctx, call{method: "GET", path: "/api/v1/hospitals?limit=200", token: admin.token}, &hs, 200); err != nil {
		return err
	}
	for _, h := range hs.Items {
		switch {
		case h.Name == "青川省人民医院":
			b.sph = h.ID
		case h.Name == "临溪县人民医院":
			b.linxi = h.ID
		case b.other == "":
			b.other = h.ID
		}
	}
	if b.sph == "" || b.linxi == "" || b.other == "" {
		return errors.New("the demo province lacks 青川省人民医院, 临溪县人民医院 or a third hospital")
	}
	var ds struct {
		Items []struct{ ID string } `json:"items"`
	}
	if _, err := b.cl.do(ctx, call{method: "GET", path: "/api/v1/hospitals/" + b.sph + "/departments?limit=1", token: admin.token}, &ds, 200); err != nil || len(ds.Items) == 0 {
		return fmt.Errorf("departments of the target hospital: %v", err)
	}
	b.dept = ds.Items[0].ID

	// Joins per user stay far under the API's 1,200 requests a minute.
	nSpecs := max(2, min(40, b.o.conns/150))
	nDocs := max(3, min(120, b.o.conns/50))
	nViewers := 0
	if slices.Contains(b.o.scenarios, "fanout") {
		nViewers = slices.Max(b.o.subscribers)
	}
	fmt.Fprintf(b.stderr, "setting up %d users (argon2id hashing takes a while)…\n", nSpecs+nDocs+nViewers)
	type spec struct {
		name, hospital, role string
		into                 *account
	}
	b.specs, b.doctors, b.viewers = make([]account, nSpecs), make([]account, nDocs), make([]account, nViewers)
	var specs []spec
	for i := range b.specs {
		specs = append(specs, spec{fmt.Sprintf("rtc.spec%03d", i), b.sph, "specialist", &b.specs[i]})
	}
	for i := range b.doctors {
		specs = append(specs, spec{fmt.Sprintf("rtc.doc%03d", i), b.linxi, "county_doctor", &b.doctors[i]})
	}
	for i := range b.viewers {
		specs = append(specs, spec{fmt.Sprintf("rtc.view%03d", i), b.other, "county_doctor", &b.viewers[i]})
	}
	const password = "bench-password-2026"
	st := newStep("setup users")
	pool(ctx, 4, len(specs), 15*time.Minute, st, func(ctx context.Context, _, i int) error {
		s := specs[i]
		if _, err := b.cl.do(ctx, call{method: "POST", path: "/api/v1/users", token: admin.token, body: map[string]any{
			"username": s.name, "display_name": s.name, "hospital_id": s.hospital, "roles": []string{s.role}, "password": password,
		}}, nil, 201); err != nil {
			return fmt.Errorf("create %s: %w", s.name, err)
		}
		a, err := b.login(ctx, s.name, password, i+1)
		if err != nil {
			return fmt.Errorf("login %s: %w", s.name, err)
		}
		*s.into = a
		return nil
	})
	if st.errorCount() > 0 || st.ok != len(specs) {
		return fmt.Errorf("setting up users: %d of %d done, errors: %s", st.ok, len(specs), st.errorText())
	}
	return nil
}

func (b *rtcBench) login(ctx context.Context, username, password string, k int) (account, error) {
	c := newClient(b.srv.base, 1, loginSource(k))
	defer c.close()
	var res struct {
		Token string
		User  struct{ ID string }
	}
	_, err := c.do(ctx, call{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"username": username, "password": password}}, &res, 200)
	return account{id: res.User.ID, token: res.Token}, err
}

// newSession writes a live session: a consult between linxi and sph with
// host as its specialist, or a teaching round that also invites the third
// hospital.
func (b *rtcBench) newSession(ctx context.Context, host, requester account, teaching bool) (string, error) {
	now := time.Now().UTC()
	s := consult.Session{
		ID: uuid.Must(uuid.NewV7()).String(), Kind: consult.Consult, Urgency: consult.Routine,
		RequesterID: requester.id, RequestingHospitalID: b.linxi, TargetHospitalID: b.sph,
		TargetDepartmentIDs: []string{b.dept}, Question: "duikou-bench rtc", ClinicalSummary: "synthetic load",
		Status: consult.Live, Version: 4, CreatedAt: now, UpdatedAt: now,
		Specialists: []consult.Assignment{{SpecialistID: host.id, DepartmentID: b.dept}},
		AcceptedBy:  host.id, AcceptedAt: &now, Schedule: &consult.Period{Start: now, End: now.Add(2 * time.Hour)},
		ScheduledAt: &now, StartedAt: &now,
	}
	if teaching {
		s.Kind = consult.TeachingRound
		s.AttendeeHospitalIDs = []string{b.other}
	}
	return s.ID, store.NewConsults(b.db).CreateSession(ctx, s)
}

// ticket asks the join route for a's token to room.
func (b *rtcBench) ticket(ctx context.Context, a account, room string) (string, string, error) {
	var t struct {
		Token string `json:"token"`
		WSURL string `json:"ws_url"`
	}
	_, err := b.cl.do(ctx, call{method: "POST", path: "/api/v1/sessions/" + room + "/join", token: a.token}, &t, 200)
	return t.Token, t.WSURL, err
}

// member is one participant in a room of the run.
type member struct {
	idx      int
	acct     account
	host     bool
	ws       *wsClient
	peer     *mediaPeer
	welcome  chan time.Time
	joinSent time.Time
	onRelay  func(typ string, payload []byte)

	admitOnce sync.Once
	admits    chan string
}

// joinRoom brings members (the first is the host) into room: each gets a
// ticket from the join route, opens the WebSocket and sends its join; the
// host admits everyone who waits in the lobby as soon as it hears of them.
// It returns once every member is welcomed, or with the first failure.
// joinLat and ticketLat, when not nil, record each member's latency from
// the join message to the welcome, and of the join route.
func (b *rtcBench) joinRoom(ctx context.Context, room string, ms []*member, joinLat, ticketLat *stepStats) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for i, m := range ms {
		m.welcome = make(chan time.Time, 1)
		t0 := time.Now()
		tok, wsURL, err := b.ticket(ctx, m.acct, room)
		if ticketLat != nil {
			ticketLat.record(time.Since(t0), err)
		}
		if err != nil {
			return fmt.Errorf("join route: %w", err)
		}
		host := i == 0
		handle := func(typ string, payload []byte) {
			if m.peer != nil && m.peer.signal(typ, payload) {
				return
			}
			switch typ {
			case signaling.TWelcome:
				select {
				case m.welcome <- time.Now():
				default:
				}
			case signaling.TLobbyWaiting:
				if host {
					var p signaling.ParticipantInfo
					if jsonUnmarshal(payload, &p) == nil {
						m.admit(p.ID)
					}
				}
			case signaling.TChat, signaling.TViewport:
				if m.onRelay != nil {
					m.onRelay(typ, payload)
				}
			}
		}
		ws, err := dialSignal(ctx, wsURL, b.origin, handle)
		if err != nil {
			if joinLat != nil {
				joinLat.record(0, err)
			}
			return fmt.Errorf("dial: %w", err)
		}
		m.ws = ws
		if m.peer != nil {
			m.peer.ws.Store(ws)
		}
		m.joinSent = time.Now()
		if err := ws.send(signaling.TJoin, mustJSON(signaling.JoinPayload{Room: room, Token: tok, NoMedia: m.peer == nil && b.o.messagesOnly})); err != nil {
			return err
		}
		if host {
			// Guests wait in the lobby until the host is in to admit them.
			if err := m.awaitWelcome(ctx, joinLat); err != nil {
				return err
			}
		}
	}
	for _, m := range ms[1:] {
		if err := m.awaitWelcome(ctx, joinLat); err != nil {
			return err
		}
	}
	return nil
}

// admit queues an admission; the host sends them at most 15 a second
// (burst 10), under the server's limit of 20 messages a second per client,
// which a host admitting a teaching round's hundred viewers at once would
// pass and be disconnected for.
func (m *member) admit(id string) {
	m.admitOnce.Do(func() {
		m.admits = make(chan string, 1024)
		go func() {
			lim := rate.NewLimiter(15, 10)
			for {
				var id string
				select {
				case id = <-m.admits:
				case <-m.ws.closed:
					return
				}
				if lim.Wait(context.Background()) != nil {
					return
				}
				if m.ws.send(signaling.TAdmit, mustJSON(signaling.TargetPayload{Participant: id})) != nil {
					return
				}
			}
		}()
	})
	select {
	case m.admits <- id:
	default:
	}
}

func (m *member) awaitWelcome(ctx context.Context, lat *stepStats) error {
	select {
	case at := <-m.welcome:
		if lat != nil {
			lat.record(at.Sub(m.joinSent), nil)
		}
		return nil
	case <-m.ws.closed:
		err := fmt.Errorf("closed before the welcome (code %d)", m.ws.code.Load())
		if lat != nil {
			lat.record(0, err)
		}
		return err
	case <-ctx.Done():
		if lat != nil {
			lat.record(0, errors.New("no welcome in time"))
		}
		return errors.New("no welcome in time")
	}
}

func (m *member) leave() {
	if m.ws != nil {
		_ = m.ws.send(signaling.TLeave, nil)
		m.ws.close()
	}
	if m.peer != nil {
		m.peer.close()
	}
}

// roomSizes splits n participants into rooms of 2–4 (2, 3, 4, 2, …; the
// last takes what is left).
func roomSizes(n int) []int {
	var out []int
	for k := 0; n > 0; k++ {
		s := 2 + k%3
		switch {
		case n <= 4:
			s = n
		case n-s == 1: // never a room of one
			if s > 2 {
				s--
			} else {
				s++
			}
		}
		out = append(out, s)
		n -= s
	}
	return out
}

// roomMembers is room k's accounts: specialist k as host, then doctors.
func (b *rtcBench) roomMembers(k, size int, next *int) []*member {
	ms := []*member{{acct: b.specs[k%len(b.specs)], host: true}}
	base := (k * 3) % len(b.doctors)
	for j := 1; j < size; j++ {
		ms = append(ms, &member{acct: b.doctors[(base+j-1)%len(b.doctors)]})
	}
	for _, m := range ms {
		m.idx = *next
		*next++
	}
	return ms
}

// latencies is a concurrent collection of durations.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
	on atomic.Bool
}

func (l *latencies) add(d time.Duration) {
	if !l.on.Load() {
		return
	}
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) stats() *stepStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return &stepStats{lat: slices.Clone(l.d), errs: map[string]int{}, ok: len(l.d)}
}

// stamp finds "ts-<unix nanos>-<sender>" in a relayed payload.
func stamp(payload []byte) (time.Time, int, bool) {
	i := bytes.Index(payload, []byte("ts-"))
	if i < 0 {
		return time.Time{}, 0, false
	}
	var ns int64
	j := i + 3
	for ; j < len(payload) && payload[j] >= '0' && payload[j] <= '9'; j++ {
		ns = ns*10 + int64(payload[j]-'0')
	}
	if j == i+3 || j >= len(payload) || payload[j] != '-' {
		return time.Time{}, 0, false
	}
	from, k := 0, j+1
	for ; k < len(payload) && payload[k] >= '0' && payload[k] <= '9'; k++ {
		from = from*10 + int(payload[k]-'0')
	}
	return time.Unix(0, ns), from, k > j+1
}

func (b *rtcBench) signalling(ctx context.Context, stdout io.Writer) error {
	sizes := roomSizes(b.o.conns)
	fmt.Fprintf(b.stderr, "signalling: writing %d sessions…\n", len(sizes))
	rooms := make([]string, len(sizes))
	for k := range sizes {
		id, err := b.newSession(ctx, b.specs[k%len(b.specs)], b.doctors[0], false)
		if err != nil {
			return fmt.Errorf("write session: %w", err)
		}
		rooms[k] = id
	}
	rss0, heap0 := b.srv.rss(), b.metric(ctx, "go_memstats_heap_inuse_bytes")
	stackBefore := b.metric(ctx, "go_memstats_stack_inuse_bytes")
	gor0 := b.metric(ctx, "go_goroutines")

	relay := &latencies{}
	var sent, errs atomic.Int64
	all := make([][]*member, len(sizes))
	next := 0
	for k, n := range sizes {
		all[k] = b.roomMembers(k, n, &next)
		for _, m := range all[k] {
			m.onRelay = func(_ string, payload []byte) {
				if at, from, ok := stamp(payload); ok && from != m.idx {
					relay.add(time.Since(at))
				}
			}
		}
	}
	defer func() {
		for _, ms := range all {
			for _, m := range ms {
				if m.ws != nil {
					m.ws.close()
				}
			}
		}
	}()
	fmt.Fprintf(b.stderr, "signalling: joining %d participants in %d rooms…\n", b.o.conns, len(sizes))
	joinLat, ticketLat := newStep("join"), newStep("ticket")
	rs := newStep("rooms")
	pool(ctx, 32, len(sizes), 10*time.Minute, rs, func(ctx context.Context, _, k int) error {
		return b.joinRoom(ctx, rooms[k], all[k], joinLat, ticketLat)
	})
	if rs.errorCount() > 0 || rs.ok != len(sizes) {
		return fmt.Errorf("joining: %d of %d rooms in, errors: %s", rs.ok, len(sizes), rs.errorText())
	}
	connected := rs.elapsed
	// The joined broadcasts drain, and the server's garbage from the
	// joins (HTTP, audit rows) is collected and its scavenger returns
	// some to the system.
	time.Sleep(10 * time.Second)
	rss1, heap1 := b.srv.rss(), b.metric(ctx, "go_memstats_heap_inuse_bytes")
	stack1 := b.metric(ctx, "go_memstats_stack_inuse_bytes")
	gor1 := b.metric(ctx, "go_goroutines")

	// Traffic: every participant sends every interval, phases spread; the
	// host a viewport (it presents), the others a chat line.
	fmt.Fprintf(b.stderr, "signalling: traffic for %s…\n", b.o.duration)
	tctx, cancel := context.WithTimeout(ctx, b.o.duration+2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	cpu0, t0 := b.srv.cpu(), time.Now()
	relay.on.Store(true)
	for _, ms := range all {
		for _, m := range ms {
			wg.Add(1)
			go func() {
				defer wg.Done()
				phase := time.Duration(m.idx) * b.o.interval / time.Duration(b.o.conns)
				select {
				case <-tctx.Done():
					return
				case <-time.After(phase):
				}
				tick := time.NewTicker(b.o.interval)
				defer tick.Stop()
				end := t0.Add(b.o.duration)
				for time.Now().Before(end) {
					mark := "ts-" + strconv.FormatInt(time.Now().UnixNano(), 10) + "-" + strconv.Itoa(m.idx)
					var err error
					if m.host {
						err = m.ws.send(signaling.TViewport, []byte(`{"image":"`+mark+`","slice":1,"window_center":40,"window_width":400,"zoom":1,"pan_x":0,"pan_y":0}`))
					} else {
						err = m.ws.send(signaling.TChat, []byte(`{"text":"`+mark+` 请看第三张片子"}`))
					}
					if err != nil {
						errs.Add(1)
					} else {
						sent.Add(1)
					}
					select {
					case <-tctx.Done():
						return
					case <-tick.C:
					}
				}
			}()
		}
	}
	wg.Wait()
	time.Sleep(500 * time.Millisecond) // the last messages arrive
	relay.on.Store(false)
	elapsed := time.Since(t0)
	cpu := b.srv.cpu() - cpu0
	rl := relay.stats()
	closedEarly := 0
	for _, ms := range all {
		for _, m := range ms {
			select {
			case <-m.ws.closed:
				closedEarly++
			default:
			}
		}
	}

	n := float64(b.o.conns)
	fmt.Fprintf(stdout, "### Signalling: %d participants in %d rooms of 2–4\n\n", b.o.conns, len(sizes))
	how := "with `no_media` (messages only: the server opens no PeerConnection for them)"
	if !b.o.messagesOnly {
		how = "with media permissions and without `no_media`, so the server opens a PeerConnection (and offers) for each, which these clients never answer"
	}
	fmt.Fprintf(stdout, "Participants join %s. Each room's host (a specialist) joins first and admits the others from the lobby as they arrive; 32 rooms join at a time. Then for %s every participant sends one message every %s (the host a viewport of a few hundred bytes, the others a chat line), each stamped with its send time; latency is to each other participant's read.\n\n",
		how, b.o.duration, b.o.interval)
	fmt.Fprintln(stdout, "| what | count | p50 ms | p99 ms | errors | target |")
	fmt.Fprintln(stdout, "| --- | ---: | ---: | ---: | --- | --- |")
	fmt.Fprintf(stdout, "| join route (`POST /api/v1/sessions/{id}/join`) | %d | %s | %s | %s | |\n", ticketLat.ok, ms(ticketLat.percentile(50)), ms(ticketLat.percentile(99)), ticketLat.errorText())
	fmt.Fprintf(stdout, "| join: join message → welcome (guests: through the host's admit) | %d | %s | %s | %s | p99 ≤ 100 |\n", joinLat.ok, ms(joinLat.percentile(50)), ms(joinLat.percentile(99)), joinLat.errorText())
	fmt.Fprintf(stdout, "| room relay: send → each other participant's read | %d | %s | %s | %d send errors, %d connections closed | p99 ≤ 100 |\n\n", rl.ok, ms(rl.percentile(50)), ms(rl.percentile(99)), errs.Load(), closedEarly)
	fmt.Fprintf(stdout, "- all joined in %.1f s; %d messages sent in %.1f s (%.0f/s in, %.0f relayed reads/s)\n", connected.Seconds(), sent.Load(), elapsed.Seconds(),
		float64(sent.Load())/elapsed.Seconds(), float64(rl.ok)/elapsed.Seconds())
	fmt.Fprintf(stdout, "- server memory per connection (joined, idle, 10 s after the last join; the server's /proc RSS and its /metrics): **%.1f KiB RSS**, of which Go heap in use %.1f KiB (live data and garbage not yet collected) and goroutine stacks %.1f KiB; %.1f goroutines (target ≤ 64 KiB)\n",
		float64(rss1-rss0)/n/1024, (heap1-heap0)/n/1024, (stack1-stackBefore)/n/1024, (gor1-gor0)/n)
	fmt.Fprintf(stdout, "- server CPU during the traffic: %.2f cores (%.1f µs per message in)\n\n", cpu.Seconds()/elapsed.Seconds(),
		float64(cpu.Microseconds())/max(1, float64(sent.Load())))
	return nil
}

func jsonUnmarshal(b []byte, v any) error { return jsonDecode(b, v) }

// syncWriter serialises writes from several goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
