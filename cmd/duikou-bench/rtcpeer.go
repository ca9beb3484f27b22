package main

// The synthetic participants of `duikou-bench rtc`: a signalling client (one
// WebSocket, one reader goroutine, messages handed to a callback) and a pion
// peer that answers the server's offers, publishes real VP8 and Opus frames
// from the fixtures in testdata, and counts the RTP it receives by sequence
// number.

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	"duikou/signaling"
)

// The media fixtures, real encoded frames (made with ffmpeg's test source):
//
//	ffmpeg -f lavfi -i testsrc2=size=640x360:rate=30 -t 10 -c:v libvpx -b:v 1500k -minrate 1500k -maxrate 1500k \
//		-g 60 -deadline realtime -cpu-used 8 testsrc2-640x360-30fps-1500k.ivf
//	ffmpeg -f lavfi -i testsrc2=size=160x120:rate=15 -t 4 -c:v libvpx -b:v 100k -g 30 -deadline realtime \
//		-cpu-used 8 testsrc2-160x120-15fps-100k.ivf
//	ffmpeg -f lavfi -i sine=frequency=440:sample_rate=48000 -t 10 -c:a libopus -b:a 32k -page_duration 20000 tone-48k-32k.ogg
//
// The first (about 1.4 Mbit/s) is the teaching round's camera; the second,
// small one is what each of the media-join scenario's many publishers sends.
var (
	//go:embed testdata/testsrc2-640x360-30fps-1500k.ivf
	videoHigh []byte
	//go:embed testdata/testsrc2-160x120-15fps-100k.ivf
	videoLow []byte
	//go:embed testdata/tone-48k-32k.ogg
	audioOgg []byte
)

// benchAPI is the WebRTC API of the synthetic peers: loopback UDP only, mDNS
// off, the default codecs and no interceptors, so a subscriber neither
// NACKs (loss is counted as it happened on the wire) nor spends CPU the
// server would not be charged for.
func benchAPI() (*webrtc.API, error) { return newBenchAPI(nil) }

// sentCounter counts the RTP packets a publisher's PeerConnection writes,
// video and audio apart: what every subscriber should receive.
type sentCounter struct {
	interceptor.NoOp
	video, audio atomic.Int64
}

func (s *sentCounter) NewInterceptor(string) (interceptor.Interceptor, error) { return s, nil }

func (s *sentCounter) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	n := &s.audio
	if strings.HasPrefix(strings.ToLower(info.MimeType), "video/") {
		n = &s.video
	}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		n.Add(1)
		return w.Write(h, payload, a)
	})
}

func newBenchAPI(count *sentCounter) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if count != nil {
		ir.Add(count)
	}
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(ir)), nil
}

// wsClient is one signalling connection.
type wsClient struct {
	ws     *websocket.Conn
	wmu    sync.Mutex
	seq    uint64
	handle func(typ string, payload []byte)
	closed chan struct{}
	code   atomic.Int64 // close code, -1 without a close frame
}

func dialSignal(ctx context.Context, wsURL, origin string, handle func(typ string, payload []byte)) (*wsClient, error) {
	d := websocket.Dialer{Subprotocols: []string{signaling.Subprotocol}, HandshakeTimeout: 20 * time.Second,
		ReadBufferSize: 1024, WriteBufferSize: 1024}
	ws, _, err := d.DialContext(ctx, wsURL, http.Header{"Origin": {origin}})
	if err != nil {
		return nil, err
	}
	c := &wsClient{ws: ws, handle: handle, closed: make(chan struct{})}
	go c.read()
	return c, nil
}

func (c *wsClient) read() {
	defer close(c.closed)
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			code := -1
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				code = ce.Code
			}
			c.code.Store(int64(code))
			return
		}
		// The server writes the envelope's type first and the payload
		// last; the client picks them out without decoding the whole
		// message (5,000 clients share this process's CPU).
		typ, payload, ok := envelope(b)
		if ok {
			c.handle(typ, payload)
		}
	}
}

