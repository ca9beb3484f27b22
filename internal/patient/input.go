package patient

import (
	"regexp"
	"strings"
	"time"

	"duikou/internal/apperr"
)

// PatientInput registers a patient. BirthDate may be left out when the
// national ID is given: the ID carries it. HomeHospitalID defaults to the
// caller's hospital.
type PatientInput struct {
	Name           string `json:"name"`
	Sex            string `json:"sex"`
	BirthDate      string `json:"birth_date"`
	NationalID     string `json:"national_id"`
	Phone          string `json:"phone"`
	Address        string `json:"address"`
	HomeHospitalID string `json:"home_hospital_id"`
}

// PatientPatch changes a patient; nil leaves a field as it is. NationalID ""
// removes the number.
type PatientPatch struct {
	Name           *string `json:"name"`
	Sex            *string `json:"sex"`
	BirthDate      *string `json:"birth_date"`
	NationalID     *string `json:"national_id"`
	Phone          *string `json:"phone"`
	Address        *string `json:"address"`
	HomeHospitalID *string `json:"home_hospital_id"`
}

// SearchInput finds a patient by exact national ID. It travels in a POST
// body so that the number never appears in a URL or an access log.
type SearchInput struct {
	NationalID string `json:"national_id"`
}

// Query lists patients: by name prefix, by home hospital, a page at a time.
type Query struct {
	Q              string
	HomeHospitalID string
	After          string
	Limit          int
}

// ConsentInput records a consent. GrantedAt (RFC 3339) defaults to now.
type ConsentInput struct {
	ConsenterKind        string `json:"consenter_kind"`
	ConsenterName        string `json:"consenter_name"`
	Relationship         string `json:"relationship"`
	Purpose              string `json:"purpose"`
	SharedWithHospitalID string `json:"shared_with_hospital_id"`
	Note                 string `json:"note"`
	GrantedAt            string `json:"granted_at"`
}

// WithdrawInput withdraws a consent; the reason is required.
type WithdrawInput struct {
	Reason string `json:"reason"`
}

var phonePattern = regexp.MustCompile(`^\+?[0-9][0-9 ()-]{2,22}[0-9]$`)

// earliestBirth bounds birth dates: older entries are typing errors.
const earliestBirth = "1900-01-01"

func checkSex(v *apperr.Invalid, s string) Sex {
	x := Sex(strings.TrimSpace(s))
	switch x {
	case Male, Female, Unknown:
	case "":
		v.Add("sex", "is required (male, female or unknown)")
	default:
		v.Add("sex", "must be male, female or unknown")
	}
	return x
}

func checkBirthDate(v *apperr.Invalid, s, today string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	switch _, err := time.Parse(time.DateOnly, s); {
	case err != nil:
		v.Add("birth_date", "must be a date like 1968-05-21")
	case s > today:
		v.Add("birth_date", "must not be in the future")
	case s < earliestBirth:
		v.Add("birth_date", "must not be before 1900")
	}
	return s
}

func checkPhone(v *apperr.Invalid, s string) string {
	s = v.Text("phone", s, false, 24)
	if s != "" && !phonePattern.MatchString(s) {
		v.Add("phone", "must be a phone number of digits, spaces, dashes and an optional leading +")
	}
	return s
}

// checkNationalID validates an optional national ID; "" means none.
func checkNationalID(v *apperr.Invalid, s, today string) *NationalID {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	id, err := ParseNationalID(s, today)
	if err != nil {
		v.Add("national_id", err.Error())
		return nil
	}
	return &id
}

// checkBirthMatchesID: the register's birth date and the one in the ID must
// agree, or one of them is mistyped.
func checkBirthMatchesID(v *apperr.Invalid, birthDate string, id *NationalID) {
	if id != nil && birthDate != "" && birthDate != id.BirthDate {
		v.Add("birth_date", "does not match the birth date in the national ID ("+id.BirthDate+")")
	}
}

func checkPurpose(v *apperr.Invalid, s string) Purpose {
	p := Purpose(strings.TrimSpace(s))
	if p == "" {
		v.Add("purpose", "is required")
	} else if !p.Valid() {
		v.Add("purpose", "must be referral, remote_consultation or data_sharing")
	}
	return p
}

func checkConsenterKind(v *apperr.Invalid, s string) ConsenterKind {
	k := ConsenterKind(strings.TrimSpace(s))
	switch k {
	case ByPatient, ByGuardian, ByRelative:
	case "":
		v.Add("consenter_kind", "is required")
	default:
		v.Add("consenter_kind", "must be patient, guardian or relative")
	}
	return k
}
