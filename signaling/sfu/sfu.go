// Package sfu is the media relay: every participant has one PeerConnection
// with the server, publishes its audio and video to it once, and the server
// forwards each RTP packet to every subscriber. The server is always the
// offerer: it renegotiates whenever tracks come or go, and the client only
// answers, so offers never collide (no glare handling needed).
//
// Forwarding follows pion's broadcast example: one TrackLocalStaticRTP per
// published track, bound to each subscriber's PeerConnection, so a packet is
// read once and written to every binding with its SSRC and payload type
// rewritten, with no per-subscriber queue or goroutine. NACKs from a
// subscriber are answered from one history of the track's latest packets,
// shared by all its subscribers, to that subscriber alone; PLI and FIR from subscribers are passed to the publisher (at most
// one per track every 500 ms, so a hundred viewers do not flood it), and a
// new subscriber asks for a key frame at once.
//
// Only the NACK generator (towards publishers) and the RTCP report
// interceptors are installed (no NACK responder, no TWCC, no stats
// interceptor): each forwarded stream costs a write per packet and no copy,
// which is what the 150-viewer teaching round needs.
package sfu

import (
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Config configures the relay.
type Config struct {
	// ICEServers the server's own PeerConnections use (a TURN server when
	// the server itself sits behind NAT; usually none).
	ICEServers []webrtc.ICEServer
	// LoopbackOnly restricts ICE to UDP on 127.0.0.1 with mDNS off: tests
	// run real peers in one process without touching any other network.
	LoopbackOnly bool
	// UDPPortMin/Max bound the ephemeral UDP ports (0: any).
	UDPPortMin, UDPPortMax uint16
	// NAT1To1IPs are the public addresses announced as host candidates when
	// the server runs behind a 1:1 NAT.
	NAT1To1IPs []string
	Logger     *slog.Logger
}

// Router holds what every PeerConnection shares: the codecs, the
// interceptors and the ICE settings.
type Router struct {
	api *webrtc.API
	cfg Config
	log *slog.Logger
}

// NewRouter builds the shared WebRTC API.
func NewRouter(cfg Config) (*Router, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	// Publishers mark each audio packet with its level (RFC 6464), so the
	// relay can tell who speaks without decoding audio.
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	// NACK: the generator asks publishers to resend what the relay
	// missed; the relay answers subscribers' NACKs itself from one history
	// per track (see history), not with pion's responder interceptor,
	// which keeps a copy of every packet per subscriber stream: 150
	// viewers of one camera were 150 copies of each packet and 150 rings
	// of 1,024 packets (about 200 MiB).
	ir := &interceptor.Registry{}
	gen, err := nack.NewGeneratorInterceptor()
	if err != nil {
		return nil, err
	}
	m.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack"}, webrtc.RTPCodecTypeVideo)
	m.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack", Parameter: "pli"}, webrtc.RTPCodecTypeVideo)
	ir.Add(gen)
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if cfg.LoopbackOnly {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	if cfg.UDPPortMin != 0 || cfg.UDPPortMax != 0 {
		if err := se.SetEphemeralUDPPortRange(cfg.UDPPortMin, cfg.UDPPortMax); err != nil {
			return nil, err
		}
	}
	if len(cfg.NAT1To1IPs) > 0 {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        cfg.NAT1To1IPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
		}); err != nil {
			return nil, err
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	se.LoggerFactory = slogFactory{log}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	return &Router{api: api, cfg: cfg, log: log}, nil
}

// API exposes the configured WebRTC API (tests build their client peers with
// the same loopback settings).
func (r *Router) API() *webrtc.API { return r.api }

// Signal is how a peer's offers and ICE candidates reach its client; both
// must not block (the signalling layer queues them).
type Signal interface {
	Offer(sdp string)
	Candidate(c webrtc.ICECandidateInit)
}

// Events tell the room what happens to media.
type Events interface {
	TrackPublished(t Track)
	TrackUnpublished(t Track)
	// Quality reports a subscriber's loss on one track from its receiver
	// reports (only when it crosses 2 %, then at most every 5 s).
	Quality(subscriber string, t Track, fractionLost float64)
	// Speaking reports a publisher starting or stopping to speak.
	Speaking(publisher string, on bool)
}

// Track is a published track as subscribers see it.
type Track struct {
	Publisher string // participant id, also the stream id
	ID        string // "<publisher>-<kind>"
	Kind      string // audio or video
}

// Session is one room's relay.
type Session struct {
	r      *Router
	events Events

	mu     sync.Mutex
	peers  map[string]*Peer
	tracks map[string]*forward // by Track.ID
	closed bool
}

// NewSession starts a room's relay.
func (r *Router) NewSession(events Events) *Session {
	return &Session{r: r, events: events, peers: map[string]*Peer{}, tracks: map[string]*forward{}}
}

// forward is one published track and its fan-out.
type forward struct {
	info       Track
	local      *fanTrack
	hist       *history // video only: what a subscriber's NACK may ask again
	pub        *Peer
	ssrc       uint32
	plimu      sync.Mutex
	lastPLI    time.Time
	pliPending bool
}

// askKeyFrame sends a PLI to the publisher, at most one every 500 ms:
// requests inside that spacing are folded into one sent when it ends, so
// none is lost and a room of viewers joining at once costs one key frame.
func (f *forward) askKeyFrame() {
	if f.info.Kind != "video" {
		return
	}
	f.plimu.Lock()
	if f.pliPending {
		f.plimu.Unlock()
		return
	}
	wait := pliSpacing - time.Since(f.lastPLI)
	if wait <= 0 {
		f.lastPLI = time.Now()
		f.plimu.Unlock()
		f.sendPLI()
		return
	}
	f.pliPending = true
	f.plimu.Unlock()
	time.AfterFunc(wait, func() {
		f.plimu.Lock()
		f.pliPending = false
		f.lastPLI = time.Now()
		f.plimu.Unlock()
		f.sendPLI()
	})
}

const pliSpacing = 500 * time.Millisecond

func (f *forward) sendPLI() {
	_ = f.pub.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: f.ssrc}})
}

