package httpapi

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
)

const (
	// SessionCookie carries the opaque session token for browsers.
	SessionCookie = "duikou_session"
	// CSRFHeader must echo the session's CSRF token on unsafe cookie requests.
	CSRFHeader = "X-CSRF-Token"
)

type ctxKey int

const (
	keyRequestID ctxKey = iota
	keyViaCookie
)

func requestID(ctx context.Context) string {
	s, _ := ctx.Value(keyRequestID).(string)
	return s
}

var goodRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{8,64}$`)

// withRequestID gives every request an id (the caller's, if well formed),
// echoes it, and puts it with the client address into the audit source.
func (a *API) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-ID")
		if !goodRequestID.MatchString(id) {
			b := make([]byte, 12)
			rand.Read(b)
			id = hex.EncodeToString(b)
		}
		w.Header().Set("X-Request-ID", id)
		ctx := context.WithValue(r.Context(), keyRequestID, id)
		ctx = audit.WithSource(ctx, audit.Source{RequestID: id, ClientAddr: a.clientAddr(r)})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (a *API) clientAddr(r *http.Request) string {
	if a.cfg.TrustProxy {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			parts := strings.Split(xff, ",")
			if ip := net.ParseIP(strings.TrimSpace(parts[len(parts)-1])); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (a *API) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.log.ErrorContext(r.Context(), "panic serving request", "panic", fmt.Sprint(v),
					"request_id", requestID(r.Context()), "stack", string(debug.Stack()))
				writeProblem(w, r, http.StatusInternalServerError, "internal error; quote the request id when reporting it")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and Hijack (SSE, WebSocket).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Hijack hands the connection to a WebSocket library that asks for an
// http.Hijacker itself (gorilla/websocket); the access log shows 101.
func (s *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(s.ResponseWriter).Hijack()
	if err == nil && s.status == 0 {
		s.status = http.StatusSwitchingProtocols
	}
	return c, rw, err
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg *prometheus.Registry) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duikou_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "duikou_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method", "route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// observe logs one line per request and counts it. It logs the path, never
// the query string or headers, which may carry personal data or secrets.
func (a *API) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		route := "unmatched"
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			route = rc.RoutePattern()
		}
		elapsed := time.Since(start)
		a.metrics.requests.WithLabelValues(r.Method, route, strconv.Itoa(sw.status)).Inc()
		a.metrics.duration.WithLabelValues(r.Method, route).Observe(elapsed.Seconds())
		p := auth.FromContext(r.Context())
		a.log.LogAttrs(r.Context(), levelFor(sw.status), "request",
			slog.String("request_id", requestID(r.Context())),
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("route", route),
			slog.Int("status", sw.status), slog.Int64("bytes", sw.bytes),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
			slog.String("user_id", p.UserID), slog.String("client", a.clientAddr(r)))
	})
}

func (a *API) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody bounds the request body before anything reads it: a declared
// length over the limit is refused at once, and reading past it fails (413).
func (a *API) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := a.bodyLimit(r)
		if r.ContentLength > limit {
			writeProblem(w, r, http.StatusRequestEntityTooLarge, "the request body is larger than the limit for this endpoint")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}

// bodyLimit is the common limit, except for file uploads. The upload route
// is matched by its path here, before routing, because a route's own
// middleware could only narrow a limit already wrapped around the body,
// never widen it. A path that only looks like it (other spellings) gets the
// common limit and is not routed to the upload anyway.
func (a *API) bodyLimit(r *http.Request) int64 {
	if r.Method == http.MethodPost && r.URL.Path == uploadPath && r.URL.RawPath == "" {
		return a.cfg.MaxUploadBytes
	}
	return a.cfg.MaxBodyBytes
}

// sessionToken returns the token and whether it came from the cookie.
func sessionToken(r *http.Request) (token string, viaCookie bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok), false
		}
		return "", false
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		return c.Value, true
	}
	return "", false
}

// identify resolves the session, if any, into the request's Principal. It
// never refuses: requireAuth does, for the routes that need a caller.
func (a *API) identify(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, viaCookie := sessionToken(r)
		if tok != "" {
			p, err := a.Auth.Authenticate(r.Context(), tok)
			if err == nil {
				ctx := auth.WithPrincipal(r.Context(), p)
				ctx = context.WithValue(ctx, keyViaCookie, viaCookie)
				r = r.WithContext(ctx)
			} else if !isAuthError(err) {
				a.writeError(w, r, err)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func isAuthError(err error) bool {
	return err == nil || errors.Is(err, apperr.ErrUnauthenticated) || errors.Is(err, apperr.ErrNotFound)
}

func (a *API) requireAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !auth.FromContext(r.Context()).Authenticated() {
			w.Header().Set("WWW-Authenticate", `Bearer realm="duikou"`)
			writeProblem(w, r, http.StatusUnauthorized, "log in first: the session is missing, expired or revoked")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func isUnsafe(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// checkCSRF protects cookie sessions: an unsafe request must echo the
// session's CSRF token and, when the browser says where it comes from, come
// from an allowed origin. Bearer tokens are not sent by browsers on their own
// and need neither.
func (a *API) checkCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		viaCookie, _ := r.Context().Value(keyViaCookie).(bool)
		if viaCookie && isUnsafe(r.Method) {
			p := auth.FromContext(r.Context())
			want := a.Auth.CSRFToken(p.SessionID)
			got := r.Header.Get(CSRFHeader)
			if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 || !a.originAllowed(r) {
				a.auditDenied(r, p, "csrf check failed")
				writeProblem(w, r, http.StatusForbidden, "missing or wrong "+CSRFHeader+" header (or foreign Origin) on a cookie-authenticated request")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// originAllowed accepts a request with no Origin (not a cross-site browser
// request), the server's own origin, or a configured one.
func (a *API) originAllowed(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return slices.Contains(a.cfg.AllowedOrigins, strings.TrimRight(o, "/"))
}

// rateLimit bounds each caller's request rate across all instances.
func (a *API) rateLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.Limiter != nil {
			key := "api:ip:" + a.clientAddr(r)
			if p := auth.FromContext(r.Context()); p.Authenticated() {
				key = "api:user:" + p.UserID
			}
			ok, retry, err := a.Limiter.Allow(r.Context(), key, a.cfg.RequestsPerMinute, time.Minute)
			if err != nil {
				a.log.WarnContext(r.Context(), "rate limiter unavailable", "err", err)
			}
			if !ok {
				w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds())+1))
				writeProblem(w, r, http.StatusTooManyRequests, "too many requests; slow down")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// allow is the role gate: the caller must hold one of the roles.
func (a *API) allow(roles ...auth.Role) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !auth.FromContext(r.Context()).Has(roles...) {
				a.writeError(w, r, apperr.ErrForbidden)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// auditDenied records a refused access. A failure to audit is logged, never
// turned into a different answer to the caller.
func (a *API) auditDenied(r *http.Request, p auth.Principal, reason string) {
	if a.Audit == nil {
		return
	}
	route := r.URL.Path
	if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
		route = rc.RoutePattern()
	}
	err := a.Audit.Record(r.Context(), audit.Entry{
		ActorID: p.UserID, ActorHospitalID: p.HospitalID, Action: audit.AccessDenied,
		ResourceType: "route", ResourceID: r.Method + " " + route, Outcome: audit.Denied, Detail: reason,
	})
	if err != nil {
		a.log.ErrorContext(r.Context(), "audit write failed", "err", err)
	}
}

func levelFor(status int) slog.Level {
	if status >= 500 {
		return slog.LevelError
	}
	return slog.LevelInfo
}
