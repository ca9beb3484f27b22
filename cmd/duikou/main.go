// Command duikou is the Duikou server: two-way referral, remote sessions and
// program records for paired hospitals. With no settings it runs complete on
// one machine (SQLite file and in-process Redis); given DATABASE_URL and
// REDIS_URL it joins the other instances sharing them.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"duikou/internal/app"
	"duikou/internal/config"
	"duikou/internal/demo"
	"duikou/internal/directory"
	"duikou/internal/logging"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is main with its surroundings passed in, so tests can drive it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "audit-verify":
			return auditVerify(ctx, args[1:], getenv, stdout, stderr)
		case "init-admin":
			return initAdmin(ctx, args[1:], getenv, stdout, stderr)
		}
	}
	cfg, err := config.Load(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "duikou:", err)
		fmt.Fprintln(stderr, "run 'duikou -h' for the settings")
		return 2
	}
	log := logging.New(stderr, cfg.LogLevel)

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	a, err := app.New(ctx, cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	defer a.Close()

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		log.Error("cannot listen", "addr", cfg.Listen, "err", err)
		return 1
	}
	url := publicURL(cfg, ln.Addr())
	log.Info("serving", "url", url, "addr", ln.Addr().String())
	fmt.Fprintf(stdout, "Duikou is serving at %s\n", url)
	if cfg.Demo {
		printDemoLogins(stdout, a.DemoLogins())
	}

	if err := a.Serve(ctx, ln); err != nil {
		log.Error("server failed", "err", err)
		return 1
	}
	log.Info("stopped cleanly")
	return 0
}

func publicURL(cfg config.Config, addr net.Addr) string {
	if cfg.PublicURL != "" {
		return cfg.PublicURL
	}
	scheme := "http"
	if cfg.TLS() {
		scheme = "https"
	}
	host, port, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

func printDemoLogins(w io.Writer, logins []demo.Login) {
	fmt.Fprintln(w, "\nDemo logins (fictional province; every password below is for the demo only):")
	fmt.Fprintf(w, "  %-22s %-18s %-34s %s\n", "USERNAME", "PASSWORD", "ROLES", "HOSPITAL")
	for _, l := range logins {
		fmt.Fprintf(w, "  %-22s %-18s %-34s %s\n", l.Username, l.Password, strings.Join(l.Roles, ","), l.Hospital)
	}
	fmt.Fprintln(w)
}

// auditVerify checks the audit log's hash chains and prints the report.
func auditVerify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(args, getenv)
	if err != nil {
		fmt.Fprintln(stderr, "duikou audit-verify:", err)
		return 2
	}
	log := logging.New(stderr, cfg.LogLevel)
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		log.Error("cannot open storage", "err", err)
		return 1
	}
	defer a.Close()
	report, err := a.VerifyAudit(ctx)
	if err != nil {
		log.Error("audit verification failed to run", "err", err)
		return 1
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.Encode(report)
	if !report.OK {
		return 1
	}
	return 0
}

// initAdmin creates the first administrator of a fresh installation and the
// organisation it belongs to. The account's details come from the
// environment so that the password never sits in the process list.
func initAdmin(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(args, getenv)
	if err != nil {
		fmt.Fprintln(stderr, "duikou init-admin:", err)
		return 2
	}
	need := map[string]string{}
	for _, k := range []string{"DUIKOU_ADMIN_USERNAME", "DUIKOU_ADMIN_PASSWORD", "DUIKOU_ORG_NAME", "DUIKOU_ORG_CODE", "DUIKOU_ORG_PROVINCE"} {
		if need[k] = strings.TrimSpace(getenv(k)); need[k] == "" {
			fmt.Fprintf(stderr, "duikou init-admin: set %s\n", k)
			return 2
		}
	}
	tier := getenv("DUIKOU_ORG_TIER")
	if tier == "" {
		tier = "authority"
	}
	log := logging.New(stderr, cfg.LogLevel)
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		log.Error("cannot open storage", "err", err)
		return 1
	}
	defer a.Close()
	created, err := a.InitAdmin(ctx, directory.HospitalInput{
		Name: need["DUIKOU_ORG_NAME"], OrgCode: need["DUIKOU_ORG_CODE"], Tier: tier, Province: need["DUIKOU_ORG_PROVINCE"],
	}, need["DUIKOU_ADMIN_USERNAME"], need["DUIKOU_ADMIN_USERNAME"], need["DUIKOU_ADMIN_PASSWORD"])
	if err != nil {
		fmt.Fprintln(stderr, "duikou init-admin:", err)
		return 1
	}
	if created {
		fmt.Fprintf(stdout, "administrator %s created\n", need["DUIKOU_ADMIN_USERNAME"])
	} else {
		fmt.Fprintln(stdout, "an administrator exists already; nothing changed")
	}
	return 0
}
