package patient

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/sqldb"
)

// Audited actions. Every read of patient data is one of these.
const (
	ActionRead            = "patient.read"
	ActionCreate          = "patient.create"
	ActionUpdate          = "patient.update"
	ActionSearch          = "patient.search"
	ActionConsentRecord   = "consent.record"
	ActionConsentWithdraw = "consent.withdraw"
	ActionConsentRead     = "consent.read"
)

// Sealer protects the national ID (secret.Box).
type Sealer interface {
	Seal(plaintext []byte) ([]byte, error)
	Open(sealed []byte) ([]byte, error)
	Hash(data []byte) []byte
}

// Service applies the register's rules: clinical roles only, scope by the
// patient's home hospital, an audit row for every read and change.
type Service struct {
	db    sqldb.DB
	store Store
	box   Sealer
	audit audit.Recorder
	now   func() time.Time
}

// NewService builds the patient service. Changes and their audit rows are
// written in one transaction of db.
func NewService(db sqldb.DB, store Store, box Sealer, rec audit.Recorder) *Service {
	return &Service{db: db, store: store, box: box, audit: rec, now: sqldb.Now}
}

// china is where the register's calendar days are counted.
var china = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}()

func (s *Service) today() string { return s.now().In(china).Format(time.DateOnly) }

func requireClinical(p auth.Principal) error {
	if !p.Has(auth.ClinicalRoles...) {
		return apperr.Forbidden("patient data is for clinical staff only")
	}
	return nil
}

// within lists the hospitals p can reach.
func within(p auth.Principal) []string {
	ids := slices.Collect(maps.Keys(p.Reach))
	if p.HospitalID != "" && !p.Reach[p.HospitalID] {
		ids = append(ids, p.HospitalID)
	}
	slices.Sort(ids)
	return ids
}

func (s *Service) record(ctx context.Context, p auth.Principal, action, resourceType, resourceID, patientID string, outcome audit.Outcome, detail string) error {
	src := audit.SourceFrom(ctx)
	return s.audit.Record(ctx, audit.Entry{
		At: s.now(), ActorID: p.UserID, ActorHospitalID: p.HospitalID, Action: action,
		ResourceType: resourceType, ResourceID: resourceID, PatientID: patientID, Outcome: outcome,
		RequestID: src.RequestID, ClientAddr: src.ClientAddr, Detail: detail,
	})
}

// visible loads a patient the caller may see. A patient of a hospital beyond
// the caller's reach is not found, and the attempt is recorded.
func (s *Service) visible(ctx context.Context, p auth.Principal, id string) (Patient, error) {
	if err := requireClinical(p); err != nil {
		return Patient{}, err
	}
	if !apperr.IsID(id) {
		return Patient{}, apperr.ErrNotFound
	}
	pt, err := s.store.Patient(ctx, id)
	if err != nil {
		return Patient{}, err
	}
	if !p.CanReach(pt.HomeHospitalID) {
		if err := s.record(ctx, p, audit.AccessDenied, "patient", pt.ID, pt.ID, audit.Denied, "home hospital outside the caller's reach"); err != nil {
			return Patient{}, err
		}
		return Patient{}, apperr.ErrNotFound
	}
	return pt, nil
}

// checkHome validates a home hospital the caller names: it must be one the
// caller can reach, so a request body never widens the caller's scope.
func checkHome(v *apperr.Invalid, p auth.Principal, s string) string {
	s = strings.TrimSpace(s)
	if !apperr.IsID(s) || !p.CanReach(s) {
		v.Add("home_hospital_id", "must be your hospital or one paired with it")
	}
	return s
}

// seal fills the stored forms of the national ID (none when id is nil).
func (s *Service) seal(pt *Patient, id *NationalID) error {
	if id == nil {
		pt.NationalIDCipher, pt.NationalIDHash, pt.NationalIDMasked = nil, nil, ""
		return nil
	}
	c, err := s.box.Seal([]byte(id.Number))
	if err != nil {
		return fmt.Errorf("seal national id: %w", err)
	}
	pt.NationalIDCipher, pt.NationalIDHash, pt.NationalIDMasked = c, s.box.Hash([]byte(id.Number)), Mask(id.Number)
	return nil
}

