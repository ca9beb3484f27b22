package signaling

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"duikou/signaling/sfu"
)

// Room is one live session: its participants (admitted or waiting in the
// lobby), the presenter and the shared imaging view, and its media relay.
//
// Locking: r.mu guards the room's state. The room never calls into the
// relay while holding r.mu (the relay calls back into the room from its own
// goroutines, and reaches a participant's connection through an atomic
// pointer, not through the room).
type Room struct {
	id  string
	srv *Server

	mu        sync.Mutex
	parts     map[string]*participant
	removed   map[string]bool // removed by a host: their tokens no longer admit them here
	tracks    map[string]TrackInfo
	presenter string
	view      *ViewportEvent
	vseq      uint64
	media     *sfu.Session
	closed    bool
}

type participant struct {
	info     ParticipantInfo
	admitted bool
	joined   time.Time
	secret   string
	conn     atomic.Pointer[conn]
	away     *time.Timer // running while dropped, inside the resume window
	peer     *sfu.Peer
	audioOff bool // asked for audio only
	noMedia  bool // joined for messages only: no PeerConnection
}

func newRoom(s *Server, id string) *Room {
	r := &Room{id: id, srv: s, parts: map[string]*participant{}, removed: map[string]bool{}, tracks: map[string]TrackInfo{}}
	if s.cfg.Media != nil {
		r.media = s.cfg.Media.NewSession(roomEvents{r})
	}
	return r
}

func randomSecret() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// join enters a participant with a verified token: hosts go straight in,
// everyone else waits in the lobby. The same participant joining again
// (another tab, or a reconnect with a fresh token) takes over its place.
func (r *Room) join(c *conn, seq uint64, cl Claims, noMedia bool) bool {
	name, err := checkText("name", cl.Name, false, 100)
	if err != nil {
		name = ""
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		c.fail(CloseGone, "gone", "the room has closed: join again")
		return false
	}
	if r.removed[cl.Participant] {
		r.mu.Unlock()
		c.fail(CloseForbidden, "forbidden", "a host removed you from this session")
		return false
	}
	p := r.parts[cl.Participant]
	resumed := p != nil
	if p == nil {
		p = &participant{joined: time.Now(), secret: randomSecret()}
		r.parts[cl.Participant] = p
	}
	// A fresh token is a fresh authorisation: its name and permissions
	// replace the old ones.
	p.info.ID, p.info.Name, p.info.Hospital, p.info.Perms = cl.Participant, name, cl.Hospital, cl.Perms
	p.noMedia = noMedia
	if cl.Perms.Admit {
		p.admitted = true
	}
	if r.presenter == p.info.ID && !cl.Perms.Present {
		r.presenter = ""
		r.broadcastLocked(TPresent, PresenterPayload{}, "")
	}
	r.attachLocked(p, c)
	// A join (unlike a resume) comes from a new page with a new
	// PeerConnection: the server's side of the old one goes.
	oldPeer := p.peer
	p.peer = nil
	var needPeer bool
	if p.admitted {
		needPeer = r.enterLocked(p, seq, resumed)
	} else {
		c.send(TLobby, seq, nil)
		if !resumed {
			r.toHostsLocked(TLobbyWaiting, p.info)
		}
	}
	r.mu.Unlock()
	if oldPeer != nil {
		r.media.RemovePeer(p.info.ID)
	}
	if needPeer {
		r.startMedia(p)
	}
	return true
}

// attachLocked binds c to p, ending an older connection of p.
func (r *Room) attachLocked(p *participant, c *conn) {
	if p.away != nil {
		p.away.Stop()
		p.away = nil
	}
	p.info.Away = false
	if old := p.conn.Swap(c); old != nil && old != c {
		old.fail(CloseReplaced, "replaced", "the same participant connected again")
	}
	c.room, c.pid = r, p.info.ID
}

