package main

// The media scenarios of `duikou-bench rtc`: many small rooms completing
// offer/answer, ICE and DTLS, and one teaching round fanned out to many
// viewers.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

func jsonDecode(b []byte, v any) error { return json.Unmarshal(b, v) }

// mediaJoin: o.media participants in rooms of 2–4, every one publishing the
// small VP8 fixture and Opus and subscribing to the others; the figure is
// each participant's time from its join message to the first RTP packet it
// receives.
func (b *rtcBench) mediaJoin(ctx context.Context, stdout io.Writer) error {
	sizes := roomSizes(b.o.media)
	rooms := make([]string, len(sizes))
	for k := range sizes {
		id, err := b.newSession(ctx, b.specs[k%len(b.specs)], b.doctors[0], false)
		if err != nil {
			return fmt.Errorf("write session: %w", err)
		}
		rooms[k] = id
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	all := make([][]*member, len(sizes))
	next := 0
	var everyone []*member
	for k, n := range sizes {
		all[k] = b.roomMembers(k, n, &next)
		everyone = append(everyone, all[k]...)
	}
	defer func() {
		var wg sync.WaitGroup
		for _, m := range everyone {
			wg.Add(1)
			go func() { defer wg.Done(); m.leave() }()
		}
		wg.Wait()
	}()
	// A room publishes until its participants have their first packets,
	// then goes quiet but stays connected: the server keeps all the
	// PeerConnections, while the tool's CPU (on the same 2 cores) goes to
	// the rooms still joining rather than to sustained media.
	quiet := make([]context.CancelFunc, len(sizes))
	for k, ms := range all {
		rctx, stop := context.WithCancel(pctx)
		quiet[k] = stop
		for _, m := range ms {
			p, err := newMediaPeer(b.api)
			if err != nil {
				return err
			}
			m.peer = p
			if _, err := p.publish(rctx, videoLow); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(b.stderr, "media join: %d participants in %d rooms…\n", b.o.media, len(sizes))
	firstRTP := newStep("first RTP")
	joinLat := newStep("join")
	rs := newStep("rooms")
	cpu0 := b.srv.cpu()
	pool(ctx, 16, len(sizes), 10*time.Minute, rs, func(ctx context.Context, _, k int) error {
		if err := b.joinRoom(ctx, rooms[k], all[k], joinLat, nil); err != nil {
			return err
		}
		var wg sync.WaitGroup
		for _, m := range all[k] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				select {
				case at := <-m.peer.first:
					firstRTP.record(at.Sub(m.joinSent), nil)
				case <-time.After(30 * time.Second):
					firstRTP.record(0, fmt.Errorf("no RTP within 30 s (state %s)", m.peer.pc.ConnectionState()))
				case <-ctx.Done():
				}
			}()
		}
		wg.Wait()
		quiet[k]()
		return nil
	})
	cpu := b.srv.cpu() - cpu0
	connected := 0
	for _, m := range everyone {
		if m.peer.pc.ConnectionState() == webrtc.PeerConnectionStateConnected {
			connected++
		}
	}
	fmt.Fprintf(stdout, "### Media join: %d participants in %d rooms of 2–4\n\n", b.o.media, len(sizes))
	fmt.Fprintf(stdout, "Every participant publishes VP8 (160×120, 15 fps, ~100 kbit/s, real frames) and Opus and subscribes to the others; 16 rooms join at a time, the host first, its guests as soon as it is in (they wait in the lobby for its admit). Time is from a participant's join message to the first RTP packet it receives from the relay (offer/answer, ICE, DTLS and the relay's forwarding included). Once all of a room have their first packet the room stops sending but stays connected, so the later rooms are not measured against the tool's own media load on the same cores.\n\n")
	fmt.Fprintln(stdout, "| what | count | p50 ms | p99 ms | errors | target |")
	fmt.Fprintln(stdout, "| --- | ---: | ---: | ---: | --- | --- |")
	fmt.Fprintf(stdout, "| join message → welcome | %d | %s | %s | %s | |\n", joinLat.ok, ms(joinLat.percentile(50)), ms(joinLat.percentile(99)), joinLat.errorText())
	fmt.Fprintf(stdout, "| join message → first RTP packet | %d | %s | %s | %s | p99 ≤ 1000 |\n\n", firstRTP.ok, ms(firstRTP.percentile(50)), ms(firstRTP.percentile(99)), firstRTP.errorText())
	fmt.Fprintf(stdout, "- all %d rooms in within %.1f s; %d of %d PeerConnections connected at the end; server CPU meanwhile %.2f cores, RSS %.0f MiB; room errors: %s\n\n", rs.ok, rs.elapsed.Seconds(),
		connected, len(everyone), cpu.Seconds()/max(rs.elapsed.Seconds(), 0.001), float64(b.srv.rss())/(1<<20), rs.errorText())
	if rs.errorCount() > 0 {
		return fmt.Errorf("%d rooms failed: %s", rs.errorCount(), rs.errorText())
	}
	return nil
}

// fanoutRow is one subscriber count's figures.
type fanoutRow struct {
	n, ready            int
	joinP50, joinP99    time.Duration
	pps, videoPPS       float64
	loss, worst         float64
	delivered           float64
	rcvbufDrops         int64
	outPPS              float64
	pubVideo, pubAudio  int64
	pubKbps             float64
	cpuCores, mcPerStrm float64
	restCores           float64 // the server's CPU before the round, once settled
	rssMiB              float64
	err                 string
}

// settle waits, before a round, until the server's CPU over a second falls
// below settledCores (the previous scenario's connections torn down and
// collected), for at most settleLimit, and returns the last second's figure:
// the round is then measured from the server's rest, not from the tail of
// what came before it.
func (b *rtcBench) settle(ctx context.Context) float64 {
	const (
		settledCores = 0.03
		settleLimit  = 30 * time.Second
	)
	deadline := time.Now().Add(settleLimit)
	for {
		c0, t0 := b.srv.cpu(), time.Now()
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(time.Second):
		}
		cores := (b.srv.cpu() - c0).Seconds() / time.Since(t0).Seconds()
		if cores < settledCores || time.Now().After(deadline) {
			return cores
		}
	}
}

