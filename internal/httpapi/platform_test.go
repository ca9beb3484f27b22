package httpapi

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func platformAPI(ready ...ReadyCheck) http.Handler {
	return New(Config{}, Deps{Log: slog.New(slog.DiscardHandler), Ready: ready}).Handler()
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHealthAndReadiness(t *testing.T) {
	ok := ReadyCheck{Name: "database", Check: func(context.Context) error { return nil }}
	down := ReadyCheck{Name: "redis", Check: func(context.Context) error { return errors.New("connection refused") }}

	if w := serve(platformAPI(down), httptest.NewRequest("GET", "/healthz", nil)); w.Code != http.StatusOK {
		t.Errorf("/healthz answers whether the process lives, whatever its dependencies: %d", w.Code)
	}
	if w := serve(platformAPI(ok), httptest.NewRequest("GET", "/readyz", nil)); w.Code != http.StatusOK {
		t.Errorf("/readyz with every dependency up: %d", w.Code)
	}
	w := serve(platformAPI(ok, down), httptest.NewRequest("GET", "/readyz", nil))
	var body struct {
		Checks map[string]string `json:"checks"`
	}
	json.Unmarshal(w.Body.Bytes(), &body)
	if w.Code != http.StatusServiceUnavailable || body.Checks["redis"] != "unavailable" || body.Checks["database"] != "ok" {
		t.Errorf("/readyz with Redis down: %d %s", w.Code, w.Body)
	}
	if strings.Contains(w.Body.String(), "connection refused") {
		t.Errorf("/readyz must not expose error details: %s", w.Body)
	}
}

func TestMetricsCountRequestsByRoute(t *testing.T) {
	h := platformAPI()
	serve(h, httptest.NewRequest("GET", "/healthz", nil))
	w := serve(h, httptest.NewRequest("GET", "/metrics", nil))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `duikou_http_requests_total{method="GET",route="/healthz",status="200"} 1`) {
		t.Errorf("/metrics: %d\n%s", w.Code, w.Body)
	}
}

func TestHSTSOnlyOverTLS(t *testing.T) {
	h := platformAPI()
	plain := serve(h, httptest.NewRequest("GET", "/healthz", nil))
	if plain.Header().Get("Strict-Transport-Security") != "" {
		t.Error("HSTS over plain HTTP is meaningless and must not be sent")
	}
	r := httptest.NewRequest("GET", "/healthz", nil)
	r.TLS = &tls.ConnectionState{}
	if got := serve(h, r).Header().Get("Strict-Transport-Security"); !strings.Contains(got, "max-age=") {
		t.Errorf("HSTS over TLS: %q", got)
	}
}

func TestRequestIDIsEchoedOrMade(t *testing.T) {
	h := platformAPI()
	r := httptest.NewRequest("GET", "/healthz", nil)
	r.Header.Set("X-Request-ID", "lb-0123456789")
	if got := serve(h, r).Header().Get("X-Request-ID"); got != "lb-0123456789" {
		t.Errorf("a well-formed caller id is kept: %q", got)
	}
	r = httptest.NewRequest("GET", "/healthz", nil)
	r.Header.Set("X-Request-ID", "<script>")
	if got := serve(h, r).Header().Get("X-Request-ID"); got == "<script>" || len(got) < 16 {
		t.Errorf("a malformed caller id is replaced: %q", got)
	}
}

func TestUnknownRoutesAndMethodsAreProblems(t *testing.T) {
	h := platformAPI()
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/api/v1/no-such-thing", http.StatusNotFound},
		{"DELETE", "/api/v1/openapi.json", http.StatusMethodNotAllowed},
	} {
		w := serve(h, httptest.NewRequest(c.method, c.path, nil))
		var p Problem
		if w.Code != c.want || w.Header().Get("Content-Type") != "application/problem+json" ||
			json.Unmarshal(w.Body.Bytes(), &p) != nil || p.Status != c.want || p.RequestID == "" {
			t.Errorf("%s %s: %d %q %s", c.method, c.path, w.Code, w.Header().Get("Content-Type"), w.Body)
		}
	}
}

func TestLoginFromAForeignOriginIsRefused(t *testing.T) {
	h := New(Config{AllowedOrigins: []string{"https://desk.example"}}, Deps{Log: slog.New(slog.DiscardHandler)}).Handler()
	for origin, want := range map[string]int{
		"https://evil.example": http.StatusForbidden,
		// Allowed origins and the server's own get past the check (and then
		// fail on the empty body, which shows they got that far).
		"https://desk.example": http.StatusBadRequest,
		"http://example.com":   http.StatusBadRequest,
	} {
		r := httptest.NewRequest("POST", "/api/v1/auth/login", strings.NewReader(""))
		r.Header.Set("Origin", origin)
		r.Header.Set("Content-Type", "application/json")
		if w := serve(h, r); w.Code != want {
			t.Errorf("login from %s: %d, want %d", origin, w.Code, want)
		}
	}
}
