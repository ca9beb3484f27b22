package referrals_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"duikou/internal/kv/kvtest"
	"duikou/internal/referrals"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/referral"
)

// hookCall is one request the test receiver got.
type hookCall struct {
	body                       string
	signature, delivery, event string
}

// receiver answers each request with the next status of answers (200 once
// they run out) and records it.
type receiver struct {
	mu      sync.Mutex
	answers []int
	calls   []hookCall
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.calls = append(rc.calls, hookCall{body: string(b), signature: r.Header.Get(referrals.WebhookSignatureHeader),
		delivery: r.Header.Get(referrals.WebhookDeliveryHeader), event: r.Header.Get(referrals.WebhookEventHeader)})
	status := http.StatusOK
	if len(rc.answers) > 0 {
		status, rc.answers = rc.answers[0], rc.answers[1:]
	}
	w.WriteHeader(status)
}

func (rc *receiver) got() []hookCall {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hookCall(nil), rc.calls...)
}

func TestWebhookReceivesEachEscalationRetryingAfterAFailure(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		w := newRefWorld(t, db, nil)
		in := w.input(w.patient)
		in.Priority, in.GreenChannel, in.GreenCategory = referral.Emergency, true, referral.ChestPain
		r := w.act(t, w.doctor, w.draft(t, in), referral.Submit, referral.ActionInput{})

		rc := &receiver{answers: []int{http.StatusInternalServerError}}
		srv := httptest.NewServer(rc)
		defer srv.Close()
		c := &clock{t: w.now.Add(5*time.Minute + time.Second)}
		inst := newInstance(t, db, kvtest.Embedded(t), "one", 15*time.Second, c.Now, referrals.WatcherOptions{Webhook: true})
		hook := referrals.NewWebhook(w.st, srv.URL+"/duikou", referrals.WebhookOptions{Secret: "s3cret", Backoff: 30 * time.Second, Now: c.Now})
		deliver := func() int {
			t.Helper()
			n, err := hook.Deliver(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}

		if n := tick(t, inst.watcher); n != 1 {
			t.Fatalf("green channel unclaimed past 5 minutes: %d raised", n)
		}
		if n := deliver(); n != 0 || len(rc.got()) != 1 {
			t.Fatalf("first attempt: %d delivered, %d requests; want the receiver's 500 and none delivered", n, len(rc.got()))
		}
		if n := deliver(); n != 0 || len(rc.got()) != 1 {
			t.Fatalf("retried before the backoff: %d requests", len(rc.got()))
		}
		c.Set(c.Now().Add(31 * time.Second))
		if n := deliver(); n != 1 || len(rc.got()) != 2 {
			t.Fatalf("after the backoff: %d delivered, %d requests; want the retry taken", n, len(rc.got()))
		}
		// The decide deadline passes too: delivered at the first attempt.
		c.Set(w.now.Add(10*time.Minute + time.Second))
		if n := tick(t, inst.watcher); n != 1 {
			t.Fatalf("past the decide deadline: %d raised", n)
		}
		if n := deliver(); n != 1 {
			t.Fatalf("decide escalation: %d delivered", n)
		}
		if n := deliver(); n != 0 || len(rc.got()) != 3 {
			t.Fatalf("nothing left, yet %d delivered, %d requests", n, len(rc.got()))
		}

		calls := rc.got()
		if calls[0].body != calls[1].body || calls[0].delivery != calls[1].delivery {
			t.Errorf("a retry differs from the first attempt:\n%+v\n%+v", calls[0], calls[1])
		}
		kinds := []referral.BreachKind{referral.ClaimBreach, referral.ClaimBreach, referral.DecideBreach}
		for i, call := range calls {
			var e referrals.Escalated
			if err := json.Unmarshal([]byte(call.body), &e); err != nil {
				t.Fatalf("body %s: %v", call.body, err)
			}
			if e.ID == "" || e.ID != call.delivery || e.Event != referrals.TopicEscalated || e.ReferralID != r.ID ||
				e.Number != r.Number || e.HospitalID != w.tertiary || e.DepartmentID != w.cardio || e.Kind != kinds[i] ||
				e.Priority != referral.Emergency || !e.GreenChannel || e.GreenCategory != referral.ChestPain {
				t.Errorf("request %d: %+v (delivery %q)", i, e, call.delivery)
			}
			if call.signature != referrals.Sign("s3cret", []byte(call.body)) || !strings.HasPrefix(call.signature, "sha256=") {
				t.Errorf("request %d signed %q", i, call.signature)
			}
			if call.event != referrals.TopicEscalated {
				t.Errorf("request %d event header %q", i, call.event)
			}
			if strings.Contains(call.body, w.patient) || strings.Contains(call.body, "王秀英") || strings.Contains(call.body, "patient") {
				t.Errorf("request %d names the patient: %s", i, call.body)
			}
		}
		if calls[0].delivery == calls[2].delivery {
			t.Error("two escalations share one idempotency id")
		}
		var attempts int
		var lastError string
		if err := db.QueryRow(ctx, `SELECT attempts, last_error FROM outbox WHERE topic = $1 ORDER BY id LIMIT 1`,
			referrals.TopicEscalationWebhook).Scan(&attempts, &lastError); err != nil || attempts != 2 || !strings.Contains(lastError, "500") {
			t.Errorf("the retried message: %d attempts, last error %q (%v)", attempts, lastError, err)
		}
	})
}

func TestWebhookRetriesAnUnreachableReceiverAndKeepsTheMessage(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newRefWorld(t, db, nil)
		w.act(t, w.doctor, w.draft(t, w.input(w.patient)), referral.Submit, referral.ActionInput{})
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close() // nothing listens there any more
		c := &clock{t: w.now.Add(time.Hour + time.Second)}
		inst := newInstance(t, db, kvtest.Embedded(t), "one", 15*time.Second, c.Now, referrals.WatcherOptions{Webhook: true})
		hook := referrals.NewWebhook(w.st, srv.URL, referrals.WebhookOptions{Timeout: time.Second, Backoff: time.Minute, Now: c.Now})
		tick(t, inst.watcher)
		start := c.Now()
		// The wait doubles: a minute after the first failure, two after the
		// second.
		for _, step := range []struct {
			at       time.Duration
			attempts int
		}{{0, 1}, {time.Minute, 2}, {2 * time.Minute, 2}, {3 * time.Minute, 3}} {
			c.Set(start.Add(step.at))
			if n, err := hook.Deliver(context.Background()); n != 0 || err != nil {
				t.Fatalf("+%v: %d delivered, %v", step.at, n, err)
			}
			if n := count(t, db, `SELECT attempts FROM outbox WHERE topic = $1 AND published_at IS NULL`, referrals.TopicEscalationWebhook); n != step.attempts {
				t.Errorf("+%v: %d attempts recorded, want %d with the message still waiting", step.at, n, step.attempts)
			}
		}
	})
}
