package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"duikou/attachment"
	"duikou/internal/attachments"
	"duikou/internal/audit"
	"duikou/internal/blob"
	"duikou/internal/patient"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/referral"
)

// attHTTPEnv is the referral test world with files: the real attachment
// service over a local blob store in a temporary directory.
type attHTTPEnv struct {
	*refHTTPEnv
	blobRoot string
}

func newAttHTTPEnv(t *testing.T, db sqldb.DB, limiter RateLimiter) *attHTTPEnv {
	t.Helper()
	root := filepath.Join(t.TempDir(), "blobs")
	blobs, err := blob.OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	env := &attHTTPEnv{blobRoot: root}
	env.refHTTPEnv = newRefHTTPEnv(t, db, func(d *Deps, rec audit.Recorder) {
		d.Attachments = attachments.NewService(db, store.NewAttachments(db), blobs, rec, nil, store.NewReferrals(db))
		d.Limiter = limiter
	})
	return env
}

// attTestFile reads one of the real test files of each type.
func attTestFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "attachment", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// disposition names a file as a client does, RFC 5987 for names beyond ASCII.
func disposition(name string) string {
	return "attachment; filename*=UTF-8''" + url.PathEscape(name)
}

// upload posts body as a file of the declared type and name.
func (e *attHTTPEnv) upload(token string, body io.Reader, ctype, name string, hdr ...string) regTestResponse {
	e.t.Helper()
	return e.do(token, http.MethodPost, "/api/v1/attachments", body,
		append([]string{"Content-Type", ctype, "Content-Disposition", disposition(name)}, hdr...)...)
}

func (e *attHTTPEnv) uploaded(t *testing.T, token, file, ctype, name string) attachment.Attachment {
	t.Helper()
	res := e.upload(token, bytes.NewReader(attTestFile(t, file)), ctype, name)
	if res.code != http.StatusCreated {
		t.Fatalf("upload %s: %d %s", file, res.code, res.body)
	}
	var a attachment.Attachment
	res.json(t, &a)
	return a
}

// blobFiles counts the files in the blob store, temporary ones included.
func (e *attHTTPEnv) blobFiles(t *testing.T) int {
	t.Helper()
	n := 0
	filepath.WalkDir(e.blobRoot, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	})
	return n
}

// Each accepted type uploads from a real file; the answer gives the size and
// digest of the bytes stored, and the uploader's hospital downloads exactly
// those bytes as an attachment that browsers may not sniff or render.
func TestAttachmentsHTTPUploadAndDownloadEachType(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newAttHTTPEnv(t, db, nil)
		for _, c := range []struct{ file, ctype, name string }{
			{"referral-summary.pdf", "application/pdf", "转诊摘要.pdf"},
			{"video-001.jpeg", "image/jpeg", "伤口照片.jpg"},
			{"video-001.png", "image/png", "化验单.png"},
			{"ct-multiframe.dcm", "application/dicom", "CT0012.dcm"},
		} {
			data := attTestFile(t, c.file)
			sum := sha256.Sum256(data)
			res := env.upload(env.doctor, bytes.NewReader(data), c.ctype, c.name, "X-Request-ID", "upload-"+strings.ReplaceAll(c.file, ".", "-"))
			if res.code != http.StatusCreated {
				t.Fatalf("%s: %d %s", c.file, res.code, res.body)
			}
			var a attachment.Attachment
			res.json(t, &a)
			if a.Name != c.name || a.ContentType != c.ctype || a.Size != int64(len(data)) || a.SHA256 != hex.EncodeToString(sum[:]) ||
				a.HospitalID != env.county.ID || a.UploadedBy != env.users[env.doctor].UserID {
				t.Errorf("%s: answered %+v", c.file, a)
			}
			if loc := res.hdr.Get("Location"); loc != "/api/v1/attachments/"+a.ID {
				t.Errorf("%s: Location %q", c.file, loc)
			}

			got := env.do(env.doctor, http.MethodGet, "/api/v1/attachments/"+a.ID, nil)
			if got.code != http.StatusOK || !bytes.Equal(got.body, data) {
				t.Fatalf("%s: download %d, %d bytes (want %d)", c.file, got.code, len(got.body), len(data))
			}
			_, params, err := mime.ParseMediaType(got.hdr.Get("Content-Disposition"))
			if err != nil || !strings.HasPrefix(got.hdr.Get("Content-Disposition"), "attachment;") || params["filename"] != c.name {
				t.Errorf("%s: Content-Disposition %q", c.file, got.hdr.Get("Content-Disposition"))
			}
			for k, v := range map[string]string{"Content-Type": c.ctype, "X-Content-Type-Options": "nosniff",
				"Content-Security-Policy": "default-src 'none'; sandbox", "ETag": `"` + a.SHA256 + `"`} {
				if got.hdr.Get(k) != v {
					t.Errorf("%s: %s %q, want %q", c.file, k, got.hdr.Get(k), v)
				}
			}
		}
		var created, read int
		db.QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE action = $1 AND outcome = 'success'`, attachments.ActionCreate).Scan(&created)
		db.QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE action = $1 AND outcome = 'success'`, attachments.ActionRead).Scan(&read)
		if created != 4 || read != 4 {
			t.Errorf("audited %d uploads and %d downloads, want 4 and 4", created, read)
		}
	})
}

