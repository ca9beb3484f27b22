// Command duikou-bench measures Duikou end to end against real PostgreSQL
// and Redis servers: it starts the server in this process on a fresh
// database and a private Redis key prefix, drives it over HTTP as clients
// would, and prints the figures with the command line and the machine, ready
// for BENCHMARKS.md.
//
// Each subcommand is one file: referral.go is `duikou-bench referral`.
// Everything it sends goes to 127.0.0.1, and every loop is bounded in count
// and in time. For example:
//
//	go run ./cmd/duikou-bench referral \
//		-database-url 'postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable' \
//		-redis-url redis://127.0.0.1:6379/0 -tickets 10000 -duration 3m
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// subcommand runs one benchmark with its own flags and returns the exit code.
type subcommand struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func subcommands() []subcommand {
	return []subcommand{
		{"rtc", "signalling (5,000 WebSockets), media join and teaching-round fan-out against a server in its own process", runRTC},
		{"referral", "referral lifecycle over HTTP against a plain-pgx baseline, green-channel pre-emption, queue rebuild, Redis memory", runReferral},
	}
}

func main() {
	if os.Getenv(serveEnv) != "" {
		os.Exit(serveMain())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := subcommands()
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	if len(args) > 0 {
		for _, c := range cmds {
			if c.name == args[0] {
				return c.run(ctx, args[1:], stdout, stderr)
			}
		}
	}
	var b strings.Builder
	b.WriteString("usage: duikou-bench SUBCOMMAND [flags]   (SUBCOMMAND -h lists its flags)\n\nsubcommands:\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(stderr, b.String())
	return 2
}
