package consult

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"duikou/internal/apperr"
	"duikou/internal/auth"
)

// Kind is what sort of remote session is asked for.
type Kind string

const (
	Consult       Kind = "consult"        // 会诊: one specialist answers a question about a patient
	MDT           Kind = "mdt"            // 多学科会诊: several departments together
	TeachingRound Kind = "teaching_round" // 远程教学查房: a specialist teaches, no patient record attached
	ImagingReview Kind = "imaging_review" // 远程影像诊断: a specialist reads the images and reports
	ExpertClinic  Kind = "expert_clinic"  // 远程专家门诊: a booked slot of a specialist's published clinic
)

// Kinds lists every kind, in a stable order.
var Kinds = []Kind{Consult, MDT, TeachingRound, ImagingReview, ExpertClinic}

// HasPatient reports whether sessions of kind k are about one patient. A
// teaching round discusses a case without the patient's record, so it needs
// neither a patient nor consent.
func (k Kind) HasPatient() bool { return k != TeachingRound }

// Urgency is how soon the requester needs an answer.
type Urgency string

const (
	Routine   Urgency = "routine"
	Urgent    Urgency = "urgent"
	Emergency Urgency = "emergency"
)

// Urgencies lists every urgency, most urgent last.
var Urgencies = []Urgency{Routine, Urgent, Emergency}

// AttachmentKind says what a file is, so the specialist's screen shows it in
// the right viewer.
type AttachmentKind string

const (
	Image     AttachmentKind = "image"      // photographs, screenshots, scanned films
	PDF       AttachmentKind = "pdf"        // discharge letters, reports
	LabResult AttachmentKind = "lab_result" // a lab report as PDF or a photographed sheet
	DICOM     AttachmentKind = "dicom"      // a DICOM file, stored as a file; its basic tags are read on upload
)

// AttachmentKinds lists every attachment kind.
var AttachmentKinds = []AttachmentKind{Image, PDF, LabResult, DICOM}

// contentTypes are the content types each attachment kind may have.
var contentTypes = map[AttachmentKind][]string{
	Image:     {"image/jpeg", "image/png"},
	PDF:       {"application/pdf"},
	LabResult: {"application/pdf", "image/jpeg", "image/png"},
	DICOM:     {"application/dicom"},
}

// DicomTags are the basic tags read from a DICOM file when it is uploaded
// (the upload reads them; this package only checks their shape). They let the
// specialist see what a file is before opening it.
type DicomTags struct {
	Modality          string `json:"modality"`           // (0008,0060) CT, MR, CR, DX, US …
	StudyDate         string `json:"study_date"`         // (0008,0020) YYYYMMDD
	BodyPart          string `json:"body_part"`          // (0018,0015) CHEST, HEAD …
	StudyDescription  string `json:"study_description"`  // (0008,1030)
	SeriesDescription string `json:"series_description"` // (0008,103E)
	StudyInstanceUID  string `json:"study_instance_uid"` // (0020,000D)
}

// Attachment points at a stored file; the bytes live in the blob store.
type Attachment struct {
	ID          string         `json:"id"`
	Kind        AttachmentKind `json:"kind"`
	Name        string         `json:"name"`
	ContentType string         `json:"content_type"`
	Size        int64          `json:"size"`
	Dicom       *DicomTags     `json:"dicom,omitempty"`
}

// Assignment is one specialist the target side put on the session, for one
// of its departments.
type Assignment struct {
	SpecialistID string `json:"specialist_id"`
	DepartmentID string `json:"department_id"`
}

// Limits on one request: enough for a real case, small enough for one row
// and one screen.
const (
	MaxDepartments = 8  // an MDT rarely gathers more than a handful of departments
	MaxSpecialists = 12 // assigned or named
	MaxAttendees   = 50 // hospitals invited to a teaching round
	MaxAttachments = 50
	MaxAttachment  = 50 << 20  // bytes, documents and pictures
	MaxDicomFile   = 512 << 20 // bytes; a multi-frame series can be large
)

