// Package blob keeps file contents (attachments) outside the database. Dir
// is the local-directory store of the embedded default and of instances that
// share a mounted data directory; an object store would be another type with
// the same three methods (Put, Open, Delete), chosen in internal/app.
package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// Dir stores each blob as one file under its root, named by its key in a
// subdirectory of 256 (so no directory grows past what file systems list
// quickly). A file appears under its name only once it is completely
// written and synced: readers never see half a file, and a crash leaves at
// most a temporary file behind.
type Dir struct {
	root string
	tmp  string
}

// goodKey is what a key may look like: a file name of safe characters that
// cannot climb out of the root (no separator, not "." or ".."). The services
// use ids, which always match.
var goodKey = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ErrBadKey is returned for a key that is not a plain safe name.
var ErrBadKey = errors.New("blob: key must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit")

// staleTemp is how old a temporary file must be before OpenDir removes it.
// Instances sharing the directory may be writing younger ones right now.
const staleTemp = 24 * time.Hour

// OpenDir opens (creating it if needed) the store rooted at dir and removes
// temporary files that crashed writers left more than a day ago.
func OpenDir(dir string) (*Dir, error) {
	d := &Dir{root: dir, tmp: filepath.Join(dir, "tmp")}
	if err := os.MkdirAll(d.tmp, 0o700); err != nil {
		return nil, fmt.Errorf("blob store %s: %w", dir, err)
	}
	entries, err := os.ReadDir(d.tmp)
	if err != nil {
		return nil, fmt.Errorf("blob store %s: %w", dir, err)
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleTemp {
			os.Remove(filepath.Join(d.tmp, e.Name()))
		}
	}
	return d, nil
}

// path is where key's file lives. The shard is taken from a hash of the key,
// so keys that share a prefix (time-ordered ids) still spread evenly.
func (d *Dir) path(key string) (dir, file string, err error) {
	if !goodKey.MatchString(key) {
		return "", "", ErrBadKey
	}
	sum := sha256.Sum256([]byte(key))
	dir = filepath.Join(d.root, hex.EncodeToString(sum[:1]))
	return dir, filepath.Join(dir, key), nil
}

// Put stores what r yields under key and returns its size and SHA-256 (hex).
// The bytes go to a temporary file in the same file system, are synced, and
// the file is then linked under its name, which fails with fs.ErrExist if the
// key is taken: a blob, once written, never changes. When ctx ends or r
// fails, nothing is stored.
func (d *Dir) Put(ctx context.Context, key string, r io.Reader) (size int64, sha string, err error) {
	dir, final, err := d.path(key)
	if err != nil {
		return 0, "", err
	}
	f, err := os.CreateTemp(d.tmp, key+".*")
	if err != nil {
		return 0, "", err
	}
	defer func() {
		f.Close()           // a second Close after the one below is harmless
		os.Remove(f.Name()) // the temporary name goes in every case; a linked final name stays
	}()
	h := sha256.New()
	size, err = io.Copy(io.MultiWriter(f, h), ctxReader{ctx, r})
	if err != nil {
		return 0, "", err
	}
	if err := f.Sync(); err != nil {
		return 0, "", err
	}
	if err := f.Close(); err != nil {
		return 0, "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, "", err
	}
	if err := publish(f.Name(), final); err != nil {
		return 0, "", err
	}
	// The new name must survive a crash too, not only the bytes.
	if err := syncDir(dir); err != nil {
		return 0, "", err
	}
	return size, hex.EncodeToString(h.Sum(nil)), nil
}

// publish gives the complete temporary file its final name, refusing to
// replace an existing one. A hard link does both atomically; on a file
// system without links, rename after a check is the fallback (its race
// needs two writers of one key, which ids rule out).
func publish(tmp, final string) error {
	err := os.Link(tmp, final)
	if err == nil || errors.Is(err, fs.ErrExist) {
		return err
	}
	if _, serr := os.Lstat(final); serr == nil {
		return fs.ErrExist
	}
	return os.Rename(tmp, final)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// Open returns key's contents, or an error matching fs.ErrNotExist.
func (d *Dir) Open(_ context.Context, key string) (io.ReadSeekCloser, error) {
	_, file, err := d.path(key)
	if err != nil {
		return nil, err
	}
	return os.Open(file)
}

// Delete removes key's file; a missing one is not an error, so a clean-up
// may be repeated.
func (d *Dir) Delete(_ context.Context, key string) error {
	_, file, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(file); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// ctxReader stops a long copy when the request is abandoned.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
