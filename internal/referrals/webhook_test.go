package referrals_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"duikou/internal/kv/kvtest"
	"duikou/internal/referrals"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/internal/testclock"
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
		c := testclock.New(w.now.Add(5*time.Minute + time.Second))
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
		c := testclock.New(w.now.Add(time.Hour + time.Second))
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

// enqueueHook writes a webhook message for an escalation id, as the watcher
// would, created at at.
func enqueueHook(t *testing.T, st *store.Referrals, id string, at time.Time) {
	t.Helper()
	body, err := json.Marshal(referrals.Escalated{ID: id, Event: referrals.TopicEscalated, ReferralID: "ref-" + id, Kind: referral.ClaimBreach, RaisedAt: at})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnqueueOutbox(context.Background(), referrals.TopicEscalationWebhook, "ref-"+id, string(body), at); err != nil {
		t.Fatal(err)
	}
}

// timedReceiver answers 500 to the deliveries named in failing and 200 to
// the others, and notes when (on the test's clock) each came.
type timedReceiver struct {
	mu      sync.Mutex
	clock   *testclock.Clock
	failing map[string]bool
	calls   map[string][]time.Time
}

func (rc *timedReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	id := r.Header.Get(referrals.WebhookDeliveryHeader)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.calls[id] = append(rc.calls[id], rc.clock.Now())
	if rc.failing[id] {
		w.WriteHeader(http.StatusInternalServerError)
	}
}

func (rc *timedReceiver) times(id string) []time.Time {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.calls[id])
}

// A receiver that keeps failing one delivery gets it again after growing
// waits, capped, until the attempts run out; the delivery is then kept as
// failed with its error and never sent again. Deliveries behind it, and
// new ones meanwhile, go through at once.
func TestWebhookGivesUpAFailingDeliveryAfterItsAttemptsWhileOthersGoThrough(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewReferrals(db)
		c := testclock.New(sqldb.Now())
		rc := &timedReceiver{clock: c, failing: map[string]bool{"bad": true}, calls: map[string][]time.Time{}}
		srv := httptest.NewServer(rc)
		defer srv.Close()
		var gaveUp []string
		hook := referrals.NewWebhook(st, srv.URL, referrals.WebhookOptions{Backoff: 10 * time.Second, MaxBackoff: 40 * time.Second,
			MaxAttempts: 6, Now: c.Now, GaveUp: func(topic string) { gaveUp = append(gaveUp, topic) }})
		deliver := func() int {
			t.Helper()
			n, err := hook.Deliver(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		start := c.Now()
		enqueueHook(t, st, "bad", start)
		enqueueHook(t, st, "behind", start)
		if n := deliver(); n != 1 || len(rc.times("bad")) != 1 || len(rc.times("behind")) != 1 {
			t.Fatalf("first round: %d delivered, bad tried %d, behind %d times; want behind delivered beside the failure",
				n, len(rc.times("bad")), len(rc.times("behind")))
		}

		// Each wait doubles from 10 s up to the 40 s cap; nothing is tried
		// a second early.
		for i, wait := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 40 * time.Second, 40 * time.Second} {
			last := rc.times("bad")[i]
			c.Set(last.Add(wait - time.Second))
			if i == 2 {
				// A new escalation while the failing one waits: sent at once.
				enqueueHook(t, st, "meanwhile", c.Now())
				if n := deliver(); n != 1 || len(rc.times("meanwhile")) != 1 {
					t.Fatalf("a delivery behind the waiting one: %d delivered", n)
				}
			}
			if deliver(); len(rc.times("bad")) != i+1 {
				t.Fatalf("attempt %d came before its %v wait", i+2, wait)
			}
			c.Set(last.Add(wait))
			if n := deliver(); n != 0 || len(rc.times("bad")) != i+2 {
				t.Fatalf("attempt %d: %d delivered, %d requests; want the retry after %v", i+2, n, len(rc.times("bad")), wait)
			}
		}
		var gaps []time.Duration
		times := rc.times("bad")
		for i := 1; i < len(times); i++ {
			gaps = append(gaps, times[i].Sub(times[i-1]))
		}
		if want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 40 * time.Second, 40 * time.Second}; !slices.Equal(gaps, want) {
			t.Errorf("waits %v, want %v", gaps, want)
		}

		// Six attempts made: given up, never sent again, kept with its error.
		c.Set(c.Now().Add(time.Hour))
		deliver()
		if n := len(rc.times("bad")); n != 6 {
			t.Errorf("%d attempts, want 6 and no more", n)
		}
		var attempts int
		var lastError string
		var failed, published *time.Time
		if err := db.QueryRow(ctx, `SELECT attempts, last_error, failed_at, published_at FROM outbox WHERE key = 'ref-bad'`).
			Scan(&attempts, &lastError, &failed, &published); err != nil {
			t.Fatal(err)
		}
		if attempts != 6 || !strings.Contains(lastError, "500") || failed == nil || published != nil {
			t.Errorf("given-up delivery: %d attempts, last error %q, failed at %v, published at %v", attempts, lastError, failed, published)
		}
		if !slices.Equal(gaveUp, []string{referrals.TopicEscalationWebhook}) {
			t.Errorf("told of %v given up", gaveUp)
		}
		if len(rc.times("behind")) != 1 || len(rc.times("meanwhile")) != 1 {
			t.Errorf("healthy deliveries sent %d and %d times, want once each", len(rc.times("behind")), len(rc.times("meanwhile")))
		}
	})
}