// Session is one remote session request and its course.
type Session struct {
	ID      string  `json:"id"`
	Kind    Kind    `json:"kind"`
	Urgency Urgency `json:"urgency"`

	RequesterID            string `json:"requester_id"`
	RequestingHospitalID   string `json:"requesting_hospital_id"`
	RequestingDepartmentID string `json:"requesting_department_id,omitempty"`
	TargetHospitalID       string `json:"target_hospital_id"`
	// TargetDepartmentIDs: one department, or several for an MDT.
	TargetDepartmentIDs []string `json:"target_department_ids"`
	// RequestedSpecialistIDs are specialists the requester asks for by name;
	// the target side decides whom it assigns.
	RequestedSpecialistIDs []string `json:"requested_specialist_ids"`

	Question        string       `json:"question"`
	ClinicalSummary string       `json:"clinical_summary"`
	Attachments     []Attachment `json:"attachments"`
	PatientID       string       `json:"patient_id,omitempty"`
	// AttendeeHospitalIDs are the other hospitals invited to a teaching
	// round, besides the requesting one.
	AttendeeHospitalIDs []string `json:"attendee_hospital_ids"`
	// SlotID is the clinic slot an expert-clinic session was booked on.
	SlotID string `json:"slot_id,omitempty"`

	Status    Status    `json:"status"`
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// RespondBy is the response deadline stamped on the request
	// (Deadlines.Stamp); nil for a session waiting for nobody.
	RespondBy *time.Time `json:"respond_by"`

	// Specialists are assigned on acceptance; for a teaching round exactly
	// one, the presenter.
	Specialists    []Assignment `json:"specialists"`
	AcceptedBy     string       `json:"accepted_by,omitempty"`
	AcceptedAt     *time.Time   `json:"accepted_at"`
	DeclinedBy     string       `json:"declined_by,omitempty"`
	DeclinedAt     *time.Time   `json:"declined_at"`
	DeclineReason  string       `json:"decline_reason,omitempty"`
	Schedule       *Period      `json:"schedule"`
	ScheduledAt    *time.Time   `json:"scheduled_at"` // when the time was last set
	StartedAt      *time.Time   `json:"started_at"`
	EndedAt        *time.Time   `json:"ended_at"`
	SignedAt       *time.Time   `json:"signed_at"`
	AcknowledgedBy string       `json:"acknowledged_by,omitempty"`
	AcknowledgedAt *time.Time   `json:"acknowledged_at"`
	CancelledBy    string       `json:"cancelled_by,omitempty"`
	CancelledAt    *time.Time   `json:"cancelled_at"`
	CancelReason   string       `json:"cancel_reason,omitempty"`

	// Opinion is the written opinion: a draft until signed, then immutable.
	Opinion *Opinion `json:"opinion"`
}

// Period is when a session or a clinic slot takes place.
type Period struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Input is what the requester writes. The requesting hospital is never part
// of it: it is the caller's own, so a body cannot widen scope.
type Input struct {
	Kind                   Kind         `json:"kind"`
	Urgency                Urgency      `json:"urgency"`
	RequestingDepartmentID string       `json:"requesting_department_id"`
	TargetHospitalID       string       `json:"target_hospital_id"`
	TargetDepartmentIDs    []string     `json:"target_department_ids"`
	RequestedSpecialistIDs []string     `json:"requested_specialist_ids"`
	Question               string       `json:"question"`
	ClinicalSummary        string       `json:"clinical_summary"`
	Attachments            []Attachment `json:"attachments"`
	PatientID              string       `json:"patient_id"`
	AttendeeHospitalIDs    []string     `json:"attendee_hospital_ids"`
}

// requesterRoles write and follow requests: the clinicians of the requesting
// hospital, dispatched doctors working there included.
var requesterRoles = []auth.Role{auth.CountyDoctor, auth.Specialist, auth.DispatchedDoctor}

// targetRoles answer requests at the target hospital.
var targetRoles = []auth.Role{auth.Specialist}

