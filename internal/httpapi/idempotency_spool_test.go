package httpapi

import (
	"bytes"
	"crypto/sha256"
	"io"
	"log/slog"
	"os"
	"testing"
)

// An idempotent request's body is read once for its fingerprint and kept for
// the handler: in memory up to 1 MiB, beyond that in a temporary file that
// has no name from the start, so nothing is left behind whatever happens.
func TestIdempotencySpoolKeepsLargeBodiesOnDiskUnnamed(t *testing.T) {
	dir := t.TempDir()
	a := New(Config{SpoolDir: dir}, Deps{Log: slog.New(slog.DiscardHandler)})
	for _, c := range []struct {
		size   int
		onDisk bool
	}{{0, false}, {1 << 10, false}, {spoolInMemory, false}, {spoolInMemory + 1, true}, {5 << 20, true}} {
		body := bytes.Repeat([]byte{'z'}, c.size)
		h := sha256.New()
		rc, err := a.spool(bytes.NewReader(body), h)
		if err != nil {
			t.Fatal(err)
		}
		if _, isFile := rc.(*spooled); isFile != c.onDisk {
			t.Errorf("%d bytes: kept on disk %t, want %t", c.size, isFile, c.onDisk)
		}
		if names, _ := os.ReadDir(dir); len(names) != 0 {
			t.Errorf("%d bytes: %d named files in the spool directory while the body is held", c.size, len(names))
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		want := sha256.Sum256(body)
		if err != nil || !bytes.Equal(got, body) || !bytes.Equal(h.Sum(nil), want[:]) {
			t.Errorf("%d bytes: read back %d bytes (%v), fingerprint matches %t", c.size, len(got), err, bytes.Equal(h.Sum(nil), want[:]))
		}
	}
}
