package consult

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"duikou/internal/apperr"
	"duikou/internal/auth"
)

var cst = time.FixedZone("CST", 8*3600)

func TestPublishByIsTheStartOfTheWeekBefore(t *testing.T) {
	at := func(y int, mo time.Month, d, h, mi int) time.Time { return time.Date(y, mo, d, h, mi, 0, 0, cst) }
	cases := []struct {
		name  string
		start time.Time
		want  time.Time
	}{
		{"Monday morning next week", at(2026, 11, 30, 9, 0), at(2026, 11, 23, 0, 0)},
		{"Monday midnight next week", at(2026, 11, 30, 0, 0), at(2026, 11, 23, 0, 0)},
		{"Sunday evening next week", at(2026, 12, 6, 20, 0), at(2026, 11, 23, 0, 0)},
		{"Sunday night this week", at(2026, 11, 29, 23, 30), at(2026, 11, 16, 0, 0)},
		{"given in UTC, Monday in China", time.Date(2026, 11, 29, 17, 0, 0, 0, time.UTC), at(2026, 11, 23, 0, 0)},
		{"across a year end", at(2027, 1, 1, 9, 0), at(2026, 12, 21, 0, 0)},
	}
	for _, c := range cases {
		got := PublishBy(c.start, cst)
		if !got.Equal(c.want) {
			t.Errorf("%s: publish by %v, want %v", c.name, got, c.want)
		}
		// The rule always gives residents at least a week's notice and never
		// asks for more than two.
		if lead := c.start.Sub(got); lead < 7*24*time.Hour || lead > 14*24*time.Hour {
			t.Errorf("%s: %v notice", c.name, lead)
		}
	}
}

// slotAt is a published one-patient slot of the assigned specialist.
func slotAt(start time.Time) ClinicSlot {
	return ClinicSlot{
		ID: slotID, SpecialistID: assignedID, HospitalID: tertiaryID, DepartmentID: cardioDept,
		Start: start, End: start.Add(30 * time.Minute), Capacity: 1, Status: SlotPublished,
		PublishedAt: t0.Add(-14 * 24 * time.Hour), Version: 1,
	}
}

func TestPublish(t *testing.T) {
	// now is Monday 23 November, 16:20 in China: next week's schedule is closed.
	weekAfter := time.Date(2026, 12, 7, 9, 0, 0, 0, cst)
	in := SlotInput{DepartmentID: cardioDept, Start: weekAfter, End: weekAfter.Add(30 * time.Minute)}
	s, err := Publish(tgtAssigned, in, now, cst)
	if err != nil {
		t.Fatal(err)
	}
	if s.SpecialistID != assignedID || s.HospitalID != tertiaryID || s.Capacity != 1 || s.Status != SlotPublished ||
		!s.PublishedAt.Equal(now) || s.Version != 1 || s.Booked != 0 {
		t.Errorf("published %+v", s)
	}
	// Exactly at the deadline is still in time.
	nextWeek := time.Date(2026, 11, 30, 9, 0, 0, 0, cst)
	onTime := SlotInput{DepartmentID: cardioDept, Start: nextWeek, End: nextWeek.Add(time.Hour)}
	if _, err := Publish(tgtAssigned, onTime, PublishBy(nextWeek, cst), cst); err != nil {
		t.Errorf("published at the deadline: %v", err)
	}

	cases := []struct {
		name   string
		change func(in *SlotInput)
		fields []string
	}{
		{"next week, after this week began", func(in *SlotInput) { in.Start, in.End = nextWeek, nextWeek.Add(time.Hour) }, []string{"start"}},
		{"tomorrow", func(in *SlotInput) { in.Start, in.End = now.Add(24*time.Hour), now.Add(25*time.Hour) }, []string{"start"}},
		{"beyond 13 weeks", func(in *SlotInput) {
			in.Start, in.End = now.Add(PublishHorizon+time.Hour), now.Add(PublishHorizon+2*time.Hour)
		}, []string{"start"}},
		{"no times", func(in *SlotInput) { in.Start, in.End = time.Time{}, time.Time{} }, []string{"start", "end"}},
		{"ending before it starts", func(in *SlotInput) { in.End = in.Start.Add(-time.Minute) }, []string{"end"}},
		{"five minutes", func(in *SlotInput) { in.End = in.Start.Add(5 * time.Minute) }, []string{"end"}},
		{"nine hours", func(in *SlotInput) { in.End = in.Start.Add(9 * time.Hour) }, []string{"end"}},
		{"no department", func(in *SlotInput) { in.DepartmentID = "" }, []string{"department_id"}},
		{"negative capacity", func(in *SlotInput) { in.Capacity = -1 }, []string{"capacity"}},
		{"capacity over 20", func(in *SlotInput) { in.Capacity = 21 }, []string{"capacity"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := in
			c.change(&x)
			_, err := Publish(tgtAssigned, x, now, cst)
			assertFields(t, err, c.fields...)
		})
	}
	for _, p := range []auth.Principal{tgtDesk, reqAdmin, {UserID: assignedID, Roles: []auth.Role{auth.Specialist}}} {
		if _, err := Publish(p, in, now, cst); !errors.Is(err, apperr.ErrForbidden) {
			t.Errorf("published by %v: %v", p.Roles, err)
		}
	}
}

