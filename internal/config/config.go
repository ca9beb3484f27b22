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
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"duikou/consult"
	"duikou/internal/logging"
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
	{"escalation-webhook", "DUIKOU_ESCALATION_WEBHOOK", "", "http(s) URL that receives every escalation (POST, JSON, retried until 2xx)"},
	{"escalation-webhook-secret", "DUIKOU_ESCALATION_WEBHOOK_SECRET", "", "key of the webhook's X-Duikou-Signature header (sha256= HMAC-SHA256 of the body)"},
}

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
	}{{"demo", &c.Demo}, {"trust-proxy", &c.TrustProxy}} {
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
