package directory

import (
	"context"
	"errors"
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

// Audited actions.
const (
	ActionHospitalCreate   = "hospital.create"
	ActionHospitalUpdate   = "hospital.update"
	ActionDepartmentCreate = "department.create"
	ActionDepartmentUpdate = "department.update"
	ActionStaffCreate      = "staff.create"
	ActionStaffUpdate      = "staff.update"
	ActionPairingCreate    = "pairing.create"
	ActionPairingUpdate    = "pairing.update"
)

// Service applies the directory's rules: who may read and change what, the
// pairing rules, and reach.
type Service struct {
	db    sqldb.DB
	store Store
	audit audit.Recorder
	now   func() time.Time
	zones Zones
}

// NewService builds the directory service. Changes and their audit rows are
// written in one transaction of db.
func NewService(db sqldb.DB, store Store, rec audit.Recorder) *Service {
	return &Service{db: db, store: store, audit: rec, now: sqldb.Now}
}

// seesAll reports whether p reads the whole directory: those who run or
// inspect the program rather than treat patients.
func seesAll(p auth.Principal) bool {
	return p.Has(auth.Admin, auth.ProgramOffice, auth.Auditor)
}

// visible reports whether p may see data of hospitalID.
func visible(p auth.Principal, hospitalID string) bool {
	return seesAll(p) || p.CanReach(hospitalID)
}

// within lists the hospitals p can reach, for scoping lists.
func within(p auth.Principal) []string {
	ids := slices.Collect(maps.Keys(p.Reach))
	if p.HospitalID != "" && !p.Reach[p.HospitalID] {
		ids = append(ids, p.HospitalID)
	}
	slices.Sort(ids)
	return ids
}

func (s *Service) record(ctx context.Context, p auth.Principal, action, resourceType, resourceID string, outcome audit.Outcome, detail string) error {
	src := audit.SourceFrom(ctx)
	return s.audit.Record(ctx, audit.Entry{
		At: s.now(), ActorID: p.UserID, ActorHospitalID: p.HospitalID, Action: action,
		ResourceType: resourceType, ResourceID: resourceID, Outcome: outcome,
		RequestID: src.RequestID, ClientAddr: src.ClientAddr, Detail: detail,
	})
}

// denied records a read of something outside p's reach and answers
// not-found, so that the existence of other hospitals' data does not leak.
func (s *Service) denied(ctx context.Context, p auth.Principal, resourceType, resourceID string) error {
	if err := s.record(ctx, p, audit.AccessDenied, resourceType, resourceID, audit.Denied, "outside the caller's reach"); err != nil {
		return err
	}
	return apperr.ErrNotFound
}

func changedDetail(fields []string) string { return "changed: " + strings.Join(fields, ", ") }

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func requireAdmin(p auth.Principal) error {
	if !p.Has(auth.Admin) {
		return apperr.Forbidden("only an administrator changes the directory")
	}
	return nil
}

func requirePairingEditor(p auth.Principal) error {
	if !p.Has(auth.Admin, auth.ProgramOffice) {
		return apperr.Forbidden("only an administrator or the program office manages pairings")
	}
	return nil
}

// mayEditPairing: administrators edit every pairing; the program office only
// pairings between hospitals it can reach. The health commission's office
// reaches its whole province; a hospital's own office, only its partners.
func mayEditPairing(p auth.Principal, supportingID, recipientID string) bool {
	return p.Has(auth.Admin) || (p.CanReach(supportingID) && p.CanReach(recipientID))
}

// lookup loads a row by id; an id of the wrong shape is simply not found.
func lookup[T any](ctx context.Context, id string, get func(context.Context, string) (T, error)) (T, error) {
	if !apperr.IsID(id) {
		var zero T
		return zero, apperr.ErrNotFound
	}
	return get(ctx, id)
}

// ---- Hospitals ----

// CreateHospital registers a hospital or health authority.
func (s *Service) CreateHospital(ctx context.Context, p auth.Principal, in HospitalInput) (Hospital, error) {
	if err := requireAdmin(p); err != nil {
		return Hospital{}, err
	}
	h, err := in.validate()
	if err != nil {
		return Hospital{}, err
	}
	now := s.now()
	h.ID, h.Version, h.CreatedAt, h.UpdatedAt = newID(), 1, now, now
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateHospital(ctx, h); err != nil {
			return err
		}
		return s.record(ctx, p, ActionHospitalCreate, "hospital", h.ID, audit.Success, "")
	})
	return h, err
}

