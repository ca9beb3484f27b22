// Package secret protects data at rest with one master key: authenticated
// encryption for values that must be read back (a patient's national ID),
// a keyed hash for values that must be found by exact match without being
// stored, and further subkeys for other uses (CSRF tokens). Every use gets
// its own subkey derived with HKDF under a distinct label, so that no key
// ever serves two purposes.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the length of the master key and of every derived key.
const KeySize = 32

// sealVersion prefixes every sealed value, so that a future key or scheme
// can be told apart from this one.
const sealVersion byte = 1

// ErrOpen is returned when a sealed value cannot be opened: it was made under
// another key, or it was altered.
var ErrOpen = errors.New("secret: cannot open sealed value (wrong key or tampered data)")

// Box seals, opens and hashes under subkeys of one master key.
type Box struct {
	master  []byte
	aead    cipher.AEAD
	hashKey []byte
}

// New builds a Box from a 32-byte master key.
func New(master []byte) (*Box, error) {
	if len(master) != KeySize {
		return nil, fmt.Errorf("secret: master key must be %d bytes, got %d", KeySize, len(master))
	}
	b := &Box{master: append([]byte(nil), master...)}
	block, err := aes.NewCipher(b.subkey("box/seal"))
	if err != nil {
		return nil, err
	}
	if b.aead, err = cipher.NewGCM(block); err != nil {
		return nil, err
	}
	b.hashKey = b.subkey("box/hash")
	return b, nil
}

func (b *Box) subkey(info string) []byte {
	k, err := hkdf.Key(sha256.New, b.master, nil, "duikou/"+info, KeySize)
	if err != nil {
		panic("secret: hkdf: " + err.Error()) // only for lengths HKDF cannot give; 32 always fits
	}
	return k
}

// Derive returns a 32-byte subkey for label. Different labels give unrelated
// keys, and none equals the keys the Box itself uses.
func (b *Box) Derive(label string) []byte { return b.subkey("derived/" + label) }

// Seal encrypts plaintext with AES-256-GCM under a fresh random nonce. The
// result is version byte, nonce, ciphertext and tag.
func (b *Box) Seal(plaintext []byte) ([]byte, error) {
	ns := b.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plaintext)+b.aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return b.aead.Seal(out, out[1:], plaintext, nil), nil
}

// Open decrypts a value made by Seal.
func (b *Box) Open(sealed []byte) ([]byte, error) {
	ns := b.aead.NonceSize()
	if len(sealed) < 1+ns+b.aead.Overhead() || sealed[0] != sealVersion {
		return nil, ErrOpen
	}
	pt, err := b.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], nil)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// Hash is HMAC-SHA-256 of data under the Box's hash subkey: equal inputs give
// equal hashes, and without the key a hash cannot be tested against guesses
// (a national ID has few enough possibilities to guess a plain hash).
func (b *Box) Hash(data []byte) []byte {
	m := hmac.New(sha256.New, b.hashKey)
	m.Write(data)
	return m.Sum(nil)
}

// ParseKey decodes a base64 (standard or URL alphabet, padded or not) master
// key and checks its length.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != KeySize {
				return nil, fmt.Errorf("secret: key must be %d bytes, got %d", KeySize, len(k))
			}
			return k, nil
		}
	}
	return nil, errors.New("secret: key is not valid base64")
}

// NewKey returns a random master key.
func NewKey() []byte {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		panic("secret: no randomness: " + err.Error())
	}
	return k
}

// EncodeKey writes a key as standard base64.
func EncodeKey(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

// LoadOrCreateKeyFile reads the base64 master key at path, creating the file
// with a new random key (mode 0600) when it does not exist. Two processes
// starting at once agree on one key: the file appears whole or not at all.
func LoadOrCreateKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := ParseKey(string(b))
		if err != nil {
			return nil, fmt.Errorf("key file %s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create key directory: %w", err)
	}
	k := NewKey()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".key-*")
	if err != nil {
		return nil, fmt.Errorf("create key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("create key file: %w", err)
	}
	if _, err := tmp.WriteString(EncodeKey(k) + "\n"); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write key file: %w", err)
	}
	// Link fails when the file exists: then another process won the race and
	// its key is the one to use.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return LoadOrCreateKeyFile(path)
		}
		// A file system without hard links: create exclusively instead.
		return k, writeExclusive(path, k)
	}
	return k, nil
}

func writeExclusive(path string, k []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create key file: %w", err)
	}
	if _, err := f.WriteString(EncodeKey(k) + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write key file: %w", err)
	}
	return f.Close()
}
