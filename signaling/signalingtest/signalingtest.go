// Package signalingtest is a signalling and media client for tests of code
// that serves package signaling's WebSocket (the HTTP wiring, end-to-end
// tests): a WebSocket client that reads every server message into a
// channel, and a pion peer that answers the server's offers, publishes VP8
// and Opus, and counts the RTP it receives. Media stays on 127.0.0.1 when
// the peer is built with a loopback-only sfu.Router's API.
package signalingtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"

	"duikou/signaling"
)

// Wait is how long Expect and friends wait: generous, because a test on a
// loaded machine asserts that something happens, not how fast.
var Wait = 10 * time.Second

// Client is one WebSocket to the signalling server.
type Client struct {
	t    testing.TB
	Name string
	WS   *websocket.Conn
	mu   sync.Mutex
	seq  uint64
	hook func(signaling.Message) bool
	// In receives every server message the hook did not keep; it is closed
	// when the connection ends, after Closed has the close code (-1 for an
	// end without a close frame).
	In     chan signaling.Message
	Closed chan int
}

// Dial opens the WebSocket at url from origin, offering subprotocols (the
// signalling one is added). hook, when not nil, sees every message first and
// keeps those it returns true for.
func Dial(t testing.TB, name, url, origin string, hook func(*Client, signaling.Message) bool, subprotocols ...string) (*Client, *http.Response, error) {
	hdr := http.Header{}
	if origin != "" {
		hdr.Set("Origin", origin)
	}
	d := websocket.Dialer{Subprotocols: append([]string{signaling.Subprotocol}, subprotocols...), HandshakeTimeout: Wait}
	ws, resp, err := d.Dial(url, hdr)
	if err != nil {
		return nil, resp, err
	}
	c := &Client{t: t, Name: name, WS: ws, In: make(chan signaling.Message, 512), Closed: make(chan int, 1)}
	if hook != nil {
		c.hook = func(m signaling.Message) bool { return hook(c, m) }
	}
	go c.read()
	t.Cleanup(func() { ws.Close() })
	return c, resp, nil
}

func (c *Client) read() {
	for {
		_, b, err := c.WS.ReadMessage()
		if err != nil {
			code := -1
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				code = ce.Code
			}
			c.Closed <- code
			close(c.In)
			return
		}
		var m signaling.Message
		if err := json.Unmarshal(b, &m); err != nil {
			c.t.Errorf("%s: server sent %q: %v", c.Name, b, err)
			continue
		}
		if c.hook != nil && c.hook(m) {
			continue
		}
		c.In <- m
	}
}

// Send sends a message with the next seq; it fails the test on error.
func (c *Client) Send(typ string, payload any) {
	c.t.Helper()
	if err := c.TrySend(typ, payload); err != nil {
		c.t.Fatalf("%s: send %s: %v", c.Name, typ, err)
	}
}

// TrySend is Send for goroutines other than the test's.
func (c *Client) TrySend(typ string, payload any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	m := signaling.Message{Type: typ, Seq: c.seq}
	if payload != nil {
		b, err := json.Marshal(payload)
		if err != nil {
			return err
		}
		m.Payload = b
	}
	return c.WS.WriteJSON(m)
}

// Expect returns the next message of type typ, skipping others.
func (c *Client) Expect(typ string) signaling.Message {
	c.t.Helper()
	deadline := time.After(Wait)
	for {
		select {
		case m, ok := <-c.In:
			if !ok {
				c.t.Fatalf("%s: connection closed while waiting for %s", c.Name, typ)
			}
			if m.Type == typ {
				return m
			}
		case <-deadline:
			c.t.Fatalf("%s: no %s within %s", c.Name, typ, Wait)
		}
	}
}

// ExpectPayload decodes the next message of type typ into v.
func (c *Client) ExpectPayload(typ string, v any) signaling.Message {
	c.t.Helper()
	m := c.Expect(typ)
	if err := json.Unmarshal(m.Payload, v); err != nil {
		c.t.Fatalf("%s: %s payload %s: %v", c.Name, typ, m.Payload, err)
	}
	return m
}

// ExpectClose waits for the connection to end with code.
func (c *Client) ExpectClose(code int) {
	c.t.Helper()
	select {
	case got := <-c.Closed:
		if got != code {
			c.t.Fatalf("%s: closed with %d, want %d", c.Name, got, code)
		}
	case <-time.After(Wait):
		c.t.Fatalf("%s: not closed within %s (want %d)", c.Name, Wait, code)
	}
}

// Peer is a participant's PeerConnection: it answers the server's offers
// and trickles candidates through its current Client.
type Peer struct {
	t      testing.TB
	Name   string
	PC     *webrtc.PeerConnection
	ws     atomic.Pointer[Client]
	mu     sync.Mutex
	tracks map[string]*Track
	errs   chan error
}

// Track is a received track and its packet count.
type Track struct {
	Stream, ID, Kind, Mime string
	Packets                atomic.Int64
}

