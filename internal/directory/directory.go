// Package directory is the map of the program: hospitals (and the health
// authorities that watch them), their departments and staff, and the pairings
// that bind a supporting hospital to a recipient. It also answers the one
// question every other package asks of it: whose data may a user of this
// hospital see (Reach).
package directory

import (
	"context"
	"regexp"
	"time"
	_ "time/tzdata" // hospitals name their zone; the server must know it even in a bare container
)

// Tier is a hospital's place in the system. An authority (卫生健康委) holds no
// beds; it assigns pairs and watches its province.
type Tier string

const (
	Authority Tier = "authority"
	Tertiary  Tier = "tertiary"  // 三级
	Secondary Tier = "secondary" // 二级 (county)
	Township  Tier = "township"  // 乡镇卫生院
)

// Tiers lists every tier, in a stable order.
var Tiers = []Tier{Authority, Tertiary, Secondary, Township}

// Valid reports whether t is a known tier.
func (t Tier) Valid() bool {
	switch t {
	case Authority, Tertiary, Secondary, Township:
		return true
	}
	return false
}

// level orders the tiers that treat patients; an authority has none (0) and so
// can neither support nor receive.
func (t Tier) level() int {
	switch t {
	case Tertiary:
		return 3
	case Secondary:
		return 2
	case Township:
		return 1
	}
	return 0
}

// CanSupport reports whether a hospital of tier t may support one of tier
// recipient: only a higher level of care supports a lower one (tertiary →
// secondary or township, secondary → township).
func (t Tier) CanSupport(recipient Tier) bool {
	return t.level() > 0 && recipient.level() > 0 && t.level() > recipient.level()
}

// DefaultTimeZone is where almost every hospital in the program lives.
const DefaultTimeZone = "Asia/Shanghai"

// orgCodePattern is the unified social credit code (统一社会信用代码, GB 32100):
// 18 characters of digits and capital letters without I, O, Z, S, V.
var orgCodePattern = regexp.MustCompile(`^[0-9A-HJ-NPQRTUWXY]{18}$`)

// departmentCodePattern is the clinical subject code (诊疗科目代码): a two-digit
// subject such as 03 (内科) with an optional two-digit sub-subject, 03.04.
var departmentCodePattern = regexp.MustCompile(`^[0-9]{2}(\.[0-9]{2})?$`)

// phonePattern accepts mobile and landline numbers as people write them
// (0838-1234567, +86 138 0000 0000).
var phonePattern = regexp.MustCompile(`^\+?[0-9][0-9 ()-]{2,22}[0-9]$`)

