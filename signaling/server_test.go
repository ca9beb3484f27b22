package signaling

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

var (
	host    = Perms{Publish: true, Subscribe: true, Present: true, Admit: true}
	guest   = Perms{Publish: true, Subscribe: true}
	viewer  = Perms{Subscribe: true}
	teacher = Perms{Publish: true, Subscribe: true, Present: true}
)

func TestJoinIsRefused(t *testing.T) {
	h := newHarness(t, nil)
	expiredIssuer, _ := NewTokens(testKey, time.Minute)
	expiredIssuer.now = func() time.Time { return time.Now().Add(-2 * time.Minute) }
	expired, _, _ := expiredIssuer.Issue(Claims{Room: "r1", Participant: "p1", Perms: host})
	otherKey, _ := NewTokens([]byte(strings.Repeat("k", 32)), time.Minute)
	forged, _, _ := otherKey.Issue(Claims{Room: "r1", Participant: "p1", Perms: host})

	for _, c := range []struct {
		name    string
		first   Message
		payload any
		code    int
	}{
		{"without a token", Message{Type: TJoin}, JoinPayload{Room: "r1"}, CloseUnauthorized},
		{"with an expired token", Message{Type: TJoin}, JoinPayload{Room: "r1", Token: expired}, CloseUnauthorized},
		{"with a token signed by another key", Message{Type: TJoin}, JoinPayload{Room: "r1", Token: forged}, CloseUnauthorized},
		{"with a token for another room", Message{Type: TJoin}, JoinPayload{Room: "r2", Token: h.token("r1", "p1", host)}, CloseForbidden},
		{"when the first message is not a join", Message{Type: TChat}, ChatPayload{Text: "hi"}, CloseBadRequest},
		{"resuming a participant that is not there", Message{Type: TResume}, ResumePayload{Room: "r1", Participant: "p1", Secret: "x"}, CloseGone},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := h.mustDial("p1")
			cl.send(c.first.Type, c.payload)
			if e := cl.expectError(); e.Code == "" {
				t.Fatal("error without code")
			}
			cl.expectClose(c.code)
		})
	}
	if h.srv.Rooms() != 0 {
		t.Fatalf("refused joins left %d rooms", h.srv.Rooms())
	}
}

func TestForeignOrMissingOriginIsRefusedAtTheHandshake(t *testing.T) {
	h := newHarness(t, nil)
	for _, origin := range []string{"https://evil.example", ""} {
		_, resp, err := h.dial("p", origin)
		if err == nil {
			t.Fatalf("origin %q: connected", origin)
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("origin %q: response %v", origin, resp)
		}
	}
}

func TestTokenInSubprotocolHeaderIsNotEchoed(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.token("r1", "p1", host)
	c, resp, err := h.dial("p1", testOrigin, Subprotocol, TokenSubprotocolPrefix+tok)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != Subprotocol {
		t.Fatalf("server chose subprotocol %q", got)
	}
	c.send(TJoin, JoinPayload{Room: "r1"})
	var w WelcomePayload
	c.expectPayload(TWelcome, &w)
	if w.Participant != "p1" || w.Secret == "" || w.ResumeWithin != 20 {
		t.Fatalf("welcome %+v", w)
	}
}

func TestRoomInURLMustMatchTheJoin(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.RoomFromRequest = func(r *http.Request) string { return r.URL.Query().Get("room") }
	})
	h.url += "?room=r9"
	c := h.mustDial("p1")
	c.send(TJoin, JoinPayload{Room: "r1", Token: h.token("r1", "p1", host)})
	c.expectClose(CloseForbidden)
}

func TestOversizedMessageClosesTheConnection(t *testing.T) {
	h := newHarness(t, nil)
	c := h.join("r1", "p1", host)
	c.send(TChat, ChatPayload{Text: strings.Repeat("x", 17<<10)})
	c.expectClose(websocket.CloseMessageTooBig)
}

func TestMessageFloodClosesTheConnection(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Rate, c.Burst = 5, 10 })
	c := h.join("r1", "p1", host)
	for i := range 30 {
		// Writes fail once the server has closed: stop there.
		if c.ws.WriteJSON(Message{Type: THand, Seq: uint64(i + 2), Payload: []byte(`{"raised":true}`)}) != nil {
			break
		}
	}
	c.expectClose(CloseRateLimited)
}

