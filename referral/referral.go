package referral

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"duikou/attachment"
	"duikou/internal/apperr"
	"duikou/internal/auth"
)

// Direction says which way along the pairing the patient travels.
type Direction string

const (
	Up   Direction = "up"   // 上转: to a higher level of care
	Down Direction = "down" // 下转: back home for recovery and follow-up
)

// Priority is the clinical urgency the referring doctor states.
type Priority string

const (
	Routine   Priority = "routine"
	Urgent    Priority = "urgent"
	Emergency Priority = "emergency"
)

// Category names why a ticket takes the green channel (急危重症). Each one
// maps to a critical pathway the receiving hospital runs (胸痛中心, 卒中中心 …).
type Category string

const (
	ChestPain     Category = "chest_pain"
	Stroke        Category = "stroke"
	Trauma        Category = "trauma"
	Maternal      Category = "maternal"
	Neonatal      Category = "neonatal"
	OtherCritical Category = "other_critical"
)

// Categories lists every green-channel category, in a stable order.
var Categories = []Category{ChestPain, Stroke, Trauma, Maternal, Neonatal, OtherCritical}

// TransferRisk is the transfer risk grade (转运风险分级): 1 (grade I) is the
// highest risk, 3 (grade III) the lowest.
type TransferRisk int

const (
	RiskI   TransferRisk = 1
	RiskII  TransferRisk = 2
	RiskIII TransferRisk = 3
)

// String is the grade as clinicians write it.
func (g TransferRisk) String() string {
	switch g {
	case RiskI:
		return "I"
	case RiskII:
		return "II"
	case RiskIII:
		return "III"
	}
	return strconv.Itoa(int(g))
}

// TransportMode is how the patient travels.
type TransportMode string

const (
	ByAmbulance       TransportMode = "ambulance"        // 120 or hospital ambulance with equipment
	ByHospitalVehicle TransportMode = "hospital_vehicle" // a hospital car without intensive care
	BySelf            TransportMode = "self"             // the patient or family arrange it
	ByOther           TransportMode = "other"
)

// Escort is who travels with the patient.
type Escort string

const (
	EscortNone   Escort = "none"
	EscortFamily Escort = "family"
	EscortNurse  Escort = "nurse"
	EscortDoctor Escort = "doctor"
)

// Diagnosis is one ICD-10 coded diagnosis with the doctor's wording.
type Diagnosis struct {
	Code string `json:"code"`
	Text string `json:"text"`
}

// Transport is how the patient is moved and who goes along.
type Transport struct {
	Mode   TransportMode `json:"mode"`
	Escort Escort        `json:"escort"`
}

// Window is the time range the referrer asks the patient to be received in.
type Window struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// AttachmentRef points at a stored file (summary, labs, images); the bytes
// live in the blob store, the ticket only names them.
type AttachmentRef struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
}

// Target is where a redirected referral goes instead.
type Target struct {
	HospitalID   string `json:"hospital_id"`
	DepartmentID string `json:"department_id"`
	DoctorID     string `json:"doctor_id,omitempty"`
}

// ScheduleKind says whether the patient was given a bed or an appointment.
type ScheduleKind string

const (
	Bed         ScheduleKind = "bed"
	Appointment ScheduleKind = "appointment"
)

// Schedule is the bed or appointment the receiving desk found.
type Schedule struct {
	Kind ScheduleKind `json:"kind"`
	Slot string       `json:"slot"` // as the desk tells the patient: "心内科3病区12床", "专家门诊3诊室"
	At   time.Time    `json:"at"`
}

// Limits on what one ticket may carry: enough for any real case, small enough
// that a ticket stays one row and one screen.
const (
	MaxDiagnoses    = 10
	MaxAttachments  = 20
	MaxAttachment   = attachment.MaxSize // bytes; a CT series goes through the imaging link, not here
	MaxWindowLength = 90 * 24 * time.Hour
)

