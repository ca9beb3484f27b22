package signaling

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"duikou/signaling/sfu"
)

// Close codes the server ends a connection with (4000–4999 are the
// application's own; 1009 "message too big" comes from the WebSocket layer).
const (
	CloseBadRequest   = 4400 // the first message was not a join or resume
	CloseUnauthorized = 4401 // no token, a bad or expired one
	CloseForbidden    = 4403 // token for another room, or removed by a host
	CloseTooSlow      = 4408 // the client did not read its messages fast enough
	CloseReplaced     = 4409 // the same participant connected again
	CloseGone         = 4410 // resume after the window: join again
	CloseRateLimited  = 4429
	CloseRedirect     = 4307 // the room lives on another instance (see the redirect message)
	CloseUnavailable  = 4503 // the room directory could not be reached
)

// Subprotocol is the protocol the server speaks. A client that sends its
// token in the header offers two: Subprotocol and TokenSubprotocolPrefix +
// token; the server answers with Subprotocol alone, so the token is never
// echoed.
const (
	Subprotocol            = "duikou.v1"
	TokenSubprotocolPrefix = "duikou.token."
)

// Instance names this server instance among several.
type Instance struct {
	ID  string `json:"id"`
	URL string `json:"url"` // its WebSocket URL, for redirects
}

// Directory says which instance hosts a room. Place returns the live
// instance that hosts room, making self the host when none does (a dead
// host's rooms move to the next instance a client joins through).
type Directory interface {
	Place(ctx context.Context, room string, self Instance) (Instance, error)
	Release(ctx context.Context, room string, self Instance) error
}

// Config configures a Server.
type Config struct {
	Tokens *Tokens
	// AllowedOrigins are the page origins (scheme://host[:port]) allowed to
	// open the WebSocket; any other Origin, or none, is refused at the
	// handshake, so a foreign page cannot ride on a user's network position.
	AllowedOrigins []string
	// RoomFromRequest, when set, gives the room the URL names (e.g. the
	// session id route parameter); a join for another room is refused.
	RoomFromRequest func(*http.Request) string

	ReadLimit    int64         // largest client message (default 16 KiB); larger closes the connection (1009)
	JoinWait     time.Duration // the first message must come within (default 10 s)
	PingInterval time.Duration // keepalive ping (default 20 s)
	PongWait     time.Duration // no frame for this long closes (default 45 s)
	WriteWait    time.Duration // one write may take (default 10 s)
	Rate         float64       // client messages per second allowed on average (default 20)
	Burst        int           // and at once (default 40)
	SendQueue    int           // messages queued to a client before it is dropped as too slow (default 64)
	ResumeWindow time.Duration // a dropped participant keeps its place this long (default 20 s)

	// Media is the relay; nil runs signalling only (no offers; answers and
	// candidates are refused).
	Media *sfu.Router
	// Directory and Self place rooms when several instances run; nil hosts
	// every room here.
	Directory Directory
	Self      Instance
	// RedirectURL, when set, gives the URL a client joining room is sent to
	// when host hosts it (the WebSocket path may name the room); nil sends
	// host.URL.
	RedirectURL func(host Instance, room string) string

	// OnJoin and OnLeave, when set, hear a participant enter a room (on
	// admission: time in the lobby is not presence) and leave it (left,
	// removed, out of the resume window, or the instance closing), e.g. to
	// record attendance. They run on one goroutine of their own, in the
	// order things happened, so a slow one delays only the next event,
	// never a room.
	OnJoin  func(room string, p ParticipantInfo, at time.Time)
	OnLeave func(room, participant string, at time.Time)

	Logger *slog.Logger
}

// Server is the WebSocket endpoint and the rooms it hosts.
type Server struct {
	cfg Config
	up  websocket.Upgrader
	log *slog.Logger

	mu    sync.Mutex
	rooms map[string]*Room

	events  *eventQueue
	closing sync.Mutex // a second Close waits for the first
}

