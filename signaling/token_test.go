package signaling

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

var testKey = bytes.Repeat([]byte{7}, 32)

func TestTokenRoundTripCarriesRoomParticipantAndPermissions(t *testing.T) {
	tk, err := NewTokens(testKey, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	in := Claims{Room: "r1", Participant: "p1", Name: "王医生", Hospital: "h1", Perms: Perms{Publish: true, Admit: true}}
	tok, issued, err := tk.Issue(in)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(tok, "+/=, ") {
		t.Fatalf("token %q has characters a subprotocol header cannot carry", tok)
	}
	got, err := tk.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if got != issued || got.Room != "r1" || got.Participant != "p1" || got.Name != "王医生" || !got.Perms.Publish || got.Perms.Subscribe || !got.Perms.Admit {
		t.Fatalf("claims %+v, issued %+v", got, issued)
	}
	if got.Nonce == "" {
		t.Fatal("no nonce")
	}
	tok2, _, _ := tk.Issue(in)
	if tok2 == tok {
		t.Fatal("two grants to the same participant gave the same token")
	}
}

func TestTokenRefusals(t *testing.T) {
	tk, _ := NewTokens(testKey, time.Minute)
	other, _ := NewTokens(bytes.Repeat([]byte{8}, 32), time.Minute)
	good, _, _ := tk.Issue(Claims{Room: "r", Participant: "p"})
	foreign, _, _ := other.Issue(Claims{Room: "r", Participant: "p"})
	p, s, _ := strings.Cut(good, ".")
	tampered := p[:len(p)-2] + "AA." + s

	past, _ := NewTokens(testKey, time.Minute)
	past.now = func() time.Time { return time.Now().Add(-61 * time.Second) }
	expired, _, _ := past.Issue(Claims{Room: "r", Participant: "p"})

	for _, c := range []struct {
		name, token string
		want        error
	}{
		{"empty", "", ErrTokenMalformed},
		{"no signature part", p, ErrTokenMalformed},
		{"signed with another key", foreign, ErrTokenSignature},
		{"payload changed", tampered, ErrTokenSignature},
		{"expired", expired, ErrTokenExpired},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := tk.Verify(c.token); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestTokenLifeIsCappedAndKeyMustBeLong(t *testing.T) {
	if _, err := NewTokens([]byte("short"), time.Minute); err == nil {
		t.Fatal("a short key was accepted")
	}
	tk, _ := NewTokens(testKey, time.Hour)
	_, c, _ := tk.Issue(Claims{Room: "r", Participant: "p"})
	if d := time.Until(c.Expires); d > MaxTokenTTL {
		t.Fatalf("token lives %v, cap is %v", d, MaxTokenTTL)
	}
	if _, _, err := tk.Issue(Claims{Room: "r"}); err == nil {
		t.Fatal("a token without participant was issued")
	}
}

func TestTURNCredentialsFollowTheRESTScheme(t *testing.T) {
	secret := []byte("turn-secret")
	now := time.Unix(1_800_000_000, 0)
	u, pw := TURNCredentials(secret, "p1", now.Add(time.Minute))
	if u != "1800000060:p1" || pw != "H5znMZL5fbNVH9kO+NsPOtGnp5A=" {
		t.Fatalf("credentials %q %q", u, pw)
	}
	// Known answer: base64(HMAC-SHA1("turn-secret", "1800000060:p1")), as coturn computes it.
	got, err := CheckTURNCredentials(secret, u, now)
	if err != nil || got != pw {
		t.Fatalf("check: %q %v, want %q", got, err, pw)
	}
	if _, err := CheckTURNCredentials(secret, u, now.Add(2*time.Minute)); err == nil {
		t.Fatal("expired credentials accepted")
	}
	if _, err := CheckTURNCredentials(secret, "nocolon", now); err == nil {
		t.Fatal("malformed username accepted")
	}
	srv := ICEConfig{STUN: []string{"stun:x:3478"}, TURN: []string{"turn:x:3478?transport=udp"}, TURNSecret: secret}.Servers("p1", now)
	if len(srv) != 2 || srv[1].Username == "" || srv[1].Credential == "" || srv[0].Username != "" {
		t.Fatalf("servers %+v", srv)
	}
}
