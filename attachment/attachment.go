// Package attachment holds what Duikou knows about uploaded files (referral
// summaries, lab results, images, DICOM studies): their metadata, which
// types are accepted, and how a file's first bytes must agree with the type
// it is declared as. The bytes themselves live in a blob store; a referral
// ticket or a consultation only names a file by its id.
package attachment

import (
	"bytes"
	"strings"
	"time"

	"duikou/internal/apperr"
)

// Attachment is one uploaded file. It belongs to the hospital of the user
// who uploaded it; other hospitals see it only through a record that carries
// it (a referral ticket they are a party to).
type Attachment struct {
	ID          string    `json:"id"`
	HospitalID  string    `json:"hospital_id"`
	UploadedBy  string    `json:"uploaded_by"`
	PatientID   string    `json:"patient_id,omitempty"`
	Name        string    `json:"name"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"` // hex, of the stored bytes
	CreatedAt   time.Time `json:"created_at"`
	// BlobKey names the bytes in the blob store. It is never shown: a key
	// is the store's business, the id is the API's.
	BlobKey string `json:"-"`
}

// MaxSize bounds one file. A CT series goes through the imaging link, not
// here; a few key images, a report or a lab sheet fit easily.
const MaxSize = 50 << 20

// The content types Duikou accepts: documents and images every desk can
// open, and DICOM for the imaging viewer.
const (
	PDF   = "application/pdf"
	JPEG  = "image/jpeg"
	PNG   = "image/png"
	DICOM = "application/dicom"
)

// Types lists the accepted content types.
var Types = []string{PDF, JPEG, PNG, DICOM}

// SniffLen is how many leading bytes Sniff needs: a DICOM Part 10 file has
// a 128-byte preamble before its "DICM" marker.
const SniffLen = 132

// Sniff names the accepted type that head (the file's first bytes, at least
// SniffLen of them when the file is that long) begins like, or "" if none.
// Only magic numbers are read: whether the rest of the file is well formed
// is the viewer's problem, but a file cannot pass for a type it is not.
func Sniff(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte("%PDF-")):
		return PDF
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return PNG
	case bytes.HasPrefix(head, []byte{0xFF, 0xD8, 0xFF}):
		return JPEG
	case len(head) >= SniffLen && string(head[128:132]) == "DICM":
		return DICOM
	}
	return ""
}

// NormalizeType lowers a declared content type and drops its parameters
// ("image/PNG; q=1" → "image/png"); ok is false when it is not accepted.
func NormalizeType(declared string) (string, bool) {
	t, _, _ := strings.Cut(declared, ";")
	t = strings.ToLower(strings.TrimSpace(t))
	for _, x := range Types {
		if t == x {
			return t, true
		}
	}
	return t, false
}

// CheckContent refuses a file whose first bytes are not of the declared
// type, naming the field at fault. declared must be normalised.
func CheckContent(declared string, head []byte) error {
	got := Sniff(head)
	switch {
	case got == declared:
		return nil
	case got == "":
		return apperr.Field("Content-Type", "the file's content is not "+declared+" (its first bytes match none of "+strings.Join(Types, ", ")+")")
	}
	return apperr.Field("Content-Type", "the file's content is "+got+", not "+declared+" as declared")
}

// CleanName checks a file name as shown to people and offered on download:
// text without control characters, at most apperr.MaxName characters, and
// no directory part.
func CleanName(name string) (string, error) {
	var v apperr.Invalid
	name = v.Text("name", name, true, apperr.MaxName)
	if len(v) == 0 && (strings.ContainsAny(name, `/\`) || name == "." || name == "..") {
		v.Add("name", "must be a file name without a directory")
	}
	return name, v.Err()
}
