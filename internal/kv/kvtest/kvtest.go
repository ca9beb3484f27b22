// Package kvtest gives tests Redis connections: the test server with a private key
// prefix, or an embedded one.
package kvtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"duikou/internal/kv"
)

// ForTest connects to the test Redis (DUIKOU_TEST_REDIS_URL) with a key prefix
// of its own so parallel test packages never see each other's keys. Without a
// server it fails when DUIKOU_TEST_SERVICES=required, and otherwise uses the
// embedded one.
func ForTest(t testing.TB) *kv.Conn {
	t.Helper()
	url := os.Getenv("DUIKOU_TEST_REDIS_URL")
	if url == "" && os.Getenv("DUIKOU_TEST_SERVICES") == "required" {
		t.Fatal("DUIKOU_TEST_REDIS_URL is not set but DUIKOU_TEST_SERVICES=required")
	}
	b := make([]byte, 6)
	rand.Read(b)
	c, err := kv.Open(context.Background(), url, "t"+hex.EncodeToString(b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Embedded starts an in-process server for a test.
func Embedded(t testing.TB) *kv.Conn {
	t.Helper()
	c, err := kv.Open(context.Background(), "", "t")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