// NewPeer builds a peer with api (use the relay's: sfu.Router.API, which
// is loopback-only when the router is).
func NewPeer(t testing.TB, name string, api *webrtc.API) *Peer {
	t.Helper()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	p := &Peer{t: t, Name: name, PC: pc, tracks: map[string]*Track{}, errs: make(chan error, 16)}
	t.Cleanup(func() { pc.Close() })
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		ci := c.ToJSON()
		if ws := p.ws.Load(); ws != nil {
			_ = ws.TrySend(signaling.TCandidate, signaling.CandidatePayload{Candidate: ci.Candidate, SDPMid: ci.SDPMid, SDPMLineIndex: ci.SDPMLineIndex})
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		rt := &Track{Stream: tr.StreamID(), ID: tr.ID(), Kind: tr.Kind().String(), Mime: tr.Codec().MimeType}
		p.mu.Lock()
		p.tracks[rt.ID] = rt
		p.mu.Unlock()
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			rt.Packets.Add(1)
		}
	})
	return p
}

// Hook answers offers and takes candidates; pass it to Dial.
func (p *Peer) Hook(c *Client, m signaling.Message) bool {
	switch m.Type {
	case signaling.TOffer:
		var sp signaling.SDPPayload
		if err := json.Unmarshal(m.Payload, &sp); err != nil {
			p.errs <- err
			return true
		}
		err := p.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sp.SDP})
		var ans webrtc.SessionDescription
		if err == nil {
			ans, err = p.PC.CreateAnswer(nil)
		}
		if err == nil {
			err = p.PC.SetLocalDescription(ans)
		}
		if err != nil {
			p.errs <- err
			return true
		}
		_ = c.TrySend(signaling.TAnswer, signaling.SDPPayload{SDP: ans.SDP})
		return true
	case signaling.TCandidate:
		var cp signaling.CandidatePayload
		if err := json.Unmarshal(m.Payload, &cp); err == nil {
			_ = p.PC.AddICECandidate(webrtc.ICECandidateInit{Candidate: cp.Candidate, SDPMid: cp.SDPMid, SDPMLineIndex: cp.SDPMLineIndex})
		}
		return true
	}
	return false
}

// Connect dials url for p (its Hook installed) and sends the first message.
func (p *Peer) Connect(url, origin, typ string, payload any, subprotocols ...string) *Client {
	p.t.Helper()
	c, _, err := Dial(p.t, p.Name, url, origin, p.Hook, subprotocols...)
	if err != nil {
		p.t.Fatal(err)
	}
	p.ws.Store(c)
	c.Send(typ, payload)
	return c
}

// Track returns the received track with id, or nil.
func (p *Peer) Track(id string) *Track {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tracks[id]
}

// WaitPackets waits until track id has received at least n packets.
func (p *Peer) WaitPackets(id string, n int64) *Track {
	p.t.Helper()
	deadline := time.Now().Add(Wait)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.errs:
			p.t.Fatalf("%s: %v", p.Name, err)
		default:
		}
		if rt := p.Track(id); rt != nil && rt.Packets.Load() >= n {
			return rt
		}
		time.Sleep(20 * time.Millisecond)
	}
	got := int64(0)
	if rt := p.Track(id); rt != nil {
		got = rt.Packets.Load()
	}
	p.t.Fatalf("%s: track %s has %d packets, want ≥ %d (state %s)", p.Name, id, got, n, p.PC.ConnectionState())
	return nil
}

// Publish adds a VP8 track, looping the frames of ivf (an IVF file), and an
// Opus track of silence, and sends both until ctx ends. Call it before
// Connect, so the first answer carries the tracks.
func (p *Peer) Publish(ctx context.Context, ivf []byte) {
	p.t.Helper()
	video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "cam", "local")
	if err != nil {
		p.t.Fatal(err)
	}
	audio, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "mic", "local")
	if err != nil {
		p.t.Fatal(err)
	}
	for _, tr := range []webrtc.TrackLocal{audio, video} {
		snd, err := p.PC.AddTrack(tr)
		if err != nil {
			p.t.Fatal(err)
		}
		go func() { // read RTCP so the interceptors work
			for {
				if _, _, err := snd.ReadRTCP(); err != nil {
					return
				}
			}
		}()
	}
	go func() {
		tick := time.NewTicker(time.Second / 15)
		defer tick.Stop()
		var r *ivfreader.IVFReader
		for {
			if r == nil {
				var err error
				if r, _, err = ivfreader.NewWith(bytes.NewReader(ivf)); err != nil {
					return
				}
			}
			frame, _, err := r.ParseNextFrame()
			if errors.Is(err, io.EOF) {
				r = nil
				continue
			}
			if err != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			_ = video.WriteSample(media.Sample{Data: frame, Duration: time.Second / 15})
		}
	}()
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		silence := []byte{0xf8, 0xff, 0xfe}
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			_ = audio.WriteSample(media.Sample{Data: silence, Duration: 20 * time.Millisecond})
		}
	}()
}