// Peer is one participant's PeerConnection.
type Peer struct {
	id        string
	s         *Session
	pc        *webrtc.PeerConnection
	sig       Signal
	publish   bool
	subscribe bool

	mu        sync.Mutex
	senders   map[string]*webrtc.RTPSender // by Track.ID
	fresh     []*forward                   // attached since the last answer: they need a key frame once it is applied
	audioOnly bool
	awaiting  bool // an offer is out, its answer not yet in
	again     bool // something changed while awaiting: offer again after the answer
	restart   bool // the next offer restarts ICE
	// restarting: the offer out restarts ICE. Its answer carries new ICE
	// credentials; one with the old ones answers an offer rolled back
	// before it (see RestartICE) and is dropped.
	restarting bool
	early      []webrtc.ICECandidateInit
	closed     bool
}

// ErrClosed is returned for a peer or session already closed.
var ErrClosed = errors.New("sfu: closed")

// AddPeer creates id's PeerConnection. A publisher gets receive-only audio
// and video transceivers, a subscriber every current track except its own;
// then the server offers.
func (s *Session) AddPeer(id string, publish, subscribe bool, sig Signal) (*Peer, error) {
	pc, err := s.r.api.NewPeerConnection(webrtc.Configuration{ICEServers: s.r.cfg.ICEServers})
	if err != nil {
		return nil, err
	}
	p := &Peer{id: id, s: s, pc: pc, sig: sig, publish: publish, subscribe: subscribe, senders: map[string]*webrtc.RTPSender{}}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			sig.Candidate(c.ToJSON())
		}
	})
	pc.OnTrack(p.onTrack)
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			// Key frames sent before the transport was up were lost.
			p.askKeyFrames()
		case webrtc.PeerConnectionStateFailed:
			// The media path broke (a network change) while signalling
			// may still be up: the server, as the offerer, restarts ICE.
			go p.RestartICE()
		}
	})
	if publish {
		for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
			if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
				pc.Close()
				return nil, err
			}
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		pc.Close()
		return nil, ErrClosed
	}
	if old := s.peers[id]; old != nil {
		s.mu.Unlock()
		pc.Close()
		return nil, errors.New("sfu: peer exists")
	}
	s.peers[id] = p
	var fs []*forward
	if subscribe {
		for _, f := range s.tracks {
			if f.info.Publisher != id {
				fs = append(fs, f)
			}
		}
	}
	s.mu.Unlock()
	p.mu.Lock()
	for _, f := range fs {
		p.attachLocked(f)
	}
	p.mu.Unlock()
	p.Negotiate()
	return p, nil
}