// Hospital returns one hospital the caller may see.
func (s *Service) Hospital(ctx context.Context, p auth.Principal, id string) (Hospital, error) {
	h, err := lookup(ctx, id, s.store.Hospital)
	if err != nil {
		return Hospital{}, err
	}
	if !visible(p, h.ID) {
		return Hospital{}, s.denied(ctx, p, "hospital", h.ID)
	}
	return h, nil
}

// Hospitals lists the hospitals the caller may see.
func (s *Service) Hospitals(ctx context.Context, p auth.Principal, q HospitalQuery) ([]Hospital, error) {
	var v apperr.Invalid
	f := HospitalFilter{
		Province: v.Text("province", q.Province, false, apperr.MaxName),
		County:   v.Text("county", q.County, false, apperr.MaxName),
		After:    q.After, Limit: q.Limit,
	}
	if strings.TrimSpace(q.Tier) != "" {
		f.Tier = checkTier(&v, q.Tier)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := checkCursor(q.After); err != nil {
		return nil, err
	}
	if !seesAll(p) {
		f.Scoped, f.Within = true, within(p)
	}
	return s.store.Hospitals(ctx, f)
}

// UpdateHospital changes a hospital at the given version.
func (s *Service) UpdateHospital(ctx context.Context, p auth.Principal, id string, version int, patch HospitalPatch) (Hospital, error) {
	if err := requireAdmin(p); err != nil {
		return Hospital{}, err
	}
	var out Hospital
	err := s.db.InTx(ctx, func(ctx context.Context) error {
		cur, err := lookup(ctx, id, s.store.Hospital)
		if err != nil {
			return err
		}
		if cur.Version != version {
			return apperr.ErrStale
		}
		h, changed, err := patch.apply(cur)
		if err != nil {
			return err
		}
		if len(changed) == 0 {
			out = cur
			return nil
		}
		if h.Tier != cur.Tier {
			if err := s.checkTierChange(ctx, h); err != nil {
				return err
			}
		}
		h.UpdatedAt = s.now()
		if out, err = s.store.UpdateHospital(ctx, h); err != nil {
			return err
		}
		return s.record(ctx, p, ActionHospitalUpdate, "hospital", h.ID, audit.Success, changedDetail(changed))
	})
	return out, err
}

// checkTierChange refuses a new tier that would break a pairing that is not
// yet ended (a tertiary hospital supporting others cannot become township).
func (s *Service) checkTierChange(ctx context.Context, h Hospital) error {
	if err := s.store.LockHospitals(ctx, h.ID); err != nil {
		return err
	}
	pairs, err := s.store.PairingsOf(ctx, h.ID)
	if err != nil {
		return err
	}
	for _, pr := range pairs {
		if pr.Status == PairingEnded {
			continue
		}
		other, err := s.store.Hospital(ctx, pr.Partner(h.ID))
		if err != nil {
			return err
		}
		sup, rec := h.Tier, other.Tier
		if pr.RecipientHospitalID == h.ID {
			sup, rec = other.Tier, h.Tier
		}
		if !sup.CanSupport(rec) {
			return apperr.Conflict("tier: the new tier breaks pairing " + pr.ID + " (the supporting hospital must be of a higher tier than the recipient); end that pairing first")
		}
	}
	return nil
}

// ---- Departments ----

// CreateDepartment adds a department to a hospital.
func (s *Service) CreateDepartment(ctx context.Context, p auth.Principal, hospitalID string, in DepartmentInput) (Department, error) {
	if err := requireAdmin(p); err != nil {
		return Department{}, err
	}
	d, err := in.validate()
	if err != nil {
		return Department{}, err
	}
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		h, err := lookup(ctx, hospitalID, s.store.Hospital)
		if err != nil {
			return err
		}
		now := s.now()
		d.ID, d.HospitalID, d.Version, d.CreatedAt, d.UpdatedAt = newID(), h.ID, 1, now, now
		if err := s.store.CreateDepartment(ctx, d); err != nil {
			return err
		}
		return s.record(ctx, p, ActionDepartmentCreate, "department", d.ID, audit.Success, "hospital "+h.ID)
	})
	return d, err
}

// Department returns one department of a hospital the caller may see.
func (s *Service) Department(ctx context.Context, p auth.Principal, id string) (Department, error) {
	d, err := lookup(ctx, id, s.store.Department)
	if err != nil {
		return Department{}, err
	}
	if !visible(p, d.HospitalID) {
		return Department{}, s.denied(ctx, p, "department", d.ID)
	}
	return d, nil
}

