package config

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"duikou/consult"
	"duikou/referral"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsAreTheEmbeddedServer(t *testing.T) {
	c, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":8080" || c.DatabaseURL != "" || c.RedisURL != "" || c.DataDir != "./data" ||
		c.LogLevel != slog.LevelInfo || c.Demo || c.ShutdownTimeout != 20*time.Second || c.TLS() {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestFlagWinsOverEnvironment(t *testing.T) {
	c, err := Load([]string{"-listen", "127.0.0.1:9000", "-demo"}, env(map[string]string{
		"DUIKOU_LISTEN": ":7000", "DUIKOU_LOG_LEVEL": "debug", "DUIKOU_ALLOWED_ORIGINS": "https://a.example/, https://b.example",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9000" || !c.Demo || c.LogLevel != slog.LevelDebug ||
		strings.Join(c.AllowedOrigins, " ") != "https://a.example https://b.example" {
		t.Fatalf("got %+v", c)
	}
}

func TestBadSettingsAreNamed(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-log-level", "loud"}, nil, "-log-level"},
		{[]string{"-demo=maybe"}, nil, "-demo"},
		{[]string{"-shutdown-timeout", "0s"}, nil, "-shutdown-timeout"},
		{[]string{"-tls-cert", "c.pem"}, nil, "-tls-key"},
		{nil, map[string]string{"DATABASE_URL": "postgres://x/y"}, "-data-key"},
		{[]string{"extra"}, nil, "unexpected argument"},
	}
	for _, tc := range cases {
		_, err := Load(tc.args, env(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%v, %v) = %v; want an error naming %s", tc.args, tc.env, err, tc.want)
		}
	}
}

func TestReferralDeadlinesDefaultToTheProgramsLimits(t *testing.T) {
	c, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.ReferralDeadlines != referral.DefaultDeadlines() || c.ReferralAging != 12*time.Hour ||
		c.EscalationWebhook != "" || c.EscalationWebhookSecret != "" {
		t.Fatalf("defaults: %+v aging %v webhook %q", c.ReferralDeadlines, c.ReferralAging, c.EscalationWebhook)
	}
}

func TestParseDeadlines(t *testing.T) {
	def := referral.DefaultDeadlines()
	with := func(f func(d *referral.Deadlines)) referral.Deadlines { d := def; f(&d); return d }
	cases := []struct {
		name, in string
		want     referral.Deadlines
		err      string // part of the error; "" for none
	}{
		{"the documented default", DefaultReferralDeadlines, def, ""},
		{"empty keeps every default", "", def, ""},
		{"one band, the others default", "green=3m/8m", with(func(d *referral.Deadlines) {
			d.Green = referral.Limits{Claim: 3 * time.Minute, Decide: 8 * time.Minute}
		}), ""},
		{"days, spaces and capitals", " Routine = 2d/5d , urgent=30m/2h", with(func(d *referral.Deadlines) {
			d.Routine = referral.Limits{Claim: 48 * time.Hour, Decide: 120 * time.Hour}
			d.Urgent = referral.Limits{Claim: 30 * time.Minute, Decide: 2 * time.Hour}
		}), ""},
		{"unknown band", "purple=1m/2m", def, `unknown band "purple"`},
		{"no limits", "green", def, "is not band=claim/decide"},
		{"one limit only", "green=5m", def, "is not claim/decide"},
		{"not a duration", "green=five/10m", def, "green claim"},
		{"zero", "green=0s/10m", def, "green claim"},
		{"negative", "green=5m/-10m", def, "green decide"},
		{"a band twice", "green=5m/10m,green=4m/9m", def, "given twice"},
		{"claim after decide", "green=10m/5m", def, "must not exceed the decide limit"},
		{"a band due sooner than a more urgent one", "emergency=4m/30m", def, "emergency must not be due sooner than green"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseDeadlines(c.in)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("ParseDeadlines(%q) = %v; want an error with %q", c.in, err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("ParseDeadlines(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
			}
		})
	}
}

func TestEscalationSettings(t *testing.T) {
	c, err := Load([]string{"-referral-aging", "0", "-referral-deadlines", "green=4m/9m"}, env(map[string]string{
		"DUIKOU_ESCALATION_WEBHOOK": "https://pager.example/hook", "DUIKOU_ESCALATION_WEBHOOK_SECRET": "s3cret",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.ReferralAging != 0 || c.ReferralDeadlines.Green.Claim != 4*time.Minute ||
		c.EscalationWebhook != "https://pager.example/hook" || c.EscalationWebhookSecret != "s3cret" {
		t.Fatalf("got %+v", c)
	}
	bad := []struct {
		args []string
		want string
	}{
		{[]string{"-referral-deadlines", "green=5m"}, "-referral-deadlines"},
		{[]string{"-referral-aging", "-1h"}, "-referral-aging"},
		{[]string{"-referral-aging", "soon"}, "-referral-aging"},
		{[]string{"-escalation-webhook", "pager.example/hook"}, "-escalation-webhook"},
		{[]string{"-escalation-webhook", "ftp://pager.example/hook"}, "-escalation-webhook"},
		{[]string{"-escalation-webhook-secret", "s3cret"}, "goes with -escalation-webhook"},
	}
	for _, b := range bad {
		if _, err := Load(b.args, env(nil)); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("Load(%v) = %v; want an error naming %s", b.args, err, b.want)
		}
	}
}

func TestOutboxRetention(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		want time.Duration
		err  bool
	}{
		{nil, nil, 7 * 24 * time.Hour, false},
		{[]string{"-outbox-retention", "30d"}, nil, 30 * 24 * time.Hour, false},
		{nil, map[string]string{"DUIKOU_OUTBOX_RETENTION": "36h"}, 36 * time.Hour, false},
		{[]string{"-outbox-retention", "1h"}, map[string]string{"DUIKOU_OUTBOX_RETENTION": "2d"}, time.Hour, false},
		{[]string{"-outbox-retention", "59m"}, nil, 0, true},
		{[]string{"-outbox-retention", "0"}, nil, 0, true},
		{[]string{"-outbox-retention", "-7d"}, nil, 0, true},
		{[]string{"-outbox-retention", "a week"}, nil, 0, true},
	}
	for _, tc := range cases {
		c, err := Load(tc.args, env(tc.env))
		if tc.err {
			if err == nil || !strings.Contains(err.Error(), "-outbox-retention") {
				t.Errorf("Load(%v, %v) = %v; want an error naming -outbox-retention", tc.args, tc.env, err)
			}
			continue
		}
		if err != nil || c.OutboxRetention != tc.want {
			t.Errorf("Load(%v, %v): retention %v (%v), want %v", tc.args, tc.env, c.OutboxRetention, err, tc.want)
		}
	}
}

func TestMediaSettings(t *testing.T) {
	c, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	// The embedded default needs no open port or root: no TURN server, media
	// on whatever UDP port the system gives.
	if c.TURNListen != "" || len(c.TURNExternal) != 0 || c.ICELoopback || c.InstanceURL != "" || c.MediaPortMin != 0 {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = Load([]string{"-turn-listen", "203.0.113.9:3478", "-media-udp-ports", "40000-40999", "-instance-url", "https://node1.example/"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.TURNPublicIP != "203.0.113.9" || c.MediaPortMin != 40000 || c.MediaPortMax != 40999 || c.InstanceURL != "https://node1.example" {
		t.Fatalf("got %+v", c)
	}
	c, err = Load(nil, env(map[string]string{"DUIKOU_TURN_EXTERNAL_URL": "stun:turn.example:3478, turn:turn.example:3478?transport=tcp",
		"DUIKOU_TURN_SECRET": "0123456789abcdef", "DUIKOU_ICE_LOOPBACK": "true"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.TURNExternal) != 2 || c.TURNSecret != "0123456789abcdef" || !c.ICELoopback {
		t.Fatalf("got %+v", c)
	}
	bad := []struct {
		args []string
		want string
	}{
		{[]string{"-turn-listen", ":3478"}, "-turn-public-ip"},
		{[]string{"-turn-listen", "3478", "-turn-public-ip", "203.0.113.9"}, "-turn-listen"},
		{[]string{"-turn-public-ip", "203.0.113.9"}, "goes with -turn-listen"},
		{[]string{"-turn-listen", ":3478", "-turn-public-ip", "203.0.113.9", "-turn-external-url", "stun:x.example"}, "exclude each other"},
		{[]string{"-turn-listen", ":3478", "-turn-public-ip", "203.0.113.9", "-turn-secret", "0123456789abcdef"}, "derives its secret"},
		{[]string{"-turn-external-url", "turn:x.example"}, "-turn-secret"},
		{[]string{"-turn-external-url", "turn:x.example", "-turn-secret", "short"}, "-turn-secret"},
		{[]string{"-turn-external-url", "http://x.example"}, "-turn-external-url"},
		{[]string{"-turn-secret", "0123456789abcdef"}, "goes with a turn: URL"},
		{[]string{"-media-public-ip", "example.org"}, "-media-public-ip"},
		{[]string{"-media-udp-ports", "41000-40000"}, "-media-udp-ports"},
		{[]string{"-instance-url", "node1.example"}, "-instance-url"},
		{[]string{"-ice-loopback=perhaps"}, "-ice-loopback"},
	}
	for _, b := range bad {
		if _, err := Load(b.args, env(nil)); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("Load(%v) = %v; want an error naming %s", b.args, err, b.want)
		}
	}
}

func TestParseSessionDeadlines(t *testing.T) {
	def := consult.DefaultDeadlines()
	with := func(f func(d *consult.Deadlines)) consult.Deadlines { d := def; f(&d); return d }
	cases := []struct {
		name, in string
		want     consult.Deadlines
		err      string // part of the error; "" for none
	}{
		{"the documented default is the program's", DefaultSessionDeadlines, def, ""},
		{"empty keeps every default", "", def, ""},
		{"one urgency, the others default", "emergency=20m", with(func(d *consult.Deadlines) { d.Emergency = 20 * time.Minute }), ""},
		{"days, spaces and capitals", " Routine = 3d , URGENT=2h", with(func(d *consult.Deadlines) {
			d.Routine, d.Urgent = 72*time.Hour, 2*time.Hour
		}), ""},
		{"unknown urgency", "critical=5m", def, `unknown urgency "critical"`},
		{"no limit", "urgent", def, "is not urgency=limit"},
		{"not a duration", "urgent=soon", def, "urgent:"},
		{"zero", "emergency=0s", def, "emergency:"},
		{"negative", "routine=-1h", def, "routine:"},
		{"an urgency twice", "urgent=1h,urgent=2h", def, "given twice"},
		{"urgent due sooner than emergency", "emergency=1h,urgent=30m", def, "urgent must not be due sooner than emergency"},
		{"routine due sooner than urgent", "routine=1h", def, "routine must not be due sooner than urgent"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseSessionDeadlines(c.in)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("ParseSessionDeadlines(%q) = %v; want an error with %q", c.in, err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("ParseSessionDeadlines(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
			}
		})
	}
}

// The setting has its environment twin, a flag wins over it, and a bad
// value stops the start with the flag's name.
func TestSessionDeadlineSetting(t *testing.T) {
	c, err := Load(nil, env(nil))
	if err != nil || c.SessionDeadlines != consult.DefaultDeadlines() {
		t.Fatalf("default: %+v, %v", c.SessionDeadlines, err)
	}
	c, err = Load(nil, env(map[string]string{"DUIKOU_SESSION_DEADLINES": "emergency=15m"}))
	if err != nil || c.SessionDeadlines.Emergency != 15*time.Minute {
		t.Fatalf("from the environment: %+v, %v", c.SessionDeadlines, err)
	}
	c, err = Load([]string{"-session-deadlines", "emergency=10m"}, env(map[string]string{"DUIKOU_SESSION_DEADLINES": "emergency=15m"}))
	if err != nil || c.SessionDeadlines.Emergency != 10*time.Minute {
		t.Fatalf("flag over environment: %+v, %v", c.SessionDeadlines, err)
	}
	if _, err := Load([]string{"-session-deadlines", "urgent=1m"}, env(nil)); err == nil || !strings.Contains(err.Error(), "-session-deadlines") {
		t.Fatalf("bad value: %v", err)
	}
}
