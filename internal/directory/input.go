package directory

import (
	"strings"
	"time"

	"duikou/internal/apperr"
)

// Inputs are what callers send. Create inputs carry every field; patches
// carry pointers, nil meaning "leave as it is".

// HospitalInput creates a hospital.
type HospitalInput struct {
	Name     string `json:"name"`
	OrgCode  string `json:"org_code"`
	Tier     string `json:"tier"`
	Province string `json:"province"`
	County   string `json:"county"`
	Address  string `json:"address"`
	TimeZone string `json:"time_zone"`
}

// HospitalPatch changes a hospital.
type HospitalPatch struct {
	Name     *string `json:"name"`
	OrgCode  *string `json:"org_code"`
	Tier     *string `json:"tier"`
	Province *string `json:"province"`
	County   *string `json:"county"`
	Address  *string `json:"address"`
	TimeZone *string `json:"time_zone"`
}

// DepartmentInput creates a department.
type DepartmentInput struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

// DepartmentPatch changes a department.
type DepartmentPatch struct {
	Code *string `json:"code"`
	Name *string `json:"name"`
}

// StaffInput adds a person to a hospital's roster.
type StaffInput struct {
	HospitalID   string `json:"hospital_id"`
	DepartmentID string `json:"department_id"`
	Name         string `json:"name"`
	Title        string `json:"title"`
	Phone        string `json:"phone"`
	Active       *bool  `json:"active"`
}

// StaffPatch changes a roster entry. DepartmentID "" detaches the person
// from any department. A person moving to another hospital gets a new entry.
type StaffPatch struct {
	DepartmentID *string `json:"department_id"`
	Name         *string `json:"name"`
	Title        *string `json:"title"`
	Phone        *string `json:"phone"`
	Active       *bool   `json:"active"`
}

// PairingInput creates a pairing. Status defaults to active.
type PairingInput struct {
	SupportingHospitalID string `json:"supporting_hospital_id"`
	RecipientHospitalID  string `json:"recipient_hospital_id"`
	StartsOn             string `json:"starts_on"`
	EndsOn               string `json:"ends_on"`
	Status               string `json:"status"`
}

// PairingPatch changes a pairing's period or status. EndsOn "" makes it
// open-ended. The two hospitals never change: that is another pairing.
type PairingPatch struct {
	StartsOn *string `json:"starts_on"`
	EndsOn   *string `json:"ends_on"`
	Status   *string `json:"status"`
}

// HospitalQuery, StaffQuery and PairingQuery are list requests.
type HospitalQuery struct {
	Tier     string
	Province string
	County   string
	After    string
	Limit    int
}

// StaffQuery lists staff.
type StaffQuery struct {
	HospitalID   string
	DepartmentID string
	Title        string
	After        string
	Limit        int
}

// PairingQuery lists pairings.
type PairingQuery struct {
	HospitalID string
	Status     string
	After      string
	Limit      int
}

// CheckID validates an id-valued field.
func checkID(v *apperr.Invalid, field, s string, required bool) string {
	s = strings.TrimSpace(s)
	switch {
	case s == "" && required:
		v.Add(field, "is required")
	case s != "" && !apperr.IsID(s):
		v.Add(field, "is not a valid id")
	}
	return s
}

func checkCursor(after string) error {
	if after != "" && !apperr.IsID(after) {
		return apperr.Field("cursor", "is not a cursor this server issued")
	}
	return nil
}

func checkDate(v *apperr.Invalid, field, s string, required bool) string {
	s = strings.TrimSpace(s)
	if s == "" {
		if required {
			v.Add(field, "is required")
		}
		return s
	}
	if _, err := time.Parse(time.DateOnly, s); err != nil {
		v.Add(field, "must be a date like 2025-03-01")
	}
	return s
}

func checkOrgCode(v *apperr.Invalid, s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	switch {
	case s == "":
		v.Add("org_code", "is required")
	case !orgCodePattern.MatchString(s):
		v.Add("org_code", "must be the 18-character unified social credit code (digits and capitals except I, O, Z, S, V)")
	}
	return s
}

