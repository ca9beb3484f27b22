package program

import (
	"fmt"
	"regexp"
	"strconv"

	"duikou/internal/apperr"
)

// Bounds of what an agreement or a log may say; beyond them the input is a
// typing slip, not a plan.
const (
	maxListItems = 50
	maxItemChars = 200
	maxTextChars = 2000
	maxCount     = 100000
)

func checkDay(v *apperr.Invalid, field, day string, required bool) {
	if day == "" {
		if required {
			v.Add(field, "is required")
		}
		return
	}
	if _, ok := ParseDay(day); !ok {
		v.Add(field, "must be a day YYYY-MM-DD")
	}
}

func checkPeriod(v *apperr.Invalid, from, to string) {
	checkDay(v, "starts_on", from, true)
	checkDay(v, "ends_on", to, true)
	if _, ok := ParseDay(from); ok {
		if _, ok := ParseDay(to); ok && to < from {
			v.Add("ends_on", "must not be before starts_on")
		}
	}
}

func checkCount(v *apperr.Invalid, field string, n int) {
	if n < 0 || n > maxCount {
		v.Add(field, "must be 0–"+strconv.Itoa(maxCount))
	}
}

func checkList(v *apperr.Invalid, field string, items []string) []string {
	if len(items) > maxListItems {
		v.Add(field, fmt.Sprintf("must have at most %d items", maxListItems))
		return items
	}
	out := make([]string, 0, len(items))
	for i, s := range items {
		s = v.Text(fmt.Sprintf("%s[%d]", field, i), s, true, maxItemChars)
		out = append(out, s)
	}
	return out
}

// Check validates terms and returns them cleaned (text trimmed). An
// amendment (amend) must say why.
func (t Terms) Check(amend bool) (Terms, error) {
	var v apperr.Invalid
	checkPeriod(&v, t.StartsOn, t.EndsOn)
	c := &t.Commitments
	checkCount(&v, "commitments.teams_per_year", c.TeamsPerYear)
	if c.DaysPerYear < 0 || c.DaysPerYear > 366*50 {
		v.Add("commitments.days_per_year", "must be 0–18300")
	}
	checkCount(&v, "commitments.trainees_per_year", c.TraineesPerYear)
	c.Equipment = checkList(&v, "commitments.equipment", c.Equipment)
	c.Techniques = checkList(&v, "commitments.techniques", c.Techniques)
	t.RecipientDuties = checkList(&v, "recipient_duties", t.RecipientDuties)
	t.Targets = checkList(&v, "targets", t.Targets)
	g := &t.GreenChannel
	g.FeeWaiver = v.Text("green_channel.fee_waiver", g.FeeWaiver, false, maxItemChars)
	if len(g.ReservedBeds) > maxListItems {
		v.Add("green_channel.reserved_beds", fmt.Sprintf("must have at most %d departments", maxListItems))
	}
	seen := map[string]bool{}
	for i, rb := range g.ReservedBeds {
		f := fmt.Sprintf("green_channel.reserved_beds[%d]", i)
		switch {
		case !apperr.IsID(rb.DepartmentID):
			v.Add(f+".department_id", "must be a department id")
		case seen[rb.DepartmentID]:
			v.Add(f+".department_id", "is listed twice")
		}
		seen[rb.DepartmentID] = true
		if rb.Beds < 0 || rb.Beds > 1000 {
			v.Add(f+".beds", "must be 0–1000")
		}
	}
	if t.SignedDocumentID != nil && !apperr.IsID(*t.SignedDocumentID) {
		v.Add("signed_document_id", "must be an attachment id")
	}
	t.SupportingSignsAs = v.Text("supporting_signatory", t.SupportingSignsAs, false, maxItemChars)
	t.RecipientSignsAs = v.Text("recipient_signatory", t.RecipientSignsAs, false, maxItemChars)
	t.AmendmentReason = v.Text("amendment_reason", t.AmendmentReason, amend, maxTextChars)
	if t.Commitments.Equipment == nil {
		t.Commitments.Equipment = []string{}
	}
	if t.Commitments.Techniques == nil {
		t.Commitments.Techniques = []string{}
	}
	if t.RecipientDuties == nil {
		t.RecipientDuties = []string{}
	}
	if t.Targets == nil {
		t.Targets = []string{}
	}
	if t.GreenChannel.ReservedBeds == nil {
		t.GreenChannel.ReservedBeds = []ReservedBeds{}
	}
	return t, v.Err()
}