// storedID opens the patient's national ID, or nil when there is none.
func (s *Service) storedID(pt Patient) (*NationalID, error) {
	if pt.NationalIDCipher == nil {
		return nil, nil
	}
	b, err := s.box.Open(pt.NationalIDCipher)
	if err != nil {
		return nil, fmt.Errorf("open national id of patient %s: %w", pt.ID, err)
	}
	n := string(b)
	// The stored number was valid when written; read back its birth date
	// without judging it against today.
	return &NationalID{Number: n, BirthDate: n[6:10] + "-" + n[10:12] + "-" + n[12:14]}, nil
}

// Create registers a patient at the caller's hospital or one it can reach.
func (s *Service) Create(ctx context.Context, p auth.Principal, in PatientInput) (Patient, error) {
	if err := requireClinical(p); err != nil {
		return Patient{}, err
	}
	today := s.today()
	var v apperr.Invalid
	pt := Patient{
		Name:    v.Text("name", in.Name, true, apperr.MaxName),
		Sex:     checkSex(&v, in.Sex),
		Phone:   checkPhone(&v, in.Phone),
		Address: v.Text("address", in.Address, false, apperr.MaxText),
	}
	pt.BirthDate = checkBirthDate(&v, in.BirthDate, today)
	id := checkNationalID(&v, in.NationalID, today)
	checkBirthMatchesID(&v, pt.BirthDate, id)
	if pt.BirthDate == "" {
		if id != nil {
			pt.BirthDate = id.BirthDate
		} else if strings.TrimSpace(in.NationalID) == "" {
			v.Add("birth_date", "is required unless the national ID is given")
		}
	}
	pt.HomeHospitalID = p.HospitalID
	if strings.TrimSpace(in.HomeHospitalID) != "" {
		pt.HomeHospitalID = checkHome(&v, p, in.HomeHospitalID)
	}
	if err := v.Err(); err != nil {
		return Patient{}, err
	}
	if err := s.seal(&pt, id); err != nil {
		return Patient{}, err
	}
	now := s.now()
	pt.ID, pt.CreatedBy, pt.Version, pt.CreatedAt, pt.UpdatedAt = uuid.Must(uuid.NewV7()).String(), p.UserID, 1, now, now
	err := s.db.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreatePatient(ctx, pt); err != nil {
			return err
		}
		return s.record(ctx, p, ActionCreate, "patient", pt.ID, pt.ID, audit.Success, "home hospital "+pt.HomeHospitalID)
	})
	return pt, err
}

// Get returns a patient the caller may see, and records that it was seen.
func (s *Service) Get(ctx context.Context, p auth.Principal, id string) (Patient, error) {
	pt, err := s.visible(ctx, p, id)
	if err != nil {
		return Patient{}, err
	}
	if err := s.record(ctx, p, ActionRead, "patient", pt.ID, pt.ID, audit.Success, ""); err != nil {
		return Patient{}, err
	}
	return pt, nil
}

// recordSeen writes one patient.search row per patient shown (so that each
// patient's access history is complete), or one row without a patient when
// nothing matched (the search itself is recorded).
func (s *Service) recordSeen(ctx context.Context, p auth.Principal, shown []Patient, how string) error {
	return s.db.InTx(ctx, func(ctx context.Context) error {
		if len(shown) == 0 {
			return s.record(ctx, p, ActionSearch, "patient", "", "", audit.Success, how+": no match")
		}
		for _, pt := range shown {
			if err := s.record(ctx, p, ActionSearch, "patient", pt.ID, pt.ID, audit.Success, how); err != nil {
				return err
			}
		}
		return nil
	})
}

