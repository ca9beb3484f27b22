package signaling

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"

	"duikou/signaling/sfu"
)

// The media tests run real pion peers in the test process, over UDP on
// 127.0.0.1 only. The publisher sends VP8 from testdata/testsrc-160x120.ivf
// (2 s of ffmpeg's testsrc at 15 fps, made with
// `ffmpeg -f lavfi -i testsrc=size=160x120:rate=15 -t 2 -c:v libvpx -b:v 100k -g 15 -f ivf`)
// in a loop, and Opus silence frames.

func newMediaHarness(t testing.TB, change func(*Config)) (*harness, *sfu.Router) {
	t.Helper()
	router, err := sfu.NewRouter(sfu.Config{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *Config) {
		c.Media = router
		if change != nil {
			change(c)
		}
	})
	return h, router
}

// peer is a test participant with a PeerConnection answering the server.
type peer struct {
	t      testing.TB
	name   string
	pc     *webrtc.PeerConnection
	ws     atomic.Pointer[client]
	mu     sync.Mutex
	tracks map[string]*recvTrack // by track id
	errs   chan error
	plis   atomic.Int64 // key-frame requests the server sent this publisher
	offers atomic.Int64 // offers answered
	// onRTP, when set before connecting, sees every received packet.
	onRTP func(kind string, payload []byte)
}

type recvTrack struct {
	stream, id, kind, mime string
	ssrc                   uint32
	packets                atomic.Int64
}

func newPeer(t testing.TB, name string, router *sfu.Router) *peer {
	t.Helper()
	pc, err := router.API().NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{t: t, name: name, pc: pc, tracks: map[string]*recvTrack{}, errs: make(chan error, 16)}
	t.Cleanup(func() { pc.Close() })
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		ci := c.ToJSON()
		if ws := p.ws.Load(); ws != nil {
			_ = ws.trySend(TCandidate, CandidatePayload{Candidate: ci.Candidate, SDPMid: ci.SDPMid, SDPMLineIndex: ci.SDPMLineIndex})
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		rt := &recvTrack{stream: tr.StreamID(), id: tr.ID(), kind: tr.Kind().String(), mime: tr.Codec().MimeType, ssrc: uint32(tr.SSRC())}
		p.mu.Lock()
		p.tracks[rt.id] = rt
		p.mu.Unlock()
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			rt.packets.Add(1)
			if p.onRTP != nil {
				p.onRTP(rt.kind, pkt.Payload)
			}
		}
	})
	return p
}

// hook answers the server's offers and takes its candidates.
func (p *peer) hook(c *client, m Message) bool {
	switch m.Type {
	case TOffer:
		var sp SDPPayload
		if err := json.Unmarshal(m.Payload, &sp); err != nil {
			p.errs <- err
			return true
		}
		if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sp.SDP}); err != nil {
			p.errs <- err
			return true
		}
		ans, err := p.pc.CreateAnswer(nil)
		if err == nil {
			err = p.pc.SetLocalDescription(ans)
		}
		if err != nil {
			p.errs <- err
			return true
		}
		_ = c.trySend(TAnswer, SDPPayload{SDP: ans.SDP})
		p.offers.Add(1)
		return true
	case TCandidate:
		var cp CandidatePayload
		if err := json.Unmarshal(m.Payload, &cp); err == nil {
			_ = p.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: cp.Candidate, SDPMid: cp.SDPMid, SDPMLineIndex: cp.SDPMLineIndex})
		}
		return true
	case TError:
		var e ErrorPayload
		_ = json.Unmarshal(m.Payload, &e)
		p.errs <- errors.New(p.name + ": server error: " + e.Code + ": " + e.Message)
	}
	return false
}

// connect dials for p and sends the first message.
func (p *peer) connect(h *harness, typ string, payload any) *client {
	p.t.Helper()
	c, _, err := h.dialHook(p.name, testOrigin, p.hook)
	if err != nil {
		p.t.Fatal(err)
	}
	p.ws.Store(c)
	c.send(typ, payload)
	return c
}

func (p *peer) track(id string) *recvTrack {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tracks[id]
}

func (p *peer) trackCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.tracks)
}

// waitPackets waits until track id has received at least n packets.
func (p *peer) waitPackets(id string, n int64) *recvTrack {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.errs:
			p.t.Fatal(err)
		default:
		}
		if rt := p.track(id); rt != nil && rt.packets.Load() >= n {
			return rt
		}
		time.Sleep(20 * time.Millisecond)
	}
	rt := p.track(id)
	got := int64(0)
	if rt != nil {
		got = rt.packets.Load()
	}
	p.t.Fatalf("%s: track %s has %d packets, want ≥ %d (tracks %d, state %s)", p.name, id, got, n, p.trackCount(), p.pc.ConnectionState())
	return nil
}