// A file is refused before anything is stored when its first bytes are not
// of the declared type, the type is not accepted, it has no name or an
// unsafe one, it is empty, or it names a patient out of reach.
func TestAttachmentsHTTPRefusesBadUploads(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newAttHTTPEnv(t, db, nil)
		png, pdf := attTestFile(t, "video-001.png"), attTestFile(t, "referral-summary.pdf")
		now := sqldb.Now()
		far := patient.Patient{ID: uuid.Must(uuid.NewV7()).String(), Name: "远方", Sex: patient.Male, BirthDate: "1950-01-01",
			HomeHospitalID: env.foreign.ID, CreatedBy: env.users[env.outsider].UserID, Version: 1, CreatedAt: now, UpdatedAt: now}
		if err := store.NewPatients(db).CreatePatient(context.Background(), far); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name  string
			body  []byte
			hdr   []string
			code  int
			field string
		}{
			{"a PNG declared as JPEG", png, []string{"Content-Type", "image/jpeg"}, http.StatusBadRequest, "Content-Type"},
			{"a PDF declared as DICOM", pdf, []string{"Content-Type", "application/dicom"}, http.StatusBadRequest, "Content-Type"},
			{"HTML declared as PDF", []byte("<html><script>alert(1)</script></html>"), []string{"Content-Type", "application/pdf"}, http.StatusBadRequest, "Content-Type"},
			{"a type not accepted", []byte("<svg/>"), []string{"Content-Type", "image/svg+xml"}, http.StatusUnsupportedMediaType, "Content-Type"},
			{"no type", png, []string{"Content-Type", ""}, http.StatusUnsupportedMediaType, "Content-Type"},
			{"no name", png, []string{"Content-Type", "image/png", "Content-Disposition", ""}, http.StatusBadRequest, "Content-Disposition"},
			{"a name with a path", png, []string{"Content-Type", "image/png", "Content-Disposition", `attachment; filename="../../etc/passwd"`}, http.StatusBadRequest, "name"},
			{"an empty file", nil, []string{"Content-Type", "image/png"}, http.StatusBadRequest, "body"},
			{"a patient out of reach", png, []string{"Content-Type", "image/png"}, http.StatusBadRequest, "patient_id"},
		} {
			path := "/api/v1/attachments"
			if c.field == "patient_id" {
				path += "?patient_id=" + far.ID
			}
			hdr := append([]string{"Content-Disposition", disposition("x.png")}, c.hdr...)
			res := env.do(env.doctor, http.MethodPost, path, bytes.NewReader(c.body), hdr...)
			if res.code != c.code || !slices.Contains(res.problemFields(t), c.field) {
				t.Errorf("%s: %d %s, want %d naming %s", c.name, res.code, res.body, c.code, c.field)
			}
		}
		if n := env.count("attachments"); n != 0 {
			t.Errorf("%d attachments stored from refused uploads", n)
		}
		if n := env.blobFiles(t); n != 0 {
			t.Errorf("%d files left in the blob store by refused uploads", n)
		}
	})
}

// zeros yields n zero bytes without holding them.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), z.n)]
	clear(p)
	z.n -= int64(len(p))
	return len(p), nil
}

// A PDF of n bytes: a real header, then padding.
func bigPDF(n int64) io.Reader {
	head := "%PDF-1.4\n"
	return io.MultiReader(strings.NewReader(head), &zeros{n - int64(len(head))})
}

