package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestBinaryServesAndStopsGracefully builds the real binary, starts it on a
// free port with the embedded default and demo data, waits for /readyz, logs
// in as a demo user, and stops it with SIGTERM: it must exit 0.
func TestBinaryServesAndStopsGracefully(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "duikou")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}

	addr := freeAddr(t)
	cmd := exec.Command(bin, "-listen", addr, "-data-dir", filepath.Join(dir, "data"), "-demo")
	cmd.Env = append(os.Environ(), "DATABASE_URL=", "REDIS_URL=", "DUIKOU_DATA_KEY=")
	stdout, _ := cmd.StdoutPipe()
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var printed syncBuffer
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			printed.Write([]byte(sc.Text() + "\n"))
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })

	base := "http://" + addr
	waitReady(t, base+"/readyz", exited, &stderr)

	if !strings.Contains(printed.String(), base) || !strings.Contains(printed.String(), "linxi.doctor") {
		t.Errorf("start-up output should print the URL and the demo logins, got:\n%s", printed.String())
	}

	body, _ := json.Marshal(map[string]string{"username": "linxi.doctor", "password": "duikou-demo-2026"})
	resp, err := http.Post(base+"/api/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var login struct {
		Token string `json:"token"`
	}
	json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || login.Token == "" {
		t.Fatalf("login: status %d, token %q", resp.StatusCode, login.Token)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/auth/me", nil)
	req.Header.Set("Authorization", "Bearer "+login.Token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /auth/me with the token: %d", resp.StatusCode)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("after SIGTERM the server exited with %v; log:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not stop within 30s of SIGTERM; log:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "stopped cleanly") {
		t.Errorf("log should record the clean stop:\n%s", stderr.String())
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitReady(t *testing.T, url string, exited <-chan error, log fmt.Stringer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		select {
		case err := <-exited:
			t.Fatalf("server exited before ready: %v\n%s", err, log)
		case <-ctx.Done():
			t.Fatalf("server not ready within 60s:\n%s", log)
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
