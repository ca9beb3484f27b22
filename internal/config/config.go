// Package config reads Duikou's settings from flags, each with an
// environment-variable twin. A flag given on the command line wins over the
// environment, which wins over the default.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"duikou/consult"
	"duikou/internal/logging"
	"duikou/internal/program"
	"duikou/referral"
)

// Config is everything main needs to start the server.
type Config struct {
	Listen          string
	DatabaseURL     string // empty: SQLite file in DataDir
	RedisURL        string // empty: in-process Redis-compatible server
	RedisPrefix     string
	DataDir         string
	TLSCert         string
	TLSKey          string
	LogLevel        slog.Level
	Demo            bool
	DataKey         string // base64 32-byte key for national IDs and derived secrets
	PublicURL       string
	AllowedOrigins  []string
	TrustProxy      bool
	ShutdownTimeout time.Duration

	// ReferralDeadlines are the claim and decide limits per band;
	// ReferralAging lifts a waiting routine ticket to the urgent band of the
	// queue (0: never). Aging changes the order only, never the deadlines.
	ReferralDeadlines referral.Deadlines
	ReferralAging     time.Duration
	// SessionDeadlines are the times within which a remote-session request
	// must be answered, per urgency; a breach escalates like a referral's.
	SessionDeadlines consult.Deadlines
	// EscalationWebhook, when set, receives every escalation (POST, JSON),
	// signed with EscalationWebhookSecret when that is set.
	EscalationWebhook       string
	EscalationWebhookSecret string
	// OutboxRetention is how long a published outbox message (a relayed
	// change, a pushed escalation, a delivered webhook) is kept before the
	// purge deletes it; unpublished ones are never deleted.
	OutboxRetention time.Duration
	// SessionCache is how long an instance reuses a login session it read
	// (auth.Config.SessionCache); zero: auth.SessionCacheTTL. Set in code
	// only, by tests that must tell the cross-instance notice from the
	// cache's expiry.
	SessionCache time.Duration

	// Remote sessions' live rooms. InstanceURL is this instance's own
	// http(s) URL, where a WebSocket join of a room it hosts is redirected
	// when several instances run (default PublicURL).
	InstanceURL string
	// TURNListen is the built-in TURN server's address (UDP and TCP);
	// empty: none. TURNPublicIP is the address it announces relays on.
	TURNListen   string
	TURNPublicIP string
	// TURNExternal are an external TURN/STUN server's URLs, used instead
	// of the built-in one; TURNSecret is its shared secret.
	TURNExternal []string
	TURNSecret   string
	// MediaPublicIP is announced as the media relay's address when it sits
	// behind a 1:1 NAT; MediaPortMin/Max bound its UDP ports (0: any).
	MediaPublicIP              string
	MediaPortMin, MediaPortMax uint16
	// ICELoopback keeps media on 127.0.0.1 (tests).
	ICELoopback bool
	// Program is the paired-support program's terms: days to report for
	// duty, the day of the next month monthly evaluations are due, how far
	// ahead clinics are published, the evaluation criteria.
	Program program.Config
}

// TLS reports whether the server serves HTTPS itself.
func (c Config) TLS() bool { return c.TLSCert != "" }

type setting struct {
	flag, env, def, help string
}