// fanout: for each subscriber count, a teaching round whose host publishes
// the 1.5 Mbit/s VP8 fixture and Opus to n viewers; over the steady window
// (everyone in and receiving) it measures the packets the viewers receive,
// their loss from RTP sequence gaps, and the server process's CPU.
func (b *rtcBench) fanout(ctx context.Context, stdout io.Writer) error {
	var rows []fanoutRow
	for _, n := range b.o.subscribers {
		fmt.Fprintf(b.stderr, "fan-out: %d subscribers…\n", n)
		rest := b.settle(ctx)
		r := b.fanoutOnce(ctx, n)
		r.restCores = rest
		fmt.Fprintf(b.stderr, "fan-out: %d subscribers: %+v\n", n, r)
		rows = append(rows, r)
		time.Sleep(3 * time.Second) // the server tears the last round down
	}
	fmt.Fprintf(stdout, "### Teaching round fan-out\n\n")
	fmt.Fprintf(stdout, "One host publishes real VP8 (640×360, 30 fps, ~1.4 Mbit/s, looping an ffmpeg testsrc2 encoding) and Opus (32 kbit/s, 20 ms frames) to n viewers of an invited hospital, each a pion peer in this process without interceptors (no NACKs: loss is as on the wire). Before each round the tool waits until the server process uses under 0.03 cores over a second (at most 30 s: the previous round or scenario torn down), reported as its CPU at rest. After all are in and receiving, and 2 s to settle, a %s window: packets the viewers received per second (video + audio), loss from each viewer's RTP sequence gaps (all tracks; worst viewer in brackets), and the server process's CPU from /proc/<pid>/stat, per forwarded video stream.\n\n", b.o.window)
	fmt.Fprintln(stdout, "| viewers | in and receiving | join p50 / p99 ms | publisher sent (video pkts, kbit/s) | forwarded pkts/s (video) | loss % from seq gaps (worst viewer) | received / sent × viewers | UDP datagrams sent/s (machine) | UDP receive-buffer drops (machine) | server CPU at rest before, cores | server CPU, cores | **millicores per stream** | server RSS MiB |")
	fmt.Fprintln(stdout, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	var failed []string
	for _, r := range rows {
		if r.err != "" {
			fmt.Fprintf(stdout, "| %d | %d | — | — | — | — | — | — | — | — | — | — | — (%s) |\n", r.n, r.ready, r.err)
			failed = append(failed, fmt.Sprintf("%d: %s", r.n, r.err))
			continue
		}
		fmt.Fprintf(stdout, "| %d | %d | %s / %s | %d, %.0f | %.0f (%.0f) | %.2f (%.2f) | %.1f %% | %.0f | %d | %.3f | %.2f | **%.1f** | %.0f |\n", r.n, r.ready, ms(r.joinP50), ms(r.joinP99),
			r.pubVideo, r.pubKbps, r.pps, r.videoPPS, r.loss, r.worst, r.delivered, r.outPPS, r.rcvbufDrops, r.restCores, r.cpuCores, r.mcPerStrm, r.rssMiB)
	}
	fmt.Fprintln(stdout, "\nThe UDP columns are the kernel's counts for the whole machine over the window (/proc/net/snmp): datagrams sent per second (the relay's forwarding, plus the publisher's ~230 and the viewers' few ICE keepalives; the tool's viewers send no RTCP), and datagrams dropped at a socket whose reader was behind. Sent datagrams near packets-per-viewer × viewers with fewer received means the relay sent them and the viewers in this tool (CPU-starved on the shared 2 cores: pion drops inside its own buffers as well as at the socket) did not take them.")
	fmt.Fprintln(stdout, "\nTargets: 150 viewers with < 1 % loss; ≤ 5 millicores of server CPU per forwarded 1.5 Mbit/s stream.")
	fmt.Fprintln(stdout)
	if len(failed) > 0 {
		return fmt.Errorf("fan-out: %v", failed)
	}
	return nil
}

func (b *rtcBench) fanoutOnce(ctx context.Context, n int) (row fanoutRow) {
	row.n = n
	host := b.specs[0]
	room, err := b.newSession(ctx, host, b.doctors[0], true)
	if err != nil {
		row.err = err.Error()
		return row
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hm := &member{acct: host, host: true, idx: 0}
	var members []*member
	defer func() {
		var wg sync.WaitGroup
		for _, m := range members {
			wg.Add(1)
			go func() { defer wg.Done(); m.leave() }()
		}
		wg.Wait()
	}()
	var err2 error
	sent := &sentCounter{}
	pubAPI, err2 := newBenchAPI(sent)
	if err2 != nil {
		row.err = err2.Error()
		return row
	}
	if hm.peer, err2 = newMediaPeer(pubAPI); err2 != nil {
		row.err = err2.Error()
		return row
	}
	pub, err := hm.peer.publish(pctx, videoHigh)
	if err != nil {
		row.err = err.Error()
		return row
	}
	members = append(members, hm)
	if err := b.joinRoom(ctx, room, []*member{hm}, nil, nil); err != nil {
		row.err = "host: " + err.Error()
		return row
	}
	// The viewers join 8 at a time; the host admits each from the lobby.
	viewers := make([]*member, n)
	for i := range viewers {
		p, err := newMediaPeer(b.api)
		if err != nil {
			row.err = err.Error()
			return row
		}
		viewers[i] = &member{acct: b.viewers[i], idx: i + 1, peer: p}
	}
	members = append(members, viewers...)
	joinLat := newStep("join")
	pool(ctx, 8, n, 5*time.Minute, newStep("viewers"), func(ctx context.Context, _, i int) error {
		v := viewers[i]
		v.welcome = make(chan time.Time, 1)
		return b.joinGuest(ctx, room, v, joinLat)
	})
	row.joinP50, row.joinP99 = joinLat.percentile(50), joinLat.percentile(99)
	// Wait until every viewer receives video (bounded).
	deadline := time.Now().Add(30*time.Second + time.Duration(n)*200*time.Millisecond)
	for time.Now().Before(deadline) {
		row.ready = 0
		for _, v := range viewers {
			if vt := v.peer.videoTracks(); len(vt) > 0 && vt[0].received.Load() >= 30 {
				row.ready++
			}
		}
		if row.ready == n {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if row.ready < n {
		row.err = fmt.Sprintf("only %d of %d viewers received video; join errors: %s", row.ready, n, joinLat.errorText())
		return row
	}
	time.Sleep(2 * time.Second)

	type snap struct{ pk, seq int64 }
	take := func() [][]snap {
		out := make([][]snap, n)
		for i, v := range viewers {
			for _, t := range v.peer.allTracks() {
				p, s := t.snapshot()
				out[i] = append(out[i], snap{p, s})
			}
		}
		return out
	}
	videoCount := func() int64 {
		var s int64
		for _, v := range viewers {
			for _, t := range v.peer.videoTracks() {
				s += t.received.Load()
			}
		}
		return s
	}
	pv0, pa0, pb0 := sent.video.Load(), sent.audio.Load(), pub.videoBytes.Load()
	s0, vc0 := take(), videoCount()
	drops0, out0 := udpCounter("RcvbufErrors"), udpCounter("OutDatagrams")
	cpu0, t0 := b.srv.cpu(), time.Now()
	time.Sleep(b.o.window)
	cpu, el := b.srv.cpu()-cpu0, time.Since(t0)
	row.rcvbufDrops = udpCounter("RcvbufErrors") - drops0
	row.outPPS = float64(udpCounter("OutDatagrams")-out0) / el.Seconds()
	s1, vc1 := take(), videoCount()
	pv1, pa1, pb1 := sent.video.Load(), sent.audio.Load(), pub.videoBytes.Load()

	var recv, expect int64
	worst := 0.0
	for i := range viewers {
		var r, e int64
		for j := range min(len(s0[i]), len(s1[i])) {
			r += s1[i][j].pk - s0[i][j].pk
			e += s1[i][j].seq - s0[i][j].seq
		}
		recv += r
		expect += e
		if e > 0 {
			worst = max(worst, 100*float64(max(0, e-r))/float64(e))
		}
	}
	row.pps = float64(recv) / el.Seconds()
	// What the viewers got against what the publisher sent (window edges
	// aside): unlike sequence gaps, this also sees a viewer whose stream
	// stalled altogether.
	if want := (pv1 - pv0 + pa1 - pa0) * int64(n); want > 0 {
		row.delivered = 100 * float64(recv) / float64(want)
	}
	row.videoPPS = float64(vc1-vc0) / el.Seconds()
	if expect > 0 {
		row.loss = 100 * float64(max(0, expect-recv)) / float64(expect)
	}
	row.worst = worst
	row.pubVideo, row.pubAudio = pv1-pv0, pa1-pa0
	row.pubKbps = float64(pb1-pb0) * 8 / 1000 / el.Seconds()
	row.cpuCores = cpu.Seconds() / el.Seconds()
	row.mcPerStrm = row.cpuCores * 1000 / float64(n)
	row.rssMiB = float64(b.srv.rss()) / (1 << 20)
	return row
}

// joinGuest brings one guest into a room whose host (already in) admits
// it from the lobby.
func (b *rtcBench) joinGuest(ctx context.Context, room string, m *member, joinLat *stepStats) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	tok, wsURL, err := b.ticket(ctx, m.acct, room)
	if err != nil {
		joinLat.record(0, err)
		return err
	}
	ws, err := dialSignal(ctx, wsURL, b.origin, func(typ string, payload []byte) {
		if m.peer != nil && m.peer.signal(typ, payload) {
			return
		}
		if typ == "welcome" {
			select {
			case m.welcome <- time.Now():
			default:
			}
		}
	})
	if err != nil {
		joinLat.record(0, err)
		return err
	}
	m.ws = ws
	m.peer.ws.Store(ws)
	m.joinSent = time.Now()
	if err := ws.send("join", mustJSON(map[string]string{"room": room, "token": tok})); err != nil {
		joinLat.record(0, err)
		return err
	}
	return m.awaitWelcome(ctx, joinLat)
}

// udpCounter is one of the kernel's machine-wide UDP counters (e.g.
// RcvbufErrors: datagrams dropped for a full socket receive buffer), 0 when
// unreadable.
func udpCounter(name string) int64 {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0
	}
	var names []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == name && i < len(f) {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				return v
			}
		}
	}
	return 0
}
