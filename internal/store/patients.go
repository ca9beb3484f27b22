package store

import (
	"context"
	"errors"
	"strings"
	"time"

	"duikou/internal/apperr"
	"duikou/internal/patient"
	"duikou/internal/sqldb"
)

// Patients keeps the patient register and consent records.
type Patients struct {
	db sqldb.DB
}

var _ patient.Store = (*Patients)(nil)

// NewPatients returns the patient store on db.
func NewPatients(db sqldb.DB) *Patients { return &Patients{db: db} }

const patientCols = `id, name, sex, CAST(birth_date AS TEXT), national_id_cipher, national_id_hash, national_id_masked,
	phone, address, home_hospital_id, created_by, version, created_at, updated_at`

func scanPatient(r sqldb.Row) (patient.Patient, error) {
	var p patient.Patient
	var createdBy *string
	err := r.Scan(&p.ID, &p.Name, &p.Sex, &p.BirthDate, &p.NationalIDCipher, &p.NationalIDHash, &p.NationalIDMasked,
		&p.Phone, &p.Address, &p.HomeHospitalID, &createdBy, &p.Version, &p.CreatedAt, &p.UpdatedAt)
	if createdBy != nil {
		p.CreatedBy = *createdBy
	}
	return p, err
}

// nationalIDTaken: the only unique key of patients besides the id is the
// national ID hash.
func nationalIDTaken(err error) error {
	if errors.Is(err, sqldb.ErrUniqueViolation) {
		return apperr.Conflict("national_id: a patient with this national ID is already registered; search for it instead")
	}
	return err
}

func patNullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// patBytesOrNil keeps an empty hash out of the unique index: no ID is NULL.
func patBytesOrNil(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// CreatePatient inserts p.
func (s *Patients) CreatePatient(ctx context.Context, p patient.Patient) error {
	_, err := s.db.Exec(ctx, `INSERT INTO patients (id, name, sex, birth_date, national_id_cipher, national_id_hash,
		national_id_masked, phone, address, home_hospital_id, created_by, version, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		p.ID, p.Name, string(p.Sex), p.BirthDate, patBytesOrNil(p.NationalIDCipher), patBytesOrNil(p.NationalIDHash), p.NationalIDMasked,
		p.Phone, p.Address, p.HomeHospitalID, patNullable(p.CreatedBy), p.Version, p.CreatedAt, p.UpdatedAt)
	return nationalIDTaken(err)
}

// Patient returns the patient with id.
func (s *Patients) Patient(ctx context.Context, id string) (patient.Patient, error) {
	p, err := scanPatient(s.db.QueryRow(ctx, `SELECT `+patientCols+` FROM patients WHERE id = $1`, id))
	return p, dirNotFound(err)
}

// PatientByNationalIDHash returns the patient whose national ID hashes to hash.
func (s *Patients) PatientByNationalIDHash(ctx context.Context, hash []byte) (patient.Patient, error) {
	if len(hash) == 0 {
		return patient.Patient{}, apperr.ErrNotFound
	}
	p, err := scanPatient(s.db.QueryRow(ctx, `SELECT `+patientCols+` FROM patients WHERE national_id_hash = $1`, hash))
	return p, dirNotFound(err)
}

// patLikePrefix escapes LIKE's wildcards so that a name is matched literally.
func patLikePrefix(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s) + "%"
}

// Patients lists patients matching f.
func (s *Patients) Patients(ctx context.Context, f patient.Filter) ([]patient.Patient, error) {
	var w dirWhere
	if f.NamePrefix != "" {
		w.add(`name LIKE ? ESCAPE '\'`, patLikePrefix(f.NamePrefix))
	}
	if f.HomeHospitalID != "" {
		w.add("home_hospital_id = ?", f.HomeHospitalID)
	}
	if f.Scoped {
		w.in("home_hospital_id", f.Within)
	}
	q := `SELECT ` + patientCols + ` FROM patients` + w.page(f.After, f.Limit)
	return dirQueryAll(ctx, s.db, q, w.args, func(r sqldb.Rows) (patient.Patient, error) { return scanPatient(r) })
}

// UpdatePatient writes p if its stored version is p.Version.
func (s *Patients) UpdatePatient(ctx context.Context, p patient.Patient) (patient.Patient, error) {
	n, err := s.db.Exec(ctx, `UPDATE patients SET name = $1, sex = $2, birth_date = $3, national_id_cipher = $4,
		national_id_hash = $5, national_id_masked = $6, phone = $7, address = $8, home_hospital_id = $9,
		updated_at = $10, version = version + 1 WHERE id = $11 AND version = $12`,
		p.Name, string(p.Sex), p.BirthDate, patBytesOrNil(p.NationalIDCipher), patBytesOrNil(p.NationalIDHash), p.NationalIDMasked,
		p.Phone, p.Address, p.HomeHospitalID, p.UpdatedAt, p.ID, p.Version)
	if err != nil {
		return patient.Patient{}, nationalIDTaken(err)
	}
	if n == 0 {
		return patient.Patient{}, dirStaleOrMissing(ctx, s.db, "patients", p.ID)
	}
	return s.Patient(ctx, p.ID)
}

// ---- Consents ----

const consentCols = `id, patient_id, consenter_kind, consenter_name, relationship, purpose, shared_with_hospital_id, note,
	granted_at, recorded_by, recorded_at, withdrawn_at, withdrawn_by, withdraw_reason`

func scanConsent(r sqldb.Row) (patient.Consent, error) {
	var c patient.Consent
	err := r.Scan(&c.ID, &c.PatientID, &c.ConsenterKind, &c.ConsenterName, &c.Relationship, &c.Purpose, &c.SharedWithHospitalID,
		&c.Note, &c.GrantedAt, &c.RecordedBy, &c.RecordedAt, &c.WithdrawnAt, &c.WithdrawnBy, &c.WithdrawReason)
	c.Active = c.WithdrawnAt == nil
	return c, err
}

// CreateConsent inserts c.
func (s *Patients) CreateConsent(ctx context.Context, c patient.Consent) error {
	_, err := s.db.Exec(ctx, `INSERT INTO consents (id, patient_id, consenter_kind, consenter_name, relationship, purpose,
		shared_with_hospital_id, note, granted_at, recorded_by, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		c.ID, c.PatientID, string(c.ConsenterKind), c.ConsenterName, c.Relationship, string(c.Purpose),
		c.SharedWithHospitalID, c.Note, c.GrantedAt, c.RecordedBy, c.RecordedAt)
	return err
}

// Consent returns the consent with id.
func (s *Patients) Consent(ctx context.Context, id string) (patient.Consent, error) {
	c, err := scanConsent(s.db.QueryRow(ctx, `SELECT `+consentCols+` FROM consents WHERE id = $1`, id))
	return c, dirNotFound(err)
}

// Consents lists the consents of one patient.
func (s *Patients) Consents(ctx context.Context, f patient.ConsentFilter) ([]patient.Consent, error) {
	var w dirWhere
	w.add("patient_id = ?", f.PatientID)
	q := `SELECT ` + consentCols + ` FROM consents` + w.page(f.After, f.Limit)
	return dirQueryAll(ctx, s.db, q, w.args, func(r sqldb.Rows) (patient.Consent, error) { return scanConsent(r) })
}

// WithdrawConsent marks the consent withdrawn unless it already is.
func (s *Patients) WithdrawConsent(ctx context.Context, id string, at time.Time, by, reason string) (patient.Consent, error) {
	n, err := s.db.Exec(ctx, `UPDATE consents SET withdrawn_at = $1, withdrawn_by = $2, withdraw_reason = $3
		WHERE id = $4 AND withdrawn_at IS NULL`, at, by, reason, id)
	if err != nil {
		return patient.Consent{}, err
	}
	if n == 0 {
		if _, err := s.Consent(ctx, id); err != nil {
			return patient.Consent{}, err
		}
		return patient.Consent{}, apperr.Conflict("the consent is already withdrawn")
	}
	return s.Consent(ctx, id)
}

// ActiveConsents lists the patient's consents for purpose not withdrawn.
func (s *Patients) ActiveConsents(ctx context.Context, patientID string, purpose patient.Purpose) ([]patient.Consent, error) {
	q := `SELECT ` + consentCols + ` FROM consents WHERE patient_id = $1 AND purpose = $2 AND withdrawn_at IS NULL ORDER BY id`
	return dirQueryAll(ctx, s.db, q, []any{patientID, string(purpose)}, func(r sqldb.Rows) (patient.Consent, error) { return scanConsent(r) })
}