func checkTier(v *apperr.Invalid, s string) Tier {
	t := Tier(strings.TrimSpace(s))
	if t == "" {
		v.Add("tier", "is required")
	} else if !t.Valid() {
		v.Add("tier", "must be one of authority, tertiary, secondary, township")
	}
	return t
}

func checkTimeZone(v *apperr.Invalid, s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return DefaultTimeZone
	}
	if len(s) > apperr.MaxCode || s == "Local" {
		v.Add("time_zone", "must be an IANA time zone such as Asia/Shanghai")
		return s
	}
	if _, err := time.LoadLocation(s); err != nil {
		v.Add("time_zone", "must be an IANA time zone such as Asia/Shanghai")
	}
	return s
}

func checkDepartmentCode(v *apperr.Invalid, s string) string {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		v.Add("code", "is required")
	case !departmentCodePattern.MatchString(s):
		v.Add("code", "must be a clinical subject code like 03 or 03.04")
	}
	return s
}

func checkTitle(v *apperr.Invalid, s string) Title {
	t := Title(strings.TrimSpace(s))
	if t == "" {
		v.Add("title", "is required")
	} else if !t.Valid() {
		v.Add("title", "is not a known title code (chief_physician, attending_physician, nurse, …)")
	}
	return t
}

func checkPhone(v *apperr.Invalid, field, s string) string {
	s = v.Text(field, s, false, 24)
	if s != "" && !phonePattern.MatchString(s) {
		v.Add(field, "must be a phone number of digits, spaces, dashes and an optional leading +")
	}
	return s
}

func checkStatus(v *apperr.Invalid, s string) PairingStatus {
	st := PairingStatus(strings.TrimSpace(s))
	if !st.Valid() {
		v.Add("status", "must be one of active, suspended, ended")
	}
	return st
}

func (in HospitalInput) validate() (Hospital, error) {
	var v apperr.Invalid
	h := Hospital{
		Name:     v.Text("name", in.Name, true, apperr.MaxName),
		OrgCode:  checkOrgCode(&v, in.OrgCode),
		Tier:     checkTier(&v, in.Tier),
		Province: v.Text("province", in.Province, true, apperr.MaxName),
		County:   v.Text("county", in.County, false, apperr.MaxName),
		Address:  v.Text("address", in.Address, false, apperr.MaxText),
		TimeZone: checkTimeZone(&v, in.TimeZone),
	}
	return h, v.Err()
}

// apply returns h with the patch applied and the names of the fields it
// changed.
func (in HospitalPatch) apply(h Hospital) (Hospital, []string, error) {
	var v apperr.Invalid
	var changed []string
	set := func(field string, dst *string, val string) {
		if *dst != val {
			*dst = val
			changed = append(changed, field)
		}
	}
	if in.Name != nil {
		set("name", &h.Name, v.Text("name", *in.Name, true, apperr.MaxName))
	}
	if in.OrgCode != nil {
		set("org_code", &h.OrgCode, checkOrgCode(&v, *in.OrgCode))
	}
	if in.Tier != nil {
		t := string(h.Tier)
		set("tier", &t, string(checkTier(&v, *in.Tier)))
		h.Tier = Tier(t)
	}
	if in.Province != nil {
		set("province", &h.Province, v.Text("province", *in.Province, true, apperr.MaxName))
	}
	if in.County != nil {
		set("county", &h.County, v.Text("county", *in.County, false, apperr.MaxName))
	}
	if in.Address != nil {
		set("address", &h.Address, v.Text("address", *in.Address, false, apperr.MaxText))
	}
	if in.TimeZone != nil {
		set("time_zone", &h.TimeZone, checkTimeZone(&v, *in.TimeZone))
	}
	return h, changed, v.Err()
}

func (in DepartmentInput) validate() (Department, error) {
	var v apperr.Invalid
	d := Department{
		Code: checkDepartmentCode(&v, in.Code),
		Name: v.Text("name", in.Name, true, apperr.MaxName),
	}
	return d, v.Err()
}

func (in DepartmentPatch) apply(d Department) (Department, []string, error) {
	var v apperr.Invalid
	var changed []string
	if in.Code != nil {
		if c := checkDepartmentCode(&v, *in.Code); c != d.Code {
			d.Code, changed = c, append(changed, "code")
		}
	}
	if in.Name != nil {
		if n := v.Text("name", *in.Name, true, apperr.MaxName); n != d.Name {
			d.Name, changed = n, append(changed, "name")
		}
	}
	return d, changed, v.Err()
}