var settings = []setting{
	{"listen", "DUIKOU_LISTEN", ":8080", "address to listen on"},
	{"database-url", "DATABASE_URL", "", "PostgreSQL URL; empty uses a SQLite file in the data directory"},
	{"redis-url", "REDIS_URL", "", "Redis URL; empty starts an in-process Redis-compatible server"},
	{"redis-prefix", "DUIKOU_REDIS_PREFIX", "duikou", "prefix of every Redis key (to share one Redis between deployments)"},
	{"data-dir", "DUIKOU_DATA_DIR", "./data", "directory for the SQLite file, the generated key and attachments"},
	{"tls-cert", "DUIKOU_TLS_CERT", "", "TLS certificate file (PEM); serves HTTPS with HSTS when given with -tls-key"},
	{"tls-key", "DUIKOU_TLS_KEY", "", "TLS private key file (PEM)"},
	{"log-level", "DUIKOU_LOG_LEVEL", "info", "debug, info, warn or error"},
	{"demo", "DUIKOU_DEMO", "false", "load the demo province and print its logins"},
	{"data-key", "DUIKOU_DATA_KEY", "", "base64 32-byte key encrypting national IDs; required with -database-url, generated in the data directory otherwise"},
	{"public-url", "DUIKOU_PUBLIC_URL", "", "URL users reach the server at (printed at start, used for cookies and origins)"},
	{"allowed-origins", "DUIKOU_ALLOWED_ORIGINS", "", "comma-separated extra origins allowed for browser requests and WebSockets"},
	{"trust-proxy", "DUIKOU_TRUST_PROXY", "false", "take client addresses from X-Forwarded-For (behind a load balancer)"},
	{"shutdown-timeout", "DUIKOU_SHUTDOWN_TIMEOUT", "20s", "how long a graceful stop waits for in-flight requests"},
	{"referral-deadlines", "DUIKOU_REFERRAL_DEADLINES", DefaultReferralDeadlines, "claim/decide limits per band (green, emergency, urgent, routine); bands left out keep their default"},
	{"referral-aging", "DUIKOU_REFERRAL_AGING", "12h", "a routine ticket waiting this long is served with the urgent ones (0 switches aging off); deadlines stay routine"},
	{"session-deadlines", "DUIKOU_SESSION_DEADLINES", DefaultSessionDeadlines, "time to answer (accept or decline) a remote-session request per urgency (emergency, urgent, routine); urgencies left out keep their default"},
	{"escalation-webhook", "DUIKOU_ESCALATION_WEBHOOK", "", "http(s) URL that receives every escalation (POST, JSON, retried with backoff until 2xx, given up after 20 attempts or a day)"},
	{"escalation-webhook-secret", "DUIKOU_ESCALATION_WEBHOOK_SECRET", "", "key of the webhook's X-Duikou-Signature header (sha256= HMAC-SHA256 of the body)"},
	{"outbox-retention", "DUIKOU_OUTBOX_RETENTION", "7d", "published outbox messages (relayed changes, escalations, delivered webhooks) are deleted after this long, at least 1h; unpublished ones never are"},
	{"instance-url", "DUIKOU_INSTANCE_URL", "", "this instance's own URL, reachable by browsers: joins of the session rooms it hosts are redirected there when several instances run (default the public URL)"},
	{"turn-listen", "DUIKOU_TURN_LISTEN", "", "address of the built-in TURN server, UDP and TCP, e.g. :3478 (empty: none; browsers reach the media relay directly)"},
	{"turn-public-ip", "DUIKOU_TURN_PUBLIC_IP", "", "public IP address the built-in TURN server announces relays on (required with -turn-listen unless it listens on one IP)"},
	{"turn-external-url", "DUIKOU_TURN_EXTERNAL_URL", "", "comma-separated turn:, turns:, stun: URLs of an external TURN/STUN server used instead of the built-in one"},
	{"turn-secret", "DUIKOU_TURN_SECRET", "", "the external TURN server's shared secret (coturn static-auth-secret), at least 16 characters"},
	{"media-public-ip", "DUIKOU_MEDIA_PUBLIC_IP", "", "public IP address announced for the media relay when it sits behind a 1:1 NAT"},
	{"media-udp-ports", "DUIKOU_MEDIA_UDP_PORTS", "", "UDP port range of the media relay, like 40000-40999 (empty: any)"},
	{"ice-loopback", "DUIKOU_ICE_LOOPBACK", "false", "media on 127.0.0.1 only (tests)"},
	{"program-arrival-days", "DUIKOU_PROGRAM_ARRIVAL_DAYS", "7", "a dispatched doctor's arrival is due this many days after the posting starts (0–60)"},
	{"program-evaluation-due-day", "DUIKOU_PROGRAM_EVALUATION_DUE_DAY", "10", "a month's evaluation of a dispatched doctor is due by this day of the next month (1–28)"},
	{"program-schedule-lead-days", "DUIKOU_PROGRAM_SCHEDULE_LEAD_DAYS", "7", "dispatched doctors' clinics are published at least this many days ahead (0–60)"},
	{"program-evaluation-criteria", "DUIKOU_PROGRAM_EVALUATION_CRITERIA", DefaultProgramCriteria, "monthly evaluation criteria as code:label:maximum, comma-separated"},
}

// MinOutboxRetention is the shortest outbox retention accepted: published
// messages are kept at least that long for whoever looks into a delivery.
const MinOutboxRetention = time.Hour

// DefaultProgramCriteria is program.DefaultConfig's criteria in the
// setting's form.
const DefaultProgramCriteria = "discipline:劳动纪律:20,ethics:医德医风:20,clinical:医疗工作:30,teaching:带教培训:30"

