package consults_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"duikou/consult"
	"duikou/internal/consults"
	"duikou/internal/referrals"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/internal/testclock"
)

// The escalation webhook delivers session escalations beside the
// referrals': signed, with the session event's name, once.
func TestEscalationWebhookDeliversSessionEscalations(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		s := w.request(t, consult.Emergency)
		var mu sync.Mutex
		var bodies []string
		var headers []http.Header
		srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			defer mu.Unlock()
			bodies, headers = append(bodies, string(b)), append(headers, r.Header.Clone())
		}))
		defer srv.Close()
		c := testclock.New(w.now.Add(time.Hour))
		if n, err := w.watcher(c, consults.WatcherOptions{Webhook: true}).Tick(ctx); err != nil || n != 1 {
			t.Fatalf("raised %d (%v)", n, err)
		}
		hook := referrals.NewWebhook(store.NewReferrals(db), srv.URL, referrals.WebhookOptions{Secret: "s3cret", Now: c.Now,
			Topics: []string{referrals.TopicEscalationWebhook, consults.TopicEscalationWebhook}})
		for round, want := range []int{1, 0} {
			if n, err := hook.Deliver(ctx); err != nil || n != want {
				t.Fatalf("round %d delivered %d (%v), want %d", round, n, err, want)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if len(bodies) != 1 {
			t.Fatalf("%d calls, want 1", len(bodies))
		}
		var e consults.Escalated
		if err := json.Unmarshal([]byte(bodies[0]), &e); err != nil || e.SessionID != s.ID || e.HospitalID != w.tertiary ||
			e.Kind != consult.RespondBreach || !e.Due.Equal(*s.RespondBy) {
			t.Fatalf("body %s (%v)", bodies[0], err)
		}
		h := headers[0]
		if h.Get(referrals.WebhookEventHeader) != consults.TopicEscalated || h.Get(referrals.WebhookDeliveryHeader) != e.ID ||
			h.Get(referrals.WebhookSignatureHeader) != referrals.Sign("s3cret", []byte(bodies[0])) {
			t.Errorf("headers %v", h)
		}
		if n := scalar(t, db, `SELECT COUNT(*) FROM outbox WHERE topic = $1 AND published_at IS NULL`, consults.TopicEscalationWebhook); n != 0 {
			t.Errorf("%d webhook rows left", n)
		}
	})
}