// List returns patients of the hospitals the caller can reach, by name
// prefix and home hospital. It returns up to q.Limit+1 patients: the last
// one only tells that another page follows and is not audited as seen, so
// callers must not show it.
func (s *Service) List(ctx context.Context, p auth.Principal, q Query) ([]Patient, error) {
	if err := requireClinical(p); err != nil {
		return nil, err
	}
	var v apperr.Invalid
	f := Filter{
		NamePrefix: v.Text("q", q.Q, false, apperr.MaxName),
		Scoped:     true, Within: within(p),
		After: q.After, Limit: q.Limit + 1,
	}
	if h := strings.TrimSpace(q.HomeHospitalID); h != "" {
		if !apperr.IsID(h) {
			v.Add("home_hospital_id", "is not a valid id")
		}
		f.HomeHospitalID = h
	}
	if q.After != "" && !apperr.IsID(q.After) {
		v.Add("cursor", "is not a cursor this server issued")
	}
	if q.Limit < 1 {
		v.Add("limit", "must be at least 1")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	list, err := s.store.Patients(ctx, f)
	if err != nil {
		return nil, err
	}
	shown := list[:min(len(list), q.Limit)]
	if err := s.recordSeen(ctx, p, shown, "list"); err != nil {
		return nil, err
	}
	return list, nil
}

// SearchByNationalID finds the patient with exactly this national ID among
// those the caller may see. A match beyond the caller's reach is answered as
// no match and recorded as a denied access.
func (s *Service) SearchByNationalID(ctx context.Context, p auth.Principal, in SearchInput) ([]Patient, error) {
	if err := requireClinical(p); err != nil {
		return nil, err
	}
	var v apperr.Invalid
	id := checkNationalID(&v, in.NationalID, s.today())
	if id == nil && len(v) == 0 {
		v.Add("national_id", "is required")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	pt, err := s.store.PatientByNationalIDHash(ctx, s.box.Hash([]byte(id.Number)))
	switch {
	case errors.Is(err, apperr.ErrNotFound):
		return nil, s.recordSeen(ctx, p, nil, "national_id")
	case err != nil:
		return nil, err
	case !p.CanReach(pt.HomeHospitalID):
		return nil, s.record(ctx, p, audit.AccessDenied, "patient", pt.ID, pt.ID, audit.Denied, "national_id search: home hospital outside the caller's reach")
	}
	if err := s.recordSeen(ctx, p, []Patient{pt}, "national_id"); err != nil {
		return nil, err
	}
	return []Patient{pt}, nil
}

// Update changes a patient at the given version.
func (s *Service) Update(ctx context.Context, p auth.Principal, id string, version int, patch PatientPatch) (Patient, error) {
	cur, err := s.visible(ctx, p, id)
	if err != nil {
		return Patient{}, err
	}
	if cur.Version != version {
		return Patient{}, apperr.ErrStale
	}
	pt, changed, err := s.apply(p, cur, patch)
	if err != nil {
		return Patient{}, err
	}
	if len(changed) == 0 {
		return cur, s.record(ctx, p, ActionRead, "patient", cur.ID, cur.ID, audit.Success, "update without changes")
	}
	pt.UpdatedAt = s.now()
	var out Patient
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		var err error
		if out, err = s.store.UpdatePatient(ctx, pt); err != nil {
			return err
		}
		return s.record(ctx, p, ActionUpdate, "patient", pt.ID, pt.ID, audit.Success, "changed: "+strings.Join(changed, ", "))
	})
	return out, err
}

