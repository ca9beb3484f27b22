package consults_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"duikou/consult"
	"duikou/internal/apperr"
	"duikou/internal/auth"
	"duikou/internal/consults"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
)

// clinicStart is 09:00 (China) on a day at least two weeks ahead, so a slot
// starting then may still be published now.
func (w *world) clinicStart() time.Time {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		loc = time.FixedZone("CST", 8*3600)
	}
	d := w.now.Add(15 * 24 * time.Hour).In(loc)
	return time.Date(d.Year(), d.Month(), d.Day(), 9, 0, 0, 0, loc).UTC()
}

func (w *world) publish(t *testing.T, capacity int) consult.ClinicSlot {
	t.Helper()
	start := w.clinicStart()
	slot, err := w.svc.Publish(context.Background(), w.cardiologist, consult.SlotInput{DepartmentID: w.cardio,
		Start: start, End: start.Add(30 * time.Minute), Capacity: capacity})
	if err != nil {
		t.Fatal(err)
	}
	return slot
}

func booking(patientID string) consult.BookingInput {
	return consult.BookingInput{PatientID: patientID, Question: "高血压控制不佳，调整用药？", ClinicalSummary: "女，68岁，血压波动"}
}

// Slots of a tertiary specialist are seen by the specialist's hospital and
// the county hospitals paired with it, and by nobody else; a cancelled slot
// disappears from the paired hospitals' schedule. A slot is published by the
// start of the week before its week, in the specialist's own department.
func TestClinicSlotsVisibleToPairedHospitals(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		soon := w.now.Add(2 * 24 * time.Hour)
		if _, err := w.svc.Publish(ctx, w.cardiologist, consult.SlotInput{DepartmentID: w.cardio, Start: soon, End: soon.Add(time.Hour)}); !slices.Equal(fieldsOf(err), []string{"start"}) {
			t.Fatalf("publish for the day after tomorrow: %v", err)
		}
		start := w.clinicStart()
		if _, err := w.svc.Publish(ctx, w.cardiologist, consult.SlotInput{DepartmentID: w.countyDept, Start: start, End: start.Add(time.Hour)}); !slices.Equal(fieldsOf(err), []string{"department_id"}) {
			t.Fatalf("publish in another hospital's department: %v", err)
		}
		if _, err := w.svc.Publish(ctx, w.doctor, consult.SlotInput{DepartmentID: w.countyDept, Start: start, End: start.Add(time.Hour)}); !errors.Is(err, apperr.ErrForbidden) {
			t.Fatalf("publish by a county doctor: %v", err)
		}
		kept, dropped := w.publish(t, 1), w.publish(t, 2)

		window := consults.SlotQuery{From: w.now, To: w.now.Add(28 * 24 * time.Hour), Limit: 50}
		ids := func(who auth.Principal) []string {
			t.Helper()
			list, err := w.svc.Slots(ctx, who, window)
			if err != nil {
				t.Fatalf("slots for %s: %v", who.UserID, err)
			}
			var out []string
			for _, s := range list {
				out = append(out, s.ID)
			}
			return out
		}
		both := []string{kept.ID, dropped.ID}
		if got := ids(w.doctor); !slices.Equal(got, both) {
			t.Errorf("paired county sees %v, want %v", got, both)
		}
		if got := ids(w.head); !slices.Equal(got, both) {
			t.Errorf("own hospital sees %v, want %v", got, both)
		}
		if got := ids(w.outsider); len(got) != 0 {
			t.Errorf("unpaired county sees %v", got)
		}
		if _, err := w.svc.Book(ctx, w.outsider, kept.ID, booking(w.patient)); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("unpaired county books: %v", err)
		}
		if _, err := w.svc.CancelSlot(ctx, w.head, dropped.ID, "出差"); !errors.Is(err, apperr.ErrForbidden) {
			t.Errorf("cancel by another specialist: %v", err)
		}
		c, err := w.svc.CancelSlot(ctx, w.cardiologist, dropped.ID, "出差")
		if err != nil || c.Status != consult.SlotCancelled {
			t.Fatalf("cancel: %+v, %v", c, err)
		}
		if got := ids(w.doctor); !slices.Equal(got, []string{kept.ID}) {
			t.Errorf("after cancelling, the county sees %v", got)
		}
		if got := ids(w.head); !slices.Equal(got, both) {
			t.Errorf("after cancelling, the own hospital sees %v (cancelled included)", got)
		}
		if _, err := w.svc.Slots(ctx, w.doctor, consults.SlotQuery{From: w.now, To: w.now.Add(200 * 24 * time.Hour)}); !slices.Equal(fieldsOf(err), []string{"to"}) {
			t.Errorf("a window of 200 days: %v", err)
		}
	})
}