// enterLocked sends the welcome (and the current view) to an admitted
// participant and, when it is new, announces it. It reports whether the
// participant needs a PeerConnection.
func (r *Room) enterLocked(p *participant, seq uint64, resumed bool) bool {
	if !resumed {
		r.broadcastLocked(TJoined, p.info, p.info.ID)
		r.srv.joined(r.id, p.info)
		if r.presenter == "" && p.info.Perms.Present {
			r.presenter = p.info.ID
			// The newcomer learns it from its welcome.
			r.broadcastLocked(TPresent, PresenterPayload{Participant: p.info.ID}, p.info.ID)
		}
	}
	c := p.conn.Load()
	w := WelcomePayload{Room: r.id, Participant: p.info.ID, Secret: p.secret, ResumeWithin: int(r.srv.cfg.ResumeWindow / time.Second),
		Presenter: r.presenter, Resumed: resumed}
	for _, q := range r.sortedLocked() {
		if q.admitted {
			w.Participants = append(w.Participants, q.info)
		} else if p.info.Perms.Admit {
			w.Lobby = append(w.Lobby, q.info)
		}
	}
	for _, t := range r.tracks {
		if t.Participant != p.info.ID {
			w.Tracks = append(w.Tracks, t)
		}
	}
	slices.SortFunc(w.Tracks, func(a, b TrackInfo) int { return cmpStr(a.Track, b.Track) })
	c.send(TWelcome, seq, w)
	if r.view != nil {
		// A late joiner sees what the presenter shows at once.
		c.send(TViewport, 0, r.view)
	}
	return r.media != nil && p.peer == nil && !p.noMedia && (p.info.Perms.Publish || p.info.Perms.Subscribe)
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (r *Room) sortedLocked() []*participant {
	ps := make([]*participant, 0, len(r.parts))
	for _, q := range r.parts {
		ps = append(ps, q)
	}
	slices.SortFunc(ps, func(a, b *participant) int { return a.joined.Compare(b.joined) })
	return ps
}

// startMedia creates p's PeerConnection (outside the room lock: the relay
// offers at once, through p's connection).
func (r *Room) startMedia(p *participant) {
	peer, err := r.media.AddPeer(p.info.ID, p.info.Perms.Publish, p.info.Perms.Subscribe, peerSignal{p})
	if err != nil {
		r.srv.log.Warn("signaling: media", "room", r.id, "err", err)
		if c := p.conn.Load(); c != nil {
			c.sendError(0, "media", "the media relay could not start")
		}
		return
	}
	r.mu.Lock()
	stale := r.parts[p.info.ID] != p || p.peer != nil
	if !stale {
		p.peer = peer
	}
	audioOnly := p.audioOff
	r.mu.Unlock()
	if stale {
		r.media.RemovePeer(p.info.ID)
		return
	}
	if audioOnly {
		peer.SetAudioOnly(true)
	}
}

// peerSignal sends a peer's offers and candidates to whichever connection
// the participant has now (none while it is away: a resume re-sends).
type peerSignal struct{ p *participant }

func (s peerSignal) Offer(sdp string) {
	if c := s.p.conn.Load(); c != nil {
		c.send(TOffer, 0, SDPPayload{SDP: sdp})
	}
}

func (s peerSignal) Candidate(ci webrtc.ICECandidateInit) {
	if c := s.p.conn.Load(); c != nil {
		c.send(TCandidate, 0, CandidatePayload{Candidate: ci.Candidate, SDPMid: ci.SDPMid, SDPMLineIndex: ci.SDPMLineIndex})
	}
}

// roomEvents turns relay events into room events.
type roomEvents struct{ r *Room }

func (e roomEvents) TrackPublished(t sfu.Track) {
	ti := TrackInfo{Participant: t.Publisher, Track: t.ID, Kind: t.Kind}
	e.r.mu.Lock()
	defer e.r.mu.Unlock()
	e.r.tracks[t.ID] = ti
	e.r.broadcastLocked(TTrackPublished, ti, "")
}

func (e roomEvents) TrackUnpublished(t sfu.Track) {
	e.r.mu.Lock()
	defer e.r.mu.Unlock()
	if _, ok := e.r.tracks[t.ID]; !ok {
		return
	}
	delete(e.r.tracks, t.ID)
	e.r.broadcastLocked(TTrackUnpublished, TrackInfo{Participant: t.Publisher, Track: t.ID, Kind: t.Kind}, "")
}

func (e roomEvents) Speaking(publisher string, on bool) {
	e.r.mu.Lock()
	defer e.r.mu.Unlock()
	e.r.broadcastLocked(TSpeaking, SpeakingPayload{Participant: publisher, Speaking: on}, "")
}

func (e roomEvents) Quality(sub string, t sfu.Track, loss float64) {
	e.r.mu.Lock()
	p := e.r.parts[sub]
	e.r.mu.Unlock()
	if p == nil {
		return
	}
	if c := p.conn.Load(); c != nil {
		c.send(TQuality, 0, QualityPayload{Participant: t.Publisher, Track: t.ID, Loss: loss})
	}
}

// resume puts a dropped participant back on a new connection, in its place
// and with its subscriptions, if it comes back within the window with its
// secret.
func (r *Room) resume(c *conn, seq uint64, rp ResumePayload) bool {
	r.mu.Lock()
	p := r.parts[rp.Participant]
	if p == nil || r.closed {
		r.mu.Unlock()
		c.fail(CloseGone, "gone", "the resume window has passed: join again")
		return false
	}
	if subtle.ConstantTimeCompare([]byte(p.secret), []byte(rp.Secret)) != 1 {
		r.mu.Unlock()
		c.fail(CloseUnauthorized, "unauthorized", "wrong resume secret")
		return false
	}
	r.attachLocked(p, c)
	needPeer := false
	if p.admitted {
		needPeer = r.enterLocked(p, seq, true)
	} else {
		c.send(TLobby, seq, nil)
	}
	peer := p.peer
	r.mu.Unlock()
	if needPeer {
		r.startMedia(p)
	}
	if peer != nil {
		// The client keeps its PeerConnection across a signalling drop;
		// an offer sent while it was away is sent again, and a media path
		// that broke with the network is restarted.
		switch peer.State() {
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateDisconnected:
			peer.RestartICE()
		default:
			peer.Resend()
		}
	}
	return true
}

// dropped is called when a connection ends: its participant keeps its place
// for the resume window.
func (r *Room) dropped(c *conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.parts[c.pid]
	if p == nil || !p.conn.CompareAndSwap(c, nil) {
		return // left, removed, or already on another connection
	}
	p.info.Away = true
	var t *time.Timer
	t = time.AfterFunc(r.srv.cfg.ResumeWindow, func() {
		r.mu.Lock()
		if p.away != t || r.parts[p.info.ID] != p {
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		r.leave(p, "")
	})
	p.away = t
}

// leave takes p out of the room; note, when set, goes to p's connection
// first (removed by a host).
func (r *Room) leave(p *participant, removedBy string) {
	r.mu.Lock()
	if r.parts[p.info.ID] != p {
		r.mu.Unlock()
		return
	}
	delete(r.parts, p.info.ID)
	if p.away != nil {
		p.away.Stop()
		p.away = nil
	}
	if c := p.conn.Swap(nil); c != nil {
		if removedBy != "" {
			c.send(TRemoved, 0, TargetPayload{Participant: removedBy})
			c.close(CloseForbidden, "removed")
		} else {
			c.close(websocket.CloseNormalClosure, "left")
		}
	}
	if p.admitted {
		r.srv.left(r.id, p.info.ID)
		r.broadcastLocked(TLeft, TargetPayload{Participant: p.info.ID}, "")
		if r.presenter == p.info.ID {
			r.presenter = ""
			r.broadcastLocked(TPresent, PresenterPayload{}, "")
		}
	} else {
		r.toHostsLocked(TLobbyLeft, TargetPayload{Participant: p.info.ID})
	}
	empty := len(r.parts) == 0
	if empty {
		r.closed = true
	}
	hadPeer := p.peer != nil
	r.mu.Unlock()
	if hadPeer {
		r.media.RemovePeer(p.info.ID)
	}
	if empty {
		if r.media != nil {
			r.media.Close()
		}
		r.srv.forget(r)
	}
}

// close ends the room (instance shutdown).
func (r *Room) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

func (r *Room) close() {
	r.mu.Lock()
	r.closed = true
	for _, p := range r.parts {
		if p.admitted {
			r.srv.left(r.id, p.info.ID)
		}
		if p.away != nil {
			p.away.Stop()
		}
		if c := p.conn.Swap(nil); c != nil {
			c.close(websocket.CloseGoingAway, "going away")
		}
	}
	r.parts = map[string]*participant{}
	r.mu.Unlock()
	if r.media != nil {
		r.media.Close()
	}
	r.srv.forget(r)
}

// broadcastLocked sends to every admitted, connected participant except
// skip; the payload is encoded once.
func (r *Room) broadcastLocked(typ string, payload any, skip string) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return
	}
	m := &outMsg{typ: typ, payload: raw}
	for id, q := range r.parts {
		if id == skip || !q.admitted {
			continue
		}
		if c := q.conn.Load(); c != nil {
			c.sendRaw(m)
		}
	}
}

