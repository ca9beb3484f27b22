package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"duikou/internal/auth"
	"duikou/internal/rtc"
)

// SessionJoiner lets a participant into a remote session's live room.
type SessionJoiner interface {
	Join(ctx context.Context, p auth.Principal, sessionID, requestBase string) (rtc.Ticket, error)
}

// joinRoles may be people in a session's room (which ones, for which
// session, is the service's decision): the clinicians who ask and answer.
var joinRoles = []auth.Role{auth.CountyDoctor, auth.Specialist, auth.DispatchedDoctor}

// socketPattern is the room's WebSocket (rtc.SocketPath).
const socketPattern = "/api/v1/sessions/{sessionID}/ws"

func (a *API) mountSessionJoin(r chi.Router) {
	r.With(a.allow(joinRoles...)).Post("/sessions/{sessionID}/join", a.joinSession)
}

// mountSessionSocket serves the room's WebSocket on the root router, beside
// /api/v1 rather than inside it, so the API's middleware stays out of its
// way on purpose: the socket is authorised by the join token the client
// sends in its first message, not by the session cookie (which a browser
// would attach to the handshake from any page: the signalling server
// checks the Origin against the allowed origins instead); it is not rate
// limited per address (a hospital behind one NAT joins a teaching round at
// once; the signalling server limits each connection's messages) and has
// no body but the WebSocket's, bounded by the server's read limit.
func (a *API) mountSessionSocket(r chi.Router) {
	r.Get(socketPattern, a.sessionSocket)
}

func (a *API) joinSession(w http.ResponseWriter, r *http.Request) {
	t, err := a.SessionRooms.Join(r.Context(), auth.FromContext(r.Context()), chi.URLParam(r, "sessionID"), a.socketBase(r))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	// The answer carries a credential: nothing on the way may keep it, the
	// store of idempotent answers included.
	w.Header().Set("Cache-Control", "no-store")
	notForReplay(r.Context())
	writeJSON(w, http.StatusOK, t)
}

// socketBase is the ws(s)://host the request came to: the WebSocket URL a
// join answers when no public URL is configured.
func (a *API) socketBase(r *http.Request) string {
	scheme := "ws"
	if r.TLS != nil || (a.cfg.TrustProxy && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")) {
		scheme = "wss"
	}
	return scheme + "://" + r.Host
}

func (a *API) sessionSocket(w http.ResponseWriter, r *http.Request) {
	if a.SessionSocket == nil {
		writeProblem(w, r, http.StatusServiceUnavailable, "remote sessions are not available on this server")
		return
	}
	if !isWebSocketUpgrade(r) {
		w.Header().Set("Upgrade", "websocket")
		writeProblem(w, r, http.StatusUpgradeRequired, "this endpoint speaks WebSocket only: open ws_url from the join answer")
		return
	}
	a.SessionSocket.ServeHTTP(w, r)
}

// isWebSocketUpgrade reports whether r asks for a WebSocket (RFC 6455 4.1).
func isWebSocketUpgrade(r *http.Request) bool {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return false
	}
	for _, v := range r.Header.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}
