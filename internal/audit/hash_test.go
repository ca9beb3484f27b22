package audit

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestChainHashCoversEveryFieldUnambiguously(t *testing.T) {
	at := time.Date(2025, 3, 1, 8, 0, 0, 123456000, time.UTC)
	base := Entry{Chain: 3, ChainSeq: 12, At: at, ActorID: "ab", ActorHospitalID: "c", Action: "patient.read",
		ResourceType: "patient", ResourceID: "p1", PatientID: "p1", Outcome: Success, RequestID: "r",
		ClientAddr: "10.0.0.1", Detail: "d"}
	prev := bytes.Repeat([]byte{7}, HashSize)
	h := ChainHash(prev, base)
	if len(h) != HashSize {
		t.Fatalf("hash length %d", len(h))
	}
	if !bytes.Equal(h, ChainHash(prev, base)) {
		t.Fatal("hash is not deterministic")
	}
	// The instant is hashed in UTC: the zone it is written in does not matter.
	inShanghai := base
	inShanghai.At = at.In(time.FixedZone("CST", 8*3600))
	if !bytes.Equal(h, ChainHash(prev, inShanghai)) {
		t.Fatal("the same instant in another zone hashes differently")
	}

	changes := map[string]func(e *Entry){
		"chain":                      func(e *Entry) { e.Chain = 4 },
		"chain_seq":                  func(e *Entry) { e.ChainSeq = 13 },
		"at":                         func(e *Entry) { e.At = e.At.Add(time.Microsecond) },
		"actor_id":                   func(e *Entry) { e.ActorID = "ax" },
		"actor_hospital_id":          func(e *Entry) { e.ActorHospitalID = "x" },
		"action":                     func(e *Entry) { e.Action = "patient.update" },
		"resource_type":              func(e *Entry) { e.ResourceType = "referral" },
		"resource_id":                func(e *Entry) { e.ResourceID = "p2" },
		"patient_id":                 func(e *Entry) { e.PatientID = "p2" },
		"outcome":                    func(e *Entry) { e.Outcome = Denied },
		"request_id":                 func(e *Entry) { e.RequestID = "s" },
		"client_addr":                func(e *Entry) { e.ClientAddr = "10.0.0.2" },
		"detail":                     func(e *Entry) { e.Detail = "e" },
		"text moved between fields":  func(e *Entry) { e.ActorID, e.ActorHospitalID = "a", "bc" },
		"chain digits moved to seq":  func(e *Entry) { e.Chain, e.ChainSeq = 31, 2 },
		"separator-like text inside": func(e *Entry) { e.ActorID, e.ActorHospitalID = "ab\x00\x00\x00\x01c", "" },
	}
	for name, change := range changes {
		e := base
		change(&e)
		if bytes.Equal(h, ChainHash(prev, e)) {
			t.Errorf("changing %s leaves the hash unchanged", name)
		}
	}
	if bytes.Equal(h, ChainHash(GenesisHash(), base)) {
		t.Error("the previous hash is not covered")
	}
}

func TestBoundCutsLongTextWithAMarker(t *testing.T) {
	cases := []struct {
		in   string
		max  int
		want string
	}{
		{"short", 20, "short"},
		{strings.Repeat("a", 20), 20, strings.Repeat("a", 20)},
		{strings.Repeat("a", 21), 20, strings.Repeat("a", 8) + truncatedMarker},
		{strings.Repeat("会诊", 15), 20, strings.Repeat("会诊", 4) + truncatedMarker},
	}
	for _, c := range cases {
		got := bound(c.in, c.max)
		if got != c.want || utf8.RuneCountInString(got) > c.max {
			t.Errorf("bound(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}
