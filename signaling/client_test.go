package signaling

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const testOrigin = "https://duikou.example"

// harness is a signalling server on loopback with its token issuer.
type harness struct {
	t   testing.TB
	srv *Server
	ts  *httptest.Server
	tok *Tokens
	url string
}

func newHarness(t testing.TB, change func(*Config)) *harness {
	t.Helper()
	tok, err := NewTokens(testKey, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// The listener comes first so the server can know its own URL (for
	// redirects between instances).
	var s *Server
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.ServeHTTP(w, r) }))
	url := "ws" + strings.TrimPrefix(ts.URL, "http")
	cfg := Config{Tokens: tok, AllowedOrigins: []string{testOrigin}, Self: Instance{URL: url}}
	if change != nil {
		change(&cfg)
	}
	s, err = NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		ts.Close()
	})
	return &harness{t: t, srv: s, ts: ts, tok: tok, url: url}
}

func (h *harness) token(room, pid string, perms Perms) string {
	h.t.Helper()
	tok, _, err := h.tok.Issue(Claims{Room: room, Participant: pid, Name: "name of " + pid, Perms: perms})
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// client is a test participant's WebSocket: a goroutine reads every
// message into a channel; the close code ends up in closed.
type client struct {
	t    testing.TB
	name string
	ws   *websocket.Conn
	mu   sync.Mutex // send: the test and a media hook both send
	seq  uint64
	// hook, when set at dial, sees every message first and keeps those it
	// handles (a media client's offers and candidates).
	hook   func(Message) bool
	in     chan Message
	closed chan int // the close code (or -1 for any other end)
}

func (h *harness) dial(name, origin string, subprotocols ...string) (*client, *http.Response, error) {
	return h.dialHook(name, origin, nil, subprotocols...)
}

func (h *harness) dialHook(name, origin string, hook func(*client, Message) bool, subprotocols ...string) (*client, *http.Response, error) {
	hdr := http.Header{}
	if origin != "" {
		hdr.Set("Origin", origin)
	}
	d := websocket.Dialer{Subprotocols: subprotocols, HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial(h.url, hdr)
	if err != nil {
		return nil, resp, err
	}
	c := &client{t: h.t, name: name, ws: ws, in: make(chan Message, 512), closed: make(chan int, 1)}
	if hook != nil {
		c.hook = func(m Message) bool { return hook(c, m) }
	}
	go func() {
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				code := -1
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					code = ce.Code
				}
				c.closed <- code
				close(c.in)
				return
			}
			var m Message
			if err := json.Unmarshal(b, &m); err != nil {
				h.t.Errorf("%s: server sent %q: %v", name, b, err)
			}
			if c.hook != nil && c.hook(m) {
				continue
			}
			c.in <- m
		}
	}()
	h.t.Cleanup(func() { ws.Close() })
	return c, resp, nil
}

func (h *harness) mustDial(name string) *client {
	h.t.Helper()
	c, _, err := h.dial(name, testOrigin)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// join dials and joins room as pid, waiting for the welcome (or lobby).
func (h *harness) join(room, pid string, perms Perms) *client {
	h.t.Helper()
	c := h.mustDial(pid)
	c.send(TJoin, JoinPayload{Room: room, Token: h.token(room, pid, perms)})
	if perms.Admit {
		c.expect(TWelcome)
	} else {
		c.expect(TLobby)
	}
	return c
}

func (c *client) send(typ string, payload any) {
	c.t.Helper()
	if err := c.trySend(typ, payload); err != nil {
		c.t.Fatalf("%s: send %s: %v", c.name, typ, err)
	}
}

// trySend is send for goroutines other than the test's (no Fatal there).
func (c *client) trySend(typ string, payload any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	m := Message{Type: typ, Seq: c.seq}
	if payload != nil {
		b, err := json.Marshal(payload)
		if err != nil {
			return err
		}
		m.Payload = b
	}
	return c.ws.WriteJSON(m)
}

// expect returns the next message of type typ, skipping others, within 5 s.
func (c *client) expect(typ string) Message {
	c.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m, ok := <-c.in:
			if !ok {
				c.t.Fatalf("%s: connection closed while waiting for %s", c.name, typ)
			}
			if m.Type == typ {
				return m
			}
		case <-deadline:
			c.t.Fatalf("%s: no %s within 5 s", c.name, typ)
		}
	}
}

// expectPayload decodes the next message of type typ into v.
func (c *client) expectPayload(typ string, v any) Message {
	c.t.Helper()
	m := c.expect(typ)
	if err := json.Unmarshal(m.Payload, v); err != nil {
		c.t.Fatalf("%s: %s payload %s: %v", c.name, typ, m.Payload, err)
	}
	return m
}

// expectNo checks that no message of type typ comes within d.
func (c *client) expectNo(typ string, d time.Duration) {
	c.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m, ok := <-c.in:
			if !ok {
				return
			}
			if m.Type == typ {
				c.t.Fatalf("%s: unexpected %s: %s", c.name, typ, m.Payload)
			}
		case <-deadline:
			return
		}
	}
}

// expectClose waits for the connection to end with code.
func (c *client) expectClose(code int) {
	c.t.Helper()
	select {
	case got := <-c.closed:
		if got != code {
			c.t.Fatalf("%s: closed with %d, want %d", c.name, got, code)
		}
	case <-time.After(5 * time.Second):
		c.t.Fatalf("%s: not closed within 5 s (want %d)", c.name, code)
	}
}

// expectError returns the next error message's code.
func (c *client) expectError() ErrorPayload {
	c.t.Helper()
	var e ErrorPayload
	c.expectPayload(TError, &e)
	return e
}
