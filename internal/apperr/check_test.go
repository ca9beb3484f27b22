package apperr

import (
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	cases := []struct {
		in       string
		required bool
		want     string // the fault, "" for none
	}{
		{"  临溪县人民医院 ", true, ""},
		{"", false, ""},
		{"   ", true, "is required"},
		{"bad\x00byte", false, "control characters"},
		{"tab\there", false, "control characters"},
		{string([]byte{0xff, 0xfe}), false, "UTF-8"},
		{strings.Repeat("医", 11), false, "at most 10"},
		{strings.Repeat("医", 10), false, ""},
	}
	for _, c := range cases {
		var v Invalid
		got := v.Text("name", c.in, c.required, 10)
		if c.want == "" {
			if len(v) != 0 || got != strings.TrimSpace(c.in) {
				t.Errorf("Text(%q) = %q, faults %v; want it accepted and trimmed", c.in, got, v)
			}
			continue
		}
		if len(v) != 1 || v[0].Field != "name" || !strings.Contains(v[0].Message, c.want) {
			t.Errorf("Text(%q) faults %v; want one on name mentioning %q", c.in, v, c.want)
		}
	}
}

func TestIsID(t *testing.T) {
	for s, want := range map[string]bool{
		"0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0a01":   true,
		"0194F5C2-7B7E-7CC3-9A1E-6F2B9D1C0A01":   true,
		"0194f5c27b7e7cc39a1e6f2b9d1c0a01":       false,
		"{0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0a01}": false,
		"1 OR 1=1":                               false,
		"":                                       false,
	} {
		if IsID(s) != want {
			t.Errorf("IsID(%q) = %v, want %v", s, !want, want)
		}
	}
}
