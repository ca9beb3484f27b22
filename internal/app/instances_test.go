package app

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"duikou/internal/config"
	"duikou/internal/kv/kvtest"
	"duikou/internal/secret"
	"duikou/internal/sqldb/sqldbtest"
)

// TestTwoInstancesShareOnePostgreSQLAndOneRedis starts two instances on the
// same PostgreSQL database and Redis, as behind a load balancer: a session
// opened on one works on the other, data written through one is read
// through the other, and both loaded the demo without duplicating it.
func TestTwoInstancesShareOnePostgreSQLAndOneRedis(t *testing.T) {
	dbURL := sqldbtest.PostgresURL(t)
	redisURL := os.Getenv("DUIKOU_TEST_REDIS_URL")
	if redisURL == "" {
		kvtest.ForTest(t) // fails when services are required, else skips below
		t.Skip("no Redis server: set DUIKOU_TEST_REDIS_URL")
	}
	key := secret.EncodeKey(secret.NewKey())
	ctx := context.Background()
	start := func(name string) http.Handler {
		a, err := New(ctx, config.Config{DatabaseURL: dbURL, RedisURL: redisURL, RedisPrefix: "two-" + t.Name(),
			DataKey: key, DataDir: t.TempDir(), Demo: true,
			// Sessions stay cached far longer than the test runs, so a
			// logout elsewhere can only be seen through the notice.
			SessionCache: time.Hour}, slog.New(slog.DiscardHandler).With("instance", name))
		if err != nil {
			t.Fatalf("instance %s: %v", name, err)
		}
		t.Cleanup(a.Close)
		return a.Handler()
	}
	one, two := start("one"), start("two")

	call := func(h http.Handler, method, path, token string, body any) (int, map[string]any) {
		var buf bytes.Buffer
		if body != nil {
			json.NewEncoder(&buf).Encode(body)
		}
		r := httptest.NewRequest(method, path, &buf)
		r.Header.Set("Content-Type", "application/json")
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var out map[string]any
		json.Unmarshal(w.Body.Bytes(), &out)
		return w.Code, out
	}

	code, login := call(one, "POST", "/api/v1/auth/login", "", map[string]string{"username": "linxi.doctor", "password": "duikou-demo-2026"})
	if code != http.StatusOK {
		t.Fatalf("login on instance one: %d %v", code, login)
	}
	token := login["token"].(string)
	if code, _ := call(two, "GET", "/api/v1/auth/me", token, nil); code != http.StatusOK {
		t.Fatalf("the session from instance one on instance two: %d", code)
	}
	code, pt := call(two, "POST", "/api/v1/patients", token, map[string]any{"name": "双实例", "sex": "female", "birth_date": "1970-01-01"})
	if code != http.StatusCreated {
		t.Fatalf("create patient on instance two: %d %v", code, pt)
	}
	if code, got := call(one, "GET", "/api/v1/patients/"+pt["id"].(string), token, nil); code != http.StatusOK || got["name"] != "双实例" {
		t.Fatalf("read it through instance one: %d %v", code, got)
	}
	code, list := call(one, "GET", "/api/v1/hospitals?limit=200", token, nil)
	if code != http.StatusOK {
		t.Fatalf("hospitals: %d", code)
	}
	if n := len(list["items"].([]any)); n != 4 { // 临溪 sees itself, its two tertiary partners and its township centre
		t.Fatalf("demo loaded by both instances: 临溪 sees %d hospitals, want 4", n)
	}
	if code, _ := call(one, "GET", "/api/v1/auth/me", token, nil); code != http.StatusOK { // cached on one
		t.Fatalf("me on instance one: %d", code)
	}
	if code, _ := call(two, "POST", "/api/v1/auth/logout", token, nil); code != http.StatusNoContent {
		t.Fatalf("logout on instance two: %d", code)
	}
	// Instance one drops its cached session when the notice from two
	// arrives over Redis (milliseconds); the bound only keeps a broken
	// notice from hanging the test.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := call(one, "GET", "/api/v1/auth/me", token, nil)
		if code == http.StatusUnauthorized {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after logout on two, instance one must refuse the token: %d", code)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
