package web

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestHandlerServesTheAppWithAStrictPolicy(t *testing.T) {
	h := Handler()
	tests := []struct {
		name, method, path string
		status             int
		ctype              string
	}{
		{"the app at the root", "GET", "/", 200, "text/html; charset=utf-8"},
		{"the app by name", "GET", "/index.html", 200, "text/html; charset=utf-8"},
		{"a module", "GET", "/js/main.js", 200, "text/javascript; charset=utf-8"},
		{"the style sheet", "GET", "/css/app.css", 200, "text/css; charset=utf-8"},
		{"a HEAD", "HEAD", "/", 200, "text/html; charset=utf-8"},
		{"an unknown path is not the app", "GET", "/referrals/123", 404, ""},
		{"a directory is not listed", "GET", "/js/", 404, ""},
		{"no writes", "POST", "/", 405, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := get(t, h, tc.method, tc.path, nil)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if tc.status != 200 {
				return
			}
			if got := rec.Header().Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type %q, want %q", got, tc.ctype)
			}
			if got := rec.Header().Get("Content-Security-Policy"); got != CSP {
				t.Errorf("CSP %q", got)
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control %q, want no-cache (revalidate every file: names carry no hashes)", got)
			}
			if rec.Header().Get("ETag") == "" {
				t.Error("no ETag")
			}
		})
	}
}

func TestPolicyAllowsNoInlineScriptOrStyle(t *testing.T) {
	for _, directive := range []string{"script-src 'self';", "style-src 'self';", "frame-ancestors 'none'", "object-src 'none'"} {
		if !strings.Contains(CSP, directive) {
			t.Errorf("the policy lacks %q", directive)
		}
	}
	if strings.Contains(CSP, "unsafe-") {
		t.Errorf("the policy allows something unsafe: %s", CSP)
	}
	// And the page itself needs none: no inline script, handler or style.
	page := get(t, Handler(), "GET", "/", nil).Body.String()
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<script(?:\s+[^>]*)?>\s*[^<\s]`), // a script with a body
		regexp.MustCompile(`\son[a-z]+\s*=`),                 // onclick=…
		regexp.MustCompile(`<style`),
		regexp.MustCompile(`\sstyle\s*=`),
	} {
		if loc := bad.FindStringIndex(page); loc != nil {
			t.Errorf("index.html has inline code the policy would block: %q", page[loc[0]:min(loc[1]+20, len(page))])
		}
	}
}

func TestUnchangedFileIsNotSentAgain(t *testing.T) {
	h := Handler()
	first := get(t, h, "GET", "/js/main.js", nil)
	again := get(t, h, "GET", "/js/main.js", map[string]string{"If-None-Match": first.Header().Get("ETag")})
	if again.Code != http.StatusNotModified {
		t.Fatalf("revalidation answered %d, want 304", again.Code)
	}
}
