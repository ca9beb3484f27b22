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
	"os"
	"strconv"
	"strings"
	"time"

	"duikou/internal/logging"
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
}

// Usage writes the settings table (for -h and the README).
func Usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: duikou [flags]\n\nEvery flag has an environment variable twin; a flag wins over its variable.")
	for _, s := range settings {
		def := ""
		if s.def != "" {
			def = " (default " + s.def + ")"
		}
		fmt.Fprintf(w, "  -%-18s %-24s %s%s\n", s.flag, s.env, s.help, def)
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
