// Package program is the paired-support program's records (对口支援信息管理):
// the agreement of each pairing and its versions, postings of dispatched
// doctors (派驻) with the program's rules, arrival (到岗报到), daily
// attendance (日常考勤), monthly evaluations (月评) and the final appraisal,
// work logs, the clinic schedule residents see, and recipient staff sent to
// study at the supporting hospital. It holds types, rules and deadlines; it
// knows nothing of HTTP or SQL.
//
// Every day here is a calendar day (YYYY-MM-DD) in Asia/Shanghai, where the
// program's offices count their deadlines; instants are UTC.
package program

import (
	"time"
	_ "time/tzdata" // the deadlines' zone must be known even in a bare container
)

// Zone is where the program counts its days.
var Zone = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}()

// DayLayout is how days are written.
const DayLayout = "2006-01-02"

// MonthLayout is how months are written (evaluations are per month).
const MonthLayout = "2006-01"

// Today is the calendar day of t in Zone.
func Today(t time.Time) string { return t.In(Zone).Format(DayLayout) }

// ParseDay reads a YYYY-MM-DD day as midnight in Zone.
func ParseDay(s string) (time.Time, bool) {
	t, err := time.ParseInLocation(DayLayout, s, Zone)
	return t, err == nil && t.Format(DayLayout) == s
}

// ParseMonth reads a YYYY-MM month as its first day, midnight in Zone.
func ParseMonth(s string) (time.Time, bool) {
	t, err := time.ParseInLocation(MonthLayout, s, Zone)
	return t, err == nil && t.Format(MonthLayout) == s
}

// AddDays returns day moved by n calendar days ("" for a bad day).
func AddDays(day string, n int) string {
	t, ok := ParseDay(day)
	if !ok {
		return ""
	}
	return t.AddDate(0, 0, n).Format(DayLayout)
}

// Commitments are what the supporting side promises per year.
type Commitments struct {
	TeamsPerYear    int      `json:"teams_per_year"`
	DaysPerYear     int      `json:"days_per_year"`     // days of service on site
	TraineesPerYear int      `json:"trainees_per_year"` // recipient staff it accepts for study
	Equipment       []string `json:"equipment"`
	Techniques      []string `json:"techniques"` // techniques to introduce
}

// ReservedBeds is a department of the supporting hospital keeping beds for
// patients the recipient refers up.
type ReservedBeds struct {
	DepartmentID string `json:"department_id"`
	Beds         int    `json:"beds"`
}

// GreenChannel is the agreement's terms for referred patients.
type GreenChannel struct {
	ReservedBeds       []ReservedBeds `json:"reserved_beds"`
	FeeWaiver          string         `json:"fee_waiver"`          // e.g. 免挂号费、诊查费
	DirectExaminations bool           `json:"direct_examinations"` // examinations booked directly for referred patients
}

// Terms are the content of one version of an agreement.
type Terms struct {
	StartsOn          string       `json:"starts_on"`
	EndsOn            string       `json:"ends_on"`
	Commitments       Commitments  `json:"commitments"`
	RecipientDuties   []string     `json:"recipient_duties"`
	GreenChannel      GreenChannel `json:"green_channel"`
	Targets           []string     `json:"targets"` // e.g. 3年内达到二级甲等
	SignedDocumentID  *string      `json:"signed_document_id"`
	AmendmentReason   string       `json:"amendment_reason"`
	SupportingSignsAs string       `json:"supporting_signatory"`
	RecipientSignsAs  string       `json:"recipient_signatory"`
}

// Agreement is a pairing's agreement (对口支援协议书) as its current version
// says. Amending it writes a new version; earlier ones stay readable.
type Agreement struct {
	ID                   string    `json:"id"`
	PairingID            string    `json:"pairing_id"`
	SupportingHospitalID string    `json:"supporting_hospital_id"`
	RecipientHospitalID  string    `json:"recipient_hospital_id"`
	Version              int       `json:"version"`
	Terms                Terms     `json:"terms"`
	CreatedAt            time.Time `json:"created_at"`
	UpdatedAt            time.Time `json:"updated_at"`
	UpdatedBy            string    `json:"updated_by"`
}

