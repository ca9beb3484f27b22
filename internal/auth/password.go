package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"duikou/internal/apperr"
)

// PasswordParams are the argon2id cost parameters used for new hashes.
// Stored hashes carry their own parameters, so raising the cost later keeps
// old hashes verifiable (they are rehashed at the next successful login).
type PasswordParams struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
}

// DefaultPasswordParams is OWASP's argon2id recommendation (19 MiB, 2 passes,
// 1 lane): tens of milliseconds per login on a server, costly for a guesser.
func DefaultPasswordParams() PasswordParams {
	return PasswordParams{Memory: 19456, Time: 2, Threads: 1}
}

// CheapPasswordParams are for tests only: they keep hashing in the
// microseconds so that race-enabled test runs stay fast.
func CheapPasswordParams() PasswordParams {
	return PasswordParams{Memory: 64, Time: 1, Threads: 1}
}

const (
	saltLen = 16
	keyLen  = 32

	// MinPasswordLen and MaxPasswordLen bound new passwords, in characters.
	MinPasswordLen = 10
	MaxPasswordLen = 128
)

// errBadHash means a stored hash is not a PHC argon2id string we can read.
var errBadHash = errors.New("auth: stored password hash is malformed")

func (p PasswordParams) valid() bool {
	return p.Time >= 1 && p.Threads >= 1 && p.Memory >= 8*uint32(p.Threads)
}

// hashPassword returns the PHC string $argon2id$v=19$m=..,t=..,p=..$salt$hash.
func hashPassword(password string, p PasswordParams) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, keyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

type parsedHash struct {
	params PasswordParams
	salt   []byte
	key    []byte
}

func parseHash(phc string) (parsedHash, error) {
	var h parsedHash
	parts := strings.Split(phc, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return h, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return h, errBadHash
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return h, errBadHash
	}
	h.params = PasswordParams{Memory: m, Time: t, Threads: p}
	// Refuse parameters that would let a corrupted row exhaust the server.
	if !h.params.valid() || m > 1<<22 || t > 64 {
		return h, errBadHash
	}
	var err error
	if h.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(h.salt) < 8 {
		return h, errBadHash
	}
	if h.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > 64 {
		return h, errBadHash
	}
	return h, nil
}

// verifyPassword reports whether password matches the PHC hash, comparing in
// constant time, and whether the hash was made with other parameters than want.
func verifyPassword(password, phc string, want PasswordParams) (ok, stale bool, err error) {
	h, err := parseHash(phc)
	if err != nil {
		return false, false, err
	}
	key := argon2.IDKey([]byte(password), h.salt, h.params.Time, h.params.Memory, h.params.Threads, uint32(len(h.key)))
	ok = subtle.ConstantTimeCompare(key, h.key) == 1
	return ok, h.params != want || len(h.key) != keyLen, nil
}

// checkPasswordPolicy validates a new password for the JSON field named field.
func checkPasswordPolicy(v *apperr.Invalid, field, password string) {
	n := utf8.RuneCountInString(password)
	switch {
	case !utf8.ValidString(password):
		v.Add(field, "must be valid UTF-8 text")
	case n < MinPasswordLen:
		v.Add(field, fmt.Sprintf("must be at least %d characters", MinPasswordLen))
	case n > MaxPasswordLen:
		v.Add(field, fmt.Sprintf("must be at most %d characters", MaxPasswordLen))
	case strings.TrimSpace(password) == "":
		v.Add(field, "must not be only spaces")
	}
}