// NewServer checks cfg and fills its defaults.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Tokens == nil {
		return nil, errors.New("signaling: Tokens is required")
	}
	if len(cfg.AllowedOrigins) == 0 {
		return nil, errors.New("signaling: AllowedOrigins is required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if cfg.ReadLimit <= 0 {
		cfg.ReadLimit = 16 << 10
	}
	def(&cfg.JoinWait, 10*time.Second)
	def(&cfg.PingInterval, 20*time.Second)
	def(&cfg.PongWait, 45*time.Second)
	def(&cfg.WriteWait, 10*time.Second)
	def(&cfg.ResumeWindow, 20*time.Second)
	if cfg.Rate <= 0 {
		cfg.Rate = 20
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 40
	}
	if cfg.SendQueue <= 0 {
		cfg.SendQueue = 64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	allowed := map[string]bool{}
	for _, o := range cfg.AllowedOrigins {
		allowed[strings.ToLower(strings.TrimRight(o, "/"))] = true
	}
	s := &Server{cfg: cfg, log: cfg.Logger, rooms: map[string]*Room{}}
	if cfg.OnJoin != nil || cfg.OnLeave != nil {
		s.events = newEventQueue()
		go s.events.run(cfg.OnJoin, cfg.OnLeave)
	}
	s.up = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		// Small buffers and a shared write-buffer pool: a connection holds
		// a write buffer only while writing, which keeps an idle
		// connection to a few KiB (the 5,000-connection target).
		ReadBufferSize:  1024,
		WriteBufferSize: 2048,
		WriteBufferPool: &sync.Pool{},
		Subprotocols:    []string{Subprotocol},
		CheckOrigin: func(r *http.Request) bool {
			o := r.Header.Get("Origin")
			return o != "" && allowed[strings.ToLower(o)]
		},
	}
	return s, nil
}

// ServeHTTP upgrades the request and runs the connection until it ends.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var token string
	for _, p := range websocket.Subprotocols(r) {
		if t, ok := strings.CutPrefix(p, TokenSubprotocolPrefix); ok {
			token = t
		}
	}
	var urlRoom string
	if s.cfg.RoomFromRequest != nil {
		urlRoom = s.cfg.RoomFromRequest(r)
	}
	hw := &hijackWriter{ResponseWriter: w}
	ws, err := s.up.Upgrade(hw, r, nil)
	if err != nil {
		return // the upgrader has answered (403 for a foreign Origin)
	}
	c := &conn{
		srv:  s,
		ws:   ws,
		bc:   hw.bc,
		out:  make(chan *outMsg, s.cfg.SendQueue),
		done: make(chan struct{}),
		lim:  rate.NewLimiter(rate.Limit(s.cfg.Rate), s.cfg.Burst),
	}
	// Both loops get goroutines of their own and ServeHTTP returns: the
	// HTTP server's connection state (its 4 KiB read and write buffers,
	// the request, a deep stack) is released instead of living as long as
	// the WebSocket. Hijacked connections are not the HTTP server's to
	// close: Server.Close ends them.
	go c.writeLoop()
	go c.readLoop(urlRoom, token)
}

// Close ends every room (instance shutdown): clients reconnect elsewhere.
// It returns once OnLeave has heard every participant go.
func (s *Server) Close() {
	s.closing.Lock()
	defer s.closing.Unlock()
	s.mu.Lock()
	rooms := make([]*Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	for _, r := range rooms {
		r.close()
	}
	if s.events != nil {
		s.events.stop()
	}
}

// joined and left queue presence events; called under the room's lock, so
// the queue's order is the room's.
func (s *Server) joined(room string, p ParticipantInfo) {
	if s.events != nil {
		s.events.push(presenceEvent{room: room, info: p, at: time.Now(), join: true})
	}
}

func (s *Server) left(room, participant string) {
	if s.events != nil {
		s.events.push(presenceEvent{room: room, info: ParticipantInfo{ID: participant}, at: time.Now()})
	}
}

type presenceEvent struct {
	room string
	info ParticipantInfo
	at   time.Time
	join bool
}

// eventQueue is an unbounded FIFO drained by one goroutine: pushing never
// blocks a room, and the hooks see events in order.
type eventQueue struct {
	mu      sync.Mutex
	items   []presenceEvent
	closed  bool
	wake    chan struct{}
	drained chan struct{}
}

func newEventQueue() *eventQueue {
	return &eventQueue{wake: make(chan struct{}, 1), drained: make(chan struct{})}
}

func (q *eventQueue) push(e presenceEvent) {
	q.mu.Lock()
	if !q.closed {
		q.items = append(q.items, e)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// stop lets the queue drain and waits for it (a second call just waits).
func (q *eventQueue) stop() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	<-q.drained
}

func (q *eventQueue) run(onJoin func(string, ParticipantInfo, time.Time), onLeave func(string, string, time.Time)) {
	defer close(q.drained)
	for {
		q.mu.Lock()
		items, closed := q.items, q.closed
		q.items = nil
		q.mu.Unlock()
		for _, e := range items {
			switch {
			case e.join && onJoin != nil:
				onJoin(e.room, e.info, e.at)
			case !e.join && onLeave != nil:
				onLeave(e.room, e.info.ID, e.at)
			}
		}
		if closed && len(items) == 0 {
			return
		}
		if len(items) == 0 {
			<-q.wake
		}
	}
}

// Rooms counts the rooms hosted here.
func (s *Server) Rooms() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rooms)
}

