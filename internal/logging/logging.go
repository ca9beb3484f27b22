// Package logging builds the structured JSON logger. It redacts what must
// never be written down: secrets by attribute name, and anything shaped like
// a national ID number (18 characters: 17 digits and a digit or X) wherever
// it appears in a value.
package logging

import (
	"io"
	"log/slog"
	"regexp"
	"strings"
)

var nationalID = regexp.MustCompile(`\b\d{6}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])\d{2}\d{3}[\dXx]\b`)

var secretKeys = []string{"password", "passwd", "secret", "token", "authorization", "cookie", "national_id", "data_key", "database_url", "redis_url"}

// New returns a JSON logger at level writing to w.
func New(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: Redact}))
}

// ParseLevel reads debug, info, warn or error.
func ParseLevel(s string) (slog.Level, bool) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo, false
	}
	return l, true
}

// Redact is a slog ReplaceAttr that hides secrets and national IDs.
func Redact(_ []string, a slog.Attr) slog.Attr {
	key := strings.ToLower(a.Key)
	for _, s := range secretKeys {
		if strings.Contains(key, s) {
			return slog.String(a.Key, "[redacted]")
		}
	}
	if a.Value.Kind() == slog.KindString {
		if v := a.Value.String(); nationalID.MatchString(v) {
			return slog.String(a.Key, nationalID.ReplaceAllString(v, "[national-id]"))
		}
	}
	if a.Value.Kind() == slog.KindAny {
		if err, ok := a.Value.Any().(error); ok && nationalID.MatchString(err.Error()) {
			return slog.String(a.Key, nationalID.ReplaceAllString(err.Error(), "[national-id]"))
		}
	}
	return a
}
