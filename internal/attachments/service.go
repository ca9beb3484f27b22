// Package attachments is the application service of uploaded files: it
// checks an upload (type by its first bytes, size, name, patient), streams
// the bytes into the blob store, and writes the metadata with its audit row;
// it lets a file be read by its hospital and by the hospitals that are a
// party to a record carrying it. Referral tickets carry files now; remote
// consultations will, through another Holder.
package attachments

import (
	"bufio"
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"

	"duikou/attachment"
	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/sqldb"
	"duikou/internal/store"
)

// Blobs keeps file contents; blob.Dir implements it for a local (or
// mounted, shared) directory, and an object store could too. Keys are
// chosen by the service and never reused.
type Blobs interface {
	// Put stores what r yields under key and returns its size and SHA-256
	// (hex). It fails, storing nothing, if r fails or key is taken.
	Put(ctx context.Context, key string, r io.Reader) (size int64, sha256 string, err error)
	// Open returns key's contents; a missing key matches fs.ErrNotExist.
	Open(ctx context.Context, key string) (io.ReadSeekCloser, error)
	// Delete removes key's contents; a missing key is no error.
	Delete(ctx context.Context, key string) error
}

// Store keeps attachment metadata; store.Attachments implements it.
type Store interface {
	Create(ctx context.Context, a attachment.Attachment) error
	Get(ctx context.Context, id string) (attachment.Attachment, error)
	PatientHome(ctx context.Context, patientID string) (string, error)
}

var _ Store = (*store.Attachments)(nil)

// Holder answers whether a record that hospitalID is a party to carries the
// file; store.Referrals does for referral tickets.
type Holder interface {
	CarriesAttachment(ctx context.Context, attachmentID, hospitalID string) (bool, error)
}

var _ Holder = (*store.Referrals)(nil)

// Audit actions.
const (
	ActionCreate = "attachment.create"
	ActionRead   = "attachment.read"
)

// ErrTooLarge is returned when an upload exceeds attachment.MaxSize.
var ErrTooLarge = errors.New("attachments: the file is larger than 50 MiB")

// Service runs uploads and downloads.
type Service struct {
	db      sqldb.DB
	store   Store
	blobs   Blobs
	audit   audit.Recorder
	holders []Holder
	now     func() time.Time
}

// NewService builds the service. clock nil means sqldb.Now. holders are the
// records through which another hospital may reach a file.
func NewService(db sqldb.DB, st Store, blobs Blobs, rec audit.Recorder, clock func() time.Time, holders ...Holder) *Service {
	if clock == nil {
		clock = sqldb.Now
	}
	return &Service{db: db, store: st, blobs: blobs, audit: rec, holders: holders, now: clock}
}

// UploadInput is what a client declares about a file besides its bytes.
type UploadInput struct {
	Name        string
	ContentType string
	PatientID   string // optional: the patient the file is about
}

func (s *Service) record(ctx context.Context, p auth.Principal, action string, a attachment.Attachment, outcome audit.Outcome, detail string) error {
	src := audit.SourceFrom(ctx)
	return s.audit.Record(ctx, audit.Entry{
		At: s.now(), ActorID: p.UserID, ActorHospitalID: p.HospitalID, Action: action,
		ResourceType: "attachment", ResourceID: a.ID, PatientID: a.PatientID, Outcome: outcome,
		RequestID: src.RequestID, ClientAddr: src.ClientAddr, Detail: detail,
	})
}