// DefaultReferralDeadlines is referral.DefaultDeadlines in the setting's
// form.
const DefaultReferralDeadlines = "green=5m/10m,emergency=15m/30m,urgent=1h/4h,routine=24h/72h"

// DefaultSessionDeadlines is consult.DefaultDeadlines in the setting's
// form.
const DefaultSessionDeadlines = "emergency=30m,urgent=4h,routine=48h"

// Usage writes the settings table (for -h and the README).
func Usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: duikou [flags]\n\nEvery flag has an environment variable twin; a flag wins over its variable.")
	for _, s := range settings {
		def := ""
		if s.def != "" {
			def = " (default " + s.def + ")"
		}
		fmt.Fprintf(w, "  -%-26s %-33s %s%s\n", s.flag, s.env, s.help, def)
	}
}

// Load parses args over the environment getenv.
func Load(args []string, getenv func(string) string) (Config, error) {
	fs := flag.NewFlagSet("duikou", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	vals := map[string]*string{}
	for _, s := range settings {
		v := s.def
		if e := getenv(s.env); e != "" {
			v = e
		}
		sv := &stringValue{s: v, isBool: s.def == "false"}
		vals[s.flag] = &sv.s
		fs.Var(sv, s.flag, s.help)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			Usage(os.Stdout)
		}
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	get := func(name string) string { return strings.TrimSpace(*vals[name]) }
	c := Config{
		Listen: get("listen"), DatabaseURL: get("database-url"), RedisURL: get("redis-url"),
		RedisPrefix: get("redis-prefix"), DataDir: get("data-dir"),
		TLSCert: get("tls-cert"), TLSKey: get("tls-key"), DataKey: get("data-key"),
		PublicURL: strings.TrimRight(get("public-url"), "/"),
	}
	var errs []error
	var ok bool
	if c.LogLevel, ok = logging.ParseLevel(get("log-level")); !ok {
		errs = append(errs, fmt.Errorf("-log-level: %q is not debug, info, warn or error", get("log-level")))
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{{"demo", &c.Demo}, {"trust-proxy", &c.TrustProxy}, {"ice-loopback", &c.ICELoopback}} {
		v, err := strconv.ParseBool(get(b.name))
		if err != nil {
			errs = append(errs, fmt.Errorf("-%s: %q is not true or false", b.name, get(b.name)))
		}
		*b.dst = v
	}
	d, err := time.ParseDuration(get("shutdown-timeout"))
	if err != nil || d <= 0 {
		errs = append(errs, fmt.Errorf("-shutdown-timeout: %q is not a positive duration", get("shutdown-timeout")))
	}
	c.ShutdownTimeout = d
	for _, o := range strings.Split(get("allowed-origins"), ",") {
		if o = strings.TrimRight(strings.TrimSpace(o), "/"); o != "" {
			c.AllowedOrigins = append(c.AllowedOrigins, o)
		}
	}
	if c.ReferralDeadlines, err = ParseDeadlines(get("referral-deadlines")); err != nil {
		errs = append(errs, fmt.Errorf("-referral-deadlines: %w", err))
	}
	if aging := get("referral-aging"); aging != "0" && aging != "0s" {
		if c.ReferralAging, err = parseLimit(aging); err != nil {
			errs = append(errs, fmt.Errorf("-referral-aging: %q is not 0 (off) or a positive duration like 12h or 2d", aging))
		}
	}
	if c.SessionDeadlines, err = ParseSessionDeadlines(get("session-deadlines")); err != nil {
		errs = append(errs, fmt.Errorf("-session-deadlines: %w", err))
	}
	c.EscalationWebhook, c.EscalationWebhookSecret = get("escalation-webhook"), get("escalation-webhook-secret")
	if c.EscalationWebhook != "" {
		u, err := url.Parse(c.EscalationWebhook)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, errors.New("-escalation-webhook: must be an absolute http or https URL"))
		}
	} else if c.EscalationWebhookSecret != "" {
		errs = append(errs, errors.New("-escalation-webhook-secret goes with -escalation-webhook"))
	}
	if c.OutboxRetention, err = parseLimit(get("outbox-retention")); err != nil || c.OutboxRetention < MinOutboxRetention {
		errs = append(errs, fmt.Errorf("-outbox-retention: %q is not a duration of at least 1h, like 7d", get("outbox-retention")))
	}
	errs = append(errs, c.loadMedia(get)...)
	if c.Program, err = parseProgram(get); err != nil {
		errs = append(errs, err)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("-tls-cert and -tls-key go together"))
	}
	if c.Listen == "" {
		errs = append(errs, errors.New("-listen must not be empty"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("-data-dir must not be empty"))
	}
	if c.DatabaseURL != "" && c.DataKey == "" {
		// Several instances share one PostgreSQL: they must share the key too,
		// so it cannot be generated locally.
		errs = append(errs, errors.New("-data-key (DUIKOU_DATA_KEY) is required with -database-url"))
	}
	return c, errors.Join(errs...)
}

