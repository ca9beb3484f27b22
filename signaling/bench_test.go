package signaling

import (
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// BenchmarkIdleConnectionMemory opens n signalling connections, joined and
// admitted 20 to a room, and reports the memory they hold: heap in use and
// goroutine stacks after a GC, divided by n. The test clients live in the
// same process with small buffers and no reader goroutine, so the figure is
// an upper bound of the server's share (target: ≤ 64 KiB). Run:
//
//	go test -run '^$' -bench IdleConnectionMemory -benchtime 1x ./signaling
func BenchmarkIdleConnectionMemory(b *testing.B) {
	for _, n := range []int{1000, 3000} {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) {
			for range b.N {
				h := newHarness(b, nil)
				d := websocket.Dialer{ReadBufferSize: 256, WriteBufferSize: 256, HandshakeTimeout: 10 * time.Second}
				hdr := http.Header{"Origin": {testOrigin}}
				before := memInUse()
				conns := make([]*websocket.Conn, 0, n)
				for i := range n {
					room := fmt.Sprintf("room%d", i/20)
					pid := fmt.Sprintf("p%d", i)
					ws, _, err := d.Dial(h.url, hdr)
					if err != nil {
						b.Fatal(err)
					}
					tok := h.token(room, pid, Perms{Subscribe: true, Admit: true})
					if err := ws.WriteJSON(Message{Type: TJoin, Seq: 1, Payload: mustJSON(JoinPayload{Room: room, Token: tok})}); err != nil {
						b.Fatal(err)
					}
					var m Message
					if err := ws.ReadJSON(&m); err != nil || m.Type != TWelcome {
						b.Fatalf("join %d: %v %s", i, err, m.Type)
					}
					conns = append(conns, ws)
				}
				time.Sleep(200 * time.Millisecond) // the joined broadcasts drain
				after := memInUse()
				b.ReportMetric(float64(after-before)/float64(n)/1024, "KiB/conn")
				b.ReportMetric(float64(runtime.NumGoroutine())/float64(n), "goroutines/conn")
				for _, ws := range conns {
					ws.Close()
				}
				h.srv.Close()
			}
		})
	}
}

func memInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// BenchmarkSignallingRelay joins n connections, 20 to a room, and has one
// participant in every room send a chat line every 100 ms for 2 s; it
// reports the p50 and p99 time from the send to each other participant's
// read (all clients in this process: their reading competes with the
// server for the same two cores). Target: p99 ≤ 100 ms at 5,000. Run:
//
//	go test -run '^$' -bench SignallingRelay -benchtime 1x ./signaling
func BenchmarkSignallingRelay(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) {
			for range b.N {
				signallingRelay(b, n)
			}
		})
	}
}

func signallingRelay(b *testing.B, n int) {
	h := newHarness(b, nil)
	d := websocket.Dialer{ReadBufferSize: 1024, WriteBufferSize: 1024, HandshakeTimeout: 10 * time.Second}
	hdr := http.Header{"Origin": {testOrigin}}
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	senders := map[string]*websocket.Conn{}
	for i := range n {
		room := fmt.Sprintf("room%d", i/20)
		ws, _, err := d.Dial(h.url, hdr)
		if err != nil {
			b.Fatal(err)
		}
		defer ws.Close()
		tok := h.token(room, fmt.Sprintf("p%d", i), Perms{Subscribe: true, Admit: true})
		if err := ws.WriteJSON(Message{Type: TJoin, Seq: 1, Payload: mustJSON(JoinPayload{Room: room, Token: tok})}); err != nil {
			b.Fatal(err)
		}
		if i%20 == 0 {
			senders[room] = ws
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var m Message
				if err := ws.ReadJSON(&m); err != nil {
					return
				}
				if m.Type != TChat {
					continue
				}
				var c ChatPayload
				if json.Unmarshal(m.Payload, &c) != nil {
					continue
				}
				sent, err := strconv.ParseInt(c.Text, 10, 64)
				if err != nil {
					continue
				}
				d := time.Duration(time.Now().UnixNano() - sent)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(500 * time.Millisecond) // the join broadcasts settle
	var swg sync.WaitGroup
	for _, ws := range senders {
		swg.Add(1)
		go func() {
			defer swg.Done()
			for i := range 20 {
				time.Sleep(100 * time.Millisecond)
				text := strconv.FormatInt(time.Now().UnixNano(), 10)
				if ws.WriteJSON(Message{Type: TChat, Seq: uint64(i + 2), Payload: mustJSON(ChatPayload{Text: text})}) != nil {
					return
				}
			}
		}()
	}
	swg.Wait()
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	got := slices.Clone(lat)
	mu.Unlock()
	h.srv.Close()
	wg.Wait()
	want := len(senders) * 20 * 20 // every participant, the sender too, gets every line
	slices.Sort(got)
	if len(got) == 0 {
		b.Fatal("no chat line arrived")
	}
	b.ReportMetric(float64(got[len(got)/2].Microseconds())/1000, "ms-p50")
	b.ReportMetric(float64(got[len(got)*99/100].Microseconds())/1000, "ms-p99")
	b.ReportMetric(100*float64(want-len(got))/float64(want), "%undelivered")
}