// PostingInput creates a posting.
type PostingInput struct {
	PairingID             string `json:"pairing_id"`
	StaffID               string `json:"staff_id"`
	RecipientDepartmentID string `json:"recipient_department_id"`
	StartsOn              string `json:"starts_on"`
	EndsOn                string `json:"ends_on"`
	Team                  string `json:"team"`
	TeamLeader            bool   `json:"team_leader"`
	Specialty             string `json:"specialty"`
	// OverrideReason accepts the posting despite its warnings; without
	// one a posting with warnings is refused, the warnings as field errors.
	OverrideReason string `json:"override_reason"`
}

// Check validates the input's form (not the program's rules).
func (in PostingInput) Check() (PostingInput, error) {
	var v apperr.Invalid
	if !apperr.IsID(in.PairingID) {
		v.Add("pairing_id", "must be a pairing id")
	}
	if !apperr.IsID(in.StaffID) {
		v.Add("staff_id", "must be a staff id")
	}
	if !apperr.IsID(in.RecipientDepartmentID) {
		v.Add("recipient_department_id", "must be a department id")
	}
	checkPeriod(&v, in.StartsOn, in.EndsOn)
	in.Team = v.Text("team", in.Team, true, 100)
	in.Specialty = v.Text("specialty", in.Specialty, false, 100)
	in.OverrideReason = v.Text("override_reason", in.OverrideReason, false, maxTextChars)
	return in, v.Err()
}

// PostingPatch changes a posting; absent fields stay.
type PostingPatch struct {
	RecipientDepartmentID *string `json:"recipient_department_id"`
	StartsOn              *string `json:"starts_on"`
	EndsOn                *string `json:"ends_on"`
	Team                  *string `json:"team"`
	TeamLeader            *bool   `json:"team_leader"`
	Specialty             *string `json:"specialty"`
	OverrideReason        string  `json:"override_reason"`
}

// Apply returns p with the patch applied, or the fields at fault.
func (pt PostingPatch) Apply(p Posting) (Posting, string, error) {
	var v apperr.Invalid
	if pt.RecipientDepartmentID != nil {
		if !apperr.IsID(*pt.RecipientDepartmentID) {
			v.Add("recipient_department_id", "must be a department id")
		}
		p.RecipientDepartmentID = *pt.RecipientDepartmentID
	}
	if pt.StartsOn != nil {
		p.StartsOn = *pt.StartsOn
	}
	if pt.EndsOn != nil {
		p.EndsOn = *pt.EndsOn
	}
	checkPeriod(&v, p.StartsOn, p.EndsOn)
	if pt.Team != nil {
		p.Team = v.Text("team", *pt.Team, true, 100)
	}
	if pt.TeamLeader != nil {
		p.TeamLeader = *pt.TeamLeader
	}
	if pt.Specialty != nil {
		p.Specialty = v.Text("specialty", *pt.Specialty, false, 100)
	}
	reason := v.Text("override_reason", pt.OverrideReason, false, maxTextChars)
	return p, reason, v.Err()
}

// ArrivalInput confirms an arrival.
type ArrivalInput struct {
	ArrivedOn string `json:"arrived_on"`
	Note      string `json:"note"`
}

// AttendanceInput records a day: the doctor checks in (present) or asks
// leave with a reason; the recipient may record an absence.
type AttendanceInput struct {
	Day    string           `json:"day"`
	Status AttendanceStatus `json:"status"`
	Reason string           `json:"reason"`
}

// Check validates the day's record against its posting's period.
func (in AttendanceInput) Check(p Posting) (AttendanceInput, error) {
	var v apperr.Invalid
	checkDay(&v, "day", in.Day, true)
	if _, ok := ParseDay(in.Day); ok && (in.Day < p.StartsOn || in.Day > p.EndsOn) {
		v.Add("day", "is outside the posting")
	}
	if !in.Status.Valid() {
		v.Add("status", "must be present, leave or absent")
	}
	in.Reason = v.Text("reason", in.Reason, in.Status == Leave, 500)
	return in, v.Err()
}

