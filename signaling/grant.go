package signaling

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// ICEServer is one STUN or TURN server as a browser's RTCPeerConnection
// takes it.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// ICEConfig says which STUN/TURN servers clients get: the built-in TURN
// server or an external one, both with time-limited credentials in the TURN
// REST scheme, so the TURN server needs no user table, only the shared secret.
type ICEConfig struct {
	STUN []string // e.g. stun:turn.example.org:3478
	TURN []string // e.g. turn:turn.example.org:3478?transport=udp, turn:…?transport=tcp
	// TURNSecret is shared with the TURN server (built-in, or coturn's
	// static-auth-secret).
	TURNSecret []byte
	// TURNTTL is how long credentials stay valid (default 10 minutes: long
	// enough for a reconnect, short enough that a leaked one soon dies).
	TURNTTL time.Duration
}

// TURNCredentials returns the TURN REST credentials for user valid until
// expiry: username = "<unix expiry>:<user>", password =
// base64(HMAC-SHA1(secret, username)).
func TURNCredentials(secret []byte, user string, expiry time.Time) (username, password string) {
	username = strconv.FormatInt(expiry.Unix(), 10) + ":" + user
	m := hmac.New(sha1.New, secret)
	m.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// CheckTURNCredentials reports whether username (in the REST scheme) is
// unexpired at now, returning the password it must have.
func CheckTURNCredentials(secret []byte, username string, now time.Time) (password string, err error) {
	exp, _, ok := strings.Cut(username, ":")
	if !ok {
		return "", errors.New("turn: username is not expiry:user")
	}
	n, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return "", errors.New("turn: username is not expiry:user")
	}
	if now.Unix() >= n {
		return "", errors.New("turn: credentials expired")
	}
	m := hmac.New(sha1.New, secret)
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil)), nil
}

// Servers returns the ICE servers for user, TURN ones with fresh credentials.
func (c ICEConfig) Servers(user string, now time.Time) []ICEServer {
	var out []ICEServer
	if len(c.STUN) > 0 {
		out = append(out, ICEServer{URLs: c.STUN})
	}
	if len(c.TURN) > 0 && len(c.TURNSecret) > 0 {
		ttl := c.TURNTTL
		if ttl <= 0 {
			ttl = 10 * time.Minute
		}
		u, p := TURNCredentials(c.TURNSecret, user, now.Add(ttl))
		out = append(out, ICEServer{URLs: c.TURN, Username: u, Credential: p})
	}
	return out
}

// Grant is what the join route answers: the token (sent by the client in its
// first WebSocket message or in Sec-WebSocket-Protocol, never in a URL), where
// to connect, and the ICE servers.
type Grant struct {
	Token      string      `json:"token"`
	URL        string      `json:"url"`
	ICEServers []ICEServer `json:"ice_servers"`
	ExpiresAt  time.Time   `json:"expires_at"`
}

// Granter builds grants; the join route calls Grant after it has
// authenticated, authorised and audited the caller.
type Granter struct {
	Tokens *Tokens
	// URL is the WebSocket endpoint clients connect to (any instance: a
	// join through the wrong one is redirected).
	URL string
	ICE ICEConfig
}

// Grant issues a token for c and the ICE servers for its participant.
func (g Granter) Grant(c Claims) (Grant, error) {
	tok, c, err := g.Tokens.Issue(c)
	if err != nil {
		return Grant{}, err
	}
	return Grant{Token: tok, URL: g.URL, ICEServers: g.ICE.Servers(c.Participant, g.Tokens.now()), ExpiresAt: c.Expires}, nil
}
