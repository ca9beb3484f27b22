package referrals

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"duikou/internal/sqldb"
	"duikou/internal/store"
)

// WebhookStore is what the webhook needs of storage; store.Referrals
// implements it.
type WebhookStore interface {
	ClaimOutbox(ctx context.Context, topic string, limit int, now, hold time.Time) ([]store.OutboxMessage, error)
	RetryOutbox(ctx context.Context, id int64, at time.Time, reason string) error
	FailOutbox(ctx context.Context, id int64, at time.Time, reason string) error
	MarkPublished(ctx context.Context, ids []int64, at time.Time) error
}

var _ WebhookStore = (*store.Referrals)(nil)

// Webhook headers. The signature is "sha256=" and the hex HMAC-SHA256 of
// the body under the configured secret; the delivery header repeats the
// body's id, which stays the same on every retry.
const (
	WebhookSignatureHeader = "X-Duikou-Signature"
	WebhookDeliveryHeader  = "X-Duikou-Delivery"
	WebhookEventHeader     = "X-Duikou-Event"
)

// WebhookOptions tune the webhook; zero values take the defaults.
type WebhookOptions struct {
	Secret  string        // HMAC key of the signature header; none when empty
	Timeout time.Duration // per request (default 10s)
	// Hold is how long a claimed message is kept from other consumers
	// while it is being delivered (default a minute, more than Timeout).
	Hold time.Duration
	// Backoff is the wait after the first failed attempt; it doubles with
	// each further one up to MaxBackoff (defaults 5s and 10 minutes).
	Backoff, MaxBackoff time.Duration
	// MaxAttempts and MaxAge bound the retries: a delivery that fails at
	// its MaxAttempts-th attempt, or when its escalation is older than
	// MaxAge, is given up (defaults 20, about two hours of retries with
	// the default backoff, and a day).
	MaxAttempts int
	MaxAge      time.Duration
	// GaveUp, when set, is told the topic of each delivery given up (the
	// server counts them in a metric).
	GaveUp func(topic string)
	// Batch is the messages of a round, posted at once (default 20).
	Batch int
	// Topics are the outbox topics delivered, each escalation message with
	// an "event" and an "id" field (default: the referrals' only; remote
	// sessions add consults.TopicEscalationWebhook).
	Topics []string
	Client *http.Client     // default: one with Timeout
	Now    func() time.Time // default sqldb.Now
	Log    *slog.Logger
}

// Webhook posts each escalation to an external URL (a hospital's paging
// system, a duty phone gateway), from the outbox: at least once, retried
// with exponential backoff (capped) until the receiver answers 2xx, for a
// bounded number of attempts and time. A delivery given up stays in the
// outbox, marked failed with its attempts and last error (FailOutbox); it
// is logged as an error and counted (GaveUp). Every instance may run it: a
// message is claimed for a while (ClaimOutbox) before it is sent, so
// instances do not send the same one at the same time, and the HTTP call
// holds no database lock. A round's messages are posted at once, so a
// receiver that is slow or fails on one message keeps no other waiting: a
// failed message waits out its backoff while the others go on.
type Webhook struct {
	st  WebhookStore
	url string
	opt WebhookOptions
}

// NewWebhook delivers to url.
func NewWebhook(st WebhookStore, url string, opt WebhookOptions) *Webhook {
	if opt.Timeout <= 0 {
		opt.Timeout = 10 * time.Second
	}
	if opt.Hold <= opt.Timeout {
		opt.Hold = max(time.Minute, 2*opt.Timeout)
	}
	if opt.Backoff <= 0 {
		opt.Backoff = 5 * time.Second
	}
	if opt.MaxBackoff < opt.Backoff {
		opt.MaxBackoff = max(10*time.Minute, opt.Backoff)
	}
	if opt.MaxAttempts <= 0 {
		opt.MaxAttempts = 20
	}
	if opt.MaxAge <= 0 {
		opt.MaxAge = 24 * time.Hour
	}
	if opt.Batch <= 0 {
		opt.Batch = 20
	}
	if len(opt.Topics) == 0 {
		opt.Topics = []string{TopicEscalationWebhook}
	}
	if opt.Client == nil {
		opt.Client = &http.Client{Timeout: opt.Timeout}
	}
	if opt.Now == nil {
		opt.Now = sqldb.Now
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	return &Webhook{st: st, url: url, opt: opt}
}

// Sign is the signature header's value for body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// backoff is the wait after the attempt-th failed attempt.
func (h *Webhook) backoff(attempt int) time.Duration {
	d := h.opt.Backoff
	for i := 1; i < attempt && d < h.opt.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, h.opt.MaxBackoff)
}