// AgreementVersion is one version of an agreement as it was written.
type AgreementVersion struct {
	AgreementID string    `json:"agreement_id"`
	Version     int       `json:"version"`
	Terms       Terms     `json:"terms"`
	CreatedAt   time.Time `json:"created_at"`
	CreatedBy   string    `json:"created_by"`
}

// Posting is one doctor dispatched (派驻) from the supporting hospital to
// the recipient for a period, in a team.
type Posting struct {
	ID                    string     `json:"id"`
	PairingID             string     `json:"pairing_id"`
	StaffID               string     `json:"staff_id"`
	StaffName             string     `json:"staff_name"`
	Title                 string     `json:"title"` // directory.Title as it was when posted
	HomeHospitalID        string     `json:"home_hospital_id"`
	HomeDepartmentID      *string    `json:"home_department_id"`
	RecipientHospitalID   string     `json:"recipient_hospital_id"`
	RecipientDepartmentID string     `json:"recipient_department_id"`
	StartsOn              string     `json:"starts_on"`
	EndsOn                string     `json:"ends_on"`
	Team                  string     `json:"team"`
	TeamLeader            bool       `json:"team_leader"`
	Specialty             string     `json:"specialty"` // shown to residents
	Warnings              []Warning  `json:"warnings"`
	Override              *Override  `json:"override"`
	ArrivalDueOn          string     `json:"arrival_due_on"`
	Arrival               *Arrival   `json:"arrival"`
	Appraisal             *Appraisal `json:"appraisal"`
	Version               int        `json:"version"`
	CreatedAt             time.Time  `json:"created_at"`
	CreatedBy             string     `json:"created_by"`
	UpdatedAt             time.Time  `json:"updated_at"`
	// ArrivalStatus is computed when read (see ArrivalStatusOn).
	ArrivalStatus ArrivalStatus `json:"arrival_status"`
}