// Departments lists the departments of a hospital the caller may see.
func (s *Service) Departments(ctx context.Context, p auth.Principal, hospitalID, after string, limit int) ([]Department, error) {
	if err := checkCursor(after); err != nil {
		return nil, err
	}
	if _, err := s.Hospital(ctx, p, hospitalID); err != nil {
		return nil, err
	}
	return s.store.Departments(ctx, DepartmentFilter{HospitalID: hospitalID, After: after, Limit: limit})
}

// UpdateDepartment changes a department at the given version.
func (s *Service) UpdateDepartment(ctx context.Context, p auth.Principal, id string, version int, patch DepartmentPatch) (Department, error) {
	if err := requireAdmin(p); err != nil {
		return Department{}, err
	}
	var out Department
	err := s.db.InTx(ctx, func(ctx context.Context) error {
		cur, err := lookup(ctx, id, s.store.Department)
		if err != nil {
			return err
		}
		if cur.Version != version {
			return apperr.ErrStale
		}
		d, changed, err := patch.apply(cur)
		if err != nil {
			return err
		}
		if len(changed) == 0 {
			out = cur
			return nil
		}
		d.UpdatedAt = s.now()
		if out, err = s.store.UpdateDepartment(ctx, d); err != nil {
			return err
		}
		return s.record(ctx, p, ActionDepartmentUpdate, "department", d.ID, audit.Success, changedDetail(changed))
	})
	return out, err
}

// ---- Staff ----

// checkDepartmentOf refuses a department of another hospital.
func (s *Service) checkDepartmentOf(ctx context.Context, st Staff) error {
	if st.DepartmentID == nil {
		return nil
	}
	d, err := s.store.Department(ctx, *st.DepartmentID)
	if errors.Is(err, apperr.ErrNotFound) || (err == nil && d.HospitalID != st.HospitalID) {
		return apperr.Field("department_id", "is not a department of this hospital")
	}
	return err
}

// CreateStaff adds a person to a hospital's roster.
func (s *Service) CreateStaff(ctx context.Context, p auth.Principal, in StaffInput) (Staff, error) {
	if err := requireAdmin(p); err != nil {
		return Staff{}, err
	}
	st, err := in.validate()
	if err != nil {
		return Staff{}, err
	}
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		if _, err := s.store.Hospital(ctx, st.HospitalID); errors.Is(err, apperr.ErrNotFound) {
			return apperr.Field("hospital_id", "is not a known hospital")
		} else if err != nil {
			return err
		}
		if err := s.checkDepartmentOf(ctx, st); err != nil {
			return err
		}
		now := s.now()
		st.ID, st.Version, st.CreatedAt, st.UpdatedAt = newID(), 1, now, now
		if err := s.store.CreateStaff(ctx, st); err != nil {
			return err
		}
		return s.record(ctx, p, ActionStaffCreate, "staff", st.ID, audit.Success, "hospital "+st.HospitalID)
	})
	return st, err
}

// StaffMember returns one roster entry of a hospital the caller may see.
func (s *Service) StaffMember(ctx context.Context, p auth.Principal, id string) (Staff, error) {
	st, err := lookup(ctx, id, s.store.StaffMember)
	if err != nil {
		return Staff{}, err
	}
	if !visible(p, st.HospitalID) {
		return Staff{}, s.denied(ctx, p, "staff", st.ID)
	}
	return st, nil
}

