package sfu

import (
	"fmt"
	"sync"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// recorder is one subscriber's binding: what was written to it.
type recorder struct {
	mu   sync.Mutex
	seqs []uint16
	bad  string
}

func (r *recorder) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if want := fmt.Sprintf("p%d", h.SequenceNumber); string(payload) != want && r.bad == "" {
		r.bad = fmt.Sprintf("seq %d carries %q", h.SequenceNumber, payload)
	}
	r.seqs = append(r.seqs, h.SequenceNumber)
	return len(payload), nil
}

func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }

// Every subscriber gets every packet, in order, with its own SSRC and
// payload type, whether the track's reader writes them (a few subscribers)
// or its workers do (many); the reader may reuse its packet at once.
func TestEverySubscriberGetsEveryPacketInOrder(t *testing.T) {
	for _, n := range []int{3, shardFrom, 150} {
		t.Run(fmt.Sprint(n, " subscribers"), func(t *testing.T) {
			tr := &fanTrack{binds: map[webrtc.SSRC]fanBinding{}}
			recs := map[uint32]*recorder{}
			for i := range n {
				r := &recorder{}
				ssrc := webrtc.SSRC(1000 + i)
				recs[uint32(ssrc)] = r
				tr.binds[ssrc] = fanBinding{ssrc: ssrc, w: ssrcCheck{r, uint32(ssrc), 96}, pt: 96}
			}
			tr.publishLocked()
			var pkt rtp.Packet
			buf := make([]byte, 8)
			const packets = 300
			for seq := range uint16(packets) {
				pkt.Header = rtp.Header{Version: 2, SequenceNumber: seq, SSRC: 7, PayloadType: 100}
				pkt.Payload = append(buf[:0], fmt.Sprintf("p%d", seq)...)
				tr.forward(&pkt)
			}
			tr.stop()
			for ssrc, r := range recs {
				if r.bad != "" {
					t.Fatalf("ssrc %d: %s", ssrc, r.bad)
				}
				if len(r.seqs) != packets {
					t.Fatalf("ssrc %d got %d packets, want %d", ssrc, len(r.seqs), packets)
				}
				for i, s := range r.seqs {
					if s != uint16(i) {
						t.Fatalf("ssrc %d: packet %d is seq %d", ssrc, i, s)
					}
				}
			}
		})
	}
}

// ssrcCheck fails a write that does not carry the binding's SSRC and
// payload type.
type ssrcCheck struct {
	r    *recorder
	ssrc uint32
	pt   uint8
}

func (c ssrcCheck) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	if h.SSRC != c.ssrc || h.PayloadType != c.pt {
		c.r.mu.Lock()
		c.r.bad = fmt.Sprintf("written with ssrc %d pt %d", h.SSRC, h.PayloadType)
		c.r.mu.Unlock()
	}
	return c.r.WriteRTP(h, payload)
}

func (c ssrcCheck) Write(b []byte) (int, error) { return len(b), nil }
