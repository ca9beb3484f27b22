package signaling

import (
	"context"
	"encoding/binary"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// dropOnce loses every 10th VP8 packet the first time it arrives (at most
// limit of them, and none of the first 20: a receiver cannot know it
// missed what came before its first packet), as a lossy link would. It sits before the NACK generator,
// so the subscriber asks for the lost packets again.
type dropOnce struct {
	interceptor.NoOp
	mu      sync.Mutex
	limit   int
	passed  int
	dropped map[uint16]bool
}

func (d *dropOnce) NewInterceptor(string) (interceptor.Interceptor, error) { return d, nil }

func (d *dropOnce) BindRemoteStream(info *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	if info.MimeType != webrtc.MimeTypeVP8 {
		return r
	}
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		for {
			n, attr, err := r.Read(b, a)
			if err != nil || n < 4 {
				return n, attr, err
			}
			seq := binary.BigEndian.Uint16(b[2:4])
			d.mu.Lock()
			d.passed++
			drop := d.passed > 20 && seq%10 == 0 && len(d.dropped) < d.limit && !d.dropped[seq]
			if drop {
				d.dropped[seq] = true
			}
			d.mu.Unlock()
			if !drop {
				return n, attr, nil
			}
		}
	})
}

func TestLostPacketsAreResentOnNACK(t *testing.T) {
	h, router := newMediaHarness(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	pub := newPeer(t, "pub", router)
	pub.publish(ctx)
	cp := pub.connect(h, TJoin, JoinPayload{Room: "r", Token: h.token("r", "pub", host)})
	cp.expect(TWelcome)

	// The subscriber's own API: the dropper first, then NACK; replay
	// protection off, since the resent packet is the dropped one itself
	// (SRTP saw it before the dropper did).
	drop := &dropOnce{limit: 5, dropped: map[uint16]bool{}}
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	ir.Add(drop)
	if err := webrtc.ConfigureNack(m, ir); err != nil {
		t.Fatal(err)
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.DisableSRTPReplayProtection(true)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))

	sub := newPeer(t, "sub", router)
	sub.pc.Close()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	var mu sync.Mutex
	got := map[uint16]int{}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			mu.Lock()
			got[pkt.SequenceNumber]++
			mu.Unlock()
		}
	})
	sub.pc = pc
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			ci := c.ToJSON()
			if ws := sub.ws.Load(); ws != nil {
				_ = ws.trySend(TCandidate, CandidatePayload{Candidate: ci.Candidate, SDPMid: ci.SDPMid, SDPMLineIndex: ci.SDPMLineIndex})
			}
		}
	})
	cs := sub.connect(h, TJoin, JoinPayload{Room: "r", Token: h.token("r", "sub", Perms{Subscribe: true, Admit: true})})
	cs.expect(TWelcome)

	deadline := time.Now().Add(10 * time.Second)
	for {
		drop.mu.Lock()
		lost := make([]uint16, 0, len(drop.dropped))
		for s := range drop.dropped {
			lost = append(lost, s)
		}
		drop.mu.Unlock()
		mu.Lock()
		missing := 0
		for _, s := range lost {
			if got[s] == 0 {
				missing++
			}
		}
		mu.Unlock()
		if len(lost) == drop.limit && missing == 0 {
			return // every lost packet came again
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d packets lost, %d of them never resent", len(lost), missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
