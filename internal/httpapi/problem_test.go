package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"

	"duikou/internal/apperr"
	"duikou/internal/sqldb"
)

// A database or Redis that cannot be reached, or a transaction the database
// gave up (deadlock, serialization), is the server's passing trouble, not a
// fault of the request nor a bug: 503 with Retry-After, so
// clients (and the browser's live streams) come back shortly; anything
// unknown stays a 500.
func TestUnreachableServicesAnswer503(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &net.AddrError{Err: syscall.ECONNREFUSED.Error(), Addr: "127.0.0.1:6379"}}
	for name, c := range map[string]struct {
		err        error
		status     int
		retryAfter string
	}{
		"redis or postgres refused the connection": {fmt.Errorf("queue subscribe: %w", refused), http.StatusServiceUnavailable, "5"},
		"a service said it is unavailable":         {fmt.Errorf("listen: %w", apperr.ErrUnavailable), http.StatusServiceUnavailable, "5"},
		"the database gave up a deadlocked change": {fmt.Errorf("act: %w: deadlock detected", sqldb.ErrSerialization), http.StatusServiceUnavailable, "5"},
		"an unknown failure":                       {errors.New("boom"), http.StatusInternalServerError, ""},
	} {
		t.Run(name, func(t *testing.T) {
			a := &API{log: slog.New(slog.DiscardHandler)}
			w := httptest.NewRecorder()
			a.writeError(w, httptest.NewRequest("GET", "/api/v1/referral-queues/h/stream", nil), c.err)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d", w.Code, c.status)
			}
			if got := w.Header().Get("Retry-After"); got != c.retryAfter {
				t.Fatalf("Retry-After %q, want %q", got, c.retryAfter)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type %q", ct)
			}
			var p map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p["status"] != float64(c.status) {
				t.Fatalf("problem %s (%v)", w.Body.String(), err)
			}
		})
	}
}