// waitVideoStops waits until the publisher's video stops arriving (no
// packet for 400 ms while audio still arrives), within 10 s.
func (p *peer) waitVideoStops() {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		v0, a0 := p.track("pub-video").packets.Load(), p.track("pub-audio").packets.Load()
		time.Sleep(400 * time.Millisecond)
		if p.track("pub-video").packets.Load() == v0 && p.track("pub-audio").packets.Load() > a0 {
			return
		}
	}
	p.t.Fatalf("%s: video still arrives", p.name)
}

// publish adds a VP8 and an Opus track and sends them until ctx ends.
func (p *peer) publish(ctx context.Context) {
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
		snd, err := p.pc.AddTrack(tr)
		if err != nil {
			p.t.Fatal(err)
		}
		go func() { // read RTCP so the interceptors work, and count PLIs
			for {
				pkts, _, err := snd.ReadRTCP()
				if err != nil {
					return
				}
				for _, pk := range pkts {
					if _, ok := pk.(*rtcp.PictureLossIndication); ok {
						p.plis.Add(1)
					}
				}
			}
		}()
	}
	ivf, err := os.ReadFile("testdata/testsrc-160x120.ivf")
	if err != nil {
		p.t.Fatal(err)
	}
	go func() {
		tick := time.NewTicker(time.Second / 15)
		defer tick.Stop()
		var r *ivfreader.IVFReader
		for {
			if r == nil {
				r, _, err = ivfreader.NewWith(bytes.NewReader(ivf))
				if err != nil {
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

func TestPublisherReachesTwoSubscribersWithTheRightTracks(t *testing.T) {
	h, router := newMediaHarness(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// sub1 is in the room before the publisher publishes; sub2 waits in the
	// lobby and is admitted after, so both ways of subscribing run.
	sub1 := newPeer(t, "sub1", router)
	c1 := sub1.connect(h, TJoin, JoinPayload{Room: "r", Token: h.token("r", "sub1", Perms{Subscribe: true, Admit: true})})
	c1.expect(TWelcome)

	pub := newPeer(t, "pub", router)
	pub.publish(ctx)
	cp := pub.connect(h, TJoin, JoinPayload{Room: "r", Token: h.token("r", "pub", teacher)})
	cp.expect(TLobby)
	c1.send(TAdmit, TargetPayload{Participant: "pub"})
	cp.expect(TWelcome)
	var ti TrackInfo
	c1.expectPayload(TTrackPublished, &ti)
	if ti.Participant != "pub" {
		t.Fatalf("track_published %+v", ti)
	}

	sub1.waitPackets("pub-video", 10)
	time.Sleep(600 * time.Millisecond) // past the PLI spacing
	plis := pub.plis.Load()

	sub2 := newPeer(t, "sub2", router)
	c2 := sub2.connect(h, TJoin, JoinPayload{Room: "r", Token: h.token("r", "sub2", viewer)})
	c2.expect(TLobby)
	if sub2.trackCount() != 0 {
		t.Fatal("the lobby received media")
	}
	c1.send(TAdmit, TargetPayload{Participant: "sub2"})
	var w WelcomePayload
	c2.expectPayload(TWelcome, &w)
	if len(w.Tracks) != 2 || w.Tracks[0].Track != "pub-audio" || w.Tracks[1].Kind != "video" {
		t.Fatalf("welcome lists tracks %+v", w.Tracks)
	}

	for _, s := range []*peer{sub1, sub2} {
		v := s.waitPackets("pub-video", 20)
		a := s.waitPackets("pub-audio", 20)
		if v.kind != "video" || v.mime != webrtc.MimeTypeVP8 || v.stream != "pub" {
			t.Fatalf("%s video track %+v", s.name, v)
		}
		if a.kind != "audio" || a.mime != webrtc.MimeTypeOpus || a.stream != "pub" {
			t.Fatalf("%s audio track %+v", s.name, a)
		}
		if s.trackCount() != 2 {
			t.Fatalf("%s has %d tracks", s.name, s.trackCount())
		}
	}
	// The new subscriber needed a key frame: the server asked the publisher.
	if pub.plis.Load() <= plis {
		t.Fatal("no PLI reached the publisher when a subscriber joined")
	}
	// The publisher does not receive its own media.
	if pub.trackCount() != 0 {
		t.Fatalf("publisher receives %d tracks", pub.trackCount())
	}

	// A weak link goes audio only: video stops, audio goes on.
	c2.send(TAudioOnly, AudioOnlyPayload{On: true})
	sub2.waitVideoStops()
	sub2.waitPackets("pub-audio", sub2.track("pub-audio").packets.Load()+10)
	sub1.waitPackets("pub-video", sub1.track("pub-video").packets.Load()+10)

	// A subscriber whose receiver reports say it loses half the packets is
	// told its link is weak (so the page can offer audio only).
	rr := &rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: sub1.track("pub-video").ssrc, FractionLost: 128}}}
	if err := sub1.pc.WriteRTCP([]rtcp.Packet{rr}); err != nil {
		t.Fatal(err)
	}
	var q QualityPayload
	c1.expectPayload(TQuality, &q)
	if q.Track != "pub-video" || q.Participant != "pub" || q.Loss != 0.5 {
		t.Fatalf("quality %+v", q)
	}

	// The publisher leaves: its tracks are unpublished.
	cp.send(TLeave, nil)
	c1.expectPayload(TTrackUnpublished, &ti)
}

func TestReconnectWithinTheWindowKeepsTheSubscription(t *testing.T) {
	h, router := newMediaHarness(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	pub := newPeer(t, "pub", router)
	pub.publish(ctx)
	cp := pub.connect(h, TJoin, JoinPayload{Room: "r", Token: h.token("r", "pub", host)})
	cp.expect(TWelcome)

	sub := newPeer(t, "sub", router)
	cs := sub.connect(h, TJoin, JoinPayload{Room: "r", Token: h.token("r", "sub", Perms{Subscribe: true, Admit: true})})
	var w WelcomePayload
	cs.expectPayload(TWelcome, &w)
	sub.waitPackets("pub-video", 10)

	cs.ws.Close() // signalling drops; the media path stays
	time.Sleep(300 * time.Millisecond)
	cs2 := sub.connect(h, TResume, ResumePayload{Room: "r", Participant: "sub", Secret: w.Secret})
	var w2 WelcomePayload
	cs2.expectPayload(TWelcome, &w2)
	if !w2.Resumed || len(w2.Tracks) != 2 {
		t.Fatalf("resume welcome %+v", w2)
	}
	n := sub.track("pub-video").packets.Load()
	sub.waitPackets("pub-video", n+15)
	if sub.trackCount() != 2 {
		t.Fatalf("after resume %d tracks", sub.trackCount())
	}
	cp.expectNo(TLeft, 300*time.Millisecond)

	// Signalling still works for media on the new connection: going audio
	// only renegotiates over it.
	cs2.send(TAudioOnly, AudioOnlyPayload{On: true})
	sub.waitVideoStops()
}

func TestRejoinFromANewPageGetsMediaOnTheNewPeerConnection(t *testing.T) {
	h, router := newMediaHarness(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub := newPeer(t, "pub", router)
	pub.publish(ctx)
	cp := pub.connect(h, TJoin, JoinPayload{Room: "r", Token: h.token("r", "pub", host)})
	cp.expect(TWelcome)

	old := newPeer(t, "sub", router)
	co := old.connect(h, TJoin, JoinPayload{Room: "r", Token: h.token("r", "sub", Perms{Subscribe: true, Admit: true})})
	co.expect(TWelcome)
	old.waitPackets("pub-video", 10)

	// The page reloads: a new PeerConnection and a fresh token, same
	// participant. The old connection is replaced, the new one gets media.
	fresh := newPeer(t, "sub (reloaded)", router)
	cf := fresh.connect(h, TJoin, JoinPayload{Room: "r", Token: h.token("r", "sub", Perms{Subscribe: true, Admit: true})})
	co.expectClose(CloseReplaced)
	var w WelcomePayload
	cf.expectPayload(TWelcome, &w)
	fresh.waitPackets("pub-video", 10)
	fresh.waitPackets("pub-audio", 10)
	cp.expectNo(TLeft, 200*time.Millisecond)
}

func TestSpeakingFollowsThePublishersAudioLevel(t *testing.T) {
	h, router := newMediaHarness(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	listener := h.join("r", "host", host)
	pub := newPeer(t, "pub", router)
	audio, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", "local")
	if err != nil {
		t.Fatal(err)
	}
	snd, err := pub.pc.AddTrack(audio)
	if err != nil {
		t.Fatal(err)
	}
	var loud atomic.Bool
	loud.Store(true)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var seq uint16
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			var id int
			for _, e := range snd.GetParameters().HeaderExtensions {
				if e.URI == sdp.AudioLevelURI {
					id = e.ID
				}
			}
			if id == 0 {
				continue // not negotiated yet
			}
			level := uint8(127) // silence
			if loud.Load() {
				level = 20 // -20 dBov: a voice
			}
			ext, _ := rtp.AudioLevelExtension{Level: level, Voice: true}.Marshal()
			seq++
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 960}, Payload: []byte{0xf8, 0xff, 0xfe}}
			if err := pkt.Header.SetExtension(uint8(id), ext); err != nil {
				return
			}
			_ = audio.WriteRTP(pkt)
		}
	}()
	cp := pub.connect(h, TJoin, JoinPayload{Room: "r", Token: h.token("r", "pub", host)})
	cp.expect(TWelcome)

	var sp SpeakingPayload
	listener.expectPayload(TSpeaking, &sp)
	if sp.Participant != "pub" || !sp.Speaking {
		t.Fatalf("speaking %+v", sp)
	}
	loud.Store(false)
	listener.expectPayload(TSpeaking, &sp)
	if sp.Participant != "pub" || sp.Speaking {
		t.Fatalf("after silence %+v", sp)
	}
}

func TestICERestartKeepsMediaFlowing(t *testing.T) {
	h, router := newMediaHarness(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub := newPeer(t, "pub", router)
	pub.publish(ctx)
	cp := pub.connect(h, TJoin, JoinPayload{Room: "r", Token: h.token("r", "pub", host)})
	cp.expect(TWelcome)
	sub := newPeer(t, "sub", router)
	cs := sub.connect(h, TJoin, JoinPayload{Room: "r", Token: h.token("r", "sub", Perms{Subscribe: true, Admit: true})})
	cs.expect(TWelcome)
	sub.waitPackets("pub-video", 10)

	ufrag := func() string {
		for _, l := range strings.Split(sub.pc.RemoteDescription().SDP, "\r\n") {
			if v, ok := strings.CutPrefix(l, "a=ice-ufrag:"); ok {
				return v
			}
		}
		return ""
	}
	before, offers := ufrag(), sub.offers.Load()
	rm := h.srv.room("r", false)
	rm.mu.Lock()
	peer := rm.parts["sub"].peer
	rm.mu.Unlock()
	peer.RestartICE() // what a failed media path or a resume after one triggers

	deadline := time.Now().Add(5 * time.Second)
	for sub.offers.Load() == offers && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if after := ufrag(); after == before || after == "" {
		t.Fatalf("no ICE restart: ufrag %q → %q", before, after)
	}
	sub.waitPackets("pub-video", sub.track("pub-video").packets.Load()+20)
}

// A participant who joins for the messages only (no_media) is in the room
// like any other, chat and all, but the server opens no PeerConnection for
// it: no offer comes, and an answer is refused. A media participant in the
// same room still receives the publisher.
func TestMessagesOnlyParticipantGetsNoPeerConnection(t *testing.T) {
	h, router := newMediaHarness(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	pub := newPeer(t, "pub", router)
	pub.publish(ctx)
	cp := pub.connect(h, TJoin, JoinPayload{Room: "r", Token: h.token("r", "pub", host)})
	cp.expect(TWelcome)
	sub := newPeer(t, "sub", router)
	cs := sub.connect(h, TJoin, JoinPayload{Room: "r", Token: h.token("r", "sub", Perms{Subscribe: true, Admit: true})})
	cs.expect(TWelcome)
	sub.waitPackets("pub-video", 10)

	phone := h.mustDial("phone")
	phone.send(TJoin, JoinPayload{Room: "r", Token: h.token("r", "phone", Perms{Publish: true, Subscribe: true, Admit: true}), NoMedia: true})
	var w WelcomePayload
	phone.expectPayload(TWelcome, &w)
	if len(w.Tracks) != 2 {
		t.Fatalf("the welcome lists %d tracks, want the publisher's 2 (the room is the same)", len(w.Tracks))
	}
	cp.send(TChat, ChatPayload{Text: "请看第三张片子"})
	var chat ChatPayload
	phone.expectPayload(TChat, &chat)
	if chat.From != "pub" {
		t.Fatalf("chat from %q", chat.From)
	}
	phone.expectNo(TOffer, time.Second)
	phone.send(TAnswer, SDPPayload{SDP: "v=0"})
	var e ErrorPayload
	phone.expectPayload(TError, &e)
	if !strings.Contains(e.Message, "no media connection") {
		t.Fatalf("an answer without a PeerConnection: %+v", e)
	}
	sub.waitPackets("pub-video", 40)
}