func TestSeqMustIncrease(t *testing.T) {
	h := newHarness(t, nil)
	c := h.join("r1", "p1", host)
	c.seq = 0 // the join was 1: a second 1 is a replay
	c.send(THand, HandPayload{Raised: true})
	if m := c.expect(TError); m.Re != 1 {
		t.Fatalf("error answers seq %d", m.Re)
	}
	c.send(THand, HandPayload{Raised: true})
	c.expect(THand)
}

func TestSlowClientIsDroppedNotWaitedFor(t *testing.T) {
	// No writer runs: the queue fills and the next send must not block.
	s, _ := NewServer(Config{Tokens: &Tokens{}, AllowedOrigins: []string{testOrigin}})
	c := &conn{srv: s, out: make(chan *outMsg, 2), done: make(chan struct{})}
	for range 3 {
		c.send(TChat, 0, ChatPayload{Text: "x"})
	}
	select {
	case <-c.done:
	default:
		t.Fatal("a full queue did not drop the client")
	}
	if c.closeCode != CloseTooSlow {
		t.Fatalf("close code %d", c.closeCode)
	}
}

func TestLobbyAdmitAndRemove(t *testing.T) {
	h := newHarness(t, nil)
	hostC := h.join("r1", "host", host)
	g := h.join("r1", "guest", guest)

	var waiting ParticipantInfo
	hostC.expectPayload(TLobbyWaiting, &waiting)
	if waiting.ID != "guest" || waiting.Name != "name of guest" {
		t.Fatalf("lobby_waiting %+v", waiting)
	}
	// The server, not the page, keeps the guest out.
	g.send(TChat, ChatPayload{Text: "let me in"})
	if e := g.expectError(); e.Code != "lobby" {
		t.Fatalf("chat from the lobby: %+v", e)
	}
	hostC.expectNo(TChat, 200*time.Millisecond)

	// Only a host admits.
	other := h.join("r1", "other", guest)
	hostC.expect(TLobbyWaiting)
	hostC.send(TAdmit, TargetPayload{Participant: "other"})
	hostC.expect(TLobbyLeft)
	other.expect(TWelcome)
	other.send(TAdmit, TargetPayload{Participant: "guest"})
	if e := other.expectError(); e.Code != "forbidden" {
		t.Fatalf("admit by a guest: %+v", e)
	}

	hostC.send(TAdmit, TargetPayload{Participant: "guest"})
	var w WelcomePayload
	g.expectPayload(TWelcome, &w)
	if len(w.Participants) != 3 {
		t.Fatalf("welcome lists %+v", w.Participants)
	}
	var joined ParticipantInfo
	hostC.expectPayload(TJoined, &joined)
	for joined.ID != "guest" {
		hostC.expectPayload(TJoined, &joined)
	}
	g.send(TChat, ChatPayload{Text: "  good morning  "})
	var chat ChatPayload
	hostC.expectPayload(TChat, &chat)
	if chat.From != "guest" || chat.Text != "good morning" || chat.At == 0 {
		t.Fatalf("chat %+v", chat)
	}

	hostC.send(TRemove, TargetPayload{Participant: "guest"})
	g.expect(TRemoved)
	g.expectClose(CloseForbidden)
	var left TargetPayload
	hostC.expectPayload(TLeft, &left)
	if left.Participant != "guest" {
		t.Fatalf("left %+v", left)
	}
	// A removed participant's fresh token does not bring it back.
	again := h.mustDial("guest")
	again.send(TJoin, JoinPayload{Room: "r1", Token: h.token("r1", "guest", guest)})
	again.expectClose(CloseForbidden)
}

func TestLobbyParticipantLeavingIsTakenOffTheHostsList(t *testing.T) {
	h := newHarness(t, nil)
	hostC := h.join("r1", "host", host)
	g := h.join("r1", "guest", guest)
	hostC.expect(TLobbyWaiting)
	g.send(TLeave, nil)
	g.expectClose(websocket.CloseNormalClosure)
	var lt TargetPayload
	hostC.expectPayload(TLobbyLeft, &lt)
	if lt.Participant != "guest" {
		t.Fatalf("lobby_left %+v", lt)
	}
}

