package secret

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func testBox(t *testing.T, seed byte) *Box {
	t.Helper()
	b, err := New(bytes.Repeat([]byte{seed}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealOpen(t *testing.T) {
	b := testBox(t, 1)
	msg := []byte("110101199003071234")
	s1, err := b.Seal(msg)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := b.Seal(msg)
	if bytes.Equal(s1, s2) {
		t.Error("two seals of one value are equal: the nonce is not fresh")
	}
	if bytes.Contains(s1, msg) {
		t.Error("sealed value contains the plaintext")
	}
	got, err := b.Open(s1)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("open: %q, %v", got, err)
	}

	tampered := append([]byte(nil), s1...)
	tampered[len(tampered)-1] ^= 1
	if _, err := b.Open(tampered); !errors.Is(err, ErrOpen) {
		t.Errorf("tampered: %v", err)
	}
	if _, err := testBox(t, 2).Open(s1); !errors.Is(err, ErrOpen) {
		t.Errorf("other key: %v", err)
	}
	for _, short := range [][]byte{nil, {sealVersion}, s1[:10]} {
		if _, err := b.Open(short); !errors.Is(err, ErrOpen) {
			t.Errorf("truncated %d bytes: %v", len(short), err)
		}
	}
}

func TestHashAndDerivedKeysAreSeparate(t *testing.T) {
	b := testBox(t, 1)
	h := b.Hash([]byte("110101199003071234"))
	if !bytes.Equal(h, b.Hash([]byte("110101199003071234"))) {
		t.Error("hash is not deterministic")
	}
	if bytes.Equal(h, testBox(t, 2).Hash([]byte("110101199003071234"))) {
		t.Error("hash does not depend on the key")
	}
	if bytes.Equal(h, b.Hash([]byte("110101199003071235"))) {
		t.Error("different inputs hash equal")
	}
	csrf, other := b.Derive("csrf"), b.Derive("sessions")
	if len(csrf) != KeySize || bytes.Equal(csrf, other) || !bytes.Equal(csrf, b.Derive("csrf")) {
		t.Error("derived keys are not stable and distinct per label")
	}
	for _, k := range [][]byte{csrf, b.hashKey, b.subkey("box/seal")} {
		if bytes.Equal(k, b.master) {
			t.Error("a subkey equals the master key")
		}
	}
	if bytes.Equal(b.Derive("box/hash"), b.hashKey) || bytes.Equal(b.Derive("box/seal"), b.subkey("box/seal")) {
		t.Error("Derive can be made to return the Box's own keys")
	}
	if _, err := New(make([]byte, 16)); err == nil {
		t.Error("a 16-byte master key was accepted")
	}
}

func TestParseKey(t *testing.T) {
	k := bytes.Repeat([]byte{0xfb}, KeySize) // encodes with + and / in standard base64
	for _, s := range []string{EncodeKey(k), " " + EncodeKey(k) + "\n",
		"-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_s"} {
		got, err := ParseKey(s)
		if err != nil || !bytes.Equal(got, k) {
			t.Errorf("ParseKey(%q) = %x, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "not base64!", EncodeKey(k[:16])} {
		if _, err := ParseKey(s); err == nil {
			t.Errorf("ParseKey(%q) accepted", s)
		}
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "data.key")
	var wg sync.WaitGroup
	keys := make([][]byte, 8)
	for i := range keys {
		wg.Go(func() {
			k, err := LoadOrCreateKeyFile(path)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if !bytes.Equal(k, keys[0]) || len(k) != KeySize {
			t.Fatal("concurrent starts disagree on the key")
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	again, err := LoadOrCreateKeyFile(path)
	if err != nil || !bytes.Equal(again, keys[0]) {
		t.Errorf("reload: %v", err)
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKeyFile(path); err == nil {
		t.Error("a corrupt key file was accepted (and would silently make old data unreadable)")
	}
}
