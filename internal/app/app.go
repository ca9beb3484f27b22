// Package app wires Duikou together from its configuration: storage,
// Redis, domain services and the HTTP API. main and the end-to-end tests
// both start the server through it, so they run the same code.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"duikou/internal/config"
	"duikou/internal/demo"
	"duikou/internal/httpapi"
	"duikou/internal/kv"
	"duikou/internal/sqldb"
	"duikou/signaling"
	"duikou/web"
)

// App is a running Duikou instance's parts.
type App struct {
	cfg     config.Config
	log     *slog.Logger
	DB      sqldb.DB
	KV      *kv.Conn
	handler http.Handler
	// stopping is cancelled when a graceful stop begins, so long-lived
	// connections (event streams, WebSockets) close instead of holding the
	// stop open until its deadline.
	stopping context.Context
	stop     context.CancelFunc
	closers  []func()

	svc        services
	demoLogins []demo.Login
	// signal is this instance's signalling server (remote sessions' rooms).
	signal *signaling.Server
}

// New opens storage and Redis, applies migrations and builds the services.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *App, err error) {
	a := &App{cfg: cfg, log: log}
	a.stopping, a.stop = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			a.Close()
		}
	}()

	if cfg.DatabaseURL != "" {
		a.DB, err = sqldb.OpenPostgres(ctx, cfg.DatabaseURL)
	} else {
		a.DB, err = sqldb.OpenSQLite(ctx, filepath.Join(cfg.DataDir, "duikou.db"))
	}
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.DB.Close)
	applied, err := sqldb.Migrate(ctx, a.DB)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	log.Info("database ready", "engine", a.DB.Dialect().String(), "migrations_applied", len(applied))

	a.KV, err = kv.Open(ctx, cfg.RedisURL, cfg.RedisPrefix)
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() { a.KV.Close() })
	log.Info("redis ready", "embedded", a.KV.Embedded)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "duikou_pubsub_channels",
			Help: "Redis pub/sub channels this instance is subscribed to, all on its one listening connection."},
			func() float64 { return float64(a.KV.ListenStats().Channels) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "duikou_pubsub_listeners",
			Help: "Listeners fed from those channels: open live screens, signals, the Redis-restart watch."},
			func() float64 { return float64(a.KV.ListenStats().Listeners) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "duikou_pubsub_dropped_total",
			Help: "Messages live listeners lost for falling more than kv.ListenBuffer behind."},
			func() float64 { return float64(a.KV.ListenStats().Dropped) }),
	)

	deps := httpapi.Deps{
		Log:     log,
		Metrics: reg,
		Limiter: kv.NewLimiter(a.KV),
		Ready: []httpapi.ReadyCheck{
			{Name: "database", Check: a.DB.Ping},
			{Name: "redis", Check: func(ctx context.Context) error { return a.KV.Ping(ctx).Err() }},
		},
		Web: web.Handler(),
	}
	if err := a.wire(ctx, &deps); err != nil {
		return nil, err
	}
	a.handler = httpapi.New(httpapi.Config{
		AllowedOrigins: cfg.AllowedOrigins,
		SecureCookies:  cfg.TLS() || strings.HasPrefix(cfg.PublicURL, "https://"),
		TrustProxy:     cfg.TrustProxy,
		// Large idempotent bodies (uploads) wait beside the blobs, on the
		// same disk, where stale temporary files are swept at start.
		SpoolDir: filepath.Join(a.blobDir(), "tmp"),
	}, deps).Handler()
	return a, nil
}

// Handler is the whole HTTP surface.
func (a *App) Handler() http.Handler { return a.handler }

// Serve answers on ln until ctx ends, then stops gracefully: it stops
// accepting, tells long-lived connections to close, and waits up to the
// shutdown timeout for in-flight requests.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(a.stop)
	errc := make(chan error, 1)
	go func() {
		if a.cfg.TLS() {
			errc <- srv.ServeTLS(ln, a.cfg.TLSCert, a.cfg.TLSKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.log.Info("stopping: draining in-flight requests", "timeout", a.cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		a.log.Warn("stop deadline passed; closing remaining connections")
		srv.Close()
		err = nil
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}

// Stopping is done once a graceful stop has begun.
func (a *App) Stopping() <-chan struct{} { return a.stopping.Done() }

// Close releases storage and Redis, in reverse order of opening.
func (a *App) Close() {
	a.stop()
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}
