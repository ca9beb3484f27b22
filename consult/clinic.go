package consult

import (
	"errors"
	"slices"
	"strings"
	"time"

	"duikou/internal/apperr"
	"duikou/internal/auth"
)

// SlotStatus is where a remote-clinic slot stands.
type SlotStatus string

const (
	SlotPublished SlotStatus = "published" // open for booking
	SlotBooked    SlotStatus = "booked"    // full
	SlotCancelled SlotStatus = "cancelled"
)

// ClinicSlot is one published slot of a specialist's remote expert clinic
// (远程专家门诊). Booking takes one place; a slot holds Capacity places
// (usually one patient).
type ClinicSlot struct {
	ID           string     `json:"id"`
	SpecialistID string     `json:"specialist_id"`
	HospitalID   string     `json:"hospital_id"`
	DepartmentID string     `json:"department_id"`
	Start        time.Time  `json:"start"`
	End          time.Time  `json:"end"`
	Capacity     int        `json:"capacity"`
	Booked       int        `json:"booked"`
	Status       SlotStatus `json:"status"`
	PublishedAt  time.Time  `json:"published_at"`
	CancelledAt  *time.Time `json:"cancelled_at"`
	CancelReason string     `json:"cancel_reason,omitempty"`
	Version      int        `json:"version"`
}

// SlotInput is what a specialist publishes.
type SlotInput struct {
	DepartmentID string    `json:"department_id"`
	Start        time.Time `json:"start"`
	End          time.Time `json:"end"`
	Capacity     int       `json:"capacity"` // 0 means 1
}

// Slot limits.
const (
	MaxCapacity    = 20
	PublishHorizon = 13 * 7 * 24 * time.Hour // a quarter ahead at most
)

// PublishBy is the latest moment a slot starting at start may be published:
// the start (Monday 00:00, in loc) of the week before the slot's week. The
// recipient hospital posts the coming week's clinic schedule to residents one
// week ahead (提前一周公示), so next week's slots must all be known when this
// week begins; a slot is therefore always public at least 7 days, and at most
// 14, before it starts. loc is the hospitals' zone (Asia/Shanghai).
func PublishBy(start time.Time, loc *time.Location) time.Time {
	t := start.In(loc)
	monday := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc).AddDate(0, 0, -((int(t.Weekday()) + 6) % 7))
	return monday.AddDate(0, 0, -7)
}

// Publish writes a slot of the calling specialist's own clinic. ID is left
// for the store.
func Publish(p auth.Principal, in SlotInput, now time.Time, loc *time.Location) (ClinicSlot, error) {
	if p.HospitalID == "" || !p.Has(auth.Specialist) {
		return ClinicSlot{}, apperr.Forbidden("only specialists publish remote-clinic slots")
	}
	var v apperr.Invalid
	s := ClinicSlot{
		SpecialistID: p.UserID, HospitalID: p.HospitalID,
		DepartmentID: strings.TrimSpace(in.DepartmentID),
		Start:        in.Start, End: in.End, Capacity: in.Capacity,
		Status: SlotPublished, PublishedAt: now, Version: 1,
	}
	if !apperr.IsID(s.DepartmentID) {
		v.Add("department_id", "must be the id of a department")
	}
	if s.Capacity == 0 {
		s.Capacity = 1
	}
	if s.Capacity < 1 || s.Capacity > MaxCapacity {
		v.Add("capacity", "must be between 1 and 20 patients")
	}
	switch {
	case s.Start.IsZero():
		v.Add("start", "is required")
	case now.After(PublishBy(s.Start, loc)):
		v.Add("start", "is too soon: a slot is published by the start of the week before its week ("+
			PublishBy(s.Start, loc).Format("2006-01-02 15:04 MST")+")")
	case s.Start.After(now.Add(PublishHorizon)):
		v.Add("start", "must be within 13 weeks")
	}
	switch {
	case s.End.IsZero():
		v.Add("end", "is required")
	case s.Start.IsZero():
	case !s.End.After(s.Start):
		v.Add("end", "must be after start")
	case s.End.Sub(s.Start) < MinSession:
		v.Add("end", "must be at least 10 minutes after start")
	case s.End.Sub(s.Start) > MaxSession:
		v.Add("end", "must be at most 8 hours after start")
	}
	if err := v.Err(); err != nil {
		return ClinicSlot{}, err
	}
	return s, nil
}

// Visible reports whether p may see slot s: its own hospital always; any
// other hospital only when paired with the specialist's hospital (p's reach)
// and while the slot is not cancelled. Everyone else is answered not found.
func Visible(s ClinicSlot, p auth.Principal) bool {
	switch {
	case p.HospitalID == "":
		return false
	case p.HospitalID == s.HospitalID:
		return true
	}
	return p.Reach[s.HospitalID] && s.Status != SlotCancelled
}

// Open reports whether a place can be booked at now: published, not full,
// not begun.
func (s ClinicSlot) Open(now time.Time) bool {
	return s.Status == SlotPublished && s.Booked < s.Capacity && now.Before(s.Start)
}

// BookingInput is what the booking doctor writes about the patient.
type BookingInput struct {
	PatientID              string       `json:"patient_id"`
	RequestingDepartmentID string       `json:"requesting_department_id"`
	Question               string       `json:"question"`
	ClinicalSummary        string       `json:"clinical_summary"`
	Attachments            []Attachment `json:"attachments"`
}