// ID is the participant id.
func (p *Peer) ID() string { return p.id }

// onTrack starts forwarding one of the publisher's tracks.
func (p *Peer) onTrack(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	kind := remote.Kind().String()
	info := Track{Publisher: p.id, ID: p.id + "-" + kind, Kind: kind}
	static, err := webrtc.NewTrackLocalStaticRTP(remote.Codec().RTPCodecCapability, info.ID, p.id)
	if err != nil {
		p.s.r.log.Warn("sfu: local track", "err", err)
		return
	}
	local := &fanTrack{TrackLocalStaticRTP: static, binds: map[webrtc.SSRC]fanBinding{}}
	f := &forward{info: info, local: local, pub: p, ssrc: uint32(remote.SSRC())}
	if kind == "video" {
		f.hist = &history{}
	}
	s := p.s
	s.mu.Lock()
	if s.closed || s.peers[p.id] != p {
		s.mu.Unlock()
		return
	}
	if old := s.tracks[info.ID]; old != nil {
		// A renegotiated publisher sends a new track of the same kind: the
		// new one replaces the old in every subscriber.
		s.mu.Unlock()
		s.unpublish(old)
		s.mu.Lock()
	}
	s.tracks[info.ID] = f
	var subs []*Peer
	for _, q := range s.peers {
		if q != p && q.subscribe {
			subs = append(subs, q)
		}
	}
	s.mu.Unlock()
	for _, q := range subs {
		q.mu.Lock()
		changed := q.attachLocked(f)
		q.mu.Unlock()
		if changed {
			q.Negotiate()
		}
	}
	if s.events != nil {
		s.events.TrackPublished(info)
	}

	// Read and forward until the publisher goes. Header extensions are
	// dropped: their ids were negotiated with the publisher, not with each
	// subscriber, and the server offers none.
	var vad *speech
	if kind == "audio" && s.events != nil {
		for _, e := range recv.GetParameters().HeaderExtensions {
			if e.URI == sdp.AudioLevelURI {
				vad = &speech{ext: uint8(e.ID), report: func(on bool) { s.events.Speaking(p.id, on) }}
			}
		}
	}
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			break
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		if vad != nil {
			vad.packet(&pkt)
		}
		pkt.Header.Extension = false
		pkt.Header.Extensions = nil
		if f.hist != nil {
			f.hist.add(&pkt)
		}
		// A subscriber's transport failing must not stop the others;
		// its own connection state takes care of it.
		local.forward(&pkt)
	}
	local.stop()
	if vad != nil {
		vad.stop()
	}
	s.unpublish(f)
}

// speech tells speaking from silence by the audio-level extension: five
// voiced packets (level above -45 dBov) with gaps under 300 ms start
// speaking; a second without one ends it.
type speech struct {
	ext      uint8
	report   func(on bool)
	mu       sync.Mutex
	run      int
	last     time.Time
	speaking bool
	quiet    *time.Timer
}

const (
	voiceLevel  = 45 // -dBov: lower is louder
	voiceRun    = 5
	voiceGap    = 300 * time.Millisecond
	silenceTime = time.Second
)

