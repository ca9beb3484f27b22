package httpapi

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"duikou/attachment"
	"duikou/internal/attachments"
	"duikou/internal/auth"
)

// AttachmentService is what the API needs of uploaded files.
type AttachmentService interface {
	Upload(ctx context.Context, p auth.Principal, in attachments.UploadInput, body io.Reader) (attachment.Attachment, error)
	Open(ctx context.Context, p auth.Principal, id string) (attachment.Attachment, io.ReadSeekCloser, error)
}

// uploadPath is the upload route; limitBody gives it the upload limit.
const uploadPath = "/api/v1/attachments"

// mountAttachments: files are clinical data, so only clinical roles reach
// them; the service limits each caller to its hospital's files and those
// carried to it on a record it is a party to.
func (a *API) mountAttachments(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(a.allow(auth.ClinicalRoles...))
		r.Post(strings.TrimPrefix(uploadPath, "/api/v1"), a.attUpload)
		r.Get("/attachments/{attachmentID}", a.attDownload)
	})
}

// attUpload takes the file as the raw body: Content-Type declares its type
// and Content-Disposition its name (RFC 5987 filename* for names beyond
// ASCII). A raw body needs no multipart parsing and streams straight into
// the blob store; the name travels in a header, which access logs do not
// record, because names of clinical files often carry the patient's.
func (a *API) attUpload(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := auth.FromContext(ctx)
	if a.Limiter != nil {
		ok, retry, err := a.Limiter.Allow(ctx, "upload:user:"+p.UserID, a.cfg.UploadsPerMinute, time.Minute)
		if err != nil {
			a.log.WarnContext(ctx, "rate limiter unavailable", "err", err)
		}
		if !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds())+1))
			writeProblem(w, r, http.StatusTooManyRequests, "too many uploads; slow down")
			return
		}
	}
	if _, ok := attachment.NormalizeType(r.Header.Get("Content-Type")); !ok {
		writeProblem(w, r, http.StatusUnsupportedMediaType, "files are accepted as "+strings.Join(attachment.Types, ", "),
			fieldError("Content-Type", "must be one of "+strings.Join(attachment.Types, ", ")))
		return
	}
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Disposition"))
	name := params["filename"]
	if err != nil || name == "" {
		writeProblem(w, r, http.StatusBadRequest, "name the file in Content-Disposition",
			fieldError("Content-Disposition", `must name the file: attachment; filename="ecg.pdf" (or filename*=UTF-8''… beyond ASCII)`))
		return
	}
	att, err := a.Attachments.Upload(ctx, p, attachments.UploadInput{
		Name: name, ContentType: r.Header.Get("Content-Type"), PatientID: r.URL.Query().Get("patient_id"),
	}, r.Body)
	if isTooLarge(err) || errors.Is(err, attachments.ErrTooLarge) {
		writeProblem(w, r, http.StatusRequestEntityTooLarge, "a file may be at most 50 MiB")
		return
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/attachments/"+att.ID)
	writeJSON(w, http.StatusCreated, att)
}

// attDownload answers the file's bytes as a download, never for display:
// the browser is told the stored type, not to sniff another, and to save it
// rather than render it in the application's origin.
func (a *API) attDownload(w http.ResponseWriter, r *http.Request) {
	att, f, err := a.Attachments.Open(r.Context(), auth.FromContext(r.Context()), chi.URLParam(r, "attachmentID"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	defer f.Close()
	disposition := mime.FormatMediaType("attachment", map[string]string{"filename": att.Name})
	if disposition == "" {
		disposition = "attachment"
	}
	h := w.Header()
	h.Set("Content-Type", att.ContentType)
	h.Set("Content-Disposition", disposition)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cache-Control", "private, no-store")
	h.Set("ETag", `"`+att.SHA256+`"`)
	http.ServeContent(w, r, "", att.CreatedAt, f)
}
