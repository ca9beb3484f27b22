// Package web is the browser UI, embedded into the binary so the server
// needs nothing else at run time. It is plain ES modules and CSS with no
// build step: what is in static/ is what the browser runs.
//
// The app is one page (index.html) with a hash router (#/referrals/…), so
// the server serves index.html at / and the files it loads; any other path
// is a 404, never the page, so a mistyped API path is not answered with HTML.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// CSP is the Content-Security-Policy of the UI: scripts and styles only from
// the server's own files (no inline script, no eval, no inline style
// attributes), connections only back to it (the API, event streams and,
// later, the WebSocket signalling on the same origin), nothing may frame it.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"media-src 'self' blob: mediastream:; connect-src 'self'; font-src 'self'; object-src 'none'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

type file struct {
	body  []byte
	ctype string
	etag  string
}

// handler answers from the embedded files, loaded once.
type handler struct {
	files map[string]file // by URL path
	mod   time.Time
}

// Handler serves the UI's files. Every answer must be revalidated
// (Cache-Control: no-cache) against a strong ETag of its content: file names
// carry no hashes (there is no build step), so this is what keeps a browser
// from mixing modules of two releases, while an unchanged file still costs
// only a 304.
func Handler() http.Handler {
	h := &handler{files: map[string]file{}, mod: time.Now()}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ctype := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) { // the system's MIME table may lack these
		case ".js":
			ctype = "text/javascript; charset=utf-8"
		case ".css":
			ctype = "text/css; charset=utf-8"
		case ".html":
			ctype = "text/html; charset=utf-8"
		case ".svg":
			ctype = "image/svg+xml"
		case ".json":
			ctype = "application/json"
		}
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		h.files[strings.TrimPrefix(p, "static")] = file{body: b, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	h.files["/"] = h.files["/index.html"]
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	f, ok := h.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", f.ctype)
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("Cache-Control", "no-cache")
	hd.Set("ETag", f.etag)
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(self), microphone=(self), display-capture=(self), geolocation=()")
	http.ServeContent(w, r, "", h.mod, bytes.NewReader(f.body))
}