// Deliver sends the escalations due for an attempt, one round per topic,
// and returns how many the receiver took. A failed one is left for a later
// attempt, or given up once past its bounds. A topic whose round fails does
// not keep the others from theirs.
func (h *Webhook) Deliver(ctx context.Context) (int, error) {
	total := 0
	var errs []error
	for _, topic := range h.opt.Topics {
		n, err := h.deliver(ctx, topic)
		total += n
		errs = append(errs, err)
	}
	return total, errors.Join(errs...)
}

func (h *Webhook) deliver(ctx context.Context, topic string) (int, error) {
	now := h.opt.Now()
	msgs, err := h.st.ClaimOutbox(ctx, topic, h.opt.Batch, now, now.Add(h.opt.Hold))
	if err != nil {
		return 0, fmt.Errorf("escalation webhook: %w", err)
	}
	// All at once: the round then ends within one Timeout, well inside
	// the hold, however many of its messages the receiver is slow on.
	failures := make([]error, len(msgs))
	var wg sync.WaitGroup
	for i, m := range msgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			failures[i] = h.post(ctx, m)
		}()
	}
	wg.Wait()
	// Outcomes are written even when the instance is stopping, so a message
	// the receiver took is not sent again.
	wctx := context.WithoutCancel(ctx)
	var done []int64
	var errs []error
	for i, m := range msgs {
		if failures[i] == nil {
			done = append(done, m.ID)
		} else if err := h.failed(ctx, m, failures[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if err := h.st.MarkPublished(wctx, done, h.opt.Now()); err != nil {
		return 0, fmt.Errorf("escalation webhook: %w", errors.Join(append(errs, err)...))
	}
	if err := errors.Join(errs...); err != nil {
		return len(done), fmt.Errorf("escalation webhook: %w", err)
	}
	return len(done), nil
}

// failed records a failed attempt: another after the backoff, or, past the
// attempts or the age allowed, none (the delivery is given up and kept,
// failed, with its error).
func (h *Webhook) failed(ctx context.Context, m store.OutboxMessage, cause error) error {
	wctx := context.WithoutCancel(ctx)
	now := h.opt.Now()
	if ctx.Err() != nil {
		// Cut short by the instance stopping, not refused by the receiver:
		// another instance may try it at once.
		return h.st.RetryOutbox(wctx, m.ID, now, cause.Error())
	}
	if m.Attempts < h.opt.MaxAttempts && now.Sub(m.CreatedAt) < h.opt.MaxAge {
		wait := h.backoff(m.Attempts)
		h.opt.Log.WarnContext(ctx, "escalation webhook failed; will retry", "outbox_id", m.ID, "attempt", m.Attempts,
			"retry_in", wait.String(), "err", cause)
		return h.st.RetryOutbox(wctx, m.ID, now.Add(wait), cause.Error())
	}
	if err := h.st.FailOutbox(wctx, m.ID, now, cause.Error()); err != nil {
		return err
	}
	id, _ := escalationID([]byte(m.Payload))
	h.opt.Log.ErrorContext(ctx, "escalation webhook gave up; delivery marked failed", "outbox_id", m.ID, "topic", m.Topic,
		"escalation_id", id, "attempts", m.Attempts, "age", now.Sub(m.CreatedAt).Round(time.Second).String(), "err", cause)
	if h.opt.GaveUp != nil {
		h.opt.GaveUp(m.Topic)
	}
	return nil
}

func (h *Webhook) post(ctx context.Context, m store.OutboxMessage) error {
	body := []byte(m.Payload)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "duikou-escalations")
	id, event := escalationID(body)
	if event == "" {
		event = TopicEscalated
	}
	req.Header.Set(WebhookEventHeader, event)
	if id != "" {
		req.Header.Set(WebhookDeliveryHeader, id)
	}
	if h.opt.Secret != "" {
		req.Header.Set(WebhookSignatureHeader, Sign(h.opt.Secret, body))
	}
	resp, err := h.opt.Client.Do(req)
	if err != nil {
		// Not the url.Error itself: the URL may carry a token, and this
		// text goes to the log and the outbox row.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			return fmt.Errorf("%s: %w", uerr.Op, uerr.Err)
		}
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}

// Run delivers every period until ctx ends.
func (h *Webhook) Run(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := h.Deliver(ctx); err != nil && ctx.Err() == nil {
				h.opt.Log.WarnContext(ctx, "delivering escalations", "err", err)
			}
		}
	}
}