// envelope is the type and the raw payload of a server message written as
// {"type":"T","seq":N[,"re":N][,"payload":P]}.
func envelope(b []byte) (string, []byte, bool) {
	rest, ok := bytes.CutPrefix(b, []byte(`{"type":"`))
	if !ok {
		return "", nil, false
	}
	i := bytes.IndexByte(rest, '"')
	if i < 0 {
		return "", nil, false
	}
	typ := string(rest[:i])
	var payload []byte
	if j := bytes.Index(rest, []byte(`,"payload":`)); j >= 0 && len(rest) > 0 && rest[len(rest)-1] == '}' {
		payload = rest[j+len(`,"payload":`) : len(rest)-1]
	}
	return typ, payload, true
}

// send writes one message; payload is JSON already (nil for none).
func (c *wsClient) send(typ string, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.seq++
	var b bytes.Buffer
	b.WriteString(`{"type":"`)
	b.WriteString(typ)
	b.WriteString(`","seq":`)
	b.WriteString(strconv.FormatUint(c.seq, 10))
	if payload != nil {
		b.WriteString(`,"payload":`)
		b.Write(payload)
	}
	b.WriteString("}")
	c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, b.Bytes())
}

func (c *wsClient) close() {
	c.wmu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.wmu.Unlock()
	c.ws.Close()
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// rtpTrack counts one received track's packets and the highest extended
// sequence number seen, so that loss over a window is the growth of the
// sequence range less the packets that came.
type rtpTrack struct {
	kind     string
	mu       sync.Mutex
	packets  int64
	maxSeq   int64 // extended; -1 before the first packet
	lastSeq  uint16
	cycles   int64
	firstAt  time.Time
	started  bool
	received atomic.Int64
}

func (t *rtpTrack) packet(seq uint16) {
	t.mu.Lock()
	if !t.started {
		t.started, t.firstAt, t.lastSeq, t.maxSeq = true, time.Now(), seq, int64(seq)
	} else {
		// A step back across the wrap is a new cycle; a small step back
		// is a late packet (counted, the range unchanged).
		if seq < t.lastSeq && t.lastSeq-seq > 0x8000 {
			t.cycles++
		}
		if ext := t.cycles<<16 | int64(seq); ext > t.maxSeq {
			t.maxSeq = ext
			t.lastSeq = seq
		}
	}
	t.packets++
	t.mu.Unlock()
	t.received.Add(1)
}

// snapshot is (packets, highest extended seq).
func (t *rtpTrack) snapshot() (int64, int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.packets, t.maxSeq
}

// mediaPeer is a participant's PeerConnection with the relay.
type mediaPeer struct {
	pc     *webrtc.PeerConnection
	ws     atomic.Pointer[wsClient]
	mu     sync.Mutex
	tracks []*rtpTrack
	first  chan time.Time // the first RTP packet of any track
	once   sync.Once
	errs   atomic.Int64
}

func newMediaPeer(api *webrtc.API) (*mediaPeer, error) {
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	p := &mediaPeer{pc: pc, first: make(chan time.Time, 1)}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		ci := c.ToJSON()
		if ws := p.ws.Load(); ws != nil {
			_ = ws.send(signaling.TCandidate, mustJSON(signaling.CandidatePayload{Candidate: ci.Candidate, SDPMid: ci.SDPMid, SDPMLineIndex: ci.SDPMLineIndex}))
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		rt := &rtpTrack{kind: tr.Kind().String(), maxSeq: -1}
		p.mu.Lock()
		p.tracks = append(p.tracks, rt)
		p.mu.Unlock()
		buf := make([]byte, 1500)
		for {
			n, _, err := tr.Read(buf)
			if err != nil {
				return
			}
			if n < 12 {
				continue
			}
			p.once.Do(func() { p.first <- time.Now() })
			rt.packet(uint16(buf[2])<<8 | uint16(buf[3]))
		}
	})
	return p, nil
}