func TestVisible(t *testing.T) {
	unpaired := principal("0194f5c2-0000-7000-8000-000000000402", "0194f5c2-0000-7000-8000-00000000e002", auth.CountyDoctor)
	unpaired.Reach = map[string]bool{countyID: true}
	open := slotAt(now.Add(8 * 24 * time.Hour))
	cancelled := open
	cancelled.Status = SlotCancelled
	booked := open
	booked.Status, booked.Booked = SlotBooked, 1
	cases := []struct {
		name string
		s    ClinicSlot
		p    auth.Principal
		want bool
	}{
		{"a paired county sees an open slot", open, reqDoctor, true},
		{"a paired county sees a full slot (as full)", booked, reqDoctor, true},
		{"a paired county does not see a cancelled slot", cancelled, reqDoctor, false},
		{"an unpaired hospital sees nothing", open, unpaired, false},
		{"the specialist's own hospital sees its cancelled slots", cancelled, tgtDesk, true},
		{"no hospital, no slots", open, auth.Principal{UserID: reqDoctorID}, false},
	}
	for _, c := range cases {
		if got := Visible(c.s, c.p); got != c.want {
			t.Errorf("%s: %v", c.name, got)
		}
	}
}

func bookingInput() BookingInput {
	r := requested(ExpertClinic)
	return BookingInput{PatientID: patientID, RequestingDepartmentID: countyDept, Question: r.Question,
		ClinicalSummary: r.ClinicalSummary, Attachments: r.Attachments[:1]}
}

func TestBookFirstComeNoDoubleBooking(t *testing.T) {
	slot := slotAt(now.Add(8 * 24 * time.Hour))
	c := bothConsent
	got, s, ev, err := Book(slot, reqDoctor, bookingInput(), &c, now)
	if err != nil {
		t.Fatal(err)
	}
	if got.Booked != 1 || got.Status != SlotBooked || got.Version != slot.Version+1 {
		t.Errorf("slot after booking %+v", got)
	}
	if s.Kind != ExpertClinic || s.Status != Scheduled || s.SlotID != slotID || s.Urgency != Routine ||
		s.TargetHospitalID != tertiaryID || !reflect.DeepEqual(s.TargetDepartmentIDs, []string{cardioDept}) ||
		!s.Assigned(assignedID) || !s.Schedule.Start.Equal(slot.Start) || !s.Schedule.End.Equal(slot.End) ||
		s.RequestingHospitalID != countyID || s.RequesterID != reqDoctorID || s.PatientID != patientID {
		t.Errorf("booked session %+v", s)
	}
	if ev.Action != BookAction || ev.To != Scheduled || ev.Actor != reqDoctorID {
		t.Errorf("booking event %+v", ev)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("the booked session is not valid: %v", err)
	}
	// The second doctor finds the slot taken.
	if _, _, _, err := Book(got, reqDispatched, bookingInput(), &c, now); !errors.Is(err, apperr.ErrConflict) {
		t.Errorf("double booking: %v, want conflict", err)
	}
	// The specialist runs the booked session like any other.
	s.ID = sessionID
	if _, _, err := Decide(s, tgtAssigned, Start, ActionInput{Consent: &c}, now); err != nil {
		t.Errorf("starting the booked session: %v", err)
	}

	two := slot
	two.Capacity = 2
	first, _, _, err := Book(two, reqDoctor, bookingInput(), &c, now)
	if err != nil || first.Status != SlotPublished || first.Booked != 1 {
		t.Fatalf("first of two places: %v %+v", err, first)
	}
	second, _, _, err := Book(first, reqDispatched, bookingInput(), &c, now)
	if err != nil || second.Status != SlotBooked || second.Booked != 2 {
		t.Fatalf("second of two places: %v %+v", err, second)
	}
	if _, _, _, err := Book(second, reqDoctor, bookingInput(), &c, now); !errors.Is(err, apperr.ErrConflict) {
		t.Errorf("third booking of two places: %v", err)
	}

	freed := ReleasePlace(got, now)
	if freed.Booked != 0 || freed.Status != SlotPublished || freed.Version != got.Version+1 {
		t.Errorf("released %+v", freed)
	}
	if _, _, _, err := Book(freed, reqDispatched, bookingInput(), &c, now); err != nil {
		t.Errorf("booking a released place: %v", err)
	}
	if again := ReleasePlace(freed, now); !reflect.DeepEqual(again, freed) {
		t.Errorf("releasing an empty slot changed it")
	}
}

