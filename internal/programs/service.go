// Package programs is the application service of the paired-support
// program's records: it decides who may read and write each record
// (role, and which side of the pairing the caller's hospital is), lets the
// domain (package program) check the input, rules and deadlines, and writes
// each change with its audit row in one transaction.
package programs

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"duikou/attachment"
	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/directory"
	"duikou/internal/program"
	"duikou/internal/sqldb"
	"duikou/internal/store"
)

var (
	_ program.Store = (*store.Program)(nil)
	_ Files         = (*store.Attachments)(nil)
)

// Directory is what the service reads of the directory; store.Directory
// implements it.
type Directory interface {
	Hospital(ctx context.Context, id string) (directory.Hospital, error)
	Department(ctx context.Context, id string) (directory.Department, error)
	StaffMember(ctx context.Context, id string) (directory.Staff, error)
	Pairing(ctx context.Context, id string) (directory.Pairing, error)
}

// Users tells which staff member a user is; store.Users implements it.
type Users interface {
	User(ctx context.Context, id string) (auth.User, error)
}

// Files finds an uploaded file; store.Attachments implements it.
type Files interface {
	Get(ctx context.Context, id string) (attachment.Attachment, error)
}

// BedPools receives the reserved beds an agreement sets per department of
// the supporting hospital (the referral green channel's pools);
// referrals.Beds implements it. Nil leaves the pools alone.
type BedPools interface {
	SetSizeFromAgreement(ctx context.Context, p auth.Principal, hospitalID, departmentID string, size int) error
}

// Audit actions of program records.
const (
	ActionAgreementCreate = "program.agreement.create"
	ActionAgreementAmend  = "program.agreement.amend"
	ActionPostingCreate   = "program.posting.create"
	ActionPostingUpdate   = "program.posting.update"
	ActionArrival         = "program.posting.arrival"
	ActionAppraisal       = "program.posting.appraisal"
	ActionAttendance      = "program.attendance.record"
	ActionAttendanceOK    = "program.attendance.confirm"
	ActionEvaluation      = "program.evaluation.put"
	ActionWorkLog         = "program.work_log.create"
	ActionWorkLogOK       = "program.work_log.confirm"
	ActionWorkLogUpdate   = "program.work_log.update"
	ActionClinicPublish   = "program.clinic.publish"
	ActionClinicChange    = "program.clinic.change"
	ActionClinicCancel    = "program.clinic.cancel"
	ActionTraineeCreate   = "program.trainee.create"
	ActionTraineeUpdate   = "program.trainee.update"
)

// Readers are the roles that see program records: the program office and
// the staff of the paired hospitals. Administrators and auditors have no
// part in the program's work.
var Readers = []auth.Role{auth.ProgramOffice, auth.DispatchedDoctor, auth.CountyDoctor, auth.Specialist, auth.ReferralDesk}

// Service runs the program's records.
type Service struct {
	db    sqldb.DB
	st    program.Store
	dir   Directory
	users Users
	files Files
	audit audit.Recorder
	beds  BedPools
	cfg   program.Config
	now   func() time.Time
}