func (in StaffInput) validate() (Staff, error) {
	var v apperr.Invalid
	s := Staff{
		HospitalID: checkID(&v, "hospital_id", in.HospitalID, true),
		Name:       v.Text("name", in.Name, true, apperr.MaxName),
		Title:      checkTitle(&v, in.Title),
		Phone:      checkPhone(&v, "phone", in.Phone),
		Active:     in.Active == nil || *in.Active,
	}
	if d := checkID(&v, "department_id", in.DepartmentID, false); d != "" {
		s.DepartmentID = &d
	}
	s.TitleLabel = s.Title.Label()
	return s, v.Err()
}

func (in StaffPatch) apply(s Staff) (Staff, []string, error) {
	var v apperr.Invalid
	var changed []string
	if in.DepartmentID != nil {
		d := checkID(&v, "department_id", *in.DepartmentID, false)
		var now *string
		if d != "" {
			now = &d
		}
		if (now == nil) != (s.DepartmentID == nil) || (now != nil && *now != *s.DepartmentID) {
			s.DepartmentID, changed = now, append(changed, "department_id")
		}
	}
	if in.Name != nil {
		if n := v.Text("name", *in.Name, true, apperr.MaxName); n != s.Name {
			s.Name, changed = n, append(changed, "name")
		}
	}
	if in.Title != nil {
		if t := checkTitle(&v, *in.Title); t != s.Title {
			s.Title, s.TitleLabel, changed = t, t.Label(), append(changed, "title")
		}
	}
	if in.Phone != nil {
		if ph := checkPhone(&v, "phone", *in.Phone); ph != s.Phone {
			s.Phone, changed = ph, append(changed, "phone")
		}
	}
	if in.Active != nil && *in.Active != s.Active {
		s.Active, changed = *in.Active, append(changed, "active")
	}
	return s, changed, v.Err()
}

func (in PairingInput) validate() (Pairing, error) {
	var v apperr.Invalid
	p := Pairing{
		SupportingHospitalID: checkID(&v, "supporting_hospital_id", in.SupportingHospitalID, true),
		RecipientHospitalID:  checkID(&v, "recipient_hospital_id", in.RecipientHospitalID, true),
		StartsOn:             checkDate(&v, "starts_on", in.StartsOn, true),
		Status:               PairingActive,
	}
	if e := checkDate(&v, "ends_on", in.EndsOn, false); e != "" {
		p.EndsOn = &e
	}
	if strings.TrimSpace(in.Status) != "" {
		p.Status = checkStatus(&v, in.Status)
	}
	if p.SupportingHospitalID != "" && p.SupportingHospitalID == p.RecipientHospitalID {
		v.Add("recipient_hospital_id", "must be another hospital than the supporting one")
	}
	checkPeriod(&v, p)
	return p, v.Err()
}

func (in PairingPatch) apply(p Pairing) (Pairing, []string, error) {
	var v apperr.Invalid
	var changed []string
	if in.StartsOn != nil {
		if s := checkDate(&v, "starts_on", *in.StartsOn, true); s != p.StartsOn {
			p.StartsOn, changed = s, append(changed, "starts_on")
		}
	}
	if in.EndsOn != nil {
		e := checkDate(&v, "ends_on", *in.EndsOn, false)
		var now *string
		if e != "" {
			now = &e
		}
		if (now == nil) != (p.EndsOn == nil) || (now != nil && *now != *p.EndsOn) {
			p.EndsOn, changed = now, append(changed, "ends_on")
		}
	}
	if in.Status != nil {
		if s := checkStatus(&v, *in.Status); s != p.Status {
			p.Status, changed = s, append(changed, "status")
		}
	}
	if len(v) == 0 {
		checkPeriod(&v, p)
	}
	return p, changed, v.Err()
}

func checkPeriod(v *apperr.Invalid, p Pairing) {
	if p.EndsOn != nil && p.StartsOn != "" && *p.EndsOn < p.StartsOn {
		v.Add("ends_on", "must not be before starts_on")
	}
}