func (s *Server) room(id string, create bool) *Room {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[id]
	if r != nil && create && r.isClosed() {
		r = nil // emptied a moment ago: a new one takes its place
	}
	if r == nil && create {
		r = newRoom(s, id)
		s.rooms[id] = r
	}
	return r
}

// forget drops an emptied room.
func (s *Server) forget(r *Room) {
	s.mu.Lock()
	if s.rooms[r.id] == r {
		delete(s.rooms, r.id)
	}
	s.mu.Unlock()
	if s.cfg.Directory != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.cfg.Directory.Release(ctx, r.id, s.cfg.Self); err != nil {
			s.log.Warn("signaling: release room", "room", r.id, "err", err)
		}
	}
}

// outMsg is one queued server message; payload is marshalled once by the
// sender, and a broadcast queues the same outMsg to every recipient, so a
// hundred viewers cost one encoding and a pointer each.
type outMsg struct {
	typ     string
	re      uint64
	payload json.RawMessage
}

// conn is one WebSocket: a reader (the ServeHTTP goroutine) and one writer
// goroutine fed by a bounded queue. Nothing else writes to the socket, and
// a room never waits on a client: a full queue drops the client.
type conn struct {
	srv  *Server
	ws   *websocket.Conn
	bc   *batchConn // under ws: gathers a burst of frames into one write
	out  chan *outMsg
	done chan struct{}
	lim  *rate.Limiter

	once      sync.Once
	closeCode int
	closeText string

	// Set by the room under its lock once joined.
	room *Room
	pid  string
}

// send queues a message without blocking.
func (c *conn) send(typ string, re uint64, payload any) {
	var raw json.RawMessage
	switch p := payload.(type) {
	case nil:
	case json.RawMessage:
		raw = p
	default:
		b, err := json.Marshal(p)
		if err != nil {
			c.srv.log.Error("signaling: marshal", "type", typ, "err", err)
			return
		}
		raw = b
	}
	c.sendRaw(&outMsg{typ: typ, re: re, payload: raw})
}

func (c *conn) sendRaw(m *outMsg) {
	select {
	case <-c.done:
	case c.out <- m:
	default:
		c.close(CloseTooSlow, "too slow")
	}
}

func (c *conn) sendError(re uint64, code, msg string) {
	c.send(TError, re, ErrorPayload{Code: code, Message: msg})
}

// close asks the writer to flush what is queued, send a close frame with
// code, and close the socket; the reader then ends. The first call wins.
func (c *conn) close(code int, text string) {
	c.once.Do(func() {
		c.closeCode, c.closeText = code, text
		close(c.done)
	})
}

// fail sends an error message and closes with code.
func (c *conn) fail(code int, errCode, msg string) {
	c.sendError(0, errCode, msg)
	c.close(code, errCode)
}

