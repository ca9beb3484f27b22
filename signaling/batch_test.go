package signaling

import (
	"net"
	"slices"
	"testing"
	"time"
)

// countingConn records each write the connection's socket would see.
type countingConn struct {
	net.Conn
	writes [][]byte
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, slices.Clone(p))
	return len(p), nil
}

func (c *countingConn) SetWriteDeadline(time.Time) error { return nil }

// The writer's burst of frames reaches the socket as one write, in order;
// outside a burst (a pong the reader sends, the close frame) writes go
// straight through.
func TestABurstOfFramesIsOneWrite(t *testing.T) {
	cc := &countingConn{}
	b := &batchConn{Conn: cc}
	b.Write([]byte("pong"))
	b.begin()
	for _, f := range []string{"one", "two", "three"} {
		if n, err := b.Write([]byte(f)); n != len(f) || err != nil {
			t.Fatalf("write %q: %d, %v", f, n, err)
		}
	}
	if len(cc.writes) != 1 {
		t.Fatalf("%d writes reached the socket before the flush, want only the pong", len(cc.writes))
	}
	if err := b.flush(time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	b.Write([]byte("close"))
	got := make([]string, len(cc.writes))
	for i, w := range cc.writes {
		got[i] = string(w)
	}
	if want := []string{"pong", "onetwothree", "close"}; !slices.Equal(got, want) {
		t.Fatalf("socket writes %q, want %q", got, want)
	}
	if b.buf != nil {
		t.Fatal("the connection keeps its gathering buffer after the flush")
	}
	// A flush with nothing gathered writes nothing.
	b.begin()
	if err := b.flush(time.Now()); err != nil || len(cc.writes) != 3 {
		t.Fatalf("an empty flush wrote: %d writes, %v", len(cc.writes), err)
	}
}