// signal handles the server's offers and candidates; it reports whether
// the message was one of those.
func (p *mediaPeer) signal(typ string, payload []byte) bool {
	switch typ {
	case signaling.TOffer:
		var sp signaling.SDPPayload
		if err := json.Unmarshal(payload, &sp); err != nil {
			p.errs.Add(1)
			return true
		}
		err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sp.SDP})
		var ans webrtc.SessionDescription
		if err == nil {
			ans, err = p.pc.CreateAnswer(nil)
		}
		if err == nil {
			err = p.pc.SetLocalDescription(ans)
		}
		if err != nil {
			p.errs.Add(1)
			return true
		}
		if ws := p.ws.Load(); ws != nil {
			_ = ws.send(signaling.TAnswer, mustJSON(signaling.SDPPayload{SDP: ans.SDP}))
		}
		return true
	case signaling.TCandidate:
		var cp signaling.CandidatePayload
		if json.Unmarshal(payload, &cp) == nil {
			_ = p.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: cp.Candidate, SDPMid: cp.SDPMid, SDPMLineIndex: cp.SDPMLineIndex})
		}
		return true
	}
	return false
}

func (p *mediaPeer) videoTracks() []*rtpTrack {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*rtpTrack
	for _, t := range p.tracks {
		if t.kind == "video" {
			out = append(out, t)
		}
	}
	return out
}

func (p *mediaPeer) allTracks() []*rtpTrack {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*rtpTrack(nil), p.tracks...)
}

// publisher counts what a publishing peer sent.
type publisher struct {
	videoPackets, audioPackets atomic.Int64
	videoBytes                 atomic.Int64
}

// publish adds a VP8 track looping the IVF ivf and an Opus track looping
// the OGG fixture, paced in real time until ctx ends. Call it before the
// join, so the first answer carries both.
func (p *mediaPeer) publish(ctx context.Context, ivf []byte) (*publisher, error) {
	video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "cam", "local")
	if err != nil {
		return nil, err
	}
	audio, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "mic", "local")
	if err != nil {
		return nil, err
	}
	for _, tr := range []webrtc.TrackLocal{audio, video} {
		snd, err := p.pc.AddTrack(tr)
		if err != nil {
			return nil, err
		}
		go func() { // read RTCP (PLI from the relay), which pion needs drained
			for {
				if _, _, err := snd.ReadRTCP(); err != nil {
					return
				}
			}
		}()
	}
	pub := &publisher{}
	// Video: frames at the file's rate, looping; the timebase comes from
	// the IVF header.
	go func() {
		var r *ivfreader.IVFReader
		var frameDur time.Duration
		next := time.Now()
		for ctx.Err() == nil {
			if r == nil {
				var h *ivfreader.IVFFileHeader
				var err error
				if r, h, err = ivfreader.NewWith(bytes.NewReader(ivf)); err != nil {
					return
				}
				frameDur = time.Duration(float64(time.Second) * float64(h.TimebaseNumerator) / float64(h.TimebaseDenominator))
				if frameDur <= 0 || frameDur > time.Second {
					frameDur = time.Second / 30
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
			next = next.Add(frameDur)
			if d := time.Until(next); d > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			}
			if video.WriteSample(media.Sample{Data: frame, Duration: frameDur}) == nil {
				pub.videoPackets.Add(int64((len(frame) + 1099) / 1100)) // pion's packetizer: about 1,200-byte packets
				pub.videoBytes.Add(int64(len(frame)))
			}
		}
	}()
	go func() {
		var r *oggreader.OggReader
		var lastGranule uint64
		next := time.Now()
		for ctx.Err() == nil {
			if r == nil {
				var err error
				if r, _, err = oggreader.NewWith(bytes.NewReader(audioOgg)); err != nil {
					return
				}
				lastGranule = 0
			}
			page, h, err := r.ParseNextPage()
			if errors.Is(err, io.EOF) {
				r = nil
				continue
			}
			if err != nil {
				return
			}
			if h.GranulePosition <= lastGranule || len(page) == 0 {
				continue // the OpusHead and OpusTags pages
			}
			d := time.Duration(h.GranulePosition-lastGranule) * time.Second / 48000
			lastGranule = h.GranulePosition
			next = next.Add(d)
			if w := time.Until(next); w > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(w):
				}
			}
			if audio.WriteSample(media.Sample{Data: page, Duration: d}) == nil {
				pub.audioPackets.Add(1)
			}
		}
	}()
	return pub, nil
}

func (p *mediaPeer) close() { _ = p.pc.Close() }
