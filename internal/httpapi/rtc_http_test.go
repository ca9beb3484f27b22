package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"duikou/internal/auth"
)

// countingAuth fails the test's expectations if the socket route consults
// the session: it is authorised by the join token alone.
type countingAuth struct {
	openAPIOpsAuth
	calls *int
}

func (c countingAuth) Authenticate(ctx context.Context, token string) (auth.Principal, error) {
	*c.calls++
	return c.openAPIOpsAuth.Authenticate(ctx, token)
}

type denyAll struct{}

func (denyAll) Allow(context.Context, string, int, time.Duration) (bool, time.Duration, error) {
	return false, time.Minute, nil
}

func TestSessionSocketBypassesTheAPIsSessionAndRateLimitButAnswersPlainGETs(t *testing.T) {
	var reached, authCalls int
	socket := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached++
		w.WriteHeader(http.StatusTeapot)
	})
	limiter := denyAll{}
	h := New(Config{}, Deps{Log: slog.New(slog.DiscardHandler), Auth: countingAuth{calls: &authCalls}, Limiter: limiter, SessionSocket: socket}).Handler()

	get := func(upgrade bool) int {
		r := httptest.NewRequest(http.MethodGet, "/api/v1/sessions/0190a0b0-0000-7000-8000-000000000001/ws", nil)
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: "specialist"})
		if upgrade {
			r.Header.Set("Connection", "keep-alive, Upgrade")
			r.Header.Set("Upgrade", "websocket")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if code := get(false); code != http.StatusUpgradeRequired || reached != 0 {
		t.Fatalf("plain GET: %d (socket reached %d times), want 426", code, reached)
	}
	if code := get(true); code != http.StatusTeapot || reached != 1 {
		t.Fatalf("upgrade: %d (socket reached %d times), want the signalling server's answer", code, reached)
	}
	if authCalls != 0 {
		t.Fatalf("the socket route looked the session cookie up %d times", authCalls)
	}
	// The rest of the API is still rate limited (the limiter refuses all).
	r := httptest.NewRequest(http.MethodGet, "/api/v1/sessions/0190a0b0-0000-7000-8000-000000000001", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("a neighbouring path: %d, want 429 from the API's rate limit", w.Code)
	}
}