// toHostsLocked sends to the admitted hosts.
func (r *Room) toHostsLocked(typ string, payload any) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return
	}
	m := &outMsg{typ: typ, payload: raw}
	for _, q := range r.parts {
		if q.admitted && q.info.Perms.Admit {
			if c := q.conn.Load(); c != nil {
				c.sendRaw(m)
			}
		}
	}
}

// handle runs one message from a joined connection.
func (r *Room) handle(c *conn, m Message) {
	r.mu.Lock()
	p := r.parts[c.pid]
	if p == nil || p.conn.Load() != c {
		r.mu.Unlock()
		return
	}
	admitted, perms, peer := p.admitted, p.info.Perms, p.peer
	r.mu.Unlock()

	if m.Type == TLeave {
		r.leave(p, "")
		return
	}
	if !admitted {
		c.sendError(m.Seq, "lobby", "waiting for a host to admit you")
		return
	}
	var err error
	switch m.Type {
	case TAnswer:
		var sp SDPPayload
		if err = decodeStrict(m.Payload, &sp); err == nil {
			switch {
			case peer == nil:
				err = invalid("no media connection")
			case sp.SDP == "" || len(sp.SDP) > maxSDP:
				err = invalid("sdp must be 1–%d bytes", maxSDP)
			default:
				if e := peer.Answer(sp.SDP); e != nil {
					err = invalid("answer refused: %v", e)
				}
			}
		}
	case TCandidate:
		var cp CandidatePayload
		if err = decodeStrict(m.Payload, &cp); err == nil {
			if peer == nil {
				err = invalid("no media connection")
			} else if e := peer.AddCandidate(webrtc.ICECandidateInit{Candidate: cp.Candidate, SDPMid: cp.SDPMid, SDPMLineIndex: cp.SDPMLineIndex}); e != nil {
				err = invalid("candidate refused: %v", e)
			}
		}
	case TOffer:
		err = invalid("the server makes the offers; answer them")
	case TAudioOnly:
		var ap AudioOnlyPayload
		if err = decodeStrict(m.Payload, &ap); err == nil {
			r.mu.Lock()
			p.audioOff = ap.On
			r.mu.Unlock()
			if peer != nil {
				peer.SetAudioOnly(ap.On)
			}
		}
	case TMute:
		var mp MutePayload
		if err = decodeStrict(m.Payload, &mp); err == nil {
			r.mu.Lock()
			p.info.Audio, p.info.Video = mp.Audio, mp.Video
			r.broadcastLocked(TMute, MutePayload{Participant: p.info.ID, Audio: mp.Audio, Video: mp.Video}, "")
			r.mu.Unlock()
		}
	case THand:
		var hp HandPayload
		if err = decodeStrict(m.Payload, &hp); err == nil {
			r.mu.Lock()
			p.info.Hand = hp.Raised
			r.broadcastLocked(THand, HandPayload{Participant: p.info.ID, Raised: hp.Raised}, "")
			r.mu.Unlock()
		}
	case TChat:
		var cp ChatPayload
		if err = decodeStrict(m.Payload, &cp); err == nil {
			var text string
			if text, err = checkText("text", cp.Text, true, maxText); err == nil {
				r.mu.Lock()
				r.broadcastLocked(TChat, ChatPayload{From: p.info.ID, Name: p.info.Name, Text: text, At: time.Now().UnixMilli()}, "")
				r.mu.Unlock()
			}
		}
	case TAdmit, TRemove:
		err = r.hostAction(p, perms, m)
	case TViewport:
		var v ViewState
		if err = decodeStrict(m.Payload, &v); err == nil {
			if err = v.Validate(); err == nil {
				err = r.setView(p, v)
			}
		}
	case TPresent:
		var tp TargetPayload
		if err = decodeStrict(m.Payload, &tp); err == nil {
			err = r.handOver(p, tp.Participant)
		}
	default:
		err = invalid("unknown message type %q", m.Type)
	}
	if err != nil {
		code := "invalid"
		if _, ok := err.(errForbidden); ok {
			code = "forbidden"
		}
		c.sendError(m.Seq, code, err.Error())
	}
}