// Uploads have their own limit of 50 MiB: above the common 1 MiB, which
// still holds for every other route, and refused with 413 beyond, whether
// the client declares its length or streams the body; nothing is stored.
func TestAttachmentsHTTPUploadLimit(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newAttHTTPEnv(t, db, nil)
		if res := env.upload(env.doctor, bigPDF(3<<20), "application/pdf", "3MiB.pdf"); res.code != http.StatusCreated {
			t.Fatalf("a 3 MiB upload: %d %s", res.code, res.body)
		}
		if res := env.upload(env.doctor, bigPDF(attachment.MaxSize), "application/pdf", "50MiB.pdf"); res.code != http.StatusCreated {
			t.Fatalf("an upload of exactly 50 MiB: %d %s", res.code, res.body)
		}
		stored, files := env.count("attachments"), env.blobFiles(t)

		declared := bytes.NewReader(make([]byte, attachment.MaxSize+1)) // a length the request declares
		if res := env.upload(env.doctor, declared, "application/pdf", "big.pdf"); res.code != http.StatusRequestEntityTooLarge {
			t.Errorf("a declared 50 MiB + 1: %d %s", res.code, res.body)
		}
		if res := env.upload(env.doctor, bigPDF(attachment.MaxSize+1), "application/pdf", "big.pdf"); res.code != http.StatusRequestEntityTooLarge {
			t.Errorf("a streamed 50 MiB + 1: %d %s", res.code, res.body)
		}
		if res := env.upload(env.doctor, bigPDF(attachment.MaxSize+1), "application/pdf", "big.pdf", IdempotencyHeader, "big-1"); res.code != http.StatusRequestEntityTooLarge {
			t.Errorf("a streamed 50 MiB + 1 with an idempotency key: %d %s", res.code, res.body)
		}
		if env.count("attachments") != stored || env.blobFiles(t) != files {
			t.Errorf("oversized uploads left %d rows and %d files", env.count("attachments")-stored, env.blobFiles(t)-files)
		}

		json := `{"reason": "` + strings.Repeat("长", 1<<20) + `"}`
		if res := env.do(env.doctor, http.MethodPost, "/api/v1/referrals", json); res.code != http.StatusRequestEntityTooLarge {
			t.Errorf("a 3 MiB JSON body elsewhere: %d, want 413", res.code)
		}
	})
}

