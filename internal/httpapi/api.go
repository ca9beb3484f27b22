// Package httpapi is Duikou's HTTP API: the chi router under /api/v1, its
// conventions (JSON in and out, problem documents, cursor pages, ETag and
// If-Match, body limits, rate limits), authentication and the role gate.
// Handlers are thin: they decode, call a domain service with the caller's
// Principal, and encode. Rules live in the domain packages.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"duikou/attachment"
	"duikou/internal/audit"
)

// Config holds the transport settings.
type Config struct {
	// AllowedOrigins may send cookie-authenticated unsafe requests (besides
	// the server's own origin) and open WebSockets.
	AllowedOrigins []string
	// SecureCookies marks the session cookie Secure (HTTPS deployments).
	SecureCookies bool
	// TrustProxy takes the client address from X-Forwarded-For (behind a
	// load balancer that sets it).
	TrustProxy bool
	// MaxBodyBytes bounds request bodies; default 1 MiB.
	MaxBodyBytes int64
	// MaxUploadBytes bounds a file upload's body instead; default
	// attachment.MaxSize (50 MiB).
	MaxUploadBytes int64
	// RequestsPerMinute bounds each caller (user, or address when anonymous).
	RequestsPerMinute int
	// StreamHeartbeat is the interval of the comment lines that keep an idle
	// event stream open through proxies; default 15 s.
	StreamHeartbeat time.Duration
	// MaxStreamsPerUser bounds the event streams one user holds open on one
	// instance; default 8.
	MaxStreamsPerUser int
	// StreamMaxAge ends an event stream after this long (the client
	// reconnects), so that a logout, a revoked session, a disabled account or
	// a changed role ends what the stream shows within it; default 5 min.
	StreamMaxAge time.Duration
	// UploadsPerMinute bounds each user's file uploads on top; default 30.
	UploadsPerMinute int
	// SpoolDir holds request bodies too large to keep in memory while an
	// idempotent POST runs (uploads); default the system's temporary
	// directory. Files there are unlinked as soon as they are created.
	SpoolDir string
}

// ReadyCheck is one dependency /readyz probes.
type ReadyCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// RateLimiter is shared by every instance (Redis).
type RateLimiter interface {
	Allow(ctx context.Context, key string, limit int, window time.Duration) (bool, time.Duration, error)
}

// Deps are the services the API serves. Each handler file declares the
// interface it needs next to the handlers that use it.
type Deps struct {
	Log       *slog.Logger
	Metrics   *prometheus.Registry
	Ready     []ReadyCheck
	Limiter   RateLimiter
	Audit     audit.Recorder
	Auth      AuthService
	Directory DirectoryService
	Patients  PatientService
	AuditLog  AuditLogService
	Referrals ReferralService
	Queues    QueueService
	BedPools  BedPoolService
	Slips     SlipService
	// QueueStream, ReferralStream and SessionStream feed the live event
	// streams.
	QueueStream    QueueStream
	ReferralStream ReferralStream
	SessionStream  SessionStream
	// Stopping ends when the instance begins a graceful stop: long-lived
	// responses (event streams) close on it instead of holding the stop open.
	Stopping context.Context
	// Attachments stores and serves uploaded files.
	Attachments AttachmentService
	// ReferralStats computes referral statistics.
	ReferralStats ReferralStatsService
	Sessions      SessionService
	// SessionRooms lets participants into remote sessions' live rooms;
	// SessionSocket is the rooms' WebSocket endpoint (the signalling server).
	SessionRooms  SessionJoiner
	SessionSocket http.Handler
	// Program keeps the paired-support program's records.
	Program ProgramService
	// ProgramReports computes the program's reports and exports them.
	ProgramReports ProgramReportService
	// Idempotency and Tx make creating POSTs safe to retry.
	Idempotency IdempotencyStore
	Tx          TxRunner
	// ICD10 is the diagnosis code list the referral form searches.
	ICD10 CodeList
	// Web serves the browser UI for every path outside the API.
	Web http.Handler
}

// API is the HTTP layer.
type API struct {
	Deps
	cfg     Config
	log     *slog.Logger
	metrics *httpMetrics
	streams streamSlots
}

// New builds the API.
func New(cfg Config, d Deps) *API {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.RequestsPerMinute <= 0 {
		cfg.RequestsPerMinute = 1200
	}
	if cfg.StreamHeartbeat <= 0 {
		cfg.StreamHeartbeat = defaultStreamHeartbeat
	}
	if cfg.StreamMaxAge <= 0 {
		cfg.StreamMaxAge = defaultStreamMaxAge
	}
	if cfg.MaxStreamsPerUser <= 0 {
		cfg.MaxStreamsPerUser = defaultMaxStreamsPerUser
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = attachment.MaxSize
	}
	if cfg.UploadsPerMinute <= 0 {
		cfg.UploadsPerMinute = 30
	}
	if d.Metrics == nil {
		d.Metrics = prometheus.NewRegistry()
	}
	return &API{Deps: d, cfg: cfg, log: d.Log, metrics: newHTTPMetrics(d.Metrics)}
}

// Handler returns the whole HTTP surface.
func (a *API) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(a.withRequestID, a.recoverer, a.observe, a.securityHeaders)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, http.StatusNotFound, "no such resource")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, http.StatusMethodNotAllowed, "method not allowed here")
	})

	r.Get("/healthz", a.healthz)
	r.Get("/readyz", a.readyz)
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(a.Metrics, promhttp.HandlerOpts{}))

	// Before /api/v1 and beside it: see mountSessionSocket.
	a.mountSessionSocket(r)
	r.Route("/api/v1", func(r chi.Router) {
		r.Use(a.limitBody, a.identify, a.rateLimit)
		r.NotFound(func(w http.ResponseWriter, r *http.Request) {
			writeProblem(w, r, http.StatusNotFound, "no such resource")
		})
		r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
			writeProblem(w, r, http.StatusMethodNotAllowed, "method not allowed here")
		})
		// Public: the API description and logging in.
		r.Get("/openapi.json", a.openAPI)
		a.mountPublicAuth(r)
		// Everything else needs a session: denied by default.
		r.Group(func(r chi.Router) {
			r.Use(a.requireAuth, a.checkCSRF, a.idempotent)
			a.mountAuth(r)
			a.mountDirectory(r)
			a.mountPatients(r)
			a.mountAudit(r)
			a.mountReferrals(r)
			a.mountQueues(r)
			a.mountBedPools(r)
			a.mountStreams(r)
			a.mountSlips(r)
			a.mountAttachments(r)
			a.mountSessions(r)
			a.mountSessionJoin(r)
			a.mountProgram(r)
			a.mountICD10(r)
			a.mountProgramReports(r)
		})
	})
	// Pages residents read without logging in.
	r.Group(func(r chi.Router) {
		r.Use(a.limitBody, a.identify)
		a.mountPublicPages(r)
	})

	if a.Web != nil {
		r.Handle("/*", a.Web)
	}
	return r
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz reports whether the database and Redis answer, each within a second.
func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	status := http.StatusOK
	checks := map[string]string{}
	for _, c := range a.Ready {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		if err := c.Check(ctx); err != nil {
			status = http.StatusServiceUnavailable
			checks[c.Name] = "unavailable"
			a.log.WarnContext(r.Context(), "readiness check failed", "check", c.Name, "err", err)
		} else {
			checks[c.Name] = "ok"
		}
		cancel()
	}
	state := "ready"
	if status != http.StatusOK {
		state = "not ready"
	}
	writeJSON(w, status, map[string]any{"status": state, "checks": checks})
}
