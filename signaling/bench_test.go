package signaling

import (
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
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