// NewService builds the service. clock nil means sqldb.Now; a zero cfg
// means program.DefaultConfig.
func NewService(db sqldb.DB, st program.Store, dir Directory, users Users, files Files, rec audit.Recorder, beds BedPools,
	cfg program.Config, clock func() time.Time) (*Service, error) {
	if clock == nil {
		clock = sqldb.Now
	}
	if cfg.Criteria == nil && cfg.ArrivalDays == 0 && cfg.EvaluationDueDay == 0 {
		cfg = program.DefaultConfig()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Service{db: db, st: st, dir: dir, users: users, files: files, audit: rec, beds: beds, cfg: cfg, now: clock}, nil
}

// Config is the program's configured terms (criteria for the forms).
func (s *Service) Config() program.Config { return s.cfg }

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func (s *Service) record(ctx context.Context, p auth.Principal, action, resType, resID, detail string) error {
	src := audit.SourceFrom(ctx)
	return s.audit.Record(ctx, audit.Entry{
		At: s.now(), ActorID: p.UserID, ActorHospitalID: p.HospitalID, Action: action,
		ResourceType: resType, ResourceID: resID, Outcome: audit.Success,
		RequestID: src.RequestID, ClientAddr: src.ClientAddr, Detail: detail,
	})
}

// outOfReach records the refusal and answers not found, so that the
// record's existence does not leak.
func (s *Service) outOfReach(ctx context.Context, p auth.Principal, resType, resID string) error {
	src := audit.SourceFrom(ctx)
	if err := s.audit.Record(ctx, audit.Entry{
		At: s.now(), ActorID: p.UserID, ActorHospitalID: p.HospitalID, Action: audit.AccessDenied,
		ResourceType: resType, ResourceID: resID, Outcome: audit.Denied,
		RequestID: src.RequestID, ClientAddr: src.ClientAddr, Detail: "outside the caller's pairings",
	}); err != nil {
		return err
	}
	return apperr.ErrNotFound
}

func mayRead(p auth.Principal) error {
	if !p.Has(Readers...) {
		return apperr.Forbidden("only the program office and staff of paired hospitals see program records")
	}
	return nil
}

func officeOnly(p auth.Principal) error {
	if !p.Has(auth.ProgramOffice) {
		return apperr.Forbidden("only the program office does this")
	}
	return nil
}

// partyOffice: agreements, postings and trainees are written by the program
// office of either hospital of the pairing; an office that only watches the
// pairing (a health commission) reads them.
func partyOffice(p auth.Principal, sd side) error {
	if err := officeOnly(p); err != nil {
		return err
	}
	if sd != supporting && sd != recipient {
		return apperr.Forbidden("only the program offices of the pairing's hospitals write its records")
	}
	return nil
}

// side is where the caller stands towards a pairing.
type side int

const (
	noSide     side = iota
	supporting      // staff of the supporting hospital
	recipient       // staff of the recipient hospital
	watcher         // a program office reaching both hospitals (a health commission)
)

func sideOf(p auth.Principal, supportingID, recipientID string) side {
	switch {
	case p.HospitalID == recipientID:
		return recipient
	case p.HospitalID == supportingID:
		return supporting
	case p.Has(auth.ProgramOffice) && p.CanReach(supportingID) && p.CanReach(recipientID):
		return watcher
	}
	return noSide
}

// Query selects a list: a pairing, a hospital on either side, a staff
// member (a doctor's postings: their record, appraisals included; a
// trainee's stays), a page.
type Query struct {
	PairingID, HospitalID, StaffID string
	After                          string
	Limit                          int
}

// listFilter narrows a list to what p sees: its own hospital's pairings
// (ended ones included: their records stay the hospital's), and for a
// program office also every pairing whose two hospitals it reaches.
func listFilter(p auth.Principal, q Query) program.Filter {
	pairingID, hospitalID := q.PairingID, q.HospitalID
	f := program.Filter{PairingID: pairingID, HospitalID: hospitalID, StaffID: q.StaffID, After: q.After, Limit: q.Limit}
	if p.Has(auth.ProgramOffice) {
		f.Scoped, f.Party = true, p.HospitalID
		f.Within = []string{p.HospitalID}
		for h, ok := range p.Reach {
			if ok && h != p.HospitalID {
				f.Within = append(f.Within, h)
			}
		}
		return f
	}
	if hospitalID != "" && hospitalID != p.HospitalID {
		// A hospital filter outside the caller's own: only the pairings
		// between it and the caller's hospital.
		f.Scoped, f.Within = true, []string{p.HospitalID, hospitalID}
		return f
	}
	f.HospitalID = p.HospitalID
	return f
}

// pairing loads a pairing p may act on, or answers not found.
func (s *Service) pairing(ctx context.Context, p auth.Principal, id string) (directory.Pairing, side, error) {
	if !apperr.IsID(id) {
		return directory.Pairing{}, noSide, apperr.Field("pairing_id", "must be a pairing id")
	}
	pr, err := s.dir.Pairing(ctx, id)
	if errors.Is(err, apperr.ErrNotFound) {
		return pr, noSide, apperr.Field("pairing_id", "no such pairing")
	}
	if err != nil {
		return pr, noSide, err
	}
	sd := sideOf(p, pr.SupportingHospitalID, pr.RecipientHospitalID)
	if sd == noSide {
		return pr, noSide, errors.Join(s.outOfReach(ctx, p, "pairing", id), apperr.Field("pairing_id", "no such pairing"))
	}
	return pr, sd, nil
}