// Request writes a new session request for the caller's hospital; it is sent
// at once (there is no draft), so it is validated in full and its response
// deadline starts now. ID is left for the store. An expert-clinic session is
// not requested but booked on a slot (Book).
func Request(p auth.Principal, in Input, now time.Time) (Session, Event, error) {
	if p.HospitalID == "" || !p.Has(requesterRoles...) {
		return Session{}, Event{}, apperr.Forbidden("only doctors of a hospital may request a remote session")
	}
	if in.Kind == ExpertClinic {
		return Session{}, Event{}, apperr.Field("kind", "an expert clinic is booked on a published slot, not requested")
	}
	s := Session{
		Kind: in.Kind, Urgency: in.Urgency,
		RequesterID: p.UserID, RequestingHospitalID: p.HospitalID,
		RequestingDepartmentID: in.RequestingDepartmentID,
		TargetHospitalID:       in.TargetHospitalID,
		TargetDepartmentIDs:    slices.Clone(in.TargetDepartmentIDs),
		RequestedSpecialistIDs: slices.Clone(in.RequestedSpecialistIDs),
		Question:               in.Question, ClinicalSummary: in.ClinicalSummary,
		Attachments:         slices.Clone(in.Attachments),
		PatientID:           in.PatientID,
		AttendeeHospitalIDs: slices.Clone(in.AttendeeHospitalIDs),
		Status:              Requested, Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	for i, a := range s.Attachments {
		if a.Dicom != nil {
			d := *a.Dicom
			s.Attachments[i].Dicom = &d
		}
	}
	var v apperr.Invalid
	if err := s.Validate(); err != nil && !errors.As(err, &v) {
		return Session{}, Event{}, err
	}
	// Remote sessions run along the pairings: a hospital asks the ones it
	// is paired with. A body never widens the caller's reach.
	if s.TargetHospitalID != "" && s.TargetHospitalID != p.HospitalID && apperr.IsID(s.TargetHospitalID) && !p.CanReach(s.TargetHospitalID) {
		v.Add("target_hospital_id", "must be a hospital paired with yours")
	}
	if err := v.Err(); err != nil {
		return Session{}, Event{}, err
	}
	ev := Event{Action: RequestAction, To: Requested, Actor: p.UserID, ActorHospitalID: p.HospitalID, At: now}
	return s, ev, nil
}

// Validate checks a request in full. It trims text and normalises ids in
// place and reports every fault at once, under the JSON field names.
func (s *Session) Validate() error {
	var v apperr.Invalid
	id := func(field string, x *string, required bool) {
		*x = strings.TrimSpace(*x)
		switch {
		case *x == "":
			if required {
				v.Add(field, "is required")
			}
		case !apperr.IsID(*x):
			v.Add(field, "must be an id")
		}
	}
	switch {
	case s.Kind == "":
		v.Add("kind", "is required ("+joinKinds()+")")
	case !slices.Contains(Kinds, s.Kind):
		v.Add("kind", "must be one of "+joinKinds())
	}
	switch {
	case s.Urgency == "":
		v.Add("urgency", "is required (routine, urgent or emergency)")
	case !slices.Contains(Urgencies, s.Urgency):
		v.Add("urgency", "must be routine, urgent or emergency")
	case s.Urgency != Routine && (s.Kind == TeachingRound || s.Kind == ExpertClinic):
		// No patient waits on a teaching round, and a clinic slot is booked
		// days ahead: an urgent question is a consult.
		v.Add("urgency", "must be routine for a "+strings.ReplaceAll(string(s.Kind), "_", " "))
	}

	id("requester_id", &s.RequesterID, true)
	id("requesting_hospital_id", &s.RequestingHospitalID, true)
	id("requesting_department_id", &s.RequestingDepartmentID, false)
	id("target_hospital_id", &s.TargetHospitalID, true)
	if s.TargetHospitalID != "" && s.TargetHospitalID == s.RequestingHospitalID {
		v.Add("target_hospital_id", "must be another hospital than the requesting one")
	}
	s.TargetDepartmentIDs = ids(&v, "target_department_ids", s.TargetDepartmentIDs, MaxDepartments)
	switch n := len(s.TargetDepartmentIDs); {
	case s.Kind == MDT && n < 2:
		v.Add("target_department_ids", "needs at least two departments for an MDT")
	case s.Kind != MDT && s.Kind != "" && n != 1:
		v.Add("target_department_ids", "must name exactly one department (an MDT gathers several)")
	}
	s.RequestedSpecialistIDs = ids(&v, "requested_specialist_ids", s.RequestedSpecialistIDs, MaxSpecialists)
	if s.Kind != MDT && len(s.RequestedSpecialistIDs) > 1 {
		v.Add("requested_specialist_ids", "may name one specialist only (an MDT may name several)")
	}

	s.Question = v.Text("question", s.Question, true, apperr.MaxText)
	s.ClinicalSummary = v.Text("clinical_summary", s.ClinicalSummary, s.Kind.HasPatient(), apperr.MaxText)
	checkAttachments(&v, s.Attachments)
	if s.Kind == ImagingReview && !slices.ContainsFunc(s.Attachments, func(a Attachment) bool { return a.Kind == Image || a.Kind == DICOM }) {
		v.Add("attachments", "needs at least one image or DICOM file for an imaging review")
	}

	if s.Kind.HasPatient() {
		id("patient_id", &s.PatientID, true)
	} else if strings.TrimSpace(s.PatientID) != "" {
		v.Add("patient_id", "must be empty: a teaching round is not about a registered patient")
	}
	s.AttendeeHospitalIDs = ids(&v, "attendee_hospital_ids", s.AttendeeHospitalIDs, MaxAttendees)
	if s.Kind != TeachingRound && len(s.AttendeeHospitalIDs) > 0 {
		v.Add("attendee_hospital_ids", "are only invited to a teaching round")
	}
	if slices.Contains(s.AttendeeHospitalIDs, s.RequestingHospitalID) || slices.Contains(s.AttendeeHospitalIDs, s.TargetHospitalID) {
		v.Add("attendee_hospital_ids", "must not list the requesting or target hospital: both take part anyway")
	}
	id("slot_id", &s.SlotID, s.Kind == ExpertClinic)
	if s.Kind != ExpertClinic && s.SlotID != "" {
		v.Add("slot_id", "is only set on an expert-clinic session")
	}
	return v.Err()
}

// ids trims and checks a list of ids: each an id, none twice, at most max.
func ids(v *apperr.Invalid, field string, in []string, max int) []string {
	if len(in) > max {
		v.Add(field, "must hold at most "+strconv.Itoa(max)+" ids")
		return in
	}
	out := make([]string, len(in))
	for i, x := range in {
		x = strings.TrimSpace(x)
		at := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case !apperr.IsID(x):
			v.Add(at, "must be an id")
		case slices.Contains(out[:i], x):
			v.Add(at, "is listed twice")
		}
		out[i] = x
	}
	return out
}

