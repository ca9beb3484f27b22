package auth

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"duikou/internal/apperr"
)

func TestPasswordHashIsPHCArgon2id(t *testing.T) {
	t.Parallel()
	p := PasswordParams{Memory: 128, Time: 2, Threads: 1}
	h, err := hashPassword("correct horse battery", p)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\$argon2id\$v=19\$m=128,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`).MatchString(h) {
		t.Fatalf("hash %q is not a PHC argon2id string", h)
	}
	if strings.Contains(h, "correct horse") {
		t.Fatal("the hash contains the password")
	}
	h2, _ := hashPassword("correct horse battery", p)
	if h == h2 {
		t.Error("two hashes of one password are equal: the salt is not random")
	}

	tests := []struct {
		name      string
		password  string
		want      PasswordParams
		ok, stale bool
	}{
		{"right password", "correct horse battery", p, true, false},
		{"wrong password", "correct horse battery!", p, false, false},
		{"empty password", "", p, false, false},
		{"right password, parameters since raised", "correct horse battery", DefaultPasswordParams(), true, true},
	}
	for _, tt := range tests {
		ok, stale, err := verifyPassword(tt.password, h, tt.want)
		if err != nil || ok != tt.ok || stale != tt.stale {
			t.Errorf("%s: ok=%v stale=%v err=%v; want ok=%v stale=%v", tt.name, ok, stale, err, tt.ok, tt.stale)
		}
	}
}

func TestPasswordMalformedHashesAreRefused(t *testing.T) {
	t.Parallel()
	for _, h := range []string{
		"",
		"plain",
		"$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$!!$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$",
	} {
		if _, _, err := verifyPassword("x", h, CheapPasswordParams()); !errors.Is(err, errBadHash) {
			t.Errorf("verify against %q: err = %v, want errBadHash", h, err)
		}
	}
}

func TestPasswordPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		password string
		ok       bool
	}{
		{"short", false},
		{"123456789", false},
		{"1234567890", true},
		{"对口支援医院密码十个字", true}, // characters, not bytes
		{"对口支援医院密码九字", true},
		{"对口支援医院密码", false},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{strings.Repeat(" ", 12), false},
		{"bad\xffutf8-password", false},
	}
	for _, tt := range tests {
		var v apperr.Invalid
		checkPasswordPolicy(&v, "password", tt.password)
		if (len(v) == 0) != tt.ok {
			t.Errorf("policy(%q) = %v, want ok=%v", tt.password, v, tt.ok)
		}
	}
}
