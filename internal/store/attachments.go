package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"duikou/attachment"
	"duikou/internal/apperr"
	"duikou/internal/sqldb"
	"duikou/referral"
)

// Attachments keeps the metadata of uploaded files; the bytes are in the
// blob store.
type Attachments struct {
	db sqldb.DB
}

// NewAttachments returns the attachment store on db.
func NewAttachments(db sqldb.DB) *Attachments { return &Attachments{db: db} }

const attachmentCols = `id, hospital_id, uploaded_by, patient_id, name, content_type, size, sha256, blob_key, created_at`

func scanAttachment(r sqldb.Row) (attachment.Attachment, error) {
	var a attachment.Attachment
	var patientID *string
	err := r.Scan(&a.ID, &a.HospitalID, &a.UploadedBy, &patientID, &a.Name, &a.ContentType, &a.Size, &a.SHA256, &a.BlobKey, &a.CreatedAt)
	a.PatientID = refStr(patientID)
	return a, err
}

// Create inserts a's metadata.
func (s *Attachments) Create(ctx context.Context, a attachment.Attachment) error {
	_, err := s.db.Exec(ctx, `INSERT INTO attachments (`+attachmentCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		a.ID, a.HospitalID, a.UploadedBy, refNull(a.PatientID), a.Name, a.ContentType, a.Size, a.SHA256, a.BlobKey, a.CreatedAt)
	return err
}

// Get returns the attachment with id, or apperr.ErrNotFound.
func (s *Attachments) Get(ctx context.Context, id string) (attachment.Attachment, error) {
	if !apperr.IsID(id) {
		return attachment.Attachment{}, apperr.ErrNotFound
	}
	a, err := scanAttachment(s.db.QueryRow(ctx, `SELECT `+attachmentCols+` FROM attachments WHERE id = $1`, id))
	return a, dirNotFound(err)
}

// PatientHome returns the home hospital of a patient an upload names.
func (s *Attachments) PatientHome(ctx context.Context, patientID string) (string, error) {
	if !apperr.IsID(patientID) {
		return "", apperr.ErrNotFound
	}
	var home string
	err := s.db.QueryRow(ctx, `SELECT home_hospital_id FROM patients WHERE id = $1`, patientID).Scan(&home)
	return home, dirNotFound(err)
}

// ---- Attachments as the referral store sees them ----

// AttachmentsByID returns the stored attachments among ids, by id; ids that
// name nothing (or are not ids) are absent from the map.
func (s *Referrals) AttachmentsByID(ctx context.Context, ids []string) (map[string]attachment.Attachment, error) {
	out := map[string]attachment.Attachment{}
	var w dirWhere
	var valid []string
	for _, id := range ids {
		if apperr.IsID(id) {
			valid = append(valid, id)
		}
	}
	if len(valid) == 0 {
		return out, nil
	}
	w.in("id", valid)
	list, err := dirQueryAll(ctx, s.db, `SELECT `+attachmentCols+` FROM attachments`+w.page("", 0), w.args,
		func(r sqldb.Rows) (attachment.Attachment, error) { return scanAttachment(r) })
	for _, a := range list {
		out[a.ID] = a
	}
	return out, err
}

// CarriesAttachment reports whether a ticket that hospitalID is a party to
// carries the attachment: the hospital that sent it, or the one it was sent
// to once it left the draft stage (as referral.SideOf decides).
func (s *Referrals) CarriesAttachment(ctx context.Context, attachmentID, hospitalID string) (bool, error) {
	if !apperr.IsID(attachmentID) || !apperr.IsID(hospitalID) {
		return false, nil
	}
	var n int
	err := s.db.QueryRow(ctx, `SELECT count(*) FROM referral_attachments ra JOIN referrals r ON r.id = ra.referral_id
		WHERE ra.attachment_id = $1
		AND (r.referring_hospital_id = $2 OR (r.receiving_hospital_id = $2 AND r.status <> 'draft'))`,
		attachmentID, hospitalID).Scan(&n)
	return n > 0, err
}

// linkAttachments makes referral_attachments list exactly the stored files
// r carries. An id that names no stored file is not linked: nothing could be
// downloaded through it anyway (tickets written before uploads existed).
func (s *Referrals) linkAttachments(ctx context.Context, r referral.Referral, fresh bool) error {
	ids := linkableIDs(r.Attachments)
	if !fresh {
		q, args := `DELETE FROM referral_attachments WHERE referral_id = $1`, []any{r.ID}
		if len(ids) > 0 {
			marks := make([]string, len(ids))
			for i, id := range ids {
				args = append(args, id)
				marks[i] = fmt.Sprintf("$%d", i+2)
			}
			q += ` AND attachment_id NOT IN (` + strings.Join(marks, ", ") + `)`
		}
		if _, err := s.db.Exec(ctx, q, args...); err != nil {
			return err
		}
	}
	for _, id := range ids {
		// Joined rather than given as values, so that both engines infer the
		// id columns' types from the tables.
		if _, err := s.db.Exec(ctx, `INSERT INTO referral_attachments (referral_id, attachment_id)
			SELECT r.id, a.id FROM referrals r, attachments a WHERE r.id = $1 AND a.id = $2
			ON CONFLICT DO NOTHING`, r.ID, id); err != nil {
			return err
		}
	}
	return nil
}

// linkableIDs lists, sorted and once each, the ids among attachments that
// may name stored files: what referral_attachments holds for a ticket
// carrying them is decided by this set alone.
func linkableIDs(attachments []referral.AttachmentRef) []string {
	ids := make([]string, 0, len(attachments))
	for _, a := range attachments {
		if apperr.IsID(a.ID) {
			ids = append(ids, a.ID)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}