func TestBookRefusals(t *testing.T) {
	slot := slotAt(now.Add(8 * 24 * time.Hour))
	c := bothConsent
	unpaired := principal("0194f5c2-0000-7000-8000-000000000402", "0194f5c2-0000-7000-8000-00000000e002", auth.CountyDoctor)
	unpaired.Reach = map[string]bool{}
	cancelled := slot
	cancelled.Status = SlotCancelled
	begun := slotAt(now.Add(-time.Minute))
	cases := []struct {
		name string
		slot ClinicSlot
		by   auth.Principal
		want error
	}{
		{"an unpaired hospital", slot, unpaired, apperr.ErrNotFound},
		{"a cancelled slot", cancelled, reqDoctor, apperr.ErrNotFound},
		{"the specialist's own hospital", slot, tgtSpecialist, apperr.ErrForbidden},
		{"the referral desk", slot, reqDesk, apperr.ErrForbidden},
		{"a slot that has begun", begun, reqDoctor, apperr.ErrConflict},
	}
	for _, x := range cases {
		got, _, ev, err := Book(x.slot, x.by, bookingInput(), &c, now)
		if !errors.Is(err, x.want) || !ev.Empty() || !reflect.DeepEqual(got, x.slot) {
			t.Errorf("%s: %v, want %v", x.name, err, x.want)
		}
	}

	// No consent, no booking: a booking schedules the session.
	for _, consent := range []Consent{{}, {RemoteConsultation: true}, {DataSharing: true}} {
		got, _, _, err := Book(slot, reqDoctor, bookingInput(), &consent, now)
		assertFields(t, err, "consent")
		if !reflect.DeepEqual(got, slot) {
			t.Errorf("booked without consent %+v", consent)
		}
	}
	if _, _, _, err := Book(slot, reqDoctor, bookingInput(), nil, now); err == nil || errors.As(err, new(apperr.Invalid)) {
		t.Errorf("booking without consent facts: %v; want a wiring error", err)
	}
	// Faults in the case and missing consent come back together.
	bad := bookingInput()
	bad.PatientID, bad.Question = "", ""
	_, _, _, err := Book(slot, reqDoctor, bad, &Consent{}, now)
	assertFields(t, err, "patient_id", "question", "consent")
}

func TestCancelSlot(t *testing.T) {
	slot := slotAt(now.Add(8 * 24 * time.Hour))
	got, err := CancelSlot(slot, tgtAssigned, "出差", now)
	if err != nil || got.Status != SlotCancelled || got.CancelReason != "出差" || !got.CancelledAt.Equal(now) || got.Version != 2 {
		t.Fatalf("cancel: %v %+v", err, got)
	}
	if again, err := CancelSlot(got, tgtAssigned, "出差", now); err != nil || !reflect.DeepEqual(again, got) {
		t.Errorf("cancelling twice: %v", err)
	}
	booked := slot
	booked.Status, booked.Booked = SlotBooked, 1
	begun := slotAt(now.Add(-time.Minute))
	cases := []struct {
		name   string
		slot   ClinicSlot
		by     auth.Principal
		reason string
		want   error
	}{
		{"another specialist", slot, tgtSpecialist, "出差", apperr.ErrForbidden},
		{"another hospital", slot, reqDoctor, "出差", apperr.ErrNotFound},
		{"a booked slot", booked, tgtAssigned, "出差", apperr.ErrConflict},
		{"a slot that has begun", begun, tgtAssigned, "出差", apperr.ErrConflict},
	}
	for _, c := range cases {
		if _, err := CancelSlot(c.slot, c.by, c.reason, now); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	_, err = CancelSlot(slot, tgtAssigned, " ", now)
	assertFields(t, err, "reason")
}