// Book takes one place of slot for a patient of p's hospital, first come:
// the returned slot carries one more booking and is the conditional update
// the store applies (it writes only if the stored slot still has the version
// and a free place, so two bookings of the last place cannot both succeed).
// The returned session is the expert-clinic session, scheduled at the slot's
// time with its specialist assigned, and its creation event. consent is what
// the service found; a patient without both consents cannot be booked.
func Book(slot ClinicSlot, p auth.Principal, in BookingInput, consent *Consent, now time.Time) (ClinicSlot, Session, Event, error) {
	if !Visible(slot, p) {
		return slot, Session{}, Event{}, apperr.ErrNotFound
	}
	if p.HospitalID == slot.HospitalID {
		return slot, Session{}, Event{}, apperr.Forbidden("a remote clinic serves the paired hospitals, not the specialist's own")
	}
	if !p.Has(requesterRoles...) {
		return slot, Session{}, Event{}, apperr.Forbidden("only doctors book a remote-clinic slot")
	}
	if !slot.Open(now) {
		switch {
		case !now.Before(slot.Start):
			return slot, Session{}, Event{}, apperr.Conflict("this slot has begun")
		case slot.Status == SlotPublished || slot.Status == SlotBooked:
			return slot, Session{}, Event{}, apperr.Conflict("this slot is fully booked")
		}
		return slot, Session{}, Event{}, apperr.Conflict("this slot is " + string(slot.Status))
	}
	if consent == nil {
		return slot, Session{}, Event{}, errNoConsentFacts
	}
	t := now
	published := slot.PublishedAt
	s := Session{
		Kind: ExpertClinic, Urgency: Routine,
		RequesterID: p.UserID, RequestingHospitalID: p.HospitalID,
		RequestingDepartmentID: in.RequestingDepartmentID,
		TargetHospitalID:       slot.HospitalID,
		TargetDepartmentIDs:    []string{slot.DepartmentID},
		RequestedSpecialistIDs: []string{slot.SpecialistID},
		Question:               in.Question, ClinicalSummary: in.ClinicalSummary,
		Attachments: slices.Clone(in.Attachments),
		PatientID:   in.PatientID,
		SlotID:      slot.ID,
		Status:      Scheduled, Version: 1, CreatedAt: now, UpdatedAt: now,
		// Publishing the slot was the specialist's acceptance, in advance.
		Specialists: []Assignment{{SpecialistID: slot.SpecialistID, DepartmentID: slot.DepartmentID}},
		AcceptedBy:  slot.SpecialistID, AcceptedAt: &published,
		Schedule: &Period{Start: slot.Start, End: slot.End}, ScheduledAt: &t,
	}
	for i, a := range s.Attachments {
		if a.Dicom != nil {
			d := *a.Dicom
			s.Attachments[i].Dicom = &d
		}
	}
	var v, c apperr.Invalid
	if err := s.Validate(); err != nil && !errors.As(err, &v) {
		return slot, Session{}, Event{}, err
	}
	if err := checkConsent(*consent); err != nil && errors.As(err, &c) {
		v = append(v, c...)
	}
	if err := v.Err(); err != nil {
		return slot, Session{}, Event{}, err
	}
	next := slot
	next.Booked++
	if next.Booked == next.Capacity {
		next.Status = SlotBooked
	}
	next.Version++
	ev := Event{Action: BookAction, To: Scheduled, Actor: p.UserID, ActorHospitalID: p.HospitalID,
		Reason: "slot " + slot.ID, At: now}
	return next, s, ev, nil
}

// ReleasePlace gives back the place of a cancelled expert-clinic session, so
// another patient can book it while the slot has not begun.
func ReleasePlace(slot ClinicSlot, now time.Time) ClinicSlot {
	if slot.Booked == 0 || slot.Status == SlotCancelled {
		return slot
	}
	next := slot
	next.Booked--
	if next.Status == SlotBooked {
		next.Status = SlotPublished
	}
	next.Version++
	return next
}

// CancelSlot withdraws a slot. Only its specialist does, before it begins,
// and only while nobody is booked on it: a booked patient's session is
// cancelled (and its place released) first, so nobody is dropped silently.
func CancelSlot(slot ClinicSlot, p auth.Principal, reason string, now time.Time) (ClinicSlot, error) {
	if p.HospitalID != slot.HospitalID {
		return slot, apperr.ErrNotFound
	}
	if p.UserID != slot.SpecialistID || !p.Has(auth.Specialist) {
		return slot, apperr.Forbidden("only the slot's specialist may cancel it")
	}
	switch {
	case slot.Status == SlotCancelled:
		return slot, nil
	case !now.Before(slot.Start):
		return slot, apperr.Conflict("this slot has begun")
	case slot.Booked > 0:
		return slot, apperr.Conflict("patients are booked on this slot; cancel their sessions first")
	}
	var v apperr.Invalid
	reason = v.Text("reason", reason, true, apperr.MaxText)
	if err := v.Err(); err != nil {
		return slot, err
	}
	next := slot
	t := now
	next.Status, next.CancelledAt, next.CancelReason = SlotCancelled, &t, reason
	next.Version++
	return next, nil
}