func (v *speech) packet(pkt *rtp.Packet) {
	b := pkt.GetExtension(v.ext)
	if b == nil {
		return
	}
	var al rtp.AudioLevelExtension
	if al.Unmarshal(b) != nil || al.Level >= voiceLevel {
		return
	}
	now := time.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	if now.Sub(v.last) > voiceGap {
		v.run = 0
	}
	v.run++
	v.last = now
	if v.speaking {
		v.quiet.Reset(silenceTime)
		return
	}
	if v.run >= voiceRun {
		v.speaking = true
		v.report(true)
		v.quiet = time.AfterFunc(silenceTime, func() {
			v.mu.Lock()
			defer v.mu.Unlock()
			if v.speaking && time.Since(v.last) >= silenceTime-10*time.Millisecond {
				v.speaking = false
				v.run = 0
				v.report(false)
			}
		})
	}
}

func (v *speech) stop() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.quiet != nil {
		v.quiet.Stop()
	}
	if v.speaking {
		v.speaking = false
		v.report(false)
	}
}

// attachLocked adds f to p's PeerConnection unless there already or
// filtered out by audio-only; p.mu is held. It reports whether anything
// changed.
func (p *Peer) attachLocked(f *forward) bool {
	if p.closed || p.senders[f.info.ID] != nil || (p.audioOnly && f.info.Kind == "video") {
		return false
	}
	snd, err := p.pc.AddTrack(f.local)
	if err != nil {
		p.s.r.log.Warn("sfu: add track", "peer", p.id, "err", err)
		return false
	}
	p.senders[f.info.ID] = snd
	p.fresh = append(p.fresh, f)
	go p.readRTCP(snd, f)
	return true
}

// readRTCP drains a sender's RTCP (which runs the interceptors: the NACK
// responder answers from here), passes key-frame requests to the publisher
// and reports loss.
func (p *Peer) readRTCP(snd *webrtc.RTPSender, f *forward) {
	var lastReport time.Time
	for {
		pkts, _, err := snd.ReadRTCP()
		if err != nil {
			return
		}
		for _, pk := range pkts {
			switch r := pk.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				f.askKeyFrame()
			case *rtcp.TransportLayerNack:
				f.resend(r)
			case *rtcp.ReceiverReport:
				for _, rep := range r.Reports {
					loss := float64(rep.FractionLost) / 256
					if loss >= 0.02 && time.Since(lastReport) > 5*time.Second && p.s.events != nil {
						lastReport = time.Now()
						p.s.events.Quality(p.id, f.info, loss)
					}
				}
			}
		}
	}
}

// askKeyFrames asks a key frame for every track p receives.
func (p *Peer) askKeyFrames() {
	p.mu.Lock()
	ids := make([]string, 0, len(p.senders))
	for id := range p.senders {
		ids = append(ids, id)
	}
	p.mu.Unlock()
	p.s.mu.Lock()
	fs := make([]*forward, 0, len(ids))
	for _, id := range ids {
		if f := p.s.tracks[id]; f != nil {
			fs = append(fs, f)
		}
	}
	p.s.mu.Unlock()
	for _, f := range fs {
		f.askKeyFrame()
	}
}

// unpublish removes a track from every subscriber and renegotiates them.
func (s *Session) unpublish(f *forward) {
	s.mu.Lock()
	if s.tracks[f.info.ID] != f {
		s.mu.Unlock()
		return // already gone (the publisher left and its read loop ended)
	}
	delete(s.tracks, f.info.ID)
	peers := make([]*Peer, 0, len(s.peers))
	for _, q := range s.peers {
		peers = append(peers, q)
	}
	s.mu.Unlock()
	for _, q := range peers {
		if q.detach(f.info.ID) {
			q.Negotiate()
		}
	}
	if s.events != nil {
		s.events.TrackUnpublished(f.info)
	}
}

func (p *Peer) detach(trackID string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	snd := p.senders[trackID]
	if snd == nil || p.closed {
		return false
	}
	delete(p.senders, trackID)
	_ = p.pc.RemoveTrack(snd)
	return true
}

// Negotiate sends a new offer, or notes that one is needed once the
// outstanding answer arrives.
func (p *Peer) Negotiate() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.negotiateLocked()
}

