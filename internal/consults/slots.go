package consults

import (
	"context"
	"errors"
	"strconv"
	"time"

	"duikou/consult"
	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/store"
)

// Remote-clinic slots: a specialist publishes them for their own hospital;
// the hospitals paired with it see them and book places, first come.

func (s *Service) recordSlot(ctx context.Context, p auth.Principal, action string, x consult.ClinicSlot, detail string) error {
	return s.record(ctx, p, action, "clinic_slot", x.ID, "", audit.Success, detail)
}

// Publish writes a slot of the calling specialist's own clinic, in one of
// its hospital's departments.
func (s *Service) Publish(ctx context.Context, p auth.Principal, in consult.SlotInput) (consult.ClinicSlot, error) {
	x, err := consult.Publish(p, in, s.now(), s.loc)
	if err != nil {
		return consult.ClinicSlot{}, err
	}
	var v apperr.Invalid
	if err := s.checkDepartment(ctx, x.DepartmentID, p.HospitalID, "department_id", "must be a department of your hospital", &v); err != nil {
		return consult.ClinicSlot{}, err
	}
	if err := v.Err(); err != nil {
		return consult.ClinicSlot{}, err
	}
	x.ID = newID()
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateSlot(ctx, x); err != nil {
			return err
		}
		return s.recordSlot(ctx, p, ActionSlotPublish, x, x.Start.UTC().Format(time.RFC3339)+" capacity "+strconv.Itoa(x.Capacity))
	})
	if err != nil {
		return consult.ClinicSlot{}, err
	}
	return x, nil
}

// SlotQuery selects the slots a caller browses: those starting in [From, To)
// (a window of at most MaxSlotWindow), optionally one specialist's or one
// department's.
type SlotQuery struct {
	From, To     time.Time
	SpecialistID string
	DepartmentID string
	Limit        int
}

// MaxSlotWindow bounds a slot listing: a published schedule reaches a
// quarter ahead (consult.PublishHorizon).
const MaxSlotWindow = consult.PublishHorizon + 7*24*time.Hour

// Slots lists the slots visible to the caller's hospital: its own
// specialists' and those of hospitals it is paired with (cancelled ones
// only for their own hospital), by start time.
func (s *Service) Slots(ctx context.Context, p auth.Principal, q SlotQuery) ([]consult.ClinicSlot, error) {
	if p.HospitalID == "" {
		return nil, apperr.Forbidden("only staff of a hospital see remote-clinic slots")
	}
	var v apperr.Invalid
	switch {
	case !q.To.After(q.From):
		v.Add("to", "must be after from")
	case q.To.Sub(q.From) > MaxSlotWindow:
		v.Add("to", "must be at most 14 weeks after from")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	hospitals := []string{p.HospitalID}
	for h, ok := range p.Reach {
		if ok && h != p.HospitalID {
			hospitals = append(hospitals, h)
		}
	}
	list, err := s.store.Slots(ctx, store.SlotFilter{HospitalIDs: hospitals, SpecialistID: q.SpecialistID,
		DepartmentID: q.DepartmentID, From: q.From, To: q.To, IncludeCancelled: true, Limit: q.Limit})
	if err != nil {
		return nil, err
	}
	out := list[:0]
	for _, x := range list {
		if consult.Visible(x, p) {
			out = append(out, x)
		}
	}
	return out, nil
}

// Book takes one place of slot id for a patient within the caller's reach
// and returns the expert-clinic session it creates, already scheduled. The
// place is taken by the store's conditional update in the same transaction
// as the session, its event, outbox row and audit row: when two callers
// race for the last place, one books and the other gets a conflict.
func (s *Service) Book(ctx context.Context, p auth.Principal, id string, in consult.BookingInput) (consult.Session, error) {
	var out consult.Session
	err := s.db.InTx(ctx, func(ctx context.Context) error {
		slot, err := s.store.Slot(ctx, id)
		if err != nil {
			return err
		}
		if !consult.Visible(slot, p) {
			return notParty{"clinic_slot", slot.ID, ""}
		}
		var v apperr.Invalid
		var consent consult.Consent
		if apperr.IsID(in.PatientID) {
			if err := s.checkPatient(ctx, p, in.PatientID, &v); err != nil {
				return err
			}
			probe := consult.Session{PatientID: in.PatientID, TargetHospitalID: slot.HospitalID}
			if consent, err = s.consentOf(ctx, probe); err != nil {
				return err
			}
		}
		now := s.now()
		_, x, ev, err := consult.Book(slot, p, in, &consent, now)
		if err != nil {
			var inv apperr.Invalid
			if !errors.As(err, &inv) {
				return err
			}
			v = append(v, inv...)
		}
		if err := v.Err(); err != nil {
			return err
		}
		if in.RequestingDepartmentID != "" {
			if err := s.checkDepartment(ctx, x.RequestingDepartmentID, p.HospitalID, "requesting_department_id", "must be a department of your hospital", &v); err != nil {
				return err
			}
			if err := v.Err(); err != nil {
				return err
			}
		}
		if _, err := s.store.TakePlace(ctx, slot.ID, now); err != nil {
			return err
		}
		x.ID = newID()
		x = s.deadlines.Stamp(x) // a booked session waits for no answer: none, but stamped like every change
		if err := s.store.CreateSession(ctx, x); err != nil {
			return err
		}
		if err := s.written(ctx, p, x, ev, "slot "+slot.ID); err != nil {
			return err
		}
		out = x
		return nil
	})
	if err := s.finish(ctx, p, err); err != nil {
		return consult.Session{}, err
	}
	return out, nil
}

// CancelSlot withdraws a slot of the caller's own clinic that nobody is
// booked on. A booking made meanwhile raised the slot's version, so the
// store refuses the cancellation rather than drop the patient.
func (s *Service) CancelSlot(ctx context.Context, p auth.Principal, id, reason string) (consult.ClinicSlot, error) {
	var out consult.ClinicSlot
	err := s.db.InTx(ctx, func(ctx context.Context) error {
		slot, err := s.store.Slot(ctx, id)
		if err != nil {
			return err
		}
		if !consult.Visible(slot, p) {
			return notParty{"clinic_slot", slot.ID, ""}
		}
		next, err := consult.CancelSlot(slot, p, reason, s.now())
		if err != nil {
			return err
		}
		if next.Version == slot.Version { // already cancelled: a retry
			out = slot
			return nil
		}
		if err := s.store.UpdateSlot(ctx, next, slot.Version); err != nil {
			if errors.Is(err, apperr.ErrStale) {
				return apperr.Conflict("the slot changed meanwhile (a booking?); reload it")
			}
			return err
		}
		if err := s.recordSlot(ctx, p, ActionSlotCancel, next, next.CancelReason); err != nil {
			return err
		}
		out = next
		return nil
	})
	if err := s.finish(ctx, p, err); err != nil {
		return consult.ClinicSlot{}, err
	}
	return out, nil
}