func (c *conn) writeLoop() {
	cfg := &c.srv.cfg
	ping := time.NewTicker(cfg.PingInterval)
	defer ping.Stop()
	var seq uint64
	var num [20]byte
	write := func(m *outMsg) error {
		seq++
		c.ws.SetWriteDeadline(time.Now().Add(cfg.WriteWait))
		// The envelope is written by hand straight into the connection's
		// (pooled) write buffer: the type is one of this package's
		// constants and the payload was encoded once by the sender, so
		// json.Marshal would only copy and re-validate it per recipient.
		w, err := c.ws.NextWriter(websocket.TextMessage)
		if err != nil {
			return err
		}
		io.WriteString(w, `{"type":"`)
		io.WriteString(w, m.typ)
		io.WriteString(w, `","seq":`)
		w.Write(strconv.AppendUint(num[:0], seq, 10))
		if m.re != 0 {
			io.WriteString(w, `,"re":`)
			w.Write(strconv.AppendUint(num[:0], m.re, 10))
		}
		if len(m.payload) > 0 {
			io.WriteString(w, `,"payload":`)
			w.Write(m.payload)
		}
		io.WriteString(w, "}")
		return w.Close()
	}
	for {
		select {
		case m := <-c.out:
			// Everything queued meanwhile goes out in the same write
			// (one syscall, not one per message): under load a client's
			// queue holds several messages by the time the writer runs.
			c.bc.begin()
			err := write(m)
		drain:
			for n := 1; err == nil && n < maxBatch; n++ {
				select {
				case m := <-c.out:
					err = write(m)
				default:
					break drain
				}
			}
			if ferr := c.bc.flush(time.Now().Add(cfg.WriteWait)); err == nil {
				err = ferr
			}
			if err != nil {
				c.close(websocket.CloseAbnormalClosure, "")
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(cfg.WriteWait)); err != nil {
				c.close(websocket.CloseAbnormalClosure, "")
			}
		case <-c.done:
			// Flush what was queued before the close (an error message
			// that explains it), then say goodbye.
			// (Not to a client dropped for being too slow: it would
			// only hold the writer up.)
			for flushing := c.closeCode != CloseTooSlow; flushing; {
				select {
				case m := <-c.out:
					if write(m) != nil {
						flushing = false
					}
				default:
					flushing = false
				}
			}
			if c.closeCode != websocket.CloseAbnormalClosure && c.closeCode != 0 {
				_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(c.closeCode, c.closeText), time.Now().Add(time.Second))
			}
			c.ws.Close()
			return
		}
	}
}

// maxBatch bounds the messages gathered into one write, so one busy
// connection's burst cannot hold its buffer at the queue's full size.
const maxBatch = 32

// hijackWriter hands the upgrader a batchConn around the hijacked
// connection instead of the connection itself.
type hijackWriter struct {
	http.ResponseWriter
	bc *batchConn
}

func (h *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("signaling: the response cannot be hijacked")
	}
	nc, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.bc = &batchConn{Conn: nc}
	return h.bc, rw, nil
}

// batchConn passes writes straight through, except between begin and
// flush, when it gathers them (the writer's frames, and a pong the reader
// answers meanwhile) and writes them at once. The gathering buffer comes
// from a pool and goes back after the flush: an idle connection holds none.
type batchConn struct {
	net.Conn
	mu       sync.Mutex
	batching bool
	buf      *[]byte
}

var batchBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.batching {
		return b.Conn.Write(p)
	}
	if b.buf == nil {
		b.buf = batchBufs.Get().(*[]byte)
	}
	*b.buf = append(*b.buf, p...)
	return len(p), nil
}

func (b *batchConn) begin() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.batching = true
	b.mu.Unlock()
}

// flush writes what was gathered, with deadline, and passes writes
// through again.
func (b *batchConn) flush(deadline time.Time) error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batching = false
	if b.buf == nil {
		return nil
	}
	buf := b.buf
	b.buf = nil
	var err error
	if len(*buf) > 0 {
		b.Conn.SetWriteDeadline(deadline)
		_, err = b.Conn.Write(*buf)
	}
	if cap(*buf) <= 64<<10 {
		*buf = (*buf)[:0]
		batchBufs.Put(buf)
	}
	return err
}