// Referral is one two-way referral ticket (转诊单).
type Referral struct {
	ID        string    `json:"id"`
	Number    string    `json:"number"` // 转诊单号, ZZ-20261122-000123
	Direction Direction `json:"direction"`
	Priority  Priority  `json:"priority"`

	GreenChannel  bool         `json:"green_channel"`
	GreenCategory Category     `json:"green_category,omitempty"`
	TransferRisk  TransferRisk `json:"transfer_risk"`

	PatientID             string `json:"patient_id"`
	ReferringHospitalID   string `json:"referring_hospital_id"`
	ReferringDepartmentID string `json:"referring_department_id"`
	ReferringDoctorID     string `json:"referring_doctor_id"`
	ReceivingHospitalID   string `json:"receiving_hospital_id"`
	ReceivingDepartmentID string `json:"receiving_department_id"`
	ReceivingDoctorID     string `json:"receiving_doctor_id,omitempty"`

	Diagnoses       []Diagnosis     `json:"diagnoses"`
	Reason          string          `json:"reason"`
	ClinicalSummary string          `json:"clinical_summary"`
	TreatmentGiven  string          `json:"treatment_given"`
	Transport       Transport       `json:"transport"`
	RequestedWindow *Window         `json:"requested_window"`
	Attachments     []AttachmentRef `json:"attachments"`
	ConsentID       string          `json:"consent_id"`

	// BasedOnID links a down-referral to the up-referral it follows, so the
	// county sees the whole journey.
	BasedOnID string `json:"based_on_id,omitempty"`
	// RedirectedFromID and RedirectedToID chain a redirected ticket to the
	// one that replaced it.
	RedirectedFromID string `json:"redirected_from_id,omitempty"`
	RedirectedToID   string `json:"redirected_to_id,omitempty"`

	Status    Status    `json:"status"`
	Version   int       `json:"version"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	// SubmittedAt is the first submission: the patient has waited since then,
	// so it orders the queue. QueuedAt is when the ticket last entered the
	// current desk's queue (submit, resubmit, redirect): the desk's deadlines
	// run from it.
	SubmittedAt *time.Time `json:"submitted_at"`
	QueuedAt    *time.Time `json:"queued_at"`
	// ClaimBy and DecideBy are the current desk's deadlines as stamped by
	// Deadlines.Stamp at the ticket's last change; nil until it is queued.
	ClaimBy     *time.Time `json:"claim_by"`
	DecideBy    *time.Time `json:"decide_by"`
	ClaimedAt   *time.Time `json:"claimed_at"`
	ClaimedBy   string     `json:"claimed_by,omitempty"`
	DecidedAt   *time.Time `json:"decided_at"`
	DecidedBy   string     `json:"decided_by,omitempty"`
	ScheduledAt *time.Time `json:"scheduled_at"`
	DepartedAt  *time.Time `json:"departed_at"`
	ArrivedAt   *time.Time `json:"arrived_at"`
	CompletedAt *time.Time `json:"completed_at"`
	CompletedBy string     `json:"completed_by,omitempty"`
	ClosedAt    *time.Time `json:"closed_at"`
	EndedAt     *time.Time `json:"ended_at"` // cancelled or no-show

	RejectReason RejectReason `json:"reject_reason,omitempty"`
	DecisionNote string       `json:"decision_note,omitempty"` // rejection detail, redirect reason, acceptance note
	InfoQuestion string       `json:"info_question,omitempty"`
	InfoAnswer   string       `json:"info_answer,omitempty"`
	Redirect     *Target      `json:"redirect"`
	Schedule     *Schedule    `json:"schedule"`
	EndReason    string       `json:"end_reason,omitempty"` // why it was cancelled or marked no-show

	// What acceptance of an up-referral grants under the green-channel terms
	// of the agreement: no second registration fee, a slip that lets the
	// patient be examined directly, and for green-channel tickets a reserved bed.
	FeeWaived        bool   `json:"fee_waived"`
	ExamSlipNumber   string `json:"exam_slip_number,omitempty"`
	BedReservationID string `json:"bed_reservation_id,omitempty"`

	Outcome  Outcome `json:"outcome,omitempty"`
	Feedback string  `json:"feedback,omitempty"`
}

// Input is what the referrer writes on a ticket. The referring hospital is
// never part of it: it is the caller's own, so a body cannot widen scope.
type Input struct {
	Direction             Direction       `json:"direction"`
	Priority              Priority        `json:"priority"`
	GreenChannel          bool            `json:"green_channel"`
	GreenCategory         Category        `json:"green_category"`
	TransferRisk          TransferRisk    `json:"transfer_risk"`
	PatientID             string          `json:"patient_id"`
	ReferringDepartmentID string          `json:"referring_department_id"`
	ReferringDoctorID     string          `json:"referring_doctor_id"`
	ReceivingHospitalID   string          `json:"receiving_hospital_id"`
	ReceivingDepartmentID string          `json:"receiving_department_id"`
	ReceivingDoctorID     string          `json:"receiving_doctor_id"`
	Diagnoses             []Diagnosis     `json:"diagnoses"`
	Reason                string          `json:"reason"`
	ClinicalSummary       string          `json:"clinical_summary"`
	TreatmentGiven        string          `json:"treatment_given"`
	Transport             Transport       `json:"transport"`
	RequestedWindow       *Window         `json:"requested_window"`
	Attachments           []AttachmentRef `json:"attachments"`
	ConsentID             string          `json:"consent_id"`
	BasedOnID             string          `json:"based_on_id"`
}

// New starts a draft for the caller's hospital. The draft is checked for
// shape only; completeness is checked when it is submitted. ID and Number are
// left for the store to assign.
func New(p auth.Principal, in Input, now time.Time) (Referral, error) {
	if !p.Has(referrerRoles...) {
		return Referral{}, apperr.Forbidden("only doctors and the referral desk may write a referral")
	}
	r := Referral{
		Status:              Draft,
		Version:             1,
		ReferringHospitalID: p.HospitalID,
		CreatedBy:           p.UserID,
		CreatedAt:           now,
		UpdatedAt:           now,
	}
	r.apply(in)
	if err := r.ValidateDraft(); err != nil {
		return Referral{}, err
	}
	return r, nil
}

// EditContent names the history event of an edit: not a move of the state
// machine (it is not in Actions), but a change the history keeps.
const EditContent Action = "edit"

// Edit replaces what the referrer wrote. Only the referring side may edit,
// and only while the ticket is in its hands: a draft, or one the receiving
// desk asked a question about.
func Edit(r Referral, p auth.Principal, in Input, now time.Time) (Referral, error) {
	switch SideOf(r, p) {
	case NoSide:
		return r, apperr.ErrNotFound
	case Receiver:
		return r, apperr.Forbidden("only the referring hospital may edit a referral")
	}
	if !p.Has(referrerRoles...) {
		return r, apperr.Forbidden("only doctors and the referral desk may edit a referral")
	}
	if r.Status != Draft && r.Status != InfoRequested {
		return r, apperr.Conflict("cannot edit " + article(r.Status) + " referral")
	}
	next := r
	next.apply(in)
	if err := next.ValidateDraft(); err != nil {
		return r, err
	}
	next.Version++
	next.UpdatedAt = now
	return next, nil
}

func (r *Referral) apply(in Input) {
	r.Direction, r.Priority = in.Direction, in.Priority
	r.GreenChannel, r.GreenCategory, r.TransferRisk = in.GreenChannel, in.GreenCategory, in.TransferRisk
	r.PatientID = in.PatientID
	r.ReferringDepartmentID, r.ReferringDoctorID = in.ReferringDepartmentID, in.ReferringDoctorID
	r.ReceivingHospitalID, r.ReceivingDepartmentID, r.ReceivingDoctorID = in.ReceivingHospitalID, in.ReceivingDepartmentID, in.ReceivingDoctorID
	r.Diagnoses = append([]Diagnosis(nil), in.Diagnoses...)
	r.Reason, r.ClinicalSummary, r.TreatmentGiven = in.Reason, in.ClinicalSummary, in.TreatmentGiven
	r.Transport = in.Transport
	if in.RequestedWindow != nil {
		w := *in.RequestedWindow
		r.RequestedWindow = &w
	} else {
		r.RequestedWindow = nil
	}
	r.Attachments = append([]AttachmentRef(nil), in.Attachments...)
	r.ConsentID, r.BasedOnID = in.ConsentID, in.BasedOnID
}

// Validate checks that the ticket is complete enough to send to the
// receiving hospital. It trims text and normalises codes in place and reports
// every fault at once, under the JSON field names.
func (r *Referral) Validate() error { return r.check(true) }

// ValidateDraft checks the shape of a draft: what is filled in must be valid,
// but only the direction, the patient and the referring side are required,
// so a doctor can save a half-written referral.
func (r *Referral) ValidateDraft() error { return r.check(false) }

var icd10Pattern = regexp.MustCompile(`^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4}(X[0-9]{3})?)?$`)

// NormalizeICD10 upper-cases a code and checks its shape: a chapter letter,
// two characters of category (I21, C4A), and an optional subdivision (I21.0,
// S06.5X0A) with the national clinical extension (I21.000x001). It does not
// check that the code exists in a code list.
func NormalizeICD10(s string) (string, bool) {
	c := strings.ToUpper(strings.TrimSpace(s))
	m := icd10Pattern.FindStringSubmatch(c)
	if m == nil {
		return c, false
	}
	if m[2] != "" { // the national extension is written with a lower-case x
		c = c[:len(c)-4] + "x" + c[len(c)-3:]
	}
	return c, true
}

func (r *Referral) check(complete bool) error {
	var v apperr.Invalid
	id := func(field string, s *string, required bool) {
		*s = strings.TrimSpace(*s)
		switch {
		case *s == "":
			if required {
				v.Add(field, "is required")
			}
		case !apperr.IsID(*s):
			v.Add(field, "must be an id")
		}
	}

	switch r.Direction {
	case Up, Down:
	case "":
		v.Add("direction", "is required (up or down)")
	default:
		v.Add("direction", "must be up or down")
	}
	switch r.Priority {
	case Routine, Urgent, Emergency:
	case "":
		if complete {
			v.Add("priority", "is required (routine, urgent or emergency)")
		}
	default:
		v.Add("priority", "must be routine, urgent or emergency")
	}
	r.checkGreen(&v)
	switch {
	case r.TransferRisk == 0:
		if complete {
			v.Add("transfer_risk", "is required (1, 2 or 3 for grade I, II or III)")
		}
	case r.TransferRisk < RiskI || r.TransferRisk > RiskIII:
		v.Add("transfer_risk", "must be 1, 2 or 3 (grade I, II or III)")
	}

	id("patient_id", &r.PatientID, true)
	id("referring_hospital_id", &r.ReferringHospitalID, true)
	id("referring_department_id", &r.ReferringDepartmentID, complete)
	id("referring_doctor_id", &r.ReferringDoctorID, complete)
	id("receiving_hospital_id", &r.ReceivingHospitalID, complete)
	id("receiving_department_id", &r.ReceivingDepartmentID, complete)
	id("receiving_doctor_id", &r.ReceivingDoctorID, false)
	if r.ReceivingHospitalID != "" && r.ReceivingHospitalID == r.ReferringHospitalID {
		v.Add("receiving_hospital_id", "must be another hospital than the referring one")
	}

	r.checkDiagnoses(&v, complete)
	r.Reason = v.Text("reason", r.Reason, complete, apperr.MaxText)
	r.ClinicalSummary = v.Text("clinical_summary", r.ClinicalSummary, complete, apperr.MaxText)
	r.TreatmentGiven = v.Text("treatment_given", r.TreatmentGiven, false, apperr.MaxText)
	r.checkTransport(&v, complete)
	if w := r.RequestedWindow; w != nil {
		switch {
		case w.From.IsZero() || w.To.IsZero():
			v.Add("requested_window", "needs both from and to")
		case !w.To.After(w.From):
			v.Add("requested_window.to", "must be after from")
		case w.To.Sub(w.From) > MaxWindowLength:
			v.Add("requested_window.to", "must be at most 90 days after from")
		}
	}
	r.checkAttachments(&v)
	id("consent_id", &r.ConsentID, complete)
	id("based_on_id", &r.BasedOnID, false)
	if r.BasedOnID != "" && r.Direction == Up {
		v.Add("based_on_id", "links a down-referral to the up-referral it follows; an up-referral has none")
	}
	return v.Err()
}

func (r *Referral) checkGreen(v *apperr.Invalid) {
	if !r.GreenChannel {
		if r.GreenCategory != "" {
			v.Add("green_category", "is only given for a green-channel referral")
		}
		return
	}
	switch {
	case r.GreenCategory == "":
		v.Add("green_category", "is required for a green-channel referral (chest_pain, stroke, trauma, maternal, neonatal or other_critical)")
	case !validCategory(r.GreenCategory):
		v.Add("green_category", "must be chest_pain, stroke, trauma, maternal, neonatal or other_critical")
	}
	// The green channel is the supporting hospital's promise to critical
	// up-referred patients; it has no meaning for a routine case or a patient
	// going home.
	if r.Direction == Down {
		v.Add("green_channel", "applies to up-referrals only")
	}
	if r.Priority == Routine {
		v.Add("priority", "must be urgent or emergency for a green-channel referral")
	}
}

func validCategory(c Category) bool {
	for _, x := range Categories {
		if c == x {
			return true
		}
	}
	return false
}

func (r *Referral) checkDiagnoses(v *apperr.Invalid, complete bool) {
	switch {
	case len(r.Diagnoses) == 0 && complete:
		v.Add("diagnoses", "needs at least one diagnosis")
	case len(r.Diagnoses) > MaxDiagnoses:
		v.Add("diagnoses", "must hold at most "+strconv.Itoa(MaxDiagnoses)+" diagnoses")
		return
	}
	seen := map[string]bool{}
	for i := range r.Diagnoses {
		d := &r.Diagnoses[i]
		at := fmt.Sprintf("diagnoses[%d]", i)
		code, ok := NormalizeICD10(d.Code)
		switch {
		case code == "":
			v.Add(at+".code", "is required")
		case !ok:
			v.Add(at+".code", "must be an ICD-10 code like I21.0, I63 or S06.5")
		case seen[code]:
			v.Add(at+".code", "is listed twice")
		default:
			d.Code = code
			seen[code] = true
		}
		d.Text = v.Text(at+".text", d.Text, true, apperr.MaxName)
	}
}

func (r *Referral) checkTransport(v *apperr.Invalid, complete bool) {
	t := &r.Transport
	t.Mode = TransportMode(strings.TrimSpace(string(t.Mode)))
	t.Escort = Escort(strings.TrimSpace(string(t.Escort)))
	switch t.Mode {
	case ByAmbulance, ByHospitalVehicle, BySelf, ByOther:
	case "":
		if complete {
			v.Add("transport.mode", "is required (ambulance, hospital_vehicle, self or other)")
		}
	default:
		v.Add("transport.mode", "must be ambulance, hospital_vehicle, self or other")
	}
	switch t.Escort {
	case EscortNone, EscortFamily, EscortNurse, EscortDoctor:
	case "":
		if complete {
			v.Add("transport.escort", "is required (none, family, nurse or doctor)")
		}
	default:
		v.Add("transport.escort", "must be none, family, nurse or doctor")
	}
	// A grade I patient may deteriorate on the road: the transfer standard
	// asks for an equipped ambulance with a doctor on board.
	if r.TransferRisk == RiskI {
		if t.Mode != "" && t.Mode != ByAmbulance {
			v.Add("transport.mode", "must be ambulance for a grade I transfer risk")
		}
		if t.Escort != "" && t.Escort != EscortDoctor {
			v.Add("transport.escort", "must be doctor for a grade I transfer risk")
		}
	}
}

func (r *Referral) checkAttachments(v *apperr.Invalid) {
	if len(r.Attachments) > MaxAttachments {
		v.Add("attachments", "must hold at most "+strconv.Itoa(MaxAttachments)+" files")
		return
	}
	for i := range r.Attachments {
		a := &r.Attachments[i]
		at := fmt.Sprintf("attachments[%d]", i)
		a.ID = strings.TrimSpace(a.ID)
		if !apperr.IsID(a.ID) {
			v.Add(at+".id", "must be the id of an uploaded file")
		}
		a.Name = v.Text(at+".name", a.Name, true, apperr.MaxName)
		if strings.ContainsAny(a.Name, `/\`) {
			v.Add(at+".name", "must be a file name without a path")
		}
		a.ContentType = strings.ToLower(strings.TrimSpace(a.ContentType))
		if !slices.Contains(attachment.Types, a.ContentType) {
			v.Add(at+".content_type", "must be one of "+strings.Join(attachment.Types, ", "))
		}
		switch {
		case a.Size <= 0:
			v.Add(at+".size", "must be more than 0 bytes")
		case a.Size > MaxAttachment:
			v.Add(at+".size", "must be at most 50 MiB")
		}
	}
}

// validateSubmission is Validate plus the checks that depend on the moment
// of sending: a requested window already over cannot be honoured.
func (r *Referral) validateSubmission(now time.Time) error {
	var v apperr.Invalid
	if err := r.Validate(); err != nil && !errors.As(err, &v) {
		return err
	}
	if w := r.RequestedWindow; w != nil && !w.To.IsZero() && !w.To.After(now) {
		v.Add("requested_window.to", "is already past")
	}
	return v.Err()
}

// numberPattern is the printed ticket number: a prefix, the day it was
// issued and a sequence of at least six digits.
var numberPattern = regexp.MustCompile(`^(ZZ|JC)-([0-9]{8})-([0-9]{6,12})$`)

// FormatNumber makes the 转诊单号 for the seq-th ticket of day. The calendar
// date of day is taken as given: pass it in the zone the number should show
// (the hospital's, usually Asia/Shanghai).
func FormatNumber(day time.Time, seq int64) string {
	return fmt.Sprintf("ZZ-%s-%06d", day.Format("20060102"), seq)
}

// ParseNumber reads a 转诊单号 back into its day (midnight UTC of that date)
// and sequence. Only the canonical form FormatNumber writes is accepted, so
// one ticket never has two spellings.
func ParseNumber(s string) (day time.Time, seq int64, err error) {
	return parseNumber(s, "ZZ")
}

func parseNumber(s, prefix string) (time.Time, int64, error) {
	m := numberPattern.FindStringSubmatch(s)
	if m == nil || m[1] != prefix {
		return time.Time{}, 0, fmt.Errorf("%q is not a number like %s-20261122-000123", s, prefix)
	}
	day, err := time.Parse("20060102", m[2])
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("%q names no real date", s)
	}
	seq, err := strconv.ParseInt(m[3], 10, 64)
	if err != nil || seq < 1 || fmt.Sprintf("%06d", seq) != m[3] {
		return time.Time{}, 0, fmt.Errorf("%q has no valid sequence number", s)
	}
	return day, seq, nil
}

// ExamSlipNumber is the direct-examination slip (检查单) issued when an
// up-referral is accepted. It is derived from the ticket number, so it is as
// unique as the ticket and needs no second counter.
func ExamSlipNumber(ticketNumber string) (string, error) {
	day, seq, err := ParseNumber(ticketNumber)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("JC-%s-%06d", day.Format("20060102"), seq), nil
}