func TestImagingStateReachesFollowersAndALateJoiner(t *testing.T) {
	h := newHarness(t, nil)
	pres := h.mustDial("teacher")
	pres.send(TJoin, JoinPayload{Room: "r1", Token: h.token("r1", "teacher", host)})
	var w WelcomePayload
	pres.expectPayload(TWelcome, &w)
	if w.Presenter != "teacher" {
		t.Fatalf("the first participant allowed to present does not present: %+v", w)
	}
	var pp PresenterPayload
	early := h.join("r1", "early", Perms{Subscribe: true, Present: true, Admit: true})

	view := ViewState{Series: "1.2.3", Image: "im7", Slice: 42, WindowC: 40, WindowW: 400, Zoom: 2, PanX: 10, PanY: -5,
		Annotations: []Annotation{{ID: "a", Kind: "ellipse", Pts: []float64{10, 10, 40, 30}}, {ID: "b", Kind: "length", Pts: []float64{0, 0, 3, 4}, Text: "5 mm"}}}
	pres.send(TViewport, view)
	var ev ViewportEvent
	early.expectPayload(TViewport, &ev)
	if ev.State.Slice != 42 || ev.Presenter != "teacher" || len(ev.State.Annotations) != 2 || ev.VSeq != 1 {
		t.Fatalf("follower got %+v", ev)
	}
	view.Slice = 43
	pres.send(TViewport, view)
	early.expectPayload(TViewport, &ev)

	// A follower cannot drive the view.
	early.send(TViewport, ViewState{Slice: 1})
	if e := early.expectError(); e.Code != "forbidden" {
		t.Fatalf("viewport from a follower: %+v", e)
	}

	late := h.mustDial("late")
	late.send(TJoin, JoinPayload{Room: "r1", Token: h.token("r1", "late", Perms{Subscribe: true, Admit: true})})
	late.expect(TWelcome)
	late.expectPayload(TViewport, &ev)
	if ev.State.Slice != 43 || ev.VSeq != 2 || ev.State.Annotations[1].Text != "5 mm" {
		t.Fatalf("late joiner got %+v", ev)
	}

	// Handover: the teacher gives the role to early; now early drives and
	// the teacher follows. A participant without present cannot receive it.
	pres.send(TPresent, TargetPayload{Participant: "late"})
	if e := pres.expectError(); e.Code != "forbidden" {
		t.Fatalf("handover to a viewer: %+v", e)
	}
	pres.send(TPresent, TargetPayload{Participant: "early"})
	late.expectPayload(TPresent, &pp)
	if pp.Participant != "early" {
		t.Fatalf("presenter %+v", pp)
	}
	early.send(TViewport, ViewState{Series: "1.2.3", Image: "im8", Slice: 7, Zoom: 1})
	late.expectPayload(TViewport, &ev)
	if ev.Presenter != "early" || ev.State.Image != "im8" || ev.VSeq != 3 {
		t.Fatalf("after handover %+v", ev)
	}
	pres.send(TViewport, view)
	if e := pres.expectError(); e.Code != "forbidden" {
		t.Fatalf("old presenter still drives: %+v", e)
	}
}

func TestResumeWithinTheWindowKeepsThePlace(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ResumeWindow = 2 * time.Second })
	hostC := h.join("r1", "host", host)
	c := h.mustDial("p")
	c.send(TJoin, JoinPayload{Room: "r1", Token: h.token("r1", "p", Perms{Subscribe: true, Admit: true})})
	var w WelcomePayload
	c.expectPayload(TWelcome, &w)
	hostC.expect(TJoined)

	c.ws.Close() // the network drops
	time.Sleep(100 * time.Millisecond)
	r := h.mustDial("p again")
	r.send(TResume, ResumePayload{Room: "r1", Participant: "p", Secret: "wrong"})
	r.expectClose(CloseUnauthorized)

	r = h.mustDial("p again")
	r.send(TResume, ResumePayload{Room: "r1", Participant: "p", Secret: w.Secret})
	var w2 WelcomePayload
	r.expectPayload(TWelcome, &w2)
	if !w2.Resumed || w2.Secret != w.Secret {
		t.Fatalf("resume welcome %+v", w2)
	}
	hostC.expectNo(TLeft, 2500*time.Millisecond) // past the window: still there
	hostC.send(TChat, ChatPayload{Text: "still with us?"})
	r.expect(TChat)
}

