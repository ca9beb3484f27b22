package sfu

import (
	"bytes"
	"testing"

	"github.com/pion/rtp"
)

// A track's history gives back the packets a NACK may name while it holds
// them, and not a newer packet that took an old one's slot.
func TestHistoryResendsOnlyThePacketAsked(t *testing.T) {
	var h history
	for seq := uint16(65000); seq != 200; seq++ { // across the wrap
		h.add(&rtp.Packet{Header: rtp.Header{SequenceNumber: seq, Timestamp: uint32(seq) * 10}, Payload: []byte{byte(seq), byte(seq >> 8)}})
	}
	last := uint16(199)
	cases := []struct {
		seq  uint16
		held bool
	}{
		{199, true},                      // the latest
		{last - (historySize - 1), true}, // the oldest still held
		{last - historySize, false},      // its slot holds a newer packet now
		{65000, false},                   // long gone
		{65535, true},                    // before the wrap, still held
		{200, false},                     // never sent
	}
	var hdr rtp.Header
	for _, c := range cases {
		buf, held := h.get(c.seq, &hdr, nil)
		if held != c.held {
			t.Errorf("seq %d: held %v, want %v", c.seq, held, c.held)
			continue
		}
		if held && (hdr.SequenceNumber != c.seq || hdr.Timestamp != uint32(c.seq)*10 || !bytes.Equal(buf, []byte{byte(c.seq), byte(c.seq >> 8)})) {
			t.Errorf("seq %d: got header %d/%d payload %v", c.seq, hdr.SequenceNumber, hdr.Timestamp, buf)
		}
	}
}