// apply validates the patch against cur and returns the patient as it would
// be, with the names of the fields that change.
func (s *Service) apply(p auth.Principal, cur Patient, patch PatientPatch) (Patient, []string, error) {
	today := s.today()
	pt := cur
	var v apperr.Invalid
	var changed []string
	set := func(field string, dst *string, val string) {
		if *dst != val {
			*dst = val
			changed = append(changed, field)
		}
	}
	if patch.Name != nil {
		set("name", &pt.Name, v.Text("name", *patch.Name, true, apperr.MaxName))
	}
	if patch.Sex != nil {
		sex := string(pt.Sex)
		set("sex", &sex, string(checkSex(&v, *patch.Sex)))
		pt.Sex = Sex(sex)
	}
	if patch.Phone != nil {
		set("phone", &pt.Phone, checkPhone(&v, *patch.Phone))
	}
	if patch.Address != nil {
		set("address", &pt.Address, v.Text("address", *patch.Address, false, apperr.MaxText))
	}
	if patch.HomeHospitalID != nil && strings.TrimSpace(*patch.HomeHospitalID) != pt.HomeHospitalID {
		set("home_hospital_id", &pt.HomeHospitalID, checkHome(&v, p, *patch.HomeHospitalID))
	}
	if patch.BirthDate != nil {
		b := checkBirthDate(&v, *patch.BirthDate, today)
		if b == "" {
			v.Add("birth_date", "is required")
		}
		set("birth_date", &pt.BirthDate, b)
	}
	idChanged := false
	var id *NationalID
	if patch.NationalID != nil {
		id = checkNationalID(&v, *patch.NationalID, today)
		if id != nil || strings.TrimSpace(*patch.NationalID) == "" {
			var newHash []byte
			if id != nil {
				newHash = s.box.Hash([]byte(id.Number))
			}
			idChanged = string(newHash) != string(cur.NationalIDHash)
		}
	}
	if len(v) > 0 {
		return cur, nil, v.Err()
	}
	if idChanged {
		if err := s.seal(&pt, id); err != nil {
			return cur, nil, err
		}
		changed = append(changed, "national_id")
	} else if slices.Contains(changed, "birth_date") {
		stored, err := s.storedID(cur)
		if err != nil {
			return cur, nil, err
		}
		id = stored
	}
	if id != nil && (idChanged || slices.Contains(changed, "birth_date")) && id.BirthDate != pt.BirthDate {
		field := "birth_date"
		if idChanged && !slices.Contains(changed, "birth_date") {
			field = "national_id"
		}
		v.Add(field, "the birth date "+pt.BirthDate+" does not match the one in the national ID ("+id.BirthDate+")")
		return cur, nil, v.Err()
	}
	return pt, changed, nil
}

// ---- Consents ----

// RecordConsent records a consent given for a patient the caller may see.
func (s *Service) RecordConsent(ctx context.Context, p auth.Principal, patientID string, in ConsentInput) (Consent, error) {
	pt, err := s.visible(ctx, p, patientID)
	if err != nil {
		return Consent{}, err
	}
	now := s.now()
	var v apperr.Invalid
	c := Consent{
		PatientID:     pt.ID,
		ConsenterKind: checkConsenterKind(&v, in.ConsenterKind),
		ConsenterName: v.Text("consenter_name", in.ConsenterName, true, apperr.MaxName),
		Relationship:  v.Text("relationship", in.Relationship, false, apperr.MaxName),
		Purpose:       checkPurpose(&v, in.Purpose),
		Note:          v.Text("note", in.Note, false, apperr.MaxText),
		GrantedAt:     now,
		RecordedBy:    p.UserID,
		RecordedAt:    now,
		Active:        true,
	}
	if c.ConsenterKind != ByPatient && c.ConsenterKind != "" && c.Relationship == "" {
		v.Add("relationship", "is required when someone other than the patient consents (父亲, 配偶, …)")
	}
	shared := strings.TrimSpace(in.SharedWithHospitalID)
	switch {
	case c.Purpose == ForDataSharing && shared == "":
		v.Add("shared_with_hospital_id", "is required for data sharing: name the hospital that may see the record")
	case c.Purpose == ForDataSharing:
		if !apperr.IsID(shared) || !p.CanReach(shared) {
			v.Add("shared_with_hospital_id", "must be your hospital or one paired with it")
		}
		c.SharedWithHospitalID = &shared
	case shared != "":
		v.Add("shared_with_hospital_id", "is only for data_sharing consents")
	}
	if g := strings.TrimSpace(in.GrantedAt); g != "" {
		t, err := time.Parse(time.RFC3339, g)
		switch {
		case err != nil:
			v.Add("granted_at", "must be an RFC 3339 time like 2025-03-01T09:30:00+08:00")
		case t.After(now.Add(5 * time.Minute)):
			v.Add("granted_at", "must not be in the future")
		default:
			c.GrantedAt = t.UTC().Truncate(time.Microsecond)
		}
	}
	if err := v.Err(); err != nil {
		return Consent{}, err
	}
	c.ID = uuid.Must(uuid.NewV7()).String()
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateConsent(ctx, c); err != nil {
			return err
		}
		return s.record(ctx, p, ActionConsentRecord, "consent", c.ID, pt.ID, audit.Success, "purpose "+string(c.Purpose))
	})
	return c, err
}

