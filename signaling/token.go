package signaling

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Perms are what a participant may do in a room.
type Perms struct {
	Publish   bool `json:"publish,omitempty"`   // send audio and video
	Subscribe bool `json:"subscribe,omitempty"` // receive the others' media
	Present   bool `json:"present,omitempty"`   // may hold the presenter role (drive the shared imaging view)
	Admit     bool `json:"admit,omitempty"`     // host: skips the lobby, admits and removes others
}

// Claims are what a join token says. The token is bound to one room and one
// participant and lives a few minutes: it is spent on the WebSocket's first
// message, after which the connection (and a resume secret) carry on.
type Claims struct {
	Room        string    `json:"room"`
	Participant string    `json:"sub"`
	Name        string    `json:"name"`
	Hospital    string    `json:"hosp,omitempty"`
	Perms       Perms     `json:"perm"`
	Expires     time.Time `json:"exp"`
	// Nonce makes every token distinct, so two grants to the same
	// participant never share a signature (and a replay cache, if one is
	// ever wanted, has a key).
	Nonce string `json:"nonce"`
}

// MaxTokenTTL bounds a join token's life: it is used seconds after it is
// issued, and anything that leaks it (a log, a screenshot) must find it dead.
const MaxTokenTTL = 5 * time.Minute

// Token errors. The WebSocket answers all of them alike (unauthorised); the
// distinction is for logs and tests.
var (
	ErrTokenMalformed = errors.New("join token malformed")
	ErrTokenSignature = errors.New("join token signature invalid")
	ErrTokenExpired   = errors.New("join token expired")
)

// Tokens issues and verifies join tokens with an HMAC-SHA256 key. The key is
// passed in (derived from the data key by the wiring) so every instance
// accepts every other instance's tokens.
type Tokens struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

// NewTokens returns tokens signed with key (at least 32 bytes) that live ttl
// (capped at MaxTokenTTL; 0 means 2 minutes).
func NewTokens(key []byte, ttl time.Duration) (*Tokens, error) {
	if len(key) < 32 {
		return nil, errors.New("signaling: token key must be at least 32 bytes")
	}
	if ttl <= 0 {
		ttl = 2 * time.Minute
	}
	ttl = min(ttl, MaxTokenTTL)
	return &Tokens{key: append([]byte(nil), key...), ttl: ttl, now: time.Now}, nil
}

// Issue signs c, setting its expiry and nonce. The token is
// base64url(claims JSON) "." base64url(HMAC): only URL- and
// subprotocol-safe characters, so it can travel in Sec-WebSocket-Protocol.
func (t *Tokens) Issue(c Claims) (string, Claims, error) {
	if c.Room == "" || c.Participant == "" {
		return "", Claims{}, errors.New("signaling: a token needs a room and a participant")
	}
	c.Expires = t.now().Add(t.ttl).UTC().Truncate(time.Second)
	var n [12]byte
	rand.Read(n[:])
	c.Nonce = base64.RawURLEncoding.EncodeToString(n[:])
	body, err := json.Marshal(c)
	if err != nil {
		return "", Claims{}, err
	}
	p := base64.RawURLEncoding.EncodeToString(body)
	return p + "." + base64.RawURLEncoding.EncodeToString(t.sign(p)), c, nil
}

func (t *Tokens) sign(payload string) []byte {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// Verify checks the signature and expiry and returns the claims. Whether the
// claims fit the room asked for is the caller's check.
func (t *Tokens) Verify(token string) (Claims, error) {
	p, s, ok := strings.Cut(token, ".")
	if !ok || p == "" || len(token) > 2048 {
		return Claims{}, ErrTokenMalformed
	}
	sig, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Claims{}, ErrTokenMalformed
	}
	if !hmac.Equal(sig, t.sign(p)) {
		return Claims{}, ErrTokenSignature
	}
	body, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return Claims{}, ErrTokenMalformed
	}
	var c Claims
	if err := json.Unmarshal(body, &c); err != nil || c.Room == "" || c.Participant == "" {
		return Claims{}, ErrTokenMalformed
	}
	if !t.now().Before(c.Expires) {
		return Claims{}, ErrTokenExpired
	}
	return c, nil
}