// Staff lists roster entries of the hospitals the caller may see.
func (s *Service) Staff(ctx context.Context, p auth.Principal, q StaffQuery) ([]Staff, error) {
	var v apperr.Invalid
	f := StaffFilter{
		HospitalID:   checkID(&v, "hospital_id", q.HospitalID, false),
		DepartmentID: checkID(&v, "department_id", q.DepartmentID, false),
		After:        q.After, Limit: q.Limit,
	}
	if strings.TrimSpace(q.Title) != "" {
		f.Title = checkTitle(&v, q.Title)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := checkCursor(q.After); err != nil {
		return nil, err
	}
	if !seesAll(p) {
		f.Scoped, f.Within = true, within(p)
	}
	return s.store.Staff(ctx, f)
}

// UpdateStaff changes a roster entry at the given version.
func (s *Service) UpdateStaff(ctx context.Context, p auth.Principal, id string, version int, patch StaffPatch) (Staff, error) {
	if err := requireAdmin(p); err != nil {
		return Staff{}, err
	}
	var out Staff
	err := s.db.InTx(ctx, func(ctx context.Context) error {
		cur, err := lookup(ctx, id, s.store.StaffMember)
		if err != nil {
			return err
		}
		if cur.Version != version {
			return apperr.ErrStale
		}
		st, changed, err := patch.apply(cur)
		if err != nil {
			return err
		}
		if len(changed) == 0 {
			out = cur
			return nil
		}
		if err := s.checkDepartmentOf(ctx, st); err != nil {
			return err
		}
		st.UpdatedAt = s.now()
		if out, err = s.store.UpdateStaff(ctx, st); err != nil {
			return err
		}
		return s.record(ctx, p, ActionStaffUpdate, "staff", st.ID, audit.Success, changedDetail(changed))
	})
	return out, err
}

// ---- Pairings ----

// checkPairing enforces the pairing rules against the stored hospitals and
// the other pairings of the same two hospitals: the supporting side is of a
// higher tier, and no two active pairings of the pair overlap in time.
func (s *Service) checkPairing(ctx context.Context, pr Pairing) error {
	if err := s.store.LockHospitals(ctx, pr.SupportingHospitalID, pr.RecipientHospitalID); err != nil {
		return err
	}
	var v apperr.Invalid
	sup, err := s.store.Hospital(ctx, pr.SupportingHospitalID)
	if errors.Is(err, apperr.ErrNotFound) {
		v.Add("supporting_hospital_id", "is not a known hospital")
	} else if err != nil {
		return err
	}
	rec, err := s.store.Hospital(ctx, pr.RecipientHospitalID)
	if errors.Is(err, apperr.ErrNotFound) {
		v.Add("recipient_hospital_id", "is not a known hospital")
	} else if err != nil {
		return err
	}
	if len(v) > 0 {
		return v.Err()
	}
	if !sup.Tier.CanSupport(rec.Tier) {
		v.Add("recipient_hospital_id", "a "+string(sup.Tier)+" hospital cannot support a "+string(rec.Tier)+
			" one: the supporting hospital must be of a higher tier (tertiary → secondary or township, secondary → township)")
		return v.Err()
	}
	if pr.Status != PairingActive {
		return nil
	}
	others, err := s.store.PairingsOf(ctx, pr.SupportingHospitalID)
	if err != nil {
		return err
	}
	for _, o := range others {
		if o.ID == pr.ID || o.Status != PairingActive || !o.Involves(pr.RecipientHospitalID) {
			continue
		}
		if o.overlaps(pr) {
			return apperr.Conflict("these two hospitals already have an active pairing (" + o.ID + ") for an overlapping period")
		}
	}
	return nil
}

// CreatePairing pairs a supporting hospital with a recipient.
func (s *Service) CreatePairing(ctx context.Context, p auth.Principal, in PairingInput) (Pairing, error) {
	if err := requirePairingEditor(p); err != nil {
		return Pairing{}, err
	}
	pr, err := in.validate()
	if err != nil {
		return Pairing{}, err
	}
	if !mayEditPairing(p, pr.SupportingHospitalID, pr.RecipientHospitalID) {
		return Pairing{}, s.denied(ctx, p, "pairing", "")
	}
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		if err := s.checkPairing(ctx, pr); err != nil {
			return err
		}
		now := s.now()
		pr.ID, pr.Version, pr.CreatedAt, pr.UpdatedAt = newID(), 1, now, now
		if err := s.store.CreatePairing(ctx, pr); err != nil {
			return err
		}
		return s.record(ctx, p, ActionPairingCreate, "pairing", pr.ID, audit.Success,
			"supporting "+pr.SupportingHospitalID+" recipient "+pr.RecipientHospitalID)
	})
	return pr, err
}

// pairingVisible: a pairing is shown to those who can reach both of its
// hospitals, so that it reveals no hospital beyond the caller's reach.
func pairingVisible(p auth.Principal, pr Pairing) bool {
	return seesAll(p) || (p.CanReach(pr.SupportingHospitalID) && p.CanReach(pr.RecipientHospitalID))
}