func (p *Peer) negotiateLocked() {
	if p.closed {
		return
	}
	if p.awaiting || p.pc.SignalingState() != webrtc.SignalingStateStable {
		p.again = true
		return
	}
	if len(p.pc.GetTransceivers()) == 0 {
		return // nothing to send or receive yet: offer when a track comes
	}
	var opts *webrtc.OfferOptions
	if p.restart {
		opts = &webrtc.OfferOptions{ICERestart: true}
		p.restart = false
	}
	offer, err := p.pc.CreateOffer(opts)
	if err == nil {
		err = p.pc.SetLocalDescription(offer)
	}
	if err != nil {
		p.s.r.log.Warn("sfu: offer", "peer", p.id, "err", err)
		return
	}
	p.awaiting = true
	p.again = false
	p.restarting = opts != nil
	p.sig.Offer(offer.SDP)
}

// Answer applies the client's answer to the last offer, then offers again
// if tracks changed meanwhile.
func (p *Peer) Answer(sdp string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if !p.awaiting {
		return errors.New("sfu: no offer awaits an answer")
	}
	if p.restarting {
		if rd := p.pc.RemoteDescription(); rd != nil && iceUfrag(rd.SDP) == iceUfrag(sdp) {
			// The answer to the offer RestartICE rolled back, arriving
			// after it: applied to the restart offer it would pair the new
			// credentials with the old and the path would never come up.
			// The restart offer's own answer is still to come.
			return nil
		}
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		return err
	}
	p.awaiting, p.restarting = false, false
	fresh := p.fresh
	p.fresh = nil
	for _, f := range fresh {
		// The subscriber can decode the new track from now on.
		f.askKeyFrame()
	}
	for _, c := range p.early {
		_ = p.pc.AddICECandidate(c)
	}
	p.early = nil
	if p.again {
		p.negotiateLocked()
	}
	return nil
}

// AddCandidate adds a client's trickled candidate (kept until the answer
// has set the remote description).
func (p *Peer) AddCandidate(c webrtc.ICECandidateInit) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	// During an ICE restart the client's new candidates can overtake its
	// answer (it trickles them as it gathers): added now they would go to
	// the old ICE generation, which the answer then discards, and the new
	// path would have none. They wait for the answer, as the first ones do.
	if p.pc.RemoteDescription() == nil || p.restarting {
		if len(p.early) >= 64 {
			return errors.New("sfu: too many candidates before the answer")
		}
		p.early = append(p.early, c)
		return nil
	}
	return p.pc.AddICECandidate(c)
}

// RestartICE renegotiates with new ICE credentials: after a client
// reconnects its signalling, its media path may be gone too.
func (p *Peer) RestartICE() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.restart = true
	if p.awaiting {
		// The old offer's answer may never come (the client reconnected):
		// drop it and offer afresh.
		if err := p.pc.SetLocalDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeRollback}); err == nil {
			p.awaiting = false
		}
	}
	p.negotiateLocked()
}

// iceUfrag is the first ICE username fragment of sdp ("" when none).
func iceUfrag(sdp string) string {
	for _, l := range strings.Split(sdp, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimRight(l, "\r"), "a=ice-ufrag:"); ok {
			return v
		}
	}
	return ""
}

// Resend offers again when the client may have lost the outstanding offer
// (it reconnected its WebSocket while the offer was in flight).
func (p *Peer) Resend() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.awaiting {
		if ld := p.pc.LocalDescription(); ld != nil {
			p.sig.Offer(ld.SDP)
		}
	}
}

// SetAudioOnly drops (or restores) the peer's video subscriptions: a weak
// link keeps the conversation.
func (p *Peer) SetAudioOnly(on bool) {
	p.mu.Lock()
	if p.audioOnly == on || p.closed {
		p.mu.Unlock()
		return
	}
	p.audioOnly = on
	changed := false
	var added []*forward
	if on {
		for id, snd := range p.senders {
			if snd.Track() != nil && snd.Track().Kind() == webrtc.RTPCodecTypeVideo {
				_ = p.pc.RemoveTrack(snd)
				delete(p.senders, id)
				changed = true
			}
		}
	} else if p.subscribe {
		p.s.mu.Lock()
		for _, f := range p.s.tracks {
			if f.info.Publisher != p.id {
				added = append(added, f)
			}
		}
		p.s.mu.Unlock()
		for _, f := range added {
			if p.attachLocked(f) {
				changed = true
			}
		}
	}
	if changed {
		p.negotiateLocked()
	}
	p.mu.Unlock()
}

