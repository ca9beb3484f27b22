package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"duikou/internal/apperr"
)

// Concurrent edits are detected with the resource's version: GET answers it
// as a strong ETag ("7"), and every change must send it back in If-Match.

func setETag(w http.ResponseWriter, version int) {
	w.Header().Set("ETag", `"`+strconv.Itoa(version)+`"`)
}

// ifMatch returns the version the caller edits: missing → 428, malformed → 400.
func ifMatch(r *http.Request) (int, error) {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" {
		return 0, apperr.ErrVersionRequired
	}
	h = strings.TrimPrefix(h, "W/")
	v, err := strconv.Atoi(strings.Trim(h, `"`))
	if err != nil || v < 1 {
		return 0, apperr.Field("If-Match", `must be the ETag you read, like "3"`)
	}
	return v, nil
}
