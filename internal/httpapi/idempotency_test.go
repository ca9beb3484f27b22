package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"duikou/internal/auth"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
)

// Only a successful answer meant for replay is kept under its key: a
// refused request and one whose answer carries a secret leave nothing, and
// the next try with the key runs afresh. A kept answer is replayed to the
// same request and refused (422) to another.
func TestIdempotentKeepsOnlyAnswersMeantForReplay(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		a := New(Config{SpoolDir: t.TempDir()}, Deps{Log: slog.New(slog.DiscardHandler),
			Idempotency: store.NewIdempotencyKeys(db, 0), Tx: db})
		runs, status, secret := 0, 0, false
		h := a.idempotent(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			runs++
			if secret {
				notForReplay(r.Context())
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"run":%d}`, runs)
		}))
		principal := auth.Principal{UserID: "0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0a01"}

		for _, step := range []struct {
			name         string
			key, body    string
			status       int  // what the handler answers, if it runs
			secret       bool // the handler marks its answer notForReplay
			wantCode     int
			wantBody     string
			wantReplayed bool
		}{
			{"a refused request", "k1", "a", http.StatusConflict, false, http.StatusConflict, `{"run":1}`, false},
			{"its retry runs afresh", "k1", "a", http.StatusCreated, false, http.StatusCreated, `{"run":2}`, false},
			{"the next retry gets the kept answer", "k1", "a", http.StatusCreated, false, http.StatusCreated, `{"run":2}`, true},
			{"another request with the key", "k1", "b", http.StatusCreated, false, http.StatusUnprocessableEntity, "", false},
			{"an answer with a secret", "k2", "a", http.StatusCreated, true, http.StatusCreated, `{"run":3}`, false},
			{"its retry runs afresh", "k2", "a", http.StatusCreated, true, http.StatusCreated, `{"run":4}`, false},
		} {
			status, secret = step.status, step.secret
			req := httptest.NewRequestWithContext(auth.WithPrincipal(context.Background(), principal),
				http.MethodPost, "/api/v1/things", strings.NewReader(step.body))
			req.Header.Set(IdempotencyHeader, step.key)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			replayed := rec.Header().Get("Idempotent-Replayed") == "true"
			if rec.Code != step.wantCode || (step.wantBody != "" && rec.Body.String() != step.wantBody) || replayed != step.wantReplayed {
				t.Errorf("%s: %d %s (replayed %t), want %d %s (replayed %t)", step.name,
					rec.Code, rec.Body, replayed, step.wantCode, step.wantBody, step.wantReplayed)
			}
		}
		var kept int
		if err := db.QueryRow(context.Background(), `SELECT count(*) FROM idempotency_keys`).Scan(&kept); err != nil || kept != 1 {
			t.Errorf("%d keys kept (%v), want 1", kept, err)
		}
	})
}
