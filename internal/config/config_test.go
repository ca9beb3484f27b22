package config

import (
	"log/slog"
	"strings"
	"testing"
	"time"
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