// A file reaches its uploader's hospital and, through a referral carrying
// it, the receiving hospital once the ticket is sent; an unrelated hospital
// gets 404 and its attempt is audited, as does a receiver while the ticket
// is still a draft. A ticket cannot carry an unknown or another hospital's
// file: the field at fault is named.
func TestAttachmentsHTTPDownloadByPartiesOnly(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newAttHTTPEnv(t, db, nil)
		ecg := env.uploaded(t, env.doctor, "referral-summary.pdf", "application/pdf", "心电图.pdf")
		foreign := env.uploaded(t, env.outsider, "video-001.png", "image/png", "外院.png")
		get := func(token, id string) int {
			return env.do(token, http.MethodGet, "/api/v1/attachments/"+id, nil).code
		}

		in := env.input()
		in["attachments"] = []map[string]any{{"id": ecg.ID}, {"id": foreign.ID}, {"id": "0190a0b0-0000-7000-8000-00000000dead"}}
		res := env.do(env.doctor, http.MethodPost, "/api/v1/referrals", in)
		if fields := res.problemFields(t); res.code != http.StatusBadRequest || !slices.Equal(fields, []string{"attachments[1].id", "attachments[2].id"}) {
			t.Fatalf("a ticket naming another hospital's and an unknown file: %d, fields %v", res.code, fields)
		}

		in["attachments"] = []map[string]any{{"id": ecg.ID, "name": "x.png", "content_type": "image/png", "size": 1}}
		res = env.do(env.doctor, http.MethodPost, "/api/v1/referrals", in)
		if res.code != http.StatusCreated {
			t.Fatalf("create with the county's own file: %d %s", res.code, res.body)
		}
		var r referral.Referral
		res.json(t, &r)
		if want := (referral.AttachmentRef{ID: ecg.ID, Name: "心电图.pdf", ContentType: "application/pdf", Size: ecg.Size}); len(r.Attachments) != 1 || r.Attachments[0] != want {
			t.Errorf("the ticket carries %+v, want the upload's own details %+v", r.Attachments, want)
		}

		if code := get(env.desk, ecg.ID); code != http.StatusNotFound {
			t.Errorf("the receiving desk before the ticket is sent: %d, want 404", code)
		}
		env.act(t, env.doctor, r, "submit", nil, http.StatusOK)
		for _, c := range []struct {
			who, token, id string
			want           int
		}{
			{"the uploader", env.doctor, ecg.ID, http.StatusOK},
			{"the receiving desk of the sent ticket", env.desk, ecg.ID, http.StatusOK},
			{"an unrelated hospital", env.outsider, ecg.ID, http.StatusNotFound},
			{"the county, for the other hospital's file", env.doctor, foreign.ID, http.StatusNotFound},
			{"anyone, for an unknown id", env.doctor, "0190a0b0-0000-7000-8000-00000000dead", http.StatusNotFound},
			{"anyone, for a malformed id", env.doctor, "..%2F..%2Fdata.key", http.StatusNotFound},
			{"a programme officer of the uploader's hospital", env.office, ecg.ID, http.StatusForbidden},
		} {
			if code := get(c.token, c.id); code != c.want {
				t.Errorf("%s: %d, want %d", c.who, code, c.want)
			}
		}
		var denied int
		db.QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE action = 'access.denied' AND resource_type = 'attachment' AND resource_id = $1`, ecg.ID).Scan(&denied)
		if denied != 2 {
			t.Errorf("%d refused reads of the ECG audited, want 2 (the desk before sending, the unrelated hospital)", denied)
		}
	})
}

// A retried upload with the same Idempotency-Key gets the first answer and
// stores the file once, whether the retry follows or races the first; the
// body is spooled to disk, not memory, past 1 MiB, and the stored answer is
// the metadata, not the file.
func TestAttachmentsHTTPRetriedUploadStoresOnce(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newAttHTTPEnv(t, db, nil)
		data := attTestFile(t, "ct-multiframe.dcm")
		send := func(key string, body []byte) regTestResponse {
			return env.upload(env.doctor, bytes.NewReader(body), "application/dicom", "CT.dcm", IdempotencyHeader, key)
		}
		first, again := send("ct-1", data), send("ct-1", data)
		if first.code != http.StatusCreated || again.code != http.StatusCreated || !bytes.Equal(first.body, again.body) ||
			again.hdr.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("retry: %d %s / %d %s (replayed %q)", first.code, first.body, again.code, again.body, again.hdr.Get("Idempotent-Replayed"))
		}
		var stored int
		db.QueryRow(context.Background(), `SELECT length(body) FROM idempotency_keys WHERE key = 'ct-1'`).Scan(&stored)
		if stored == 0 || stored > 4096 {
			t.Errorf("the idempotency record holds %d bytes; want the metadata answer only", stored)
		}

		var wg sync.WaitGroup
		codes := make([]int, 4)
		bodies := make([][]byte, 4)
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res := send("ct-2", data)
				codes[i], bodies[i] = res.code, res.body
			}()
		}
		wg.Wait()
		for i := range codes {
			if codes[i] != http.StatusCreated || !bytes.Equal(bodies[i], bodies[0]) {
				t.Errorf("concurrent retry %d: %d %s", i, codes[i], bodies[i])
			}
		}
		if n := env.count("attachments"); n != 2 {
			t.Errorf("%d files stored for two keys", n)
		}
		if n := env.blobFiles(t); n != 2 {
			t.Errorf("%d blob files for two keys", n)
		}
		other := append(bytes.Clone(data[:len(data)-1]), data[len(data)-1]^0xFF)
		if res := send("ct-1", other); res.code != http.StatusUnprocessableEntity {
			t.Errorf("the same key with another file: %d, want 422", res.code)
		}
	})
}

// countingLimiter allows limit calls per key.
type countingLimiter struct {
	mu    sync.Mutex
	limit map[string]int
	calls map[string]int
}

func (l *countingLimiter) Allow(_ context.Context, key string, limit int, _ time.Duration) (bool, time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls[key]++
	if max, ok := l.limit[key]; ok {
		limit = max
	}
	return l.calls[key] <= limit, time.Second, nil
}

// Uploads are rate limited per user on top of the common limit.
func TestAttachmentsHTTPUploadsAreRateLimitedPerUser(t *testing.T) {
	db := sqldbtest.SQLite(t)
	lim := &countingLimiter{limit: map[string]int{}, calls: map[string]int{}}
	env := newAttHTTPEnv(t, db, lim)
	lim.limit["upload:user:"+env.users[env.doctor].UserID] = 2
	png := attTestFile(t, "video-001.png")
	for i, want := range []int{http.StatusCreated, http.StatusCreated, http.StatusTooManyRequests} {
		if res := env.upload(env.doctor, bytes.NewReader(png), "image/png", "x.png"); res.code != want {
			t.Errorf("upload %d: %d, want %d", i+1, res.code, want)
		}
	}
	if res := env.upload(env.desk, bytes.NewReader(png), "image/png", "x.png"); res.code != http.StatusCreated {
		t.Errorf("another user's upload: %d", res.code)
	}
}
