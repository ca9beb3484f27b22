package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func openTestDir(t *testing.T) (*Dir, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "blobs")
	d, err := OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	return d, root
}

func readAll(t *testing.T, d *Dir, key string) []byte {
	t.Helper()
	f, err := d.Open(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// files lists every regular file under root, relative to it.
func files(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return err
	})
	return out
}

// A real DICOM file comes back byte for byte, with its size and digest.
func TestDirPutReturnsSizeAndDigestAndOpenReadsItBack(t *testing.T) {
	d, _ := openTestDir(t)
	want, err := os.ReadFile("../../attachment/testdata/ct-multiframe.dcm")
	if err != nil {
		t.Fatal(err)
	}
	size, sum, err := d.Put(context.Background(), "0190a0b0-0000-7000-8000-000000000001", bytes.NewReader(want))
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(want)
	if size != int64(len(want)) || sum != hex.EncodeToString(digest[:]) {
		t.Errorf("put answered %d bytes, sha256 %s; want %d, %x", size, sum, len(want), digest)
	}
	if got := readAll(t, d, "0190a0b0-0000-7000-8000-000000000001"); !bytes.Equal(got, want) {
		t.Errorf("read back %d bytes that differ from the %d written", len(got), len(want))
	}
	if _, err := d.Open(context.Background(), "0190a0b0-0000-7000-8000-000000000002"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("open of a key never written: %v, want fs.ErrNotExist", err)
	}
}

// While a blob is being written its key does not exist; it appears whole.
// A write that fails or is abandoned leaves nothing behind, not even its
// temporary file.
func TestDirPutIsAtomic(t *testing.T) {
	d, root := openTestDir(t)
	ctx := context.Background()

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, _, err := d.Put(ctx, "half", pr)
		done <- err
	}()
	pw.Write(bytes.Repeat([]byte("x"), 1<<20))
	if _, err := d.Open(ctx, "half"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a blob half written can be opened: %v", err)
	}
	pw.Write([]byte("end"))
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, d, "half"); len(got) != 1<<20+3 || !bytes.HasSuffix(got, []byte("end")) {
		t.Errorf("the finished blob has %d bytes", len(got))
	}

	broken := io.MultiReader(strings.NewReader("partial"), iotest{err: errors.New("connection reset")})
	if _, _, err := d.Put(ctx, "broken", broken); err == nil {
		t.Fatal("a failing reader was stored")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := d.Put(cancelled, "cancelled", strings.NewReader("data")); !errors.Is(err, context.Canceled) {
		t.Fatalf("put with an ended context: %v", err)
	}
	left := files(t, root)
	if len(left) != 1 || filepath.Base(left[0]) != "half" {
		t.Errorf("files left after failed writes: %v, want only the finished blob", left)
	}
}

type iotest struct{ err error }

func (r iotest) Read([]byte) (int, error) { return 0, r.err }

// A key is a plain name: anything that could reach outside the root, or
// that is not a simple file name, is refused by every method, and nothing
// is written anywhere.
func TestDirRefusesKeysThatCouldEscapeTheRoot(t *testing.T) {
	d, root := openTestDir(t)
	outside := filepath.Dir(root)
	ctx := context.Background()
	for _, key := range []string{"", ".", "..", "../escape", "../../etc/passwd", "a/b", `a\b`, "/abs", ".hidden",
		"-flag", "name\x00.pdf", "名字", strings.Repeat("a", 129), "a b"} {
		if _, _, err := d.Put(ctx, key, strings.NewReader("x")); !errors.Is(err, ErrBadKey) {
			t.Errorf("put %q: %v, want ErrBadKey", key, err)
		}
		if _, err := d.Open(ctx, key); !errors.Is(err, ErrBadKey) {
			t.Errorf("open %q: %v, want ErrBadKey", key, err)
		}
		if err := d.Delete(ctx, key); !errors.Is(err, ErrBadKey) {
			t.Errorf("delete %q: %v, want ErrBadKey", key, err)
		}
	}
	if got := files(t, outside); len(got) != 0 {
		t.Errorf("files written: %v", got)
	}
}

// A blob never changes once written: a second put of its key is refused
// and the first content stays.
func TestDirPutDoesNotReplaceABlob(t *testing.T) {
	d, _ := openTestDir(t)
	ctx := context.Background()
	if _, _, err := d.Put(ctx, "k", strings.NewReader("first")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Put(ctx, "k", strings.NewReader("second")); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second put: %v, want fs.ErrExist", err)
	}
	if got := readAll(t, d, "k"); string(got) != "first" {
		t.Errorf("content %q, want the first", got)
	}
	if err := d.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "k"); err != nil {
		t.Errorf("deleting again: %v", err)
	}
	if _, err := d.Open(ctx, "k"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("open after delete: %v", err)
	}
}

// Concurrent writers of distinct keys all succeed with their own content;
// concurrent writers of one key: exactly one wins, and its content is whole.
func TestDirConcurrentPuts(t *testing.T) {
	d, root := openTestDir(t)
	ctx := context.Background()
	const n = 24
	content := func(i int) []byte { return bytes.Repeat([]byte(fmt.Sprintf("blob %02d;", i)), 20_000) }

	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = d.Put(ctx, fmt.Sprintf("key-%02d", i), bytes.NewReader(content(i)))
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("put %d: %v", i, errs[i])
		}
		if got := readAll(t, d, fmt.Sprintf("key-%02d", i)); !bytes.Equal(got, content(i)) {
			t.Errorf("key-%02d holds %d bytes of other content", i, len(got))
		}
	}

	won := make(chan int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := d.Put(ctx, "contended", bytes.NewReader(content(i)))
			switch {
			case err == nil:
				won <- i
			case !errors.Is(err, fs.ErrExist):
				t.Errorf("contended put %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	close(won)
	var winners []int
	for i := range won {
		winners = append(winners, i)
	}
	if len(winners) != 1 {
		t.Fatalf("%d writers of one key succeeded, want 1", len(winners))
	}
	if got := readAll(t, d, "contended"); !bytes.Equal(got, content(winners[0])) {
		t.Errorf("the contended blob is not the winner's content")
	}
	if tmp, _ := os.ReadDir(filepath.Join(root, "tmp")); len(tmp) != 0 {
		t.Errorf("%d temporary files left", len(tmp))
	}
}

// Opening the store clears temporary files a crashed writer left long ago,
// but not ones another instance may be writing right now.
func TestOpenDirRemovesOnlyStaleTemporaryFiles(t *testing.T) {
	_, root := openTestDir(t)
	old, fresh := filepath.Join(root, "tmp", "k.1"), filepath.Join(root, "tmp", "k.2")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-2 * staleTemp)
	if err := os.Chtimes(old, long, long); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temporary file kept: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temporary file removed: %v", err)
	}
}