// Upload stores a file for the caller's hospital. What the client declares
// is checked first, then the first bytes must be of the declared type; only
// then are the bytes streamed to the blob store, and the metadata and its
// audit row are written once the bytes are safely stored. The answer's size
// and digest are of the bytes stored, never of what the client claimed.
func (s *Service) Upload(ctx context.Context, p auth.Principal, in UploadInput, body io.Reader) (attachment.Attachment, error) {
	if !p.Has(auth.ClinicalRoles...) || p.HospitalID == "" {
		return attachment.Attachment{}, apperr.Forbidden("only clinical staff of a hospital may upload files")
	}
	var v apperr.Invalid
	name, err := attachment.CleanName(in.Name)
	var fields apperr.Invalid
	if errors.As(err, &fields) {
		v = append(v, fields...)
	}
	ctype, ok := attachment.NormalizeType(in.ContentType)
	if !ok {
		v.Add("Content-Type", "must be one of "+strings.Join(attachment.Types, ", "))
	}
	patientID := strings.TrimSpace(in.PatientID)
	if patientID != "" {
		home, err := s.store.PatientHome(ctx, patientID)
		switch {
		case errors.Is(err, apperr.ErrNotFound) || (err == nil && !p.CanReach(home)):
			v.Add("patient_id", "must be a registered patient of your hospital or one paired with it")
		case err != nil:
			return attachment.Attachment{}, err
		}
	}
	if err := v.Err(); err != nil {
		return attachment.Attachment{}, err
	}

	br := bufio.NewReaderSize(body, 4096)
	head, err := br.Peek(attachment.SniffLen)
	if err != nil && !errors.Is(err, io.EOF) {
		return attachment.Attachment{}, err // the body could not be read (too large, connection lost)
	}
	if len(head) == 0 {
		return attachment.Attachment{}, apperr.Field("body", "is empty; send the file's bytes")
	}
	if err := attachment.CheckContent(ctype, head); err != nil {
		return attachment.Attachment{}, err
	}

	id := uuid.Must(uuid.NewV7()).String()
	a := attachment.Attachment{ID: id, HospitalID: p.HospitalID, UploadedBy: p.UserID, PatientID: patientID,
		Name: name, ContentType: ctype, BlobKey: id, CreatedAt: s.now()}
	a.Size, a.SHA256, err = s.blobs.Put(ctx, a.BlobKey, &capped{r: br, left: attachment.MaxSize})
	if err != nil {
		return attachment.Attachment{}, err
	}
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.Create(ctx, a); err != nil {
			return err
		}
		return s.record(ctx, p, ActionCreate, a, audit.Success, a.ContentType)
	})
	if err != nil {
		// Without its row the blob is unreachable: remove it. (If an outer
		// transaction rolls back after this one succeeded, the blob stays
		// behind unreferenced; that costs space, never access.)
		_ = s.blobs.Delete(context.WithoutCancel(ctx), a.BlobKey)
		return attachment.Attachment{}, err
	}
	return a, nil
}

// capped fails with ErrTooLarge once more than left bytes were read, so a
// file over the limit is never stored whatever the transport let through.
type capped struct {
	r    io.Reader
	left int64
}

func (c *capped) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, ErrTooLarge
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n, ErrTooLarge
	}
	return n, err
}

// Open returns a file's metadata and contents for p: the hospital that
// uploaded it, or one that is a party to a record carrying it. Any other
// caller is answered not found, and the attempt is recorded. Every read is
// audited. The caller closes the contents.
func (s *Service) Open(ctx context.Context, p auth.Principal, id string) (attachment.Attachment, io.ReadSeekCloser, error) {
	if !p.Has(auth.ClinicalRoles...) {
		return attachment.Attachment{}, nil, apperr.Forbidden("only clinical staff may read files")
	}
	a, err := s.store.Get(ctx, id)
	if err != nil {
		return attachment.Attachment{}, nil, err
	}
	ok, err := s.reaches(ctx, p, a)
	if err != nil {
		return attachment.Attachment{}, nil, err
	}
	if !ok {
		if err := s.record(ctx, p, audit.AccessDenied, a, audit.Denied, "neither uploaded by nor carried to the caller's hospital"); err != nil {
			return attachment.Attachment{}, nil, err
		}
		return attachment.Attachment{}, nil, apperr.ErrNotFound
	}
	f, err := s.blobs.Open(ctx, a.BlobKey)
	if err != nil {
		return attachment.Attachment{}, nil, err // a row without its bytes is a fault, not a 404
	}
	if err := s.record(ctx, p, ActionRead, a, audit.Success, ""); err != nil {
		f.Close()
		return attachment.Attachment{}, nil, err
	}
	return a, f, nil
}

func (s *Service) reaches(ctx context.Context, p auth.Principal, a attachment.Attachment) (bool, error) {
	if p.HospitalID == "" {
		return false, nil
	}
	if a.HospitalID == p.HospitalID {
		return true, nil
	}
	for _, h := range s.holders {
		ok, err := h.CarriesAttachment(ctx, a.ID, p.HospitalID)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}