func TestResumeAfterTheWindowMustRejoin(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ResumeWindow = 300 * time.Millisecond })
	hostC := h.join("r1", "host", host)
	c := h.mustDial("p")
	c.send(TJoin, JoinPayload{Room: "r1", Token: h.token("r1", "p", Perms{Subscribe: true, Admit: true})})
	var w WelcomePayload
	c.expectPayload(TWelcome, &w)
	c.ws.Close()
	var left TargetPayload
	hostC.expectPayload(TLeft, &left)
	if left.Participant != "p" {
		t.Fatalf("left %+v", left)
	}
	r := h.mustDial("p again")
	r.send(TResume, ResumePayload{Room: "r1", Participant: "p", Secret: w.Secret})
	r.expectClose(CloseGone)
}

func TestLastParticipantLeavingClosesTheRoom(t *testing.T) {
	h := newHarness(t, nil)
	c := h.join("r1", "host", host)
	if h.srv.Rooms() != 1 {
		t.Fatal("no room")
	}
	c.send(TLeave, nil)
	c.expectClose(websocket.CloseNormalClosure)
	deadline := time.Now().Add(2 * time.Second)
	for h.srv.Rooms() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if h.srv.Rooms() != 0 {
		t.Fatal("the empty room stayed")
	}
	h.join("r1", "host", host) // and a new one opens
}

func TestSilentClientIsDroppedByTheKeepalive(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.PingInterval, c.PongWait, c.ResumeWindow = 100*time.Millisecond, time.Second, 100*time.Millisecond
	})
	hostC := h.join("r1", "host", host) // reads, so it answers every ping

	// A client that never reads never answers a ping either.
	d := websocket.Dialer{}
	ws, _, err := d.Dial(h.url, http.Header{"Origin": {testOrigin}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteJSON(Message{Type: TJoin, Seq: 1, Payload: mustJSON(JoinPayload{Room: "r1", Token: h.token("r1", "mute", Perms{Subscribe: true, Admit: true})})}); err != nil {
		t.Fatal(err)
	}
	var left TargetPayload
	hostC.expectPayload(TLeft, &left)
	if left.Participant != "mute" {
		t.Fatalf("left %+v", left)
	}
	// The host, answering pings, is still there well past PongWait.
	hostC.send(THand, HandPayload{Raised: true})
	hostC.expect(THand)
}

func TestClientThatNeverJoinsIsClosed(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.JoinWait = 100 * time.Millisecond })
	c := h.mustDial("idle")
	c.expectClose(websocket.CloseAbnormalClosure)
}

// Presence hooks hear admission (not the lobby), leaving, removal and the
// instance closing, in order, so attendance can be recorded.
func TestPresenceHooksHearAdmissionLeavingAndClose(t *testing.T) {
	var mu sync.Mutex
	var got []string
	note := func(s string) {
		mu.Lock()
		got = append(got, s)
		mu.Unlock()
	}
	h := newHarness(t, func(c *Config) {
		c.OnJoin = func(room string, p ParticipantInfo, _ time.Time) {
			note("join " + room + " " + p.ID + " " + p.Hospital)
		}
		c.OnLeave = func(room, pid string, _ time.Time) { note("leave " + room + " " + pid) }
	})
	hc := h.join("r", "host", host)
	g := h.mustDial("guest")
	tok, _, err := h.tok.Issue(Claims{Room: "r", Participant: "guest", Hospital: "h2", Perms: viewer})
	if err != nil {
		t.Fatal(err)
	}
	g.send(TJoin, JoinPayload{Room: "r", Token: tok})
	g.expect(TLobby)
	hc.expect(TLobbyWaiting)
	hc.send(TAdmit, TargetPayload{Participant: "guest"})
	g.expect(TWelcome)
	g.send(TLeave, nil)
	hc.expect(TLeft)
	h.join("r", "waiter", viewer) // never admitted: never present
	h.srv.Close()
	want := []string{"join r host ", "join r guest h2", "leave r guest", "leave r host"}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("hooks heard %q, want %q", got, want)
	}
}