// Booking takes a place and creates the expert-clinic session, scheduled at
// the slot's time with the specialist assigned; it needs the patient's
// consents. Cancelling the session gives the place back for the next patient.
func TestClinicSlotBookingAndRelease(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		slot := w.publish(t, 1)
		if _, err := w.svc.Book(ctx, w.doctor, slot.ID, booking(w.unconsented)); !slices.Equal(fieldsOf(err), []string{"consent"}) {
			t.Fatalf("book without consent: %v", err)
		}
		if _, err := w.svc.Book(ctx, w.head, slot.ID, booking(w.patient)); !errors.Is(err, apperr.ErrForbidden) {
			t.Fatalf("booking at the specialist's own hospital: %v", err)
		}
		s, err := w.svc.Book(ctx, w.doctor, slot.ID, booking(w.patient))
		if err != nil {
			t.Fatal(err)
		}
		if s.Kind != consult.ExpertClinic || s.Status != consult.Scheduled || s.SlotID != slot.ID ||
			!s.Schedule.Start.Equal(slot.Start) || !s.Assigned(w.cardiologist.UserID) || s.RequestingHospitalID != w.county {
			t.Fatalf("booked session: %+v", s)
		}
		if got, _ := w.st.Slot(ctx, slot.ID); got.Booked != 1 || got.Status != consult.SlotBooked {
			t.Fatalf("slot after booking: %+v", got)
		}
		second := w.addPatient(t, true)
		if _, err := w.svc.Book(ctx, w.doctor, slot.ID, booking(second)); !errors.Is(err, apperr.ErrConflict) {
			t.Fatalf("book a full slot: %v", err)
		}
		if _, err := w.svc.CancelSlot(ctx, w.cardiologist, slot.ID, "出差"); !errors.Is(err, apperr.ErrConflict) {
			t.Fatalf("cancel a booked slot: %v", err)
		}
		if n := count(t, db, `SELECT count(*) FROM outbox WHERE topic = $1 AND key = $2`, consults.TopicChanged, s.ID); n != 1 {
			t.Errorf("booking outbox rows: %d", n)
		}

		if _, err := w.svc.Act(ctx, w.doctor, s.ID, s.Version, consult.Cancel, consult.ActionInput{Reason: "患者已在县医院调整用药"}); err != nil {
			t.Fatal(err)
		}
		if got, _ := w.st.Slot(ctx, slot.ID); got.Booked != 0 || got.Status != consult.SlotPublished {
			t.Fatalf("slot after the session was cancelled: %+v", got)
		}
		again, err := w.svc.Book(ctx, w.doctor, slot.ID, booking(second))
		if err != nil {
			t.Fatalf("book the released place: %v", err)
		}
		// The booked session runs like any other: the specialist starts it at the slot's time.
		w.now = slot.Start
		if _, err := w.svc.Act(ctx, w.cardiologist, again.ID, again.Version, consult.Start, consult.ActionInput{}); err != nil {
			t.Fatalf("start the expert clinic: %v", err)
		}
	})
}

// Twenty doctors race for the one place of a slot: exactly one books it, the
// others are told it is full, and one session exists.
func TestClinicSlotConcurrentBooking(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		slot := w.publish(t, 1)
		const n = 20
		patients := make([]string, n)
		for i := range patients {
			patients[i] = w.addPatient(t, true)
		}
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[i] = w.svc.Book(ctx, w.doctor, slot.ID, booking(patients[i]))
			}()
		}
		close(start)
		wg.Wait()
		booked := 0
		for i, err := range errs {
			switch {
			case err == nil:
				booked++
			case !errors.Is(err, apperr.ErrConflict):
				t.Errorf("booking %d: %v", i, err)
			}
		}
		if booked != 1 {
			t.Fatalf("%d bookings succeeded, want 1", booked)
		}
		if got, _ := w.st.Slot(ctx, slot.ID); got.Booked != 1 {
			t.Fatalf("slot booked %d", got.Booked)
		}
		if c := count(t, db, `SELECT count(*) FROM consult_sessions WHERE slot_id = $1`, slot.ID); c != 1 {
			t.Fatalf("%d sessions on the slot", c)
		}
	})
}