// Pairing returns one pairing the caller may see.
func (s *Service) Pairing(ctx context.Context, p auth.Principal, id string) (Pairing, error) {
	pr, err := lookup(ctx, id, s.store.Pairing)
	if err != nil {
		return Pairing{}, err
	}
	if !pairingVisible(p, pr) {
		return Pairing{}, s.denied(ctx, p, "pairing", pr.ID)
	}
	return pr, nil
}

// Pairings lists the pairings the caller may see.
func (s *Service) Pairings(ctx context.Context, p auth.Principal, q PairingQuery) ([]Pairing, error) {
	var v apperr.Invalid
	f := PairingFilter{
		HospitalID: checkID(&v, "hospital_id", q.HospitalID, false),
		After:      q.After, Limit: q.Limit,
	}
	if strings.TrimSpace(q.Status) != "" {
		f.Status = checkStatus(&v, q.Status)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := checkCursor(q.After); err != nil {
		return nil, err
	}
	if !seesAll(p) {
		f.Scoped, f.Within = true, within(p)
	}
	return s.store.Pairings(ctx, f)
}

// UpdatePairing changes a pairing's period or status at the given version.
// An ended pairing stays ended: renewing support is a new pairing.
func (s *Service) UpdatePairing(ctx context.Context, p auth.Principal, id string, version int, patch PairingPatch) (Pairing, error) {
	if err := requirePairingEditor(p); err != nil {
		return Pairing{}, err
	}
	// Scope is checked outside the transaction so that the refusal's audit
	// row is kept; the row is read again under the transaction below.
	if cur, err := lookup(ctx, id, s.store.Pairing); err != nil {
		return Pairing{}, err
	} else if !mayEditPairing(p, cur.SupportingHospitalID, cur.RecipientHospitalID) {
		return Pairing{}, s.denied(ctx, p, "pairing", id)
	}
	var out Pairing
	err := s.db.InTx(ctx, func(ctx context.Context) error {
		cur, err := lookup(ctx, id, s.store.Pairing)
		if err != nil {
			return err
		}
		if cur.Version != version {
			return apperr.ErrStale
		}
		pr, changed, err := patch.apply(cur)
		if err != nil {
			return err
		}
		if len(changed) == 0 {
			out = cur
			return nil
		}
		if cur.Status == PairingEnded && pr.Status != PairingEnded {
			return apperr.Conflict("status: an ended pairing cannot be reopened; create a new pairing")
		}
		if pr.Status == PairingEnded && pr.EndsOn == nil {
			// Ending without a date ends it today.
			today := s.today(ctx, pr.RecipientHospitalID)
			if today < pr.StartsOn {
				today = pr.StartsOn
			}
			pr.EndsOn = &today
			changed = append(changed, "ends_on")
		}
		if err := s.checkPairing(ctx, pr); err != nil {
			return err
		}
		pr.UpdatedAt = s.now()
		if out, err = s.store.UpdatePairing(ctx, pr); err != nil {
			return err
		}
		return s.record(ctx, p, ActionPairingUpdate, "pairing", pr.ID, audit.Success, changedDetail(changed))
	})
	return out, err
}

// ---- Reach ----

// today is the calendar day now at hospitalID (its zone, else China's).
func (s *Service) today(ctx context.Context, hospitalID string) string {
	zone := DefaultTimeZone
	if h, err := s.store.Hospital(ctx, hospitalID); err == nil && h.TimeZone != "" {
		zone = h.TimeZone
	}
	return s.dayIn(s.now(), zone)
}

func (s *Service) dayIn(t time.Time, zone string) string {
	return t.In(s.zones.Location(zone)).Format(time.DateOnly)
}

// Reach is the set of hospitals whose data a user of hospitalID may see: its
// own; every hospital it has a pairing with (either side) that is active and
// in force today; and, for a health authority, every hospital of its province.
func (s *Service) Reach(ctx context.Context, hospitalID string) (map[string]bool, error) {
	h, err := lookup(ctx, hospitalID, s.store.Hospital)
	if err != nil {
		return nil, err
	}
	reach := map[string]bool{h.ID: true}
	pairs, err := s.store.PairingsOf(ctx, h.ID)
	if err != nil {
		return nil, err
	}
	today := s.dayIn(s.now(), h.TimeZone)
	for _, pr := range pairs {
		if pr.OpenOn(today) {
			reach[pr.Partner(h.ID)] = true
		}
	}
	if h.Tier == Authority {
		ids, err := s.store.HospitalIDsInProvince(ctx, h.Province)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			reach[id] = true
		}
	}
	return reach, nil
}
