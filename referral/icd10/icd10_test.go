package icd10

import (
	"slices"
	"strings"
	"testing"

	"duikou/referral"
)

func TestShippedListIsWellFormed(t *testing.T) {
	l, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() < 300 {
		t.Fatalf("the list holds %d codes; want the curated list of at least 300", l.Len())
	}
	for _, c := range l.codes {
		// Every shipped code must be one a referral accepts as written.
		if n, ok := referral.NormalizeICD10(c.Code); !ok || n != c.Code {
			t.Errorf("%s is not a code a referral accepts as written (normalised %q, ok %v)", c.Code, n, ok)
		}
	}
	// The referral-relevant groups the desks see most are all there.
	for _, code := range []string{"I20.0", "I21", "I21.0", "I24", "I25", "I60", "I61", "I62", "I63", "I64",
		"S06", "S72.0", "T07", "O14", "O72", "O88.1", "P07", "P21", "P22", "R07.4"} {
		if got := l.Search(code, 1); len(got) != 1 || got[0].Code != code {
			t.Errorf("Search(%q) = %v; want the code itself first", code, got)
		}
	}
}

func TestSearch(t *testing.T) {
	l, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	codes := func(cs []Code) []string {
		out := []string{}
		for _, c := range cs {
			out = append(out, c.Code)
		}
		return out
	}
	tests := []struct {
		name, q string
		limit   int
		first   []string // the answer starts with these, in order
		each    func(Code) bool
	}{
		{"an exact code comes first, then its subdivisions", "I21", 50, []string{"I21", "I21.0", "I21.1"}, func(c Code) bool { return strings.HasPrefix(c.Code, "I21") }},
		{"the dot and case do not matter", "i210", 5, []string{"I21.0"}, nil},
		{"a chapter letter lists that chapter", "o", 50, []string{"O00", "O00.1"}, func(c Code) bool { return c.Code[0] == 'O' }},
		{"a Chinese name finds the codes containing it", "心肌梗死", 50, []string{"I21", "I21.0"}, func(c Code) bool { return strings.Contains(c.Name, "心肌梗死") }},
		{"a name that starts with the query ranks before one that contains it", "脑梗死", 50, []string{"I63"}, func(c Code) bool { return strings.Contains(c.Name, "脑梗死") }},
		{"an English name finds it too, in any case", "Eclampsia", 5, []string{"O15"}, nil},
		{"the limit bounds the answer", "I", 3, []string{"I05", "I10", "I11"}, nil},
		{"nothing matches", "不存在的病", 10, nil, func(Code) bool { return false }},
		{"an empty query finds nothing", "  ", 10, nil, func(Code) bool { return false }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := l.Search(tc.q, tc.limit)
			if len(got) > tc.limit {
				t.Fatalf("%d results over the limit %d", len(got), tc.limit)
			}
			if len(got) < len(tc.first) || !slices.Equal(codes(got[:len(tc.first)]), tc.first) {
				t.Fatalf("Search(%q) = %v; want it to start with %v", tc.q, codes(got), tc.first)
			}
			if tc.first == nil && len(got) != 0 {
				t.Fatalf("Search(%q) = %v; want nothing", tc.q, codes(got))
			}
			for _, c := range got {
				if tc.each != nil && !tc.each(c) {
					t.Errorf("Search(%q) returned %s %s, which does not match", tc.q, c.Code, c.Name)
				}
			}
		})
	}
}

func TestParseRefusesMalformedLists(t *testing.T) {
	for name, src := range map[string]string{
		"a missing name":  "I21\t急性心肌梗死\n",
		"a repeated code": "I21\t急性心肌梗死\tAcute myocardial infarction\nI21\t急性心肌梗死\tAcute myocardial infarction\n",
	} {
		if _, err := parse(src); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}