// State is the PeerConnection's state.
func (p *Peer) State() webrtc.PeerConnectionState { return p.pc.ConnectionState() }

// Subscriptions lists the track ids the peer receives.
func (p *Peer) Subscriptions() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.senders))
	for id := range p.senders {
		out = append(out, id)
	}
	return out
}

// RemovePeer closes id's PeerConnection; its tracks leave every subscriber.
func (s *Session) RemovePeer(id string) {
	s.mu.Lock()
	p := s.peers[id]
	if p == nil {
		s.mu.Unlock()
		return
	}
	delete(s.peers, id)
	var mine []*forward
	for _, f := range s.tracks {
		if f.pub == p {
			mine = append(mine, f)
		}
	}
	s.mu.Unlock()
	for _, f := range mine {
		s.unpublish(f)
	}
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	_ = p.pc.Close()
}

// Close ends every peer.
func (s *Session) Close() {
	s.mu.Lock()
	s.closed = true
	ids := make([]string, 0, len(s.peers))
	for id := range s.peers {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		s.RemovePeer(id)
	}
}

// fanTrack is the TrackLocalStaticRTP every subscriber of a track is bound
// to (pion picks each binding's codec and writes a packet to all of them
// with one shared header), and it remembers each binding's writer by SSRC,
// so a NACK is answered to the one subscriber that sent it.
type fanTrack struct {
	*webrtc.TrackLocalStaticRTP
	mu    sync.RWMutex
	binds map[webrtc.SSRC]fanBinding
	list  atomic.Pointer[[]fanBinding] // the bindings, for the forwarding loop
	// Past shardFrom subscribers a packet is written by fanWorkers
	// goroutines, each to its share of the bindings, instead of by the
	// track's one reading goroutine: a writer (SRTP and a syscall per
	// subscriber) is one thread, and one thread of a busy machine's CPU
	// capped a 200-viewer round at about 30,000 packets a second.
	work []chan fanPacket
	wg   sync.WaitGroup
}

type fanBinding struct {
	ssrc webrtc.SSRC
	w    webrtc.TrackLocalWriter
	pt   webrtc.PayloadType
}

// fanPacket is one packet handed to the workers; payload is shared,
// read-only.
type fanPacket struct {
	hdr     rtp.Header
	payload []byte
}

const (
	shardFrom  = 32
	fanWorkers = 4
)

func (t *fanTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	c, err := t.TrackLocalStaticRTP.Bind(ctx)
	if err == nil {
		t.mu.Lock()
		t.binds[ctx.SSRC()] = fanBinding{ssrc: ctx.SSRC(), w: ctx.WriteStream(), pt: c.PayloadType}
		t.publishLocked()
		t.mu.Unlock()
	}
	return c, err
}

func (t *fanTrack) Unbind(ctx webrtc.TrackLocalContext) error {
	t.mu.Lock()
	delete(t.binds, ctx.SSRC())
	t.publishLocked()
	t.mu.Unlock()
	return t.TrackLocalStaticRTP.Unbind(ctx)
}

func (t *fanTrack) publishLocked() {
	l := make([]fanBinding, 0, len(t.binds))
	for _, b := range t.binds {
		l = append(l, b)
	}
	t.list.Store(&l)
}

