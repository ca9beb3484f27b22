package roomtest

import (
	"os"
	"regexp"
	"slices"
	"testing"
)

// Every string the room and the viewer show comes from the catalogue, in
// Simplified Chinese and in English: each key the code asks for is in both
// languages, and both languages have the same keys.
func TestEveryRoomStringIsInBothLanguages(t *testing.T) {
	cat, err := os.ReadFile("../static/room/messages.js")
	if err != nil {
		t.Fatal(err)
	}
	langs := regexp.MustCompile(`(?s)"zh-CN": \{(.*?)\n  \},\n  "en": \{(.*?)\n  \}\n\};`).FindSubmatch(cat)
	if langs == nil {
		t.Fatal("messages.js: no zh-CN and en tables found")
	}
	keyRe := regexp.MustCompile(`(?m)^\s*"([a-zA-Z.]+)": "`)
	keys := func(b []byte) []string {
		var out []string
		for _, m := range keyRe.FindAllSubmatch(b, -1) {
			out = append(out, string(m[1]))
		}
		slices.Sort(out)
		return out
	}
	zh, en := keys(langs[1]), keys(langs[2])
	if len(zh) < 50 || !slices.Equal(zh, en) {
		t.Fatalf("zh-CN has %d keys, en %d; they differ: %v", len(zh), len(en), symDiff(zh, en))
	}
	used := regexp.MustCompile(`\bt\("([a-zA-Z.]+)"`)
	for _, f := range []string{"room.js", "imaging.js"} {
		src, err := os.ReadFile("../static/room/" + f)
		if err != nil {
			t.Fatal(err)
		}
		ms := used.FindAllSubmatch(src, -1)
		if len(ms) == 0 {
			t.Fatalf("%s asks for no strings: the pattern is wrong", f)
		}
		for _, m := range ms {
			key := string(m[1])
			if key[len(key)-1] == '.' {
				// A key made at run time ("img.tool." + tool): its family
				// must exist.
				if !slices.ContainsFunc(zh, func(k string) bool { return len(k) > len(key) && k[:len(key)] == key }) {
					t.Errorf("%s builds keys from %q, which no catalogue key begins with", f, key)
				}
				continue
			}
			if _, ok := slices.BinarySearch(zh, key); !ok {
				t.Errorf("%s uses %q, which the catalogue lacks", f, key)
			}
		}
	}
}

func symDiff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, "zh-CN only: "+x)
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			out = append(out, "en only: "+x)
		}
	}
	return out
}