// stringValue holds a setting as text until validation; boolean settings
// also accept the bare form (-demo).
type stringValue struct {
	s      string
	isBool bool
}

func (v *stringValue) String() string     { return v.s }
func (v *stringValue) Set(s string) error { v.s = s; return nil }
func (v *stringValue) IsBoolFlag() bool   { return v.isBool }

// ParseDeadlines reads the referral deadline setting: comma-separated
// band=claim/decide pairs, like "green=5m/10m,routine=1d/3d". Durations are
// Go durations or whole days ("3d"). A band left out keeps its default; the
// result must pass referral.Deadlines.Validate (positive limits, claim no
// later than decide, no band due sooner than a more urgent one).
func ParseDeadlines(s string) (referral.Deadlines, error) {
	d := referral.DefaultDeadlines()
	bands := map[string]*referral.Limits{"green": &d.Green, "emergency": &d.Emergency, "urgent": &d.Urgent, "routine": &d.Routine}
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, limits, ok := strings.Cut(part, "=")
		name = strings.ToLower(strings.TrimSpace(name))
		l, known := bands[name]
		switch {
		case !ok:
			return d, fmt.Errorf("%q is not band=claim/decide", part)
		case !known:
			return d, fmt.Errorf("unknown band %q (green, emergency, urgent, routine)", name)
		case seen[name]:
			return d, fmt.Errorf("band %s given twice", name)
		}
		seen[name] = true
		claim, decide, ok := strings.Cut(limits, "/")
		if !ok {
			return d, fmt.Errorf("%s: %q is not claim/decide, like 5m/10m", name, limits)
		}
		var err error
		if l.Claim, err = parseLimit(claim); err != nil {
			return d, fmt.Errorf("%s claim: %w", name, err)
		}
		if l.Decide, err = parseLimit(decide); err != nil {
			return d, fmt.Errorf("%s decide: %w", name, err)
		}
	}
	return d, d.Validate()
}

// ParseSessionDeadlines reads the session deadline setting: comma-separated
// urgency=limit pairs, like "emergency=30m,urgent=4h,routine=2d". Durations
// are Go durations or whole days. An urgency left out keeps its default; the
// result must pass consult.Deadlines.Validate (positive limits, no urgency
// given less time than a more urgent one).
func ParseSessionDeadlines(s string) (consult.Deadlines, error) {
	d := consult.DefaultDeadlines()
	limits := map[string]*time.Duration{"emergency": &d.Emergency, "urgent": &d.Urgent, "routine": &d.Routine}
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, limit, ok := strings.Cut(part, "=")
		name = strings.ToLower(strings.TrimSpace(name))
		l, known := limits[name]
		switch {
		case !ok:
			return d, fmt.Errorf("%q is not urgency=limit, like urgent=4h", part)
		case !known:
			return d, fmt.Errorf("unknown urgency %q (emergency, urgent, routine)", name)
		case seen[name]:
			return d, fmt.Errorf("urgency %s given twice", name)
		}
		seen[name] = true
		var err error
		if *l, err = parseLimit(limit); err != nil {
			return d, fmt.Errorf("%s: %w", name, err)
		}
	}
	return d, d.Validate()
}

// parseLimit reads a positive duration: a Go duration or whole days ("3d").
func parseLimit(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var d time.Duration
	var err error
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		days, err = strconv.Atoi(n)
		d = time.Duration(days) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration like 10m, 4h or 3d", s)
	}
	return d, nil
}