// EvaluationInput is a month's evaluation.
type EvaluationInput struct {
	Scores  map[string]int `json:"scores"`
	Comment string         `json:"comment"`
}

// Check validates the scores against the criteria and returns the total.
func (in EvaluationInput) Check(criteria []Criterion) (EvaluationInput, int, error) {
	var v apperr.Invalid
	total := 0
	known := map[string]bool{}
	for _, c := range criteria {
		known[c.Code] = true
		s, ok := in.Scores[c.Code]
		switch {
		case !ok:
			v.Add("scores."+c.Code, "is required")
		case s < 0 || s > c.Max:
			v.Add("scores."+c.Code, "must be 0–"+strconv.Itoa(c.Max))
		default:
			total += s
		}
	}
	for code := range in.Scores {
		if !known[code] {
			v.Add("scores."+code, "is not a criterion")
		}
	}
	in.Comment = v.Text("comment", in.Comment, false, maxTextChars)
	return in, total, v.Err()
}

// AppraisalInput is the final appraisal.
type AppraisalInput struct {
	Grade   Grade  `json:"grade"`
	Comment string `json:"comment"`
}

// WorkLogInput is a day's work.
type WorkLogInput struct {
	Day            string     `json:"day"`
	Counts         WorkCounts `json:"counts"`
	TechniqueNames []string   `json:"technique_names"`
	Note           string     `json:"note"`
}

// WorkLogPatch corrects an entry not yet confirmed: each field left out
// keeps its value; counts, when given, replace all the counts.
type WorkLogPatch struct {
	Day            string      `json:"day"`
	Counts         *WorkCounts `json:"counts"`
	TechniqueNames *[]string   `json:"technique_names"`
	Note           *string     `json:"note"`
}

// Apply returns the entry w corrected by pt, to be checked as a new one.
func (pt WorkLogPatch) Apply(w WorkLog) WorkLogInput {
	in := WorkLogInput{Day: w.Day, Counts: w.Counts, TechniqueNames: w.TechniqueNames, Note: w.Note}
	if pt.Day != "" {
		in.Day = pt.Day
	}
	if pt.Counts != nil {
		in.Counts = *pt.Counts
	}
	if pt.TechniqueNames != nil {
		in.TechniqueNames = *pt.TechniqueNames
	}
	if pt.Note != nil {
		in.Note = *pt.Note
	}
	return in
}

// Check validates the entry against its posting's period.
func (in WorkLogInput) Check(p Posting) (WorkLogInput, error) {
	var v apperr.Invalid
	checkDay(&v, "day", in.Day, true)
	if _, ok := ParseDay(in.Day); ok && (in.Day < p.StartsOn || in.Day > p.EndsOn) {
		v.Add("day", "is outside the posting")
	}
	c := in.Counts
	for field, n := range map[string]int{
		"outpatients": c.Outpatients, "ward_rounds": c.WardRounds, "operations": c.Operations,
		"surgical_demonstrations": c.SurgicalDemos, "teaching_rounds": c.TeachingRounds, "lectures": c.Lectures,
		"case_discussions": c.CaseDiscussions, "consultations": c.Consultations, "people_trained": c.PeopleTrained,
		"free_clinics": c.FreeClinics, "free_clinic_people": c.FreeClinicPeople, "new_techniques": c.NewTechniques,
	} {
		checkCount(&v, "counts."+field, n)
	}
	in.TechniqueNames = checkList(&v, "technique_names", in.TechniqueNames)
	if len(in.TechniqueNames) > c.NewTechniques {
		v.Add("technique_names", "names more techniques than counts.new_techniques")
	}
	in.Note = v.Text("note", in.Note, false, maxTextChars)
	return in, v.Err()
}

// hhmm is a time of day.
var hhmm = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)

// ClinicSessionInput publishes one clinic.
type ClinicSessionInput struct {
	PostingID string `json:"posting_id"`
	Day       string `json:"day"`
	StartsAt  string `json:"starts_at"`
	EndsAt    string `json:"ends_at"`
	Place     string `json:"place"`
}

