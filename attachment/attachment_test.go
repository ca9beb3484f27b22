package attachment

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"duikou/internal/apperr"
)

func head(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b[:min(len(b), SniffLen)]
}

// Real files of each accepted type are recognised by their first bytes.
func TestSniffKnowsRealFilesOfEachType(t *testing.T) {
	for file, want := range map[string]string{
		"referral-summary.pdf": PDF,
		"video-001.jpeg":       JPEG,
		"video-001.png":        PNG,
		"ct-multiframe.dcm":    DICOM,
	} {
		if got := Sniff(head(t, file)); got != want {
			t.Errorf("%s: sniffed %q, want %q", file, got, want)
		}
	}
}

// A file declared as one type but holding another, or holding nothing
// recognisable, is refused under Content-Type.
func TestCheckContentRefusesAFileOfAnotherType(t *testing.T) {
	for _, c := range []struct {
		name     string
		declared string
		head     []byte
		ok       bool
	}{
		{"pdf as pdf", PDF, head(t, "referral-summary.pdf"), true},
		{"png declared as jpeg", JPEG, head(t, "video-001.png"), false},
		{"jpeg declared as dicom", DICOM, head(t, "video-001.jpeg"), false},
		{"dicom declared as pdf", PDF, head(t, "ct-multiframe.dcm"), false},
		{"an executable declared as pdf", PDF, []byte("MZ\x90\x00\x03\x00\x00\x00"), false},
		{"html declared as png", PNG, []byte("<html><script>alert(1)</script>"), false},
		{"DICM too early is no DICOM", DICOM, []byte("DICM" + string(make([]byte, 200))), false},
		{"a DICOM preamble cut short", DICOM, head(t, "ct-multiframe.dcm")[:131], false},
		{"empty", PDF, nil, false},
	} {
		err := CheckContent(c.declared, c.head)
		var inv apperr.Invalid
		switch {
		case c.ok && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case !c.ok && (!errors.As(err, &inv) || inv[0].Field != "Content-Type"):
			t.Errorf("%s: got %v, want a Content-Type field error", c.name, err)
		}
	}
}

func TestNormalizeTypeAcceptsOnlyTheListedTypes(t *testing.T) {
	for in, want := range map[string]string{"Image/PNG": PNG, " application/pdf ; charset=binary": PDF, "application/dicom": DICOM} {
		if got, ok := NormalizeType(in); !ok || got != want {
			t.Errorf("%q: got %q %t, want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "text/html", "application/octet-stream", "image/svg+xml", "application/x-msdownload"} {
		if _, ok := NormalizeType(in); ok {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestCleanNameRefusesPathsAndControlCharacters(t *testing.T) {
	if got, err := CleanName("  心电图 2026-11-22.pdf "); err != nil || got != "心电图 2026-11-22.pdf" {
		t.Errorf("a plain name: %q %v", got, err)
	}
	for _, bad := range []string{"", "   ", "../../etc/passwd", `C:\x.pdf`, "a/b.pdf", "..", "bad\x00.pdf", "new\nline.pdf", strings.Repeat("长", 101)} {
		if _, err := CleanName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