// loadMedia reads the remote-session settings: the instance URL, TURN
// (built in, external, or none) and the media relay's address and ports.
func (c *Config) loadMedia(get func(string) string) []error {
	var errs []error
	c.InstanceURL = strings.TrimRight(get("instance-url"), "/")
	if c.InstanceURL != "" {
		u, err := url.Parse(c.InstanceURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" {
			errs = append(errs, errors.New("-instance-url: must be an http or https URL without a path, like https://node1.example.org"))
		}
	}
	c.TURNListen, c.TURNPublicIP, c.TURNSecret = get("turn-listen"), get("turn-public-ip"), get("turn-secret")
	for _, u := range strings.Split(get("turn-external-url"), ",") {
		if u = strings.TrimSpace(u); u != "" {
			c.TURNExternal = append(c.TURNExternal, u)
		}
	}
	if c.TURNListen != "" {
		host, _, err := net.SplitHostPort(c.TURNListen)
		if err != nil {
			errs = append(errs, fmt.Errorf("-turn-listen: %q is not host:port, like :3478", c.TURNListen))
		}
		if ip := net.ParseIP(host); c.TURNPublicIP == "" && ip != nil && !ip.IsUnspecified() {
			c.TURNPublicIP = host
		}
		if net.ParseIP(c.TURNPublicIP) == nil {
			errs = append(errs, errors.New("-turn-public-ip: the built-in TURN server needs the IP address clients reach it at"))
		}
		if len(c.TURNExternal) > 0 {
			errs = append(errs, errors.New("-turn-listen and -turn-external-url exclude each other: one TURN server"))
		}
		if c.TURNSecret != "" {
			errs = append(errs, errors.New("-turn-secret is for an external TURN server; the built-in one derives its secret from the data key"))
		}
	} else if c.TURNPublicIP != "" {
		errs = append(errs, errors.New("-turn-public-ip goes with -turn-listen"))
	}
	needSecret := false
	for _, u := range c.TURNExternal {
		scheme, _, _ := strings.Cut(u, ":")
		switch scheme {
		case "turn", "turns":
			needSecret = true
		case "stun", "stuns":
		default:
			errs = append(errs, fmt.Errorf("-turn-external-url: %q is not a turn:, turns: or stun: URL", u))
		}
	}
	switch {
	case needSecret && len(c.TURNSecret) < 16:
		errs = append(errs, errors.New("-turn-secret: an external TURN server needs its shared secret, at least 16 characters"))
	case !needSecret && c.TURNSecret != "" && c.TURNListen == "":
		errs = append(errs, errors.New("-turn-secret goes with a turn: URL in -turn-external-url"))
	}
	c.MediaPublicIP = get("media-public-ip")
	if c.MediaPublicIP != "" && net.ParseIP(c.MediaPublicIP) == nil {
		errs = append(errs, fmt.Errorf("-media-public-ip: %q is not an IP address", c.MediaPublicIP))
	}
	if ports := get("media-udp-ports"); ports != "" {
		lo, hi, ok := strings.Cut(ports, "-")
		a, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
		b, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
		if !ok || err1 != nil || err2 != nil || a == 0 || a > b {
			errs = append(errs, fmt.Errorf("-media-udp-ports: %q is not a range like 40000-40999", ports))
		} else {
			c.MediaPortMin, c.MediaPortMax = uint16(a), uint16(b)
		}
	}
	return errs
}

// parseProgram reads the program's terms.
func parseProgram(get func(string) string) (program.Config, error) {
	var c program.Config
	var errs []error
	for _, n := range []struct {
		name string
		dst  *int
	}{{"program-arrival-days", &c.ArrivalDays}, {"program-evaluation-due-day", &c.EvaluationDueDay}, {"program-schedule-lead-days", &c.ScheduleLeadDays}} {
		v, err := strconv.Atoi(get(n.name))
		if err != nil {
			errs = append(errs, fmt.Errorf("-%s: %q is not a whole number", n.name, get(n.name)))
		}
		*n.dst = v
	}
	for _, item := range strings.Split(get("program-evaluation-criteria"), ",") {
		parts := strings.Split(strings.TrimSpace(item), ":")
		max, err := 0, error(nil)
		if len(parts) == 3 {
			max, err = strconv.Atoi(parts[2])
		}
		if len(parts) != 3 || err != nil || parts[0] == "" || parts[1] == "" {
			errs = append(errs, fmt.Errorf("-program-evaluation-criteria: %q is not code:label:maximum", item))
			continue
		}
		c.Criteria = append(c.Criteria, program.Criterion{Code: parts[0], Label: parts[1], Max: max})
	}
	if len(errs) == 0 {
		if err := c.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return c, errors.Join(errs...)
}
