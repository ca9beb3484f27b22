// Package patient is the patient register shared by paired hospitals and the
// consent records that allow a patient's data to travel between them.
//
// A patient belongs to a home hospital; clinical users see the patient when
// they can reach that hospital. The national identity number is never stored
// or answered in clear: the database holds it sealed (to read it back), as a
// keyed hash (to find a patient by exact number and refuse duplicates) and
// masked (to show). Every read and change of patient data is audited.
package patient

import (
	"context"
	"time"
)

// Sex as recorded in the register.
type Sex string

const (
	Male    Sex = "male"
	Female  Sex = "female"
	Unknown Sex = "unknown"
)

// Patient is one person in the register. The sealed and hashed national ID
// stay inside the server.
type Patient struct {
	ID               string    `json:"id"`
	Name             string    `json:"name"`
	Sex              Sex       `json:"sex"`
	BirthDate        string    `json:"birth_date"` // YYYY-MM-DD
	NationalIDMasked string    `json:"national_id_masked"`
	Phone            string    `json:"phone"`
	Address          string    `json:"address"`
	HomeHospitalID   string    `json:"home_hospital_id"`
	CreatedBy        string    `json:"created_by"`
	Version          int       `json:"version"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`

	NationalIDCipher []byte `json:"-"`
	NationalIDHash   []byte `json:"-"`
}

// ConsenterKind is who gave consent: the patient, or for a patient who cannot
// (a child, an unconscious adult) a guardian or relative.
type ConsenterKind string

const (
	ByPatient  ConsenterKind = "patient"
	ByGuardian ConsenterKind = "guardian"
	ByRelative ConsenterKind = "relative"
)

// Purpose is what a consent allows.
type Purpose string

const (
	ForReferral           Purpose = "referral"
	ForRemoteConsultation Purpose = "remote_consultation"
	// ForDataSharing lets one named hospital see the patient's record.
	ForDataSharing Purpose = "data_sharing"
)

// Valid reports whether p is a known purpose.
func (p Purpose) Valid() bool {
	switch p {
	case ForReferral, ForRemoteConsultation, ForDataSharing:
		return true
	}
	return false
}

// Consent is one recorded consent. A withdrawn consent stays on record.
type Consent struct {
	ID                   string        `json:"id"`
	PatientID            string        `json:"patient_id"`
	ConsenterKind        ConsenterKind `json:"consenter_kind"`
	ConsenterName        string        `json:"consenter_name"`
	Relationship         string        `json:"relationship"`
	Purpose              Purpose       `json:"purpose"`
	SharedWithHospitalID *string       `json:"shared_with_hospital_id"`
	Note                 string        `json:"note"`
	GrantedAt            time.Time     `json:"granted_at"`
	RecordedBy           string        `json:"recorded_by"`
	RecordedAt           time.Time     `json:"recorded_at"`
	WithdrawnAt          *time.Time    `json:"withdrawn_at"`
	WithdrawnBy          *string       `json:"withdrawn_by"`
	WithdrawReason       string        `json:"withdraw_reason"`
	Active               bool          `json:"active"`
}

// Filter selects patients, ordered by id, continuing after After, at most
// Limit. When Scoped, only patients whose home hospital is in Within.
type Filter struct {
	NamePrefix     string
	HomeHospitalID string
	Scoped         bool
	Within         []string
	After          string
	Limit          int
}

// ConsentFilter selects the consents of one patient.
type ConsentFilter struct {
	PatientID string
	After     string
	Limit     int
}

// Store keeps patients and consents. Get methods answer apperr.ErrNotFound;
// UpdatePatient writes only at the stored version p.Version (else
// apperr.ErrStale) and returns the row as stored; a second patient with the
// same national ID hash is an apperr.ErrConflict.
type Store interface {
	CreatePatient(ctx context.Context, p Patient) error
	Patient(ctx context.Context, id string) (Patient, error)
	PatientByNationalIDHash(ctx context.Context, hash []byte) (Patient, error)
	Patients(ctx context.Context, f Filter) ([]Patient, error)
	UpdatePatient(ctx context.Context, p Patient) (Patient, error)

	CreateConsent(ctx context.Context, c Consent) error
	Consent(ctx context.Context, id string) (Consent, error)
	Consents(ctx context.Context, f ConsentFilter) ([]Consent, error)
	// WithdrawConsent marks a consent withdrawn, once: a consent already
	// withdrawn is an apperr.ErrConflict.
	WithdrawConsent(ctx context.Context, id string, at time.Time, by, reason string) (Consent, error)
	// ActiveConsents lists the consents of a patient for purpose that are
	// not withdrawn.
	ActiveConsents(ctx context.Context, patientID string, purpose Purpose) ([]Consent, error)
}
