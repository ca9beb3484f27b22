package web

import (
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// catalogue returns the keys of one language's block in i18n.js.
func catalogue(t *testing.T, src, name string) []string {
	t.Helper()
	start := strings.Index(src, "const "+name+" = {")
	if start < 0 {
		t.Fatalf("no catalogue %s in i18n.js", name)
	}
	end := strings.Index(src[start:], "\n};")
	var keys []string
	for _, m := range regexp.MustCompile(`"([a-z0-9_.]+)":`).FindAllStringSubmatch(src[start:start+end], -1) {
		keys = append(keys, m[1])
	}
	return keys
}

// TestCatalogueIsComplete: both languages hold the same messages, none twice,
// and every message the code names literally exists. (Keys built at run
// time, like "status." + s, are checked by the browser tests, which fail on
// a missing one.)
func TestCatalogueIsComplete(t *testing.T) {
	src, err := fs.ReadFile(static, "static/js/i18n.js")
	if err != nil {
		t.Fatal(err)
	}
	zh, en := catalogue(t, string(src), "zh"), catalogue(t, string(src), "en")
	for name, keys := range map[string][]string{"zh": zh, "en": en} {
		seen := map[string]bool{}
		for _, k := range keys {
			if seen[k] {
				t.Errorf("%s: %s is defined twice", name, k)
			}
			seen[k] = true
		}
	}
	for _, k := range zh {
		if !slices.Contains(en, k) {
			t.Errorf("%s has a Chinese message but no English one", k)
		}
	}
	for _, k := range en {
		if !slices.Contains(zh, k) {
			t.Errorf("%s has an English message but no Chinese one", k)
		}
	}
	used := regexp.MustCompile(`\bt\("([a-z0-9_.]+)"[,)]`)
	err = fs.WalkDir(static, "static/js", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".js") {
			return err
		}
		b, err := fs.ReadFile(static, p)
		if err != nil {
			return err
		}
		for _, m := range used.FindAllStringSubmatch(string(b), -1) {
			if !slices.Contains(zh, m[1]) {
				t.Errorf("%s uses %s, which the catalogue lacks", p, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