// Check validates the clinic: within its posting, at least the lead time
// after publishedOn, a time range within the day.
func (in ClinicSessionInput) Check(c Config, p Posting, publishedOn string) (ClinicSessionInput, error) {
	var v apperr.Invalid
	checkDay(&v, "day", in.Day, true)
	if _, ok := ParseDay(in.Day); ok {
		switch {
		case in.Day < p.StartsOn || in.Day > p.EndsOn:
			v.Add("day", "is outside the posting")
		case in.Day < c.ScheduleOpensOn(publishedOn):
			v.Add("day", fmt.Sprintf("must be published at least %d days ahead (from %s)", c.ScheduleLeadDays, c.ScheduleOpensOn(publishedOn)))
		}
	}
	if !hhmm.MatchString(in.StartsAt) {
		v.Add("starts_at", "must be a time HH:MM")
	}
	if !hhmm.MatchString(in.EndsAt) {
		v.Add("ends_at", "must be a time HH:MM")
	} else if hhmm.MatchString(in.StartsAt) && in.EndsAt <= in.StartsAt {
		v.Add("ends_at", "must be after starts_at")
	}
	in.Place = v.Text("place", in.Place, false, maxItemChars)
	return in, v.Err()
}

// ClinicChange moves a published clinic: each field left empty keeps its
// value.
type ClinicChange struct {
	Day      string `json:"day"`
	StartsAt string `json:"starts_at"`
	EndsAt   string `json:"ends_at"`
	Place    string `json:"place"`
}

// Apply returns the clinic input c changed to, to be checked as a new one.
func (ch ClinicChange) Apply(c ClinicSession) ClinicSessionInput {
	in := ClinicSessionInput{PostingID: c.PostingID, Day: c.Day, StartsAt: c.StartsAt, EndsAt: c.EndsAt, Place: c.Place}
	if ch.Day != "" {
		in.Day = ch.Day
	}
	if ch.StartsAt != "" {
		in.StartsAt = ch.StartsAt
	}
	if ch.EndsAt != "" {
		in.EndsAt = ch.EndsAt
	}
	if ch.Place != "" {
		in.Place = ch.Place
	}
	return in
}

// ClinicCancel calls a published clinic off.
type ClinicCancel struct {
	Reason string `json:"reason"`
}

// Check requires a reason: residents were told of the clinic.
func (in ClinicCancel) Check() (ClinicCancel, error) {
	var v apperr.Invalid
	in.Reason = v.Text("reason", in.Reason, true, maxItemChars)
	return in, v.Err()
}

// TraineeInput records recipient staff sent to study.
type TraineeInput struct {
	PairingID      string `json:"pairing_id"`
	StaffID        string `json:"staff_id"`
	HostDepartment string `json:"host_department"`
	StartsOn       string `json:"starts_on"`
	EndsOn         string `json:"ends_on"`
}

// TraineePatch corrects a trainee record: each field left empty keeps its
// value. Who was sent is not corrected: a record of the wrong person is a
// new record.
type TraineePatch struct {
	HostDepartment string `json:"host_department"`
	StartsOn       string `json:"starts_on"`
	EndsOn         string `json:"ends_on"`
}

// Apply checks t as corrected by pt and returns it.
func (pt TraineePatch) Apply(t Trainee) (Trainee, error) {
	var v apperr.Invalid
	if pt.HostDepartment != "" {
		t.HostDepartment = v.Text("host_department", pt.HostDepartment, true, 100)
	}
	if pt.StartsOn != "" {
		t.StartsOn = pt.StartsOn
	}
	if pt.EndsOn != "" {
		t.EndsOn = pt.EndsOn
	}
	checkPeriod(&v, t.StartsOn, t.EndsOn)
	return t, v.Err()
}

// Check validates the input's form.
func (in TraineeInput) Check() (TraineeInput, error) {
	var v apperr.Invalid
	if !apperr.IsID(in.PairingID) {
		v.Add("pairing_id", "must be a pairing id")
	}
	if !apperr.IsID(in.StaffID) {
		v.Add("staff_id", "must be a staff id")
	}
	in.HostDepartment = v.Text("host_department", in.HostDepartment, true, 100)
	checkPeriod(&v, in.StartsOn, in.EndsOn)
	return in, v.Err()
}