// forward writes pkt to every binding, with its SSRC and payload type. It
// is called by the track's reading goroutine only; pkt may be reused once
// it returns.
func (t *fanTrack) forward(pkt *rtp.Packet) {
	lp := t.list.Load()
	if lp == nil {
		return
	}
	l := *lp
	if pkt.PaddingSize != 0 && pkt.Header.PaddingSize == 0 {
		// Written as header and payload apart: the padding goes with
		// the header (as TrackLocalStaticRTP does).
		pkt.Header.PaddingSize = pkt.PaddingSize
	}
	if len(l) < shardFrom {
		hdr := pkt.Header
		for _, b := range l {
			hdr.SSRC, hdr.PayloadType = uint32(b.ssrc), uint8(b.pt)
			_, _ = b.w.WriteRTP(&hdr, pkt.Payload)
		}
		return
	}
	if t.work == nil {
		t.work = make([]chan fanPacket, fanWorkers)
		for i := range t.work {
			ch := make(chan fanPacket, 512)
			t.work[i] = ch
			t.wg.Add(1)
			go t.writer(i, ch)
		}
	}
	fp := fanPacket{hdr: pkt.Header, payload: append([]byte(nil), pkt.Payload...)}
	fp.hdr.CSRC = append([]uint32(nil), pkt.CSRC...)
	for _, ch := range t.work {
		select {
		case ch <- fp:
		default: // a worker this far behind drops, as a full socket would
		}
	}
}

// writer writes each packet to the bindings whose index ≡ i (mod
// fanWorkers): a subscriber stays with one worker while the list is
// unchanged, so its packets keep their order.
func (t *fanTrack) writer(i int, ch chan fanPacket) {
	defer t.wg.Done()
	for fp := range ch {
		lp := t.list.Load()
		if lp == nil {
			continue
		}
		hdr := fp.hdr
		for j := i; j < len(*lp); j += fanWorkers {
			b := (*lp)[j]
			hdr.SSRC, hdr.PayloadType = uint32(b.ssrc), uint8(b.pt)
			_, _ = b.w.WriteRTP(&hdr, fp.payload)
		}
	}
}

// stop ends the workers (the track's reading goroutine calls it once, at
// its end).
func (t *fanTrack) stop() {
	for _, ch := range t.work {
		close(ch)
	}
	t.wg.Wait()
}

func (t *fanTrack) binding(ssrc uint32) (fanBinding, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	b, ok := t.binds[webrtc.SSRC(ssrc)]
	return b, ok
}

// historySize is how many of a track's latest packets can be resent: a
// power of two, about 2–3 s of 1.5 Mbit/s video, well over a round trip.
const historySize = 512

// maxResend bounds the packets one NACK message has resent.
const maxResend = 64

// history is a track's latest packets, one copy for all its subscribers.
type history struct {
	mu    sync.Mutex
	slots [historySize]histSlot
}

type histSlot struct {
	ok      bool
	hdr     rtp.Header
	payload []byte
}

func (h *history) add(pkt *rtp.Packet) {
	h.mu.Lock()
	s := &h.slots[pkt.SequenceNumber%historySize]
	s.ok = true
	s.hdr = pkt.Header
	s.hdr.CSRC = append(s.hdr.CSRC[:0], pkt.CSRC...)
	s.payload = append(s.payload[:0], pkt.Payload...)
	h.mu.Unlock()
}

// get copies packet seq into hdr and buf when still held.
func (h *history) get(seq uint16, hdr *rtp.Header, buf []byte) ([]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := &h.slots[seq%historySize]
	if !s.ok || s.hdr.SequenceNumber != seq {
		return buf, false
	}
	*hdr = s.hdr
	hdr.CSRC = append([]uint32(nil), s.hdr.CSRC...)
	return append(buf[:0], s.payload...), true
}

// resend answers a subscriber's NACK from the track's history, to that
// subscriber alone (the NACK's media SSRC names its binding); packets no
// longer held are skipped, as the subscriber's decoder then asks for a key
// frame.
func (f *forward) resend(n *rtcp.TransportLayerNack) {
	if f.hist == nil {
		return
	}
	b, ok := f.local.binding(n.MediaSSRC)
	if !ok {
		return
	}
	var hdr rtp.Header
	buf := make([]byte, 0, 1500)
	sent := 0
	for _, pair := range n.Nacks {
		for _, seq := range pair.PacketList() {
			if sent >= maxResend {
				return
			}
			var held bool
			if buf, held = f.hist.get(seq, &hdr, buf); !held {
				continue
			}
			hdr.SSRC, hdr.PayloadType = n.MediaSSRC, uint8(b.pt)
			_, _ = b.w.WriteRTP(&hdr, buf)
			sent++
		}
	}
}
