package signaling

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// BenchmarkFanout relays one publisher's 1.5 Mbit/s VP8-typed RTP stream
// (synthetic: 1,200-byte payloads, 156 packets/s, each stamped with its send
// time) to n subscribers, all real pion peers in this process over
// loopback, and reports over a 3 s window: the process CPU per forwarded
// stream (millicores; an upper bound, since it includes the test
// publisher's sending and every subscriber's receiving), the share of
// packets lost, and the p50/p99 latency from the publisher's send to a
// subscriber's read. On a shared 2-core machine the in-process subscribers
// compete with the relay: at 150 the figures say more about the machine
// than about the relay. Run:
//
//	go test -run '^$' -bench Fanout -benchtime 1x ./signaling
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{20, 50, 150} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			for range b.N {
				fanout(b, n)
			}
		})
	}
}

func fanout(b *testing.B, n int) {
	h, router := newMediaHarness(b, func(c *Config) { c.SendQueue = 256 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The window is judged by each packet's send stamp, so packets in
	// flight at either end count on both sides or on neither.
	var mu sync.Mutex
	var lat []time.Duration
	var winStart, winEnd int64 = 1<<62 - 1, 1<<62 - 1
	var recvWindow, sentWindow int64
	inWindow := func(stamp int64) bool { return stamp >= winStart && stamp < winEnd }
	subs := make([]*peer, n)
	for i := range subs {
		s := newPeer(b, fmt.Sprintf("sub%d", i), router)
		s.onRTP = func(kind string, payload []byte) {
			if kind != "video" || len(payload) < 8 {
				return
			}
			stamp := int64(binary.BigEndian.Uint64(payload))
			d := time.Duration(time.Now().UnixNano() - stamp)
			mu.Lock()
			if inWindow(stamp) {
				lat = append(lat, d)
				recvWindow++
			}
			mu.Unlock()
		}
		c := s.connect(h, TJoin, JoinPayload{Room: "r", Token: h.token("r", s.name, Perms{Subscribe: true, Admit: true})})
		c.expect(TWelcome)
		subs[i] = s
	}

	pub := newPeer(b, "pub", router)
	video, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "cam", "local")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pub.pc.AddTrack(video); err != nil {
		b.Fatal(err)
	}
	go func() {
		const pps = 156 // 1.5 Mbit/s of 1,200-byte payloads
		tick := time.NewTicker(time.Second / pps)
		defer tick.Stop()
		payload := make([]byte, 1200)
		var seq uint16
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			seq++
			stamp := time.Now().UnixNano()
			binary.BigEndian.PutUint64(payload, uint64(stamp))
			_ = video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq/5) * 3000, Marker: seq%5 == 0}, Payload: payload})
			mu.Lock()
			if inWindow(stamp) {
				sentWindow++
			}
			mu.Unlock()
		}
	}()
	cp := pub.connect(h, TJoin, JoinPayload{Room: "r", Token: h.token("r", "pub", host)})
	cp.expect(TWelcome)
	for _, s := range subs {
		s.waitPackets("pub-video", 50)
	}

	time.Sleep(300 * time.Millisecond)
	cpu0 := cpuTime()
	start := time.Now()
	mu.Lock()
	winStart, winEnd = start.UnixNano(), start.Add(3*time.Second).UnixNano()
	mu.Unlock()
	time.Sleep(3 * time.Second)
	cpu := cpuTime() - cpu0
	elapsed := time.Since(start)
	time.Sleep(500 * time.Millisecond) // packets in flight at the window's end arrive (later ones count as lost)
	mu.Lock()
	recv, window := recvWindow, sentWindow
	mu.Unlock()
	states := map[string]int{}
	for _, s := range subs {
		states[s.pc.ConnectionState().String()]++
	}
	// A publisher that sent far fewer than 468 packets in the window was
	// starved of CPU: the machine, not the relay, set the figures.
	b.Logf("window: %d packets sent, %d received; publisher %s, subscribers %v", window, recv, pub.pc.ConnectionState(), states)

	mu.Lock()
	slices.Sort(lat)
	var p50, p99 time.Duration
	if len(lat) > 0 {
		p50, p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	mu.Unlock()
	b.ReportMetric(float64(cpu)/float64(elapsed)*1000/float64(n), "millicores/stream")
	b.ReportMetric(100*(1-float64(recv)/float64(window*int64(n))), "%loss")
	b.ReportMetric(float64(p50.Microseconds())/1000, "ms-p50")
	b.ReportMetric(float64(p99.Microseconds())/1000, "ms-p99")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
