package app

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"duikou/internal/httpapi"
	"duikou/internal/referrals"
	"duikou/internal/rtc"
	"duikou/internal/secret"
	"duikou/internal/store"
	"duikou/signaling"
	"duikou/signaling/sfu"
)

// joinTokenTTL is how long a join token lives: it is spent on the
// WebSocket's first message, seconds after the join answered.
const joinTokenTTL = 2 * time.Minute

// wireRTC builds the live side of remote sessions: one media relay and one
// signalling server per instance, the room directory shared through Redis
// (its heartbeat runs until the instance stops), TURN, and the join service
// that records attendance from the server's hooks and confirms the
// connections it holds. Keys come from the data
// key, so every instance accepts every other's join tokens and TURN
// credentials.
func (a *App) wireRTC(box *secret.Box, d *httpapi.Deps) error {
	cfg := a.cfg
	tokens, err := signaling.NewTokens(box.Derive("rtc-join-token"), joinTokenTTL)
	if err != nil {
		return err
	}
	ice, err := a.startTURN(box.Derive("rtc-turn"))
	if err != nil {
		return err
	}
	router, err := sfu.NewRouter(sfu.Config{LoopbackOnly: cfg.ICELoopback, UDPPortMin: cfg.MediaPortMin, UDPPortMax: cfg.MediaPortMax,
		NAT1To1IPs: nonEmpty(cfg.MediaPublicIP), Logger: a.log})
	if err != nil {
		return err
	}

	instanceURL := cfg.InstanceURL
	origins := append([]string(nil), cfg.AllowedOrigins...)
	if instanceURL == "" {
		instanceURL = cfg.PublicURL
	}
	if instanceURL == "" {
		// Nothing configured: the address main prints (a single instance,
		// reached as localhost when it listens on every interface).
		scheme := "http"
		if cfg.TLS() {
			scheme = "https"
		}
		host, port, _ := net.SplitHostPort(cfg.Listen)
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			host = "localhost"
			origins = append(origins, scheme+"://"+net.JoinHostPort("127.0.0.1", port))
		}
		instanceURL = scheme + "://" + net.JoinHostPort(host, port)
		if cfg.RedisURL != "" {
			a.log.Warn("several instances share Redis but neither -instance-url nor -public-url is set: session joins cannot be redirected between them")
		}
	}
	origins = append(origins, originOf(instanceURL))
	if cfg.PublicURL != "" {
		origins = append(origins, originOf(cfg.PublicURL))
	}

	self := signaling.Instance{ID: referrals.NewInstanceID(), URL: socketURL(instanceURL)}
	dir, err := signaling.NewRedisDirectory(a.KV, self, 0)
	if err != nil {
		return err
	}
	// Attendance rows name the instance by its room directory id: it holds
	// the connections of the rooms the directory gives it.
	rooms := rtc.New(rtc.Config{Sessions: store.NewConsults(a.DB), Audit: a.svc.audit,
		Granter: signaling.Granter{Tokens: tokens, ICE: ice}, BaseURL: socketURL(cfg.PublicURL),
		Instance: self.ID, Log: a.log})
	srv, err := signaling.NewServer(signaling.Config{
		Tokens:          tokens,
		AllowedOrigins:  origins,
		RoomFromRequest: func(r *http.Request) string { return chi.URLParam(r, "sessionID") },
		Media:           router,
		Directory:       dir,
		Self:            self,
		RedirectURL:     func(host signaling.Instance, room string) string { return host.URL + rtc.SocketPath(room) },
		OnJoin:          rooms.Joined,
		OnLeave:         rooms.Left,
		Logger:          a.log,
	})
	if err != nil {
		return err
	}
	a.signal = srv

	// The heartbeat runs until the stop begins, then withdraws itself so
	// this instance's rooms move at once. Hijacked WebSockets are not the
	// HTTP server's to drain: the rooms close when the stop begins (their
	// clients rejoin through another instance) and, at the latest, here.
	beating := make(chan struct{})
	go func() {
		defer close(beating)
		if err := dir.Run(a.stopping); err != nil {
			a.log.Warn("room directory heartbeat", "err", err)
		}
	}()
	go func() {
		<-a.stopping.Done()
		srv.Close()
	}()
	// This instance confirms the connections it holds until the stop
	// begins; then its rooms close and the hooks close their rows. Should
	// it die instead, the leader's presence sweep closes them.
	confirming := make(chan struct{})
	go func() {
		defer close(confirming)
		rooms.KeepAlive(a.stopping)
	}()
	a.closers = append(a.closers, func() {
		srv.Close() // waits for the attendance hooks, before the database closes
		for _, done := range []chan struct{}{beating, confirming} {
			select {
			case <-done:
			case <-time.After(5 * time.Second):
			}
		}
	})
	d.SessionRooms = rooms
	d.SessionSocket = srv
	return nil
}

// startTURN starts the built-in TURN server, or describes the external one,
// or neither; it returns the ICE servers clients are given.
func (a *App) startTURN(derived []byte) (signaling.ICEConfig, error) {
	cfg := a.cfg
	switch {
	case cfg.TURNListen != "":
		ts, err := signaling.StartTURN(signaling.TURNConfig{UDPAddr: cfg.TURNListen, TCPAddr: cfg.TURNListen,
			RelayIP: cfg.TURNPublicIP, Secret: derived})
		if err != nil {
			return signaling.ICEConfig{}, err
		}
		a.closers = append(a.closers, func() { ts.Close() })
		// The same port on both transports when configured (:3478); tests
		// listening on port 0 get two.
		at := func(addr net.Addr) string {
			_, port, _ := net.SplitHostPort(addr.String())
			return net.JoinHostPort(cfg.TURNPublicIP, port)
		}
		udp, tcp := at(ts.UDPAddr()), at(ts.TCPAddr())
		a.log.Info("TURN server listening", "udp", ts.UDPAddr().String(), "tcp", ts.TCPAddr().String(), "relay_ip", cfg.TURNPublicIP)
		return signaling.ICEConfig{STUN: []string{"stun:" + udp},
			TURN: []string{"turn:" + udp + "?transport=udp", "turn:" + tcp + "?transport=tcp"}, TURNSecret: derived}, nil
	case len(cfg.TURNExternal) > 0:
		ice := signaling.ICEConfig{TURNSecret: []byte(cfg.TURNSecret)}
		for _, u := range cfg.TURNExternal {
			if strings.HasPrefix(u, "stun") {
				ice.STUN = append(ice.STUN, u)
			} else {
				ice.TURN = append(ice.TURN, u)
			}
		}
		return ice, nil
	}
	return signaling.ICEConfig{}, nil
}

// socketURL turns an http(s) base URL into the ws(s) one ("" stays "").
func socketURL(base string) string {
	if rest, ok := strings.CutPrefix(base, "https://"); ok {
		return "wss://" + rest
	}
	if rest, ok := strings.CutPrefix(base, "http://"); ok {
		return "ws://" + rest
	}
	return base
}

// originOf is the scheme://host of an absolute URL, as a browser's Origin.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}