func (c *conn) readLoop(urlRoom, headerToken string) {
	cfg := &c.srv.cfg
	defer func() {
		c.close(websocket.CloseAbnormalClosure, "")
		if c.room != nil {
			c.room.dropped(c)
		}
	}()
	c.ws.SetReadLimit(cfg.ReadLimit)
	c.ws.SetReadDeadline(time.Now().Add(cfg.JoinWait))
	c.ws.SetPongHandler(func(string) error {
		c.ws.SetReadDeadline(time.Now().Add(cfg.PongWait))
		return nil
	})
	var lastSeq uint64
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			return // closed, timed out, or too big (the library sent 1009)
		}
		if c.room != nil {
			c.ws.SetReadDeadline(time.Now().Add(cfg.PongWait))
		}
		if !c.lim.Allow() {
			c.fail(CloseRateLimited, "rate_limited", "too many messages")
			return
		}
		m, err := parseMessage(b)
		if err != nil {
			if c.room == nil {
				c.fail(CloseBadRequest, "bad_request", err.Error())
				return
			}
			c.sendError(0, "invalid", err.Error())
			continue
		}
		if m.Seq <= lastSeq {
			c.sendError(m.Seq, "invalid", "seq must increase")
			continue
		}
		lastSeq = m.Seq
		if c.room == nil {
			if !c.open(urlRoom, m, headerToken) {
				return
			}
			c.ws.SetReadDeadline(time.Now().Add(cfg.PongWait))
			continue
		}
		select {
		case <-c.done:
			return
		default:
		}
		c.room.handle(c, m)
	}
}

// open handles the first message: join (token from the message or the
// header) or resume. It reports whether the connection goes on.
func (c *conn) open(urlRoom string, m Message, headerToken string) bool {
	s := c.srv
	var roomID string
	switch m.Type {
	case TJoin:
		var p JoinPayload
		if err := decodeStrict(m.Payload, &p); err != nil {
			c.fail(CloseBadRequest, "bad_request", err.Error())
			return false
		}
		roomID = p.Room
	case TResume:
		var p ResumePayload
		if err := decodeStrict(m.Payload, &p); err != nil {
			c.fail(CloseBadRequest, "bad_request", err.Error())
			return false
		}
		roomID = p.Room
	default:
		c.fail(CloseBadRequest, "bad_request", "the first message must be join or resume")
		return false
	}
	if err := checkID("room", roomID); err != nil {
		c.fail(CloseBadRequest, "bad_request", err.Error())
		return false
	}
	if urlRoom != "" && urlRoom != roomID {
		c.fail(CloseForbidden, "forbidden", "the message names another room than the URL")
		return false
	}
	switch m.Type {
	case TJoin:
		var p JoinPayload
		_ = json.Unmarshal(m.Payload, &p)
		tok := p.Token
		if tok == "" {
			tok = headerToken
		}
		if tok == "" {
			c.fail(CloseUnauthorized, "unauthorized", "a join token is required")
			return false
		}
		claims, err := s.cfg.Tokens.Verify(tok)
		if err != nil {
			c.fail(CloseUnauthorized, "unauthorized", "the join token is invalid or expired")
			return false
		}
		if claims.Room != roomID {
			c.fail(CloseForbidden, "forbidden", "the join token is for another room")
			return false
		}
		if !c.placeHere(roomID) {
			return false
		}
		return s.room(roomID, true).join(c, m.Seq, claims, p.NoMedia)
	default:
		var p ResumePayload
		_ = json.Unmarshal(m.Payload, &p)
		rm := s.room(roomID, false)
		if rm == nil {
			if !c.placeHere(roomID) {
				return false
			}
			c.fail(CloseGone, "gone", "the resume window has passed: join again")
			return false
		}
		return rm.resume(c, m.Seq, p)
	}
}

// placeHere asks the directory whether this instance hosts room; if
// another does, the client is told where to go.
func (c *conn) placeHere(room string) bool {
	s := c.srv
	if s.cfg.Directory == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	host, err := s.cfg.Directory.Place(ctx, room, s.cfg.Self)
	if err != nil {
		s.log.Warn("signaling: place room", "room", room, "err", err)
		c.fail(CloseUnavailable, "unavailable", "the room directory is unavailable")
		return false
	}
	if host.ID == s.cfg.Self.ID {
		return true
	}
	url := host.URL
	if s.cfg.RedirectURL != nil {
		url = s.cfg.RedirectURL(host, room)
	}
	c.send(TRedirect, 0, RedirectPayload{URL: url})
	c.close(CloseRedirect, "redirect")
	return false
}
