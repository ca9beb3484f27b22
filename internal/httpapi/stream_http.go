package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"duikou/internal/auth"
	"duikou/internal/queue"
)

// QueueStream opens the live stream of a hospital's desk queue; it checks the
// caller as the queue list does.
type QueueStream interface {
	Watch(ctx context.Context, p auth.Principal, hospitalID string) (<-chan queue.Event, func(), error)
}

// ReferralStream opens the stream of change notices of the tickets the
// caller's hospital is a party to.
type ReferralStream interface {
	Watch(ctx context.Context, p auth.Principal) (<-chan queue.Notice, func(), error)
}

// SessionStream opens the stream of notices of the remote sessions the
// caller's hospital takes part in, and of escalations it must answer.
type SessionStream interface {
	Watch(ctx context.Context, p auth.Principal) (<-chan queue.SessionNotice, func(), error)
}

// Stream defaults. A proxy in front typically closes a connection after 60
// seconds of silence, so the heartbeat comes well inside that. A desk has a
// few screens open, not dozens: the cap stops a runaway client from holding
// an instance's connections and Redis subscriptions.
const (
	defaultStreamHeartbeat   = 15 * time.Second
	defaultMaxStreamsPerUser = 8
	// The caller is checked once, when the stream opens; a reconnect checks
	// the session again.
	defaultStreamMaxAge = 5 * time.Minute
	// A browser whose stream ended reconnects after streamRetryMin plus up
	// to streamRetrySpread.
	streamRetryMin    = time.Second
	streamRetrySpread = 4 * time.Second
)

// streamSlots counts each user's open streams on this instance. The cap is
// per instance because what it protects (connections, goroutines, Redis
// subscriptions) is per instance, and a count kept in memory cannot outlive
// a crash the way a shared counter could.
type streamSlots struct {
	mu   sync.Mutex
	open map[string]int
}

func (s *streamSlots) take(user string, limit int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open == nil {
		s.open = map[string]int{}
	}
	if s.open[user] >= limit {
		return false
	}
	s.open[user]++
	return true
}

func (s *streamSlots) give(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[user] <= 1 {
		delete(s.open, user)
		return
	}
	s.open[user]--
}

// mountStreams: the queue stream has the queue list's gate; the change
// streams are for the clinical roles that work referrals and sessions. Every
// stream is served by serveStream; a new one adds its opener and its event
// type here.
func (a *API) mountStreams(r chi.Router) {
	r.With(a.allowDeskOrSupervisor).Get("/referral-queues/{hospitalID}/stream", a.queueStream)
	r.With(a.allow(auth.ClinicalRoles...)).Get("/referrals/stream", a.referralStream)
	r.With(a.allow(auth.ClinicalRoles...)).Get("/sessions/stream", a.sessionStream)
}

func (a *API) queueStream(w http.ResponseWriter, r *http.Request) {
	hospitalID := chi.URLParam(r, "hospitalID")
	serveStream(a, w, r, func(ctx context.Context) (<-chan queue.Event, func(), error) {
		return a.QueueStream.Watch(ctx, auth.FromContext(ctx), hospitalID)
	}, func(ev queue.Event) string { return ev.Type })
}

func (a *API) referralStream(w http.ResponseWriter, r *http.Request) {
	serveStream(a, w, r, func(ctx context.Context) (<-chan queue.Notice, func(), error) {
		return a.ReferralStream.Watch(ctx, auth.FromContext(ctx))
	}, func(n queue.Notice) string { return n.Type })
}

func (a *API) sessionStream(w http.ResponseWriter, r *http.Request) {
	serveStream(a, w, r, func(ctx context.Context) (<-chan queue.SessionNotice, func(), error) {
		return a.SessionStream.Watch(ctx, auth.FromContext(ctx))
	}, func(n queue.SessionNotice) string { return n.Type })
}

// sseName is what an event type may look like on the wire: a type with a
// line break would let a message forge events.
var sseName = regexp.MustCompile(`^[a-z][a-z0-9_.]{0,39}$`)

// serveStream answers with Server-Sent Events: a "ready" event once the
// subscription is active (anything published after it reaches the client),
// then every event as "event: <type>", its JSON as data and a sequence number
// as id, and a comment line as heartbeat. The stream does not replay: after a
// reconnect, a client reads the state again once "ready" arrives. It ends
// when the client goes, the subscription ends, the instance begins to stop,
// or it reaches its maximum age.
func serveStream[T any](a *API, w http.ResponseWriter, r *http.Request, open func(ctx context.Context) (<-chan T, func(), error), typeOf func(T) string) {
	p := auth.FromContext(r.Context())
	if !a.streams.take(p.UserID, a.cfg.MaxStreamsPerUser) {
		w.Header().Set("Retry-After", "30")
		writeProblem(w, r, http.StatusTooManyRequests, "too many live streams open for this user; close one first")
		return
	}
	defer a.streams.give(p.UserID)

	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.StreamMaxAge)
	defer cancel()
	if a.Stopping != nil {
		defer context.AfterFunc(a.Stopping, cancel)()
	}
	events, stop, err := open(ctx)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	defer stop()

	// The server's read and write deadlines are for ordinary requests; a
	// stream outlives them (up to StreamMaxAge). Without clearing it, the
	// write deadline cuts the stream at the first write after it; the read
	// deadline is cleared as well, so no deadline of this connection depends
	// on how the server reads it. A writer that cannot do this (a test
	// recorder) has no deadlines either.
	rc := http.NewResponseController(w)
	for _, clear := range []func(time.Time) error{rc.SetWriteDeadline, rc.SetReadDeadline} {
		if err := clear(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
			a.log.WarnContext(r.Context(), "stream: clearing a connection deadline", "err", err)
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: pass events through as they come
	w.WriteHeader(http.StatusOK)

	send := func(chunk string) bool {
		if _, err := w.Write([]byte(chunk)); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// The reconnection delay is drawn for each stream: when many streams end
	// at once (Redis went away, an instance stops) their browsers come back
	// spread over a few seconds, not all in the same instant.
	retry := streamRetryMin + rand.N(streamRetrySpread)
	if !send("retry: " + strconv.FormatInt(retry.Milliseconds(), 10) + "\nevent: ready\ndata: {}\n\n") {
		return
	}
	beat := time.NewTicker(a.cfg.StreamHeartbeat)
	defer beat.Stop()
	var seq int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			if !send(": heartbeat\n\n") {
				return
			}
		case ev, ok := <-events:
			if !ok {
				return // the subscription ended (Redis went away): the client reconnects
			}
			name := typeOf(ev)
			if !sseName.MatchString(name) {
				a.log.WarnContext(r.Context(), "stream: event with a bad type dropped")
				continue
			}
			data, err := json.Marshal(ev)
			if err != nil {
				continue
			}
			seq++
			if !send("event: " + name + "\nid: " + strconv.FormatInt(seq, 10) + "\ndata: " + string(data) + "\n\n") {
				return
			}
		}
	}
}
