package signaling

import (
	"errors"
	"net"
	"time"

	"github.com/pion/turn/v5"
)

// TURNConfig configures the built-in TURN server. An external TURN/STUN
// server (coturn with use-auth-secret) can be used instead: give its URLs
// and the same secret to ICEConfig and start none here.
type TURNConfig struct {
	UDPAddr string // e.g. 0.0.0.0:3478; empty: no UDP listener
	TCPAddr string // e.g. 0.0.0.0:3478; empty: no TCP listener
	// RelayIP is the address relays are announced on (the public IP);
	// RelayBind is where relay sockets listen (default 0.0.0.0).
	RelayIP   string
	RelayBind string
	Realm     string
	Secret    []byte // shared with ICEConfig.TURNSecret
	// Now is the clock credentials are checked against (tests).
	Now func() time.Time
}

// TURNServer is the running built-in TURN server.
type TURNServer struct {
	srv *turn.Server
	udp net.PacketConn
	tcp net.Listener
}

// StartTURN listens and serves TURN with time-limited credentials in the
// TURN REST scheme: nothing per user is stored, an expired username is
// refused.
func StartTURN(cfg TURNConfig) (*TURNServer, error) {
	if len(cfg.Secret) < 16 {
		return nil, errors.New("turn: the secret must be at least 16 bytes")
	}
	relayIP := net.ParseIP(cfg.RelayIP)
	if relayIP == nil {
		return nil, errors.New("turn: RelayIP must be an IP address")
	}
	if cfg.UDPAddr == "" && cfg.TCPAddr == "" {
		return nil, errors.New("turn: no listener configured")
	}
	if cfg.RelayBind == "" {
		cfg.RelayBind = "0.0.0.0"
	}
	if cfg.Realm == "" {
		cfg.Realm = "duikou"
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	t := &TURNServer{}
	sc := turn.ServerConfig{
		Realm: cfg.Realm,
		AuthHandler: func(ra *turn.RequestAttributes) (string, []byte, bool) {
			pw, err := CheckTURNCredentials(cfg.Secret, ra.Username, now())
			if err != nil {
				return "", nil, false
			}
			return ra.Username, turn.GenerateAuthKey(ra.Username, ra.Realm, pw), true
		},
	}
	gen := func() turn.RelayAddressGenerator {
		return &turn.RelayAddressGeneratorStatic{RelayAddress: relayIP, Address: cfg.RelayBind}
	}
	if cfg.UDPAddr != "" {
		c, err := net.ListenPacket("udp", cfg.UDPAddr)
		if err != nil {
			return nil, err
		}
		t.udp = c
		sc.PacketConnConfigs = []turn.PacketConnConfig{{PacketConn: c, RelayAddressGenerator: gen()}}
	}
	if cfg.TCPAddr != "" {
		l, err := net.Listen("tcp", cfg.TCPAddr)
		if err != nil {
			t.closeListeners()
			return nil, err
		}
		t.tcp = l
		sc.ListenerConfigs = []turn.ListenerConfig{{Listener: l, RelayAddressGenerator: gen()}}
	}
	srv, err := turn.NewServer(sc)
	if err != nil {
		t.closeListeners()
		return nil, err
	}
	t.srv = srv
	return t, nil
}

func (t *TURNServer) closeListeners() {
	if t.udp != nil {
		t.udp.Close()
	}
	if t.tcp != nil {
		t.tcp.Close()
	}
}

// UDPAddr and TCPAddr are the listening addresses (nil when not listening).
func (t *TURNServer) UDPAddr() net.Addr {
	if t.udp == nil {
		return nil
	}
	return t.udp.LocalAddr()
}

func (t *TURNServer) TCPAddr() net.Addr {
	if t.tcp == nil {
		return nil
	}
	return t.tcp.Addr()
}

// Close stops the server and its relays.
func (t *TURNServer) Close() error { return t.srv.Close() }