// Consents lists the consents of a patient the caller may see, withdrawn
// ones included.
func (s *Service) Consents(ctx context.Context, p auth.Principal, patientID, after string, limit int) ([]Consent, error) {
	pt, err := s.visible(ctx, p, patientID)
	if err != nil {
		return nil, err
	}
	if after != "" && !apperr.IsID(after) {
		return nil, apperr.Field("cursor", "is not a cursor this server issued")
	}
	list, err := s.store.Consents(ctx, ConsentFilter{PatientID: pt.ID, After: after, Limit: limit})
	if err != nil {
		return nil, err
	}
	if err := s.record(ctx, p, ActionConsentRead, "patient", pt.ID, pt.ID, audit.Success, ""); err != nil {
		return nil, err
	}
	return list, nil
}

// WithdrawConsent withdraws a consent of a patient the caller may see. The
// record stays; it no longer allows anything.
func (s *Service) WithdrawConsent(ctx context.Context, p auth.Principal, patientID, consentID string, in WithdrawInput) (Consent, error) {
	pt, err := s.visible(ctx, p, patientID)
	if err != nil {
		return Consent{}, err
	}
	var v apperr.Invalid
	reason := v.Text("reason", in.Reason, true, apperr.MaxText)
	if err := v.Err(); err != nil {
		return Consent{}, err
	}
	if !apperr.IsID(consentID) {
		return Consent{}, apperr.ErrNotFound
	}
	var out Consent
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		c, err := s.store.Consent(ctx, consentID)
		if err != nil {
			return err
		}
		if c.PatientID != pt.ID {
			return apperr.ErrNotFound
		}
		if out, err = s.store.WithdrawConsent(ctx, c.ID, s.now(), p.UserID, reason); err != nil {
			return err
		}
		return s.record(ctx, p, ActionConsentWithdraw, "consent", c.ID, pt.ID, audit.Success, "")
	})
	return out, err
}

// HasConsent reports whether the patient has an active consent for purpose:
// granted, not withdrawn, and for data sharing naming hospitalID. Other
// packages ask it before sending a patient's data on.
func (s *Service) HasConsent(ctx context.Context, patientID, purpose, hospitalID string) (bool, error) {
	pur := Purpose(purpose)
	if !pur.Valid() {
		return false, fmt.Errorf("patient: unknown consent purpose %q", purpose)
	}
	if !apperr.IsID(patientID) {
		return false, nil
	}
	list, err := s.store.ActiveConsents(ctx, patientID, pur)
	if err != nil {
		return false, err
	}
	now := s.now()
	for _, c := range list {
		if c.GrantedAt.After(now) {
			continue
		}
		if pur == ForDataSharing && (c.SharedWithHospitalID == nil || *c.SharedWithHospitalID != hospitalID) {
			continue
		}
		return true, nil
	}
	return false, nil
}
