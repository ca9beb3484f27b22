package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"duikou/internal/auth"
	"duikou/internal/store"
)

// IdempotencyHeader lets a client retry a POST safely: the same key with the
// same request gets the first answer again; with another request, 422.
const IdempotencyHeader = "Idempotency-Key"

// IdempotencyStore keeps answers to idempotent requests, per user. Both
// methods run inside the transaction of the change they answer: Claim holds
// the key until it ends and returns what an earlier use stored; Save stores
// the answer. A key nobody saved an answer for leaves nothing behind.
type IdempotencyStore interface {
	Claim(ctx context.Context, userID, key string, now time.Time) (*store.IdempotentResponse, error)
	Save(ctx context.Context, userID, key string, r store.IdempotentResponse, now time.Time) error
}

// TxRunner runs a function in one database transaction (sqldb.DB).
type TxRunner interface {
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
}

// idempotent makes a creating POST safe to retry. The claim of the key, the
// change and the stored answer are one transaction (the services' own
// transactions nest as savepoints): a retry after a crash either finds the
// answer or finds nothing and runs afresh, and a concurrent retry waits on
// the claimed key until the first transaction ends and then gets the first
// answer. Only successful answers are kept, and none a handler marked
// notForReplay: a refused request stores nothing under its key and is
// judged afresh next time. Its transaction still commits, because what the
// refusal recorded (an access.denied audit row) must stay, while the failed
// change itself was already undone by its savepoint.
func (a *API) idempotent(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get(IdempotencyHeader)
		if key == "" || r.Method != http.MethodPost || a.Idempotency == nil || a.Tx == nil {
			next.ServeHTTP(w, r)
			return
		}
		if len(key) > 255 || !printableASCII(key) {
			writeProblem(w, r, http.StatusBadRequest, "the idempotency key must be 1 to 255 printable ASCII characters",
				fieldError(IdempotencyHeader, "must be 1 to 255 printable ASCII characters"))
			return
		}
		h := sha256.New()
		h.Write([]byte(r.Method + "\x00" + r.URL.Path + "\x00"))
		body, err := a.spool(r.Body, h)
		if err != nil {
			if isTooLarge(err) {
				writeProblem(w, r, http.StatusRequestEntityTooLarge, "the request body is larger than the limit for this endpoint")
				return
			}
			a.writeError(w, r, err)
			return
		}
		defer body.Close()
		r.Body = body
		fingerprint := h.Sum(nil)
		user := auth.FromContext(r.Context()).UserID

		var (
			replay *store.IdempotentResponse
			rec    = newCapture()
		)
		now := time.Now().UTC()
		err = a.Tx.InTx(r.Context(), func(ctx context.Context) error {
			prev, err := a.Idempotency.Claim(ctx, user, key, now)
			if err != nil {
				return err
			}
			if prev != nil {
				replay = prev
				return nil
			}
			skip := false
			next.ServeHTTP(rec, r.WithContext(context.WithValue(ctx, notForReplayKey{}, &skip)))
			if rec.status < 200 || rec.status >= 300 || skip {
				return nil
			}
			return a.Idempotency.Save(ctx, user, key, store.IdempotentResponse{
				Fingerprint: fingerprint, Status: rec.status, ContentType: rec.header.Get("Content-Type"),
				ETag: rec.header.Get("ETag"), Location: rec.header.Get("Location"), Body: rec.body.Bytes(),
			}, now)
		})
		switch {
		case err != nil:
			a.writeError(w, r, err)
		case replay != nil && !bytes.Equal(replay.Fingerprint, fingerprint):
			writeProblem(w, r, http.StatusUnprocessableEntity, "this idempotency key was used for a different request; use a new key",
				fieldError(IdempotencyHeader, "was used for a different request"))
		case replay != nil:
			for k, v := range map[string]string{"Content-Type": replay.ContentType, "ETag": replay.ETag, "Location": replay.Location} {
				if v != "" {
					w.Header().Set(k, v)
				}
			}
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(replay.Status)
			w.Write(replay.Body)
		default:
			rec.copyTo(w)
		}
	})
}

type notForReplayKey struct{}

// notForReplay marks the answer the request is getting as one not to keep
// for idempotent replay: it carries a secret (a session's join token and
// TURN credentials) that must not rest in the database. Nothing is stored
// under the key, so a retry runs afresh and gets a fresh answer.
func notForReplay(ctx context.Context) {
	if skip, ok := ctx.Value(notForReplayKey{}).(*bool); ok {
		*skip = true
	}
}

// spoolInMemory is the largest body kept in memory while an idempotent
// request runs: every JSON body fits (the common limit is 1 MiB); a file
// upload goes on to disk.
const spoolInMemory = 1 << 20

// spool reads the whole body once, feeding h (the fingerprint must be known
// before the key is claimed), and returns it for the handler to read again.
// A body over spoolInMemory is kept in a temporary file, unlinked at once,
// so that a few concurrent 50 MiB uploads cost disk rather than memory.
func (a *API) spool(body io.Reader, h io.Writer) (io.ReadCloser, error) {
	var buf bytes.Buffer
	if _, err := io.CopyN(io.MultiWriter(&buf, h), body, spoolInMemory+1); err != nil {
		if errors.Is(err, io.EOF) {
			return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
		}
		return nil, err
	}
	f, err := os.CreateTemp(a.cfg.SpoolDir, "duikou-body-*")
	if err != nil {
		return nil, err
	}
	sf := &spooled{File: f}
	os.Remove(f.Name()) // gone once closed, even if this process dies; Close retries where removing an open file fails
	if _, err := f.Write(buf.Bytes()); err != nil {
		sf.Close()
		return nil, err
	}
	if _, err := io.Copy(io.MultiWriter(f, h), body); err != nil {
		sf.Close()
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		sf.Close()
		return nil, err
	}
	return sf, nil
}

type spooled struct{ *os.File }

func (s *spooled) Close() error {
	err := s.File.Close()
	os.Remove(s.Name())
	return err
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// capture holds a handler's answer until the transaction has committed.
type capture struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newCapture() *capture { return &capture{header: http.Header{}} }

func (c *capture) Header() http.Header { return c.header }
func (c *capture) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.body.Write(b)
}
func (c *capture) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

func (c *capture) copyTo(w http.ResponseWriter) {
	for k, v := range c.header {
		w.Header()[k] = v
	}
	if c.status == 0 {
		c.status = http.StatusOK
	}
	w.WriteHeader(c.status)
	w.Write(c.body.Bytes())
}
