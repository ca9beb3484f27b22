package referrals

import (
	"context"
	"errors"

	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/directory"
	"duikou/internal/patient"
	"duikou/internal/store"
	"duikou/referral"
)

// SlipPatient is what the printed slip shows of the patient: what the
// patient register shows, the identity number masked as it is stored.
type SlipPatient struct {
	Name             string
	Sex              patient.Sex
	BirthDate        string
	NationalIDMasked string
}

// Slip is a ticket as printed (转诊单): the ticket with the names behind its
// ids. A name that cannot be found is left empty.
type Slip struct {
	Referral            referral.Referral
	Patient             SlipPatient
	ReferringHospital   string
	ReferringDepartment string
	ReferringDoctor     string
	ReceivingHospital   string
	ReceivingDepartment string
	ReceivingDoctor     string
	DecidedBy           string // who accepted or rejected it
}

// SlipDirectory names hospitals, departments and roster staff;
// store.Directory implements it.
type SlipDirectory interface {
	Hospital(ctx context.Context, id string) (directory.Hospital, error)
	Department(ctx context.Context, id string) (directory.Department, error)
	StaffMember(ctx context.Context, id string) (directory.Staff, error)
}

// SlipUsers names users; store.Users implements it.
type SlipUsers interface {
	User(ctx context.Context, id string) (auth.User, error)
}

// SlipPatients reads a patient's register entry; store.Patients implements it.
type SlipPatients interface {
	Patient(ctx context.Context, id string) (patient.Patient, error)
}

var (
	_ SlipDirectory = (*store.Directory)(nil)
	_ SlipUsers     = (*store.Users)(nil)
	_ SlipPatients  = (*store.Patients)(nil)
)

// Slips builds printable referral slips.
type Slips struct {
	svc      *Service
	patients SlipPatients
	dir      SlipDirectory
	users    SlipUsers
}

// NewSlips builds the slip service on the referral service.
func NewSlips(svc *Service, patients SlipPatients, dir SlipDirectory, users SlipUsers) *Slips {
	return &Slips{svc: svc, patients: patients, dir: dir, users: users}
}

// Slip returns the printable slip of a ticket the caller's hospital is a
// party to; any other is not found and the attempt recorded, as for Get.
//
// The patient's name and masked identity number are read here, not through
// the patient register's own reach check: a party to a ticket holds the
// patient's consent to be referred between the two hospitals, and the
// receiving hospital may not be paired with the patient's home (a township
// patient sent on to its county's tertiary partner). The read is audited as a
// patient read, like every other, beside the ticket read.
//
// A draft has no slip (apperr.Conflict): it has no number yet, and only its
// writer sees it at all.
func (s *Slips) Slip(ctx context.Context, p auth.Principal, id string) (Slip, error) {
	r, err := s.svc.visible(ctx, p, id)
	if err != nil {
		return Slip{}, err
	}
	if r.Status == referral.Draft {
		return Slip{}, apperr.Conflict("a draft has no referral slip yet; submit it first")
	}
	pt, err := s.patients.Patient(ctx, r.PatientID)
	if err != nil {
		return Slip{}, err
	}
	out := Slip{Referral: r, Patient: SlipPatient{Name: pt.Name, Sex: pt.Sex, BirthDate: pt.BirthDate, NationalIDMasked: pt.NationalIDMasked}}
	if out.ReferringHospital, err = s.hospital(ctx, r.ReferringHospitalID); err != nil {
		return Slip{}, err
	}
	if out.ReceivingHospital, err = s.hospital(ctx, r.ReceivingHospitalID); err != nil {
		return Slip{}, err
	}
	if out.ReferringDepartment, err = s.department(ctx, r.ReferringDepartmentID); err != nil {
		return Slip{}, err
	}
	if out.ReceivingDepartment, err = s.department(ctx, r.ReceivingDepartmentID); err != nil {
		return Slip{}, err
	}
	if out.ReferringDoctor, err = s.person(ctx, r.ReferringDoctorID); err != nil {
		return Slip{}, err
	}
	if out.ReceivingDoctor, err = s.person(ctx, r.ReceivingDoctorID); err != nil {
		return Slip{}, err
	}
	if out.DecidedBy, err = s.person(ctx, r.DecidedBy); err != nil {
		return Slip{}, err
	}
	err = s.svc.db.InTx(ctx, func(ctx context.Context) error {
		if err := s.svc.record(ctx, p, ActionRead, r, audit.Success, "slip"); err != nil {
			return err
		}
		src := audit.SourceFrom(ctx)
		return s.svc.audit.Record(ctx, audit.Entry{
			At: s.svc.now(), ActorID: p.UserID, ActorHospitalID: p.HospitalID, Action: patient.ActionRead,
			ResourceType: "patient", ResourceID: pt.ID, PatientID: pt.ID, Outcome: audit.Success,
			RequestID: src.RequestID, ClientAddr: src.ClientAddr, Detail: "referral slip " + r.Number,
		})
	})
	if err != nil {
		return Slip{}, err
	}
	return out, nil
}

// named turns a lookup into a name: an empty or unknown id has none.
func named[T any](ctx context.Context, id string, get func(context.Context, string) (T, error), name func(T) string) (string, error) {
	if id == "" || !apperr.IsID(id) {
		return "", nil
	}
	v, err := get(ctx, id)
	if errors.Is(err, apperr.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return name(v), nil
}

func (s *Slips) hospital(ctx context.Context, id string) (string, error) {
	return named(ctx, id, s.dir.Hospital, func(h directory.Hospital) string { return h.Name })
}

func (s *Slips) department(ctx context.Context, id string) (string, error) {
	return named(ctx, id, s.dir.Department, func(d directory.Department) string { return d.Name })
}

// person names a doctor or desk member: tickets name doctors by their roster
// entry or by their user account, so both are tried.
func (s *Slips) person(ctx context.Context, id string) (string, error) {
	n, err := named(ctx, id, s.dir.StaffMember, func(st directory.Staff) string { return st.Name })
	if n != "" || err != nil {
		return n, err
	}
	return named(ctx, id, s.users.User, func(u auth.User) string { return u.DisplayName })
}
