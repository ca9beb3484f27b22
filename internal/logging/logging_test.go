package logging

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretsAndNationalIDsNeverReachTheLog(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, slog.LevelDebug)
	log.Info("login", "password", "hunter2", "session_token", "abc123", "Authorization", "Bearer xyz")
	log.Info("lookup", "query", "patient 11010519491231002X here", "err", errors.New("dup 110105194912310021"))
	out := buf.String()
	for _, leaked := range []string{"hunter2", "abc123", "Bearer xyz", "11010519491231002X", "110105194912310021"} {
		if strings.Contains(out, leaked) {
			t.Errorf("log contains %q:\n%s", leaked, out)
		}
	}
	if !strings.Contains(out, "[national-id]") || !strings.Contains(out, "[redacted]") {
		t.Errorf("expected redaction markers in:\n%s", out)
	}
}