// A delivery still failing when its escalation is older than MaxAge is
// given up, however few its attempts.
func TestWebhookGivesUpADeliveryPastItsAge(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		st := store.NewReferrals(db)
		c := testclock.New(sqldb.Now())
		rc := &timedReceiver{clock: c, failing: map[string]bool{"old": true, "young": true}, calls: map[string][]time.Time{}}
		srv := httptest.NewServer(rc)
		defer srv.Close()
		enqueueHook(t, st, "old", c.Now().Add(-25*time.Hour))
		enqueueHook(t, st, "young", c.Now().Add(-time.Hour))
		hook := referrals.NewWebhook(st, srv.URL, referrals.WebhookOptions{Now: c.Now})
		if _, err := hook.Deliver(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM outbox WHERE failed_at IS NOT NULL AND key = 'ref-old'`); n != 1 {
			t.Error("a delivery a day old failed and was not given up")
		}
		if n := count(t, db, `SELECT COUNT(*) FROM outbox WHERE failed_at IS NULL AND next_attempt_at IS NOT NULL AND key = 'ref-young'`); n != 1 {
			t.Error("an hour-old delivery was given up at its first failure")
		}
	})
}

// A receiver slow on one delivery keeps no other waiting: the round's
// deliveries are posted at once.
func TestWebhookSlowDeliveryHoldsUpNoOther(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		st := store.NewReferrals(db)
		c := testclock.New(sqldb.Now())
		release := make(chan struct{})
		var releaseOnce sync.Once
		arrived := make(chan string, 4)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Read first: the server notices a client gone only once the
			// body has been read.
			_, _ = io.Copy(io.Discard, r.Body)
			id := r.Header.Get(referrals.WebhookDeliveryHeader)
			if id == "slow" {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}
			arrived <- id
		}))
		defer srv.Close()
		// Before the server closes, even when the test fails early.
		defer releaseOnce.Do(func() { close(release) })
		enqueueHook(t, st, "slow", c.Now())
		enqueueHook(t, st, "quick", c.Now())
		hook := referrals.NewWebhook(st, srv.URL, referrals.WebhookOptions{Now: c.Now})
		type result struct {
			n   int
			err error
		}
		done := make(chan result, 1)
		go func() {
			n, err := hook.Deliver(context.Background())
			done <- result{n, err}
		}()
		select {
		case id := <-arrived:
			if id != "quick" {
				t.Fatalf("%s answered first", id)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the quick delivery waited for the slow one")
		}
		releaseOnce.Do(func() { close(release) })
		if r := <-done; r.err != nil || r.n != 2 {
			t.Fatalf("round: %d delivered (%v), want both", r.n, r.err)
		}
	})
}