// Hospital is a hospital or a health authority.
type Hospital struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	OrgCode   string    `json:"org_code"`
	Tier      Tier      `json:"tier"`
	Province  string    `json:"province"`
	County    string    `json:"county"`
	Address   string    `json:"address"`
	TimeZone  string    `json:"time_zone"`
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Department is a clinical department of one hospital.
type Department struct {
	ID         string    `json:"id"`
	HospitalID string    `json:"hospital_id"`
	Code       string    `json:"code"`
	Name       string    `json:"name"`
	Version    int       `json:"version"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Staff is one person on a hospital's roster.
type Staff struct {
	ID           string    `json:"id"`
	HospitalID   string    `json:"hospital_id"`
	DepartmentID *string   `json:"department_id"`
	Name         string    `json:"name"`
	Title        Title     `json:"title"`
	TitleLabel   string    `json:"title_label"`
	Phone        string    `json:"phone"`
	Active       bool      `json:"active"`
	Version      int       `json:"version"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// PairingStatus is where a pairing stands. Only an active pairing opens each
// hospital's data to the other.
type PairingStatus string

const (
	PairingActive    PairingStatus = "active"
	PairingSuspended PairingStatus = "suspended"
	PairingEnded     PairingStatus = "ended"
)

// Valid reports whether s is a known status.
func (s PairingStatus) Valid() bool {
	switch s {
	case PairingActive, PairingSuspended, PairingEnded:
		return true
	}
	return false
}

// Pairing binds a supporting hospital to a recipient for a period. Dates are
// calendar days (YYYY-MM-DD) in the hospitals' zone; EndsOn nil is open-ended.
type Pairing struct {
	ID                   string        `json:"id"`
	SupportingHospitalID string        `json:"supporting_hospital_id"`
	RecipientHospitalID  string        `json:"recipient_hospital_id"`
	StartsOn             string        `json:"starts_on"`
	EndsOn               *string       `json:"ends_on"`
	Status               PairingStatus `json:"status"`
	Version              int           `json:"version"`
	CreatedAt            time.Time     `json:"created_at"`
	UpdatedAt            time.Time     `json:"updated_at"`
}

// Involves reports whether hospitalID is either side of p.
func (p Pairing) Involves(hospitalID string) bool {
	return p.SupportingHospitalID == hospitalID || p.RecipientHospitalID == hospitalID
}

// Partner is the other side of p as seen from hospitalID.
func (p Pairing) Partner(hospitalID string) string {
	if p.SupportingHospitalID == hospitalID {
		return p.RecipientHospitalID
	}
	return p.SupportingHospitalID
}

// CoversDay reports whether day (YYYY-MM-DD) lies within the pairing's period,
// both ends included.
func (p Pairing) CoversDay(day string) bool {
	return p.StartsOn <= day && (p.EndsOn == nil || day <= *p.EndsOn)
}

// OpenOn reports whether the pairing opens data between its hospitals on day.
func (p Pairing) OpenOn(day string) bool {
	return p.Status == PairingActive && p.CoversDay(day)
}

// overlaps reports whether the periods of p and q share at least one day.
func (p Pairing) overlaps(q Pairing) bool {
	pEndsAfterQStarts := p.EndsOn == nil || *p.EndsOn >= q.StartsOn
	qEndsAfterPStarts := q.EndsOn == nil || *q.EndsOn >= p.StartsOn
	return pEndsAfterQStarts && qEndsAfterPStarts
}

// Filters passed to the store. Lists are ordered by id and continue after
// After; stores return up to Limit rows (callers ask one more than a page to
// learn whether another page exists). When Scoped is set only rows of the
// hospitals in Within are returned (none when Within is empty).

// HospitalFilter selects hospitals.
type HospitalFilter struct {
	Tier     Tier
	Province string
	County   string
	Scoped   bool
	Within   []string
	After    string
	Limit    int
}

// DepartmentFilter selects the departments of one hospital.
type DepartmentFilter struct {
	HospitalID string
	After      string
	Limit      int
}

// StaffFilter selects staff.
type StaffFilter struct {
	HospitalID   string
	DepartmentID string
	Title        Title
	Scoped       bool
	Within       []string
	After        string
	Limit        int
}

// PairingFilter selects pairings. HospitalID matches either side; Scoped
// keeps pairings whose both sides are in Within.
type PairingFilter struct {
	HospitalID string
	Status     PairingStatus
	Scoped     bool
	Within     []string
	After      string
	Limit      int
}

// Store keeps the directory. Get methods answer apperr.ErrNotFound for an
// unknown id; updates change the row only when its version is the given one,
// else apperr.ErrStale, and return the row as stored (version incremented);
// unique clashes are apperr.ErrConflict.
type Store interface {
	CreateHospital(ctx context.Context, h Hospital) error
	Hospital(ctx context.Context, id string) (Hospital, error)
	Hospitals(ctx context.Context, f HospitalFilter) ([]Hospital, error)
	UpdateHospital(ctx context.Context, h Hospital) (Hospital, error)
	// HospitalIDsInProvince lists every hospital of the province (an
	// authority's reach).
	HospitalIDsInProvince(ctx context.Context, province string) ([]string, error)
	// LockHospitals serialises changes that involve these hospitals until the
	// transaction in ctx ends.
	LockHospitals(ctx context.Context, ids ...string) error

	CreateDepartment(ctx context.Context, d Department) error
	Department(ctx context.Context, id string) (Department, error)
	Departments(ctx context.Context, f DepartmentFilter) ([]Department, error)
	UpdateDepartment(ctx context.Context, d Department) (Department, error)

	CreateStaff(ctx context.Context, s Staff) error
	StaffMember(ctx context.Context, id string) (Staff, error)
	Staff(ctx context.Context, f StaffFilter) ([]Staff, error)
	UpdateStaff(ctx context.Context, s Staff) (Staff, error)

	CreatePairing(ctx context.Context, p Pairing) error
	Pairing(ctx context.Context, id string) (Pairing, error)
	Pairings(ctx context.Context, f PairingFilter) ([]Pairing, error)
	UpdatePairing(ctx context.Context, p Pairing) (Pairing, error)
	// PairingsOf lists every pairing, in any status, with hospitalID on
	// either side.
	PairingsOf(ctx context.Context, hospitalID string) ([]Pairing, error)
}