// Override records that the program office accepted a posting despite its
// warnings: who, when and why.
type Override struct {
	Reason string    `json:"reason"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

// Arrival is the recipient's confirmation that the doctor reported for duty.
type Arrival struct {
	ArrivedOn   string    `json:"arrived_on"`
	ConfirmedBy string    `json:"confirmed_by"`
	ConfirmedAt time.Time `json:"confirmed_at"`
	Note        string    `json:"note"`
}

// Appraisal is the recipient's final appraisal at the end of a posting; it
// goes into the doctor's record (and promotion).
type Appraisal struct {
	Grade       Grade     `json:"grade"`
	Comment     string    `json:"comment"`
	AppraisedBy string    `json:"appraised_by"`
	AppraisedAt time.Time `json:"appraised_at"`
}

// Grade is the final appraisal's result.
type Grade string

const (
	Excellent    Grade = "excellent"   // 优秀
	Competent    Grade = "competent"   // 合格
	BasicallyMet Grade = "basic"       // 基本合格
	Failed       Grade = "unsatisfied" // 不合格
)

// Valid reports whether g is a known grade.
func (g Grade) Valid() bool {
	switch g {
	case Excellent, Competent, BasicallyMet, Failed:
		return true
	}
	return false
}

// AttendanceStatus is a day of a posting.
type AttendanceStatus string

const (
	Present AttendanceStatus = "present" // checked in by the doctor
	Leave   AttendanceStatus = "leave"   // away with a reason
	Absent  AttendanceStatus = "absent"  // recorded by the recipient
)

// Valid reports whether s is a known status.
func (s AttendanceStatus) Valid() bool { return s == Present || s == Leave || s == Absent }

// Attendance is one day of one posting.
type Attendance struct {
	PostingID   string           `json:"posting_id"`
	Day         string           `json:"day"`
	Status      AttendanceStatus `json:"status"`
	Reason      string           `json:"reason"`
	RecordedBy  string           `json:"recorded_by"`
	RecordedAt  time.Time        `json:"recorded_at"`
	ConfirmedBy *string          `json:"confirmed_by"`
	ConfirmedAt *time.Time       `json:"confirmed_at"`
}

// Evaluation is the recipient's monthly evaluation (月评) of one posting.
type Evaluation struct {
	PostingID   string         `json:"posting_id"`
	Month       string         `json:"month"`
	Scores      map[string]int `json:"scores"` // criterion code → score
	Total       int            `json:"total"`
	Comment     string         `json:"comment"`
	EvaluatedBy string         `json:"evaluated_by"`
	EvaluatedAt time.Time      `json:"evaluated_at"`
	DueOn       string         `json:"due_on"`
	Late        bool           `json:"late"` // filed after DueOn
	Version     int            `json:"version"`
}

// WorkCounts are the figures of a work log entry, the ones the annual and
// half-year reports sum.
type WorkCounts struct {
	Outpatients      int `json:"outpatients"`
	WardRounds       int `json:"ward_rounds"`
	Operations       int `json:"operations"`
	SurgicalDemos    int `json:"surgical_demonstrations"`
	TeachingRounds   int `json:"teaching_rounds"`
	Lectures         int `json:"lectures"`
	CaseDiscussions  int `json:"case_discussions"` // difficult and death cases
	Consultations    int `json:"consultations"`
	PeopleTrained    int `json:"people_trained"`
	FreeClinics      int `json:"free_clinics"` // 义诊
	FreeClinicPeople int `json:"free_clinic_people"`
	NewTechniques    int `json:"new_techniques"`
}

// WorkLog is one day's work of a dispatched doctor, entered by the doctor
// and confirmed by the recipient.
type WorkLog struct {
	ID             string     `json:"id"`
	PostingID      string     `json:"posting_id"`
	Day            string     `json:"day"`
	Counts         WorkCounts `json:"counts"`
	TechniqueNames []string   `json:"technique_names"`
	Note           string     `json:"note"`
	EnteredBy      string     `json:"entered_by"`
	EnteredAt      time.Time  `json:"entered_at"`
	ConfirmedBy    *string    `json:"confirmed_by"`
	ConfirmedAt    *time.Time `json:"confirmed_at"`
	Version        int        `json:"version"`
}

// ClinicSession is a dispatched doctor's clinic on one day, published to
// residents at least a week ahead (提前一周公示).
type ClinicSession struct {
	ID                  string    `json:"id"`
	PostingID           string    `json:"posting_id"`
	RecipientHospitalID string    `json:"recipient_hospital_id"`
	Day                 string    `json:"day"`
	StartsAt            string    `json:"starts_at"` // HH:MM
	EndsAt              string    `json:"ends_at"`
	Place               string    `json:"place"`
	PublishedBy         string    `json:"published_by"`
	PublishedAt         time.Time `json:"published_at"`
	// Cancelled is set once the office called the clinic off; the row
	// stays on record but leaves the public page.
	Cancelled *Cancellation `json:"cancelled"`
	Version   int           `json:"version"`
}

// Cancellation records who called a clinic off, when and why.
type Cancellation struct {
	Reason string    `json:"reason"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

// PublicSession is what residents see of a clinic: the doctor, not how to
// reach them, and no patient.
type PublicSession struct {
	Day          string
	StartsAt     string
	EndsAt       string
	Place        string
	DoctorName   string
	TitleLabel   string
	HomeHospital string
	Specialty    string
}

// Trainee is a recipient staff member sent to the supporting hospital to
// study (进修).
type Trainee struct {
	ID                   string    `json:"id"`
	PairingID            string    `json:"pairing_id"`
	SupportingHospitalID string    `json:"supporting_hospital_id"`
	RecipientHospitalID  string    `json:"recipient_hospital_id"`
	StaffID              string    `json:"staff_id"`
	StaffName            string    `json:"staff_name"`
	DepartmentID         *string   `json:"department_id"` // their department at home
	HostDepartment       string    `json:"host_department"`
	StartsOn             string    `json:"starts_on"`
	EndsOn               string    `json:"ends_on"`
	CreatedBy            string    `json:"created_by"`
	CreatedAt            time.Time `json:"created_at"`
	Version              int       `json:"version"`
}
