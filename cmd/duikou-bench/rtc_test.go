package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"duikou/internal/sqldb/sqldbtest"
)

// TestMain lets the test binary stand in for the tool when the rtc
// subcommand re-executes itself as the server process.
func TestMain(m *testing.M) {
	if os.Getenv(serveEnv) != "" {
		os.Exit(serveMain())
	}
	os.Exit(m.Run())
}

func TestRTCRefusesWhatWouldNotStayOnThisMachine(t *testing.T) {
	const pg, redis = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "redis://127.0.0.1:6379/0"
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no database", []string{"-redis-url", redis}, "-database-url is required"},
		{"remote redis", []string{"-database-url", pg, "-redis-url", "redis://10.0.0.5:6379/0"}, "not on this machine"},
		{"media off loopback", []string{"-database-url", pg, "-redis-url", redis, "-ice-loopback=false"}, "keeps media on 127.0.0.1"},
		{"unknown scenario", []string{"-database-url", pg, "-redis-url", redis, "-scenarios", "signalling,warp"}, `unknown scenario "warp"`},
		{"bad subscriber count", []string{"-database-url", pg, "-redis-url", redis, "-subscribers", "25,x"}, "-subscribers"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(context.Background(), append([]string{"rtc"}, c.args...), &out, &errb); code != 2 {
				t.Fatalf("exit %d, want 2; stderr: %s", code, errb.String())
			}
			if !strings.Contains(errb.String(), c.want) {
				t.Fatalf("stderr %q does not say %q", errb.String(), c.want)
			}
		})
	}
}

func TestRoomsHoldTwoToFourParticipants(t *testing.T) {
	for n := 2; n <= 40; n++ {
		total := 0
		for _, s := range roomSizes(n) {
			if s < 2 || s > 4 {
				t.Fatalf("%d participants: a room of %d in %v", n, s, roomSizes(n))
			}
			total += s
		}
		if total != n {
			t.Fatalf("%d participants: rooms %v hold %d", n, roomSizes(n), total)
		}
	}
}

func TestRTPLossIsCountedFromSequenceGapsAcrossTheWrap(t *testing.T) {
	tr := &rtpTrack{maxSeq: -1}
	for _, s := range []uint16{65530, 65531, 65533, 65535, 0, 2, 1, 3} { // 65532, 65534 lost; 1 late
		tr.packet(s)
	}
	pk, max := tr.snapshot()
	if expect := max - 65530 + 1; pk != 8 || expect != 10 {
		t.Fatalf("%d packets over a range of %d, want 8 of 10", pk, expect)
	}
}

// TestRTCSmoke runs the three scenarios with tiny numbers against a real
// server process so that the tool keeps working as the server changes; the
// figures are not judged, only that every participant got in and received
// media.
func TestRTCSmoke(t *testing.T) {
	dbURL, redisURL := os.Getenv("DUIKOU_TEST_DATABASE_URL"), os.Getenv("DUIKOU_TEST_REDIS_URL")
	if dbURL == "" || redisURL == "" {
		if sqldbtest.Required() {
			t.Fatal("DUIKOU_TEST_DATABASE_URL and DUIKOU_TEST_REDIS_URL must be set when DUIKOU_TEST_SERVICES=required")
		}
		t.Skip("needs real servers: set DUIKOU_TEST_DATABASE_URL and DUIKOU_TEST_REDIS_URL")
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"rtc", "-database-url", dbURL, "-redis-url", redisURL,
		"-conns", "20", "-duration", "2s", "-interval", "200ms", "-media", "4", "-subscribers", "3", "-window", "2s"}, &out, &errb)
	report := out.String()
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, report, errb.String())
	}
	for _, re := range []string{
		`\| join: join message → welcome[^|]*\| 20 \|[^|]*\|[^|]*\| 0 \|`,                          // all 20 in, no error
		`\| room relay[^|]*\| [1-9][0-9]* \|[^|]*\|[^|]*\| 0 send errors, 0 connections closed \|`, // messages relayed
		`\| join message → first RTP packet \| 4 \|[^|]*\|[^|]*\| 0 \|`,                            // 4 media participants received RTP
		`\n\| 3 \| 3 \| `, // 3 viewers in and receiving
		"- command: `go run ./cmd/duikou-bench rtc -database-url",
	} {
		if !regexp.MustCompile(re).MatchString(report) {
			t.Errorf("the report does not match %s", re)
		}
	}
	if t.Failed() {
		t.Fatalf("report:\n%s\nstderr:\n%s", report, errb.String())
	}
}
