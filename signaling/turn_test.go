package signaling

import (
	"net"
	"testing"
	"time"

	"github.com/pion/turn/v5"
)

func TestBuiltInTURNRelaysWithTimeLimitedCredentialsOverUDPAndTCP(t *testing.T) {
	secret := []byte("a-turn-secret-of-some-length")
	ts, err := StartTURN(TURNConfig{UDPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0", RelayIP: "127.0.0.1", RelayBind: "127.0.0.1", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ts.Close() })

	now := time.Now()
	user, pass := TURNCredentials(secret, "p1", now.Add(time.Minute))
	oldUser, oldPass := TURNCredentials(secret, "p1", now.Add(-time.Second))

	allocate := func(t *testing.T, overTCP bool, user, pass string) (net.PacketConn, error) {
		var conn net.PacketConn
		addr := ts.UDPAddr().String()
		if overTCP {
			addr = ts.TCPAddr().String()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			conn = turn.NewSTUNConn(c)
		} else {
			c, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			conn = c
		}
		cl, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: addr, STUNServerAddr: addr, Username: user, Password: pass, Realm: "duikou", Conn: conn, RTO: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close(); conn.Close() })
		if err := cl.Listen(); err != nil {
			t.Fatal(err)
		}
		return cl.Allocate()
	}

	for _, tcp := range []bool{false, true} {
		name := map[bool]string{false: "udp", true: "tcp"}[tcp]
		t.Run(name, func(t *testing.T) {
			relay, err := allocate(t, tcp, user, pass)
			if err != nil {
				t.Fatalf("valid credentials refused: %v", err)
			}
			defer relay.Close()
			// A packet written through the relay reaches a peer from the
			// relay's address.
			peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			if _, err := relay.WriteTo([]byte("ping"), peer.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			peer.SetReadDeadline(time.Now().Add(3 * time.Second))
			buf := make([]byte, 64)
			n, from, err := peer.ReadFrom(buf)
			if err != nil || string(buf[:n]) != "ping" || from.String() != relay.LocalAddr().String() {
				t.Fatalf("relayed %q from %v (relay %v): %v", buf[:n], from, relay.LocalAddr(), err)
			}

			if _, err := allocate(t, tcp, oldUser, oldPass); err == nil {
				t.Fatal("expired credentials allocated a relay")
			}
			if _, err := allocate(t, tcp, user, pass+"x"); err == nil {
				t.Fatal("a wrong password allocated a relay")
			}
		})
	}
}