var (
	modalityPattern = regexp.MustCompile(`^[A-Z][A-Z0-9_]{1,15}$`) // CS: upper case, digits, underscore; RTSTRUCT is one
	uidPattern      = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*$`)
)

func checkAttachments(v *apperr.Invalid, as []Attachment) {
	if len(as) > MaxAttachments {
		v.Add("attachments", "must hold at most "+strconv.Itoa(MaxAttachments)+" files")
		return
	}
	seen := map[string]bool{}
	for i := range as {
		a := &as[i]
		at := fmt.Sprintf("attachments[%d]", i)
		a.ID = strings.TrimSpace(a.ID)
		switch {
		case !apperr.IsID(a.ID):
			v.Add(at+".id", "must be the id of an uploaded file")
		case seen[a.ID]:
			v.Add(at+".id", "is attached twice")
		}
		seen[a.ID] = true
		a.Name = v.Text(at+".name", a.Name, true, apperr.MaxName)
		if strings.ContainsAny(a.Name, `/\`) {
			v.Add(at+".name", "must be a file name without a path")
		}
		a.ContentType = strings.ToLower(strings.TrimSpace(a.ContentType))
		types, known := contentTypes[a.Kind]
		switch {
		case a.Kind == "":
			v.Add(at+".kind", "is required (image, pdf, lab_result or dicom)")
		case !known:
			v.Add(at+".kind", "must be image, pdf, lab_result or dicom")
		case !slices.Contains(types, a.ContentType):
			v.Add(at+".content_type", "must be one of "+strings.Join(types, ", ")+" for "+string(a.Kind))
		}
		limit, limitText := int64(MaxAttachment), "50 MiB"
		if a.Kind == DICOM {
			limit, limitText = MaxDicomFile, "512 MiB"
		}
		switch {
		case a.Size <= 0:
			v.Add(at+".size", "must be more than 0 bytes")
		case a.Size > limit:
			v.Add(at+".size", "must be at most "+limitText)
		}
		switch {
		case a.Dicom != nil && a.Kind != DICOM:
			v.Add(at+".dicom", "is only read from a DICOM file")
		case a.Dicom != nil:
			checkDicom(v, at+".dicom", a.Dicom)
		}
	}
}

// checkDicom checks the tags' shape as the standard defines their value
// representations; an empty tag was absent from the file and is allowed.
func checkDicom(v *apperr.Invalid, at string, d *DicomTags) {
	d.Modality = strings.ToUpper(strings.TrimSpace(d.Modality))
	if d.Modality != "" && !modalityPattern.MatchString(d.Modality) {
		v.Add(at+".modality", "must be a DICOM modality code like CT, MR or DX")
	}
	d.StudyDate = strings.TrimSpace(d.StudyDate)
	if d.StudyDate != "" {
		if _, err := time.Parse("20060102", d.StudyDate); err != nil {
			v.Add(at+".study_date", "must be a date written YYYYMMDD")
		}
	}
	d.BodyPart = v.Text(at+".body_part", d.BodyPart, false, 16) // CS: 16 characters
	d.StudyDescription = v.Text(at+".study_description", d.StudyDescription, false, 64)
	d.SeriesDescription = v.Text(at+".series_description", d.SeriesDescription, false, 64)
	d.StudyInstanceUID = strings.TrimSpace(d.StudyInstanceUID)
	if u := d.StudyInstanceUID; u != "" && (len(u) > 64 || !uidPattern.MatchString(u)) {
		v.Add(at+".study_instance_uid", "must be a DICOM UID: digits and dots, at most 64 characters")
	}
}

func joinKinds() string {
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}