type errForbidden struct{ msg string }

func (e errForbidden) Error() string { return e.msg }

// hostAction admits a lobby participant or removes anyone; only hosts may.
func (r *Room) hostAction(host *participant, perms Perms, m Message) error {
	var tp TargetPayload
	if err := decodeStrict(m.Payload, &tp); err != nil {
		return err
	}
	if !perms.Admit {
		return errForbidden{"only a host may admit or remove"}
	}
	r.mu.Lock()
	q := r.parts[tp.Participant]
	if q == nil {
		r.mu.Unlock()
		return invalid("no such participant")
	}
	if m.Type == TRemove {
		if q == host {
			r.mu.Unlock()
			return invalid("a host leaves, it does not remove itself")
		}
		r.removed[q.info.ID] = true
		r.mu.Unlock()
		r.leave(q, host.info.ID)
		return nil
	}
	if q.admitted {
		r.mu.Unlock()
		return nil // admitting twice changes nothing
	}
	q.admitted = true
	r.toHostsLocked(TLobbyLeft, TargetPayload{Participant: q.info.ID})
	needPeer := false
	if q.conn.Load() != nil {
		needPeer = r.enterLocked(q, 0, false)
	} else {
		r.broadcastLocked(TJoined, q.info, q.info.ID)
		r.srv.joined(r.id, q.info)
	}
	r.mu.Unlock()
	if needPeer {
		r.startMedia(q)
	}
	return nil
}

// setView stores and relays the presenter's view.
func (r *Room) setView(p *participant, v ViewState) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.presenter != p.info.ID {
		return errForbidden{"only the presenter drives the view"}
	}
	r.vseq++
	r.view = &ViewportEvent{VSeq: r.vseq, Presenter: p.info.ID, State: v}
	r.broadcastLocked(TViewport, r.view, p.info.ID)
	return nil
}

// handOver gives the presenter role to target: the presenter or a host may
// hand it over, anyone allowed to present may take it while nobody holds it.
func (r *Room) handOver(p *participant, target string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.parts[target]
	if q == nil || !q.admitted {
		return invalid("no such participant in the room")
	}
	if !q.info.Perms.Present {
		return errForbidden{"that participant may not present"}
	}
	mayGive := r.presenter == p.info.ID || p.info.Perms.Admit || (r.presenter == "" && q == p)
	if !mayGive {
		return errForbidden{"only the presenter or a host hands the presenter role over"}
	}
	r.presenter = target
	r.broadcastLocked(TPresent, PresenterPayload{Participant: target}, "")
	return nil
}
