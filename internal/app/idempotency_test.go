package app

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"

	"duikou/internal/config"
	"duikou/internal/secret"
	"duikou/internal/sqldb/sqldbtest"
)

// idempotencyApps gives a demo instance on each engine.
func idempotencyApps(t *testing.T) map[string]*App {
	t.Helper()
	ctx := context.Background()
	out := map[string]*App{}
	lite, err := New(ctx, config.Config{DataDir: t.TempDir(), Demo: true, RedisPrefix: "idem"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lite.Close)
	out["sqlite"] = lite
	pg, err := New(ctx, config.Config{DatabaseURL: sqldbtest.PostgresURL(t), RedisURL: os.Getenv("DUIKOU_TEST_REDIS_URL"),
		RedisPrefix: "idem-" + t.Name(), DataKey: secret.EncodeKey(secret.NewKey()), DataDir: t.TempDir(), Demo: true},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	out["postgres"] = pg
	return out
}

func TestCreatingPOSTsAreSafeToRetry(t *testing.T) {
	for engine, a := range idempotencyApps(t) {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			h := a.Handler()
			token := func(user string) string {
				res, err := a.svc.auth.Login(ctx, user, "duikou-demo-2026", "127.0.0.1", "test")
				if err != nil {
					t.Fatal(err)
				}
				return res.Token
			}
			doctor, other := token("linxi.doctor"), token("shimen.doctor")
			post := func(tok, key string, body any) *httptest.ResponseRecorder {
				b, _ := json.Marshal(body)
				r := httptest.NewRequest("POST", "/api/v1/patients", bytes.NewReader(b))
				r.Header.Set("Content-Type", "application/json")
				r.Header.Set("Authorization", "Bearer "+tok)
				if key != "" {
					r.Header.Set("Idempotency-Key", key)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w
			}
			count := func() int {
				var n int
				if err := a.DB.QueryRow(ctx, `SELECT count(*) FROM patients`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			patient := map[string]string{"name": "重试患者", "sex": "male", "birth_date": "1958-03-02"}
			before := count()

			first := post(doctor, "key-1", patient)
			again := post(doctor, "key-1", patient)
			if first.Code != http.StatusCreated || again.Code != http.StatusCreated {
				t.Fatalf("statuses %d, %d", first.Code, again.Code)
			}
			if again.Body.String() != first.Body.String() || again.Header().Get("Idempotent-Replayed") != "true" ||
				again.Header().Get("ETag") != first.Header().Get("ETag") {
				t.Fatalf("the retry must get the first answer:\n%s\n%s", first.Body, again.Body)
			}
			if n := count(); n != before+1 {
				t.Fatalf("%d patients created by a request and its retry, want 1", n-before)
			}

			changed := map[string]string{"name": "另一位", "sex": "female", "birth_date": "1960-01-01"}
			if w := post(doctor, "key-1", changed); w.Code != http.StatusUnprocessableEntity {
				t.Fatalf("same key, other body: %d %s", w.Code, w.Body)
			}
			if w := post(other, "key-1", patient); w.Code != http.StatusCreated || w.Header().Get("Idempotent-Replayed") != "" {
				t.Fatalf("keys belong to their user: another user's key-1 is new: %d", w.Code)
			}

			// A refused request is not kept: corrected, the same key works.
			if w := post(doctor, "key-2", map[string]string{"name": "缺性别"}); w.Code != http.StatusBadRequest {
				t.Fatalf("invalid body: %d", w.Code)
			}
			if w := post(doctor, "key-2", patient); w.Code != http.StatusCreated || w.Header().Get("Idempotent-Replayed") != "" {
				t.Fatalf("corrected request with the key of a refused one: %d %s", w.Code, w.Body)
			}

			// Concurrent retries: one change, one answer for all.
			mid := count()
			var wg sync.WaitGroup
			bodies := make([]string, 8)
			codes := make([]int, 8)
			for i := range bodies {
				wg.Add(1)
				go func() {
					defer wg.Done()
					w := post(doctor, "key-3", patient)
					codes[i], bodies[i] = w.Code, w.Body.String()
				}()
			}
			wg.Wait()
			for i := range bodies {
				if codes[i] != http.StatusCreated || bodies[i] != bodies[0] {
					t.Fatalf("concurrent retry %d: %d %s (first: %s)", i, codes[i], bodies[i], bodies[0])
				}
			}
			if n := count(); n != mid+1 {
				t.Fatalf("%d patients from 8 concurrent retries, want 1", n-mid)
			}

			// A refusal inside an idempotent POST keeps its audit record.
			far := post(token("yunling.doctor"), "", patient)
			var farPatient struct{ ID string }
			json.Unmarshal(far.Body.Bytes(), &farPatient)
			b, _ := json.Marshal(map[string]string{"consenter_kind": "patient", "consenter_name": "x", "purpose": "referral"})
			r := httptest.NewRequest("POST", "/api/v1/patients/"+farPatient.ID+"/consents", bytes.NewReader(b))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Authorization", "Bearer "+doctor)
			r.Header.Set("Idempotency-Key", "key-4")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			var denied int
			a.DB.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'access.denied' AND patient_id = $1`, farPatient.ID).Scan(&denied)
			if w.Code != http.StatusNotFound || denied != 1 {
				t.Fatalf("consent on an unrelated hospital's patient with a key: %d, %d access.denied rows (want 404, 1)", w.Code, denied)
			}

			if w := post(doctor, string([]byte{'k', 0x01}), patient); w.Code != http.StatusBadRequest {
				t.Fatalf("a key with control characters: %d", w.Code)
			}
		})
	}
}
