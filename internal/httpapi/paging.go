package httpapi

import (
	"encoding/base64"
	"net/http"
	"strconv"

	"duikou/internal/apperr"
)

// Page is what every list endpoint takes: an opaque cursor from the previous
// page and a bounded size.
type Page struct {
	Cursor string // the key after which to continue, decoded
	Limit  int
}

const (
	defaultPageSize = 50
	maxPageSize     = 200
)

// pageFrom reads ?cursor= and ?limit=.
func pageFrom(r *http.Request) (Page, error) {
	q := r.URL.Query()
	p := Page{Limit: defaultPageSize}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageSize {
			return p, apperr.Field("limit", "must be a whole number from 1 to "+strconv.Itoa(maxPageSize))
		}
		p.Limit = n
	}
	if s := q.Get("cursor"); s != "" {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(b) == 0 || len(b) > 256 {
			return p, apperr.Field("cursor", "is not a cursor this server issued")
		}
		p.Cursor = string(b)
	}
	return p, nil
}

// List is the envelope of every list response.
type List[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// listOf builds the envelope from up to limit+1 items fetched by the store:
// the extra one only tells that another page exists.
func listOf[T any](items []T, limit int, key func(T) string) List[T] {
	l := List[T]{Items: items}
	if l.Items == nil {
		l.Items = []T{}
	}
	if len(items) > limit {
		l.Items = items[:limit]
		l.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(key(items[limit-1])))
	}
	return l
}
