package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"duikou/internal/kv"
	"duikou/internal/sqldb/sqldbtest"
)

// The tool measures real servers only, and only on this machine.
func TestReferralRefusesEmbeddedAndRemoteServers(t *testing.T) {
	const pg, redis = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "redis://127.0.0.1:6379/0"
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no database", []string{"-redis-url", redis}, "-database-url is required"},
		{"no redis", []string{"-database-url", pg}, "-redis-url is required"},
		{"remote database", []string{"-database-url", "postgres://db.example.org/x", "-redis-url", redis}, "not on this machine"},
		{"private-range redis", []string{"-database-url", pg, "-redis-url", "redis://10.0.0.5:6379/0"}, "not on this machine"},
		{"unknown step", []string{"-database-url", pg, "-redis-url", redis, "-steps", "lifecycle,warp"}, `unknown step "warp"`},
		{"no clients", []string{"-database-url", pg, "-redis-url", redis, "-clients", "0"}, "-clients must be"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(context.Background(), append([]string{"referral"}, c.args...), &out, &errb); code != 2 {
				t.Fatalf("exit %d, want 2; stderr: %s", code, errb.String())
			}
			if !strings.Contains(errb.String(), c.want) {
				t.Fatalf("stderr %q does not say %q", errb.String(), c.want)
			}
		})
	}
}

// TestReferralSmoke runs every step of the tool in a tiny configuration so
// that it keeps working as the server changes. It checks that every ticket
// went through every step without an error and that the run left nothing
// behind; the figures themselves are not judged.
func TestReferralSmoke(t *testing.T) {
	dbURL, redisURL := os.Getenv("DUIKOU_TEST_DATABASE_URL"), os.Getenv("DUIKOU_TEST_REDIS_URL")
	if dbURL == "" || redisURL == "" {
		if sqldbtest.Required() {
			t.Fatal("DUIKOU_TEST_DATABASE_URL and DUIKOU_TEST_REDIS_URL must be set when DUIKOU_TEST_SERVICES=required")
		}
		t.Skip("needs real servers: set DUIKOU_TEST_DATABASE_URL and DUIKOU_TEST_REDIS_URL")
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"referral", "-database-url", dbURL, "-redis-url", redisURL,
		"-clients", "2", "-tickets", "20", "-waiting", "200", "-greens", "3"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	report := out.String()
	for _, row := range []string{"create draft", "submit: POST", "claim: POST", "accept: POST", "baseline: the same rows", "baseline, append-only", "baseline, 16 tickets per transaction",
		"calibration: single-row INSERT", "calibration: 4-row transaction"} {
		if !regexp.MustCompile(`\| ` + regexp.QuoteMeta(row) + `[^|]* \| 20 \| [^|]+ \|[^\n]*\| 0 \|\n`).MatchString(report) {
			t.Errorf("the lifecycle table has no error-free row %q for all 20 tickets", row)
		}
	}
	for _, want := range []string{
		"submits per second on the issue's machine**", // the submit rate scaled by the calibration
		"**3 of 3**",                  // every green ticket was the next one claimed
		"200 routine tickets waiting", // the background load reached the queue
		"(200 entries back)",          // the server rebuilt every entry
		"200 tickets queued",          // memory is measured over the loaded queue
		"- command: `go run ./cmd/duikou-bench referral -database-url", // the figures carry their command
	} {
		if !strings.Contains(report, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Fatalf("report:\n%s\nstderr:\n%s", report, errb.String())
	}

	// Nothing left behind: the run's database is dropped and its keys gone.
	m := regexp.MustCompile(`database (duikou_bench_[0-9a-f]+) and Redis prefix "(bench-[0-9a-f]+)"`).FindStringSubmatch(report)
	if m == nil {
		t.Fatalf("the report does not name its database and key prefix:\n%s", report)
	}
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, m[1]).Scan(&n); err != nil || n != 0 {
		t.Errorf("database %s still exists (%d, %v)", m[1], n, err)
	}
	conn, err := kv.Open(ctx, redisURL, m[2])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, pattern := range []string{m[2] + ":*", m[2] + "-rebuild:*"} {
		if keys, err := conn.Keys(ctx, pattern).Result(); err != nil || len(keys) != 0 {
			t.Errorf("keys %s left behind: %d (%v)", pattern, len(keys), err)
		}
	}
}
