// Package programs is the application service of the paired-support
// program's records: it decides who may read and write each record
// (role, and which side of the pairing the caller's hospital is), lets the
// domain (package program) check the input, rules and deadlines, and writes
// each change with its audit row in one transaction.
package programs

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	ActionClinicPublish   = "program.clinic.publish"
	ActionTraineeCreate   = "program.trainee.create"
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

// ---- Agreements ----

// AgreementInput creates an agreement of a pairing.
type AgreementInput struct {
	PairingID string        `json:"pairing_id"`
	Terms     program.Terms `json:"terms"`
}

// CreateAgreement records a pairing's agreement as its version 1.
func (s *Service) CreateAgreement(ctx context.Context, p auth.Principal, in AgreementInput) (program.Agreement, error) {
	if err := officeOnly(p); err != nil {
		return program.Agreement{}, err
	}
	pr, sd, err := s.pairing(ctx, p, in.PairingID)
	if err != nil {
		return program.Agreement{}, notFoundAsField(err)
	}
	if err := partyOffice(p, sd); err != nil {
		return program.Agreement{}, err
	}
	terms, err := in.Terms.Check(false)
	if err != nil {
		return program.Agreement{}, err
	}
	if err := s.checkTerms(ctx, pr, terms); err != nil {
		return program.Agreement{}, err
	}
	now := s.now()
	a := program.Agreement{ID: newID(), PairingID: pr.ID, SupportingHospitalID: pr.SupportingHospitalID, RecipientHospitalID: pr.RecipientHospitalID,
		Version: 1, Terms: terms, CreatedAt: now, UpdatedAt: now, UpdatedBy: p.UserID}
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		if err := s.st.CreateAgreement(ctx, a); err != nil {
			return err
		}
		if err := s.feedBeds(ctx, p, a); err != nil {
			return err
		}
		return s.record(ctx, p, ActionAgreementCreate, "program_agreement", a.ID,
			fmt.Sprintf("pairing %s, %s to %s", pr.ID, terms.StartsOn, terms.EndsOn))
	})
	return a, err
}

// notFoundAsField: a pairing named in a body that the caller may not see is
// a bad field, like any other unknown id in a body (never a 404 of the URL).
func notFoundAsField(err error) error {
	var v apperr.Invalid
	if errors.As(err, &v) {
		return v
	}
	return err
}

// checkTerms: reserved beds are kept by departments of the supporting
// hospital; the signed document is a file uploaded by either hospital of
// the pairing and about no patient.
func (s *Service) checkTerms(ctx context.Context, pr directory.Pairing, t program.Terms) error {
	var v apperr.Invalid
	if id := t.SignedDocumentID; id != nil {
		f, err := s.files.Get(ctx, *id)
		switch {
		case errors.Is(err, apperr.ErrNotFound) || (err == nil && !pr.Involves(f.HospitalID)):
			v.Add("signed_document_id", "is not a file uploaded by either hospital of the pairing")
		case err != nil:
			return err
		case f.PatientID != "":
			v.Add("signed_document_id", "is a patient's file, not an agreement")
		}
	}
	for i, rb := range t.GreenChannel.ReservedBeds {
		d, err := s.dir.Department(ctx, rb.DepartmentID)
		if errors.Is(err, apperr.ErrNotFound) || (err == nil && d.HospitalID != pr.SupportingHospitalID) {
			v.Add(fmt.Sprintf("green_channel.reserved_beds[%d].department_id", i), "is not a department of the supporting hospital")
			continue
		}
		if err != nil {
			return err
		}
	}
	return v.Err()
}

// feedBeds sets the referral bed pools to the agreement's reserved beds, in
// the agreement's transaction.
func (s *Service) feedBeds(ctx context.Context, p auth.Principal, a program.Agreement) error {
	if s.beds == nil {
		return nil
	}
	for _, rb := range a.Terms.GreenChannel.ReservedBeds {
		if err := s.beds.SetSizeFromAgreement(ctx, p, a.SupportingHospitalID, rb.DepartmentID, rb.Beds); err != nil {
			return err
		}
	}
	return nil
}

// agreement loads an agreement p may see.
func (s *Service) agreement(ctx context.Context, p auth.Principal, id string) (program.Agreement, side, error) {
	if err := mayRead(p); err != nil {
		return program.Agreement{}, noSide, err
	}
	a, err := s.st.Agreement(ctx, id)
	if err != nil {
		return a, noSide, err
	}
	sd := sideOf(p, a.SupportingHospitalID, a.RecipientHospitalID)
	if sd == noSide {
		return program.Agreement{}, noSide, s.outOfReach(ctx, p, "program_agreement", id)
	}
	return a, sd, nil
}

// Agreement returns an agreement's current version.
func (s *Service) Agreement(ctx context.Context, p auth.Principal, id string) (program.Agreement, error) {
	a, _, err := s.agreement(ctx, p, id)
	return a, err
}

// Agreements lists the agreements p sees.
func (s *Service) Agreements(ctx context.Context, p auth.Principal, q Query) ([]program.Agreement, error) {
	if err := mayRead(p); err != nil {
		return nil, err
	}
	return s.st.Agreements(ctx, listFilter(p, q))
}

// AmendAgreement writes new terms as the next version; version is the
// caller's If-Match.
func (s *Service) AmendAgreement(ctx context.Context, p auth.Principal, id string, version int, terms program.Terms) (program.Agreement, error) {
	a, sd, err := s.agreement(ctx, p, id)
	if err != nil {
		return a, err
	}
	if err := partyOffice(p, sd); err != nil {
		return program.Agreement{}, err
	}
	if version != a.Version {
		return program.Agreement{}, apperr.ErrStale
	}
	if terms, err = terms.Check(true); err != nil {
		return program.Agreement{}, err
	}
	pr := directory.Pairing{ID: a.PairingID, SupportingHospitalID: a.SupportingHospitalID, RecipientHospitalID: a.RecipientHospitalID}
	if err := s.checkTerms(ctx, pr, terms); err != nil {
		return program.Agreement{}, err
	}
	a.Terms, a.UpdatedAt, a.UpdatedBy = terms, s.now(), p.UserID
	var out program.Agreement
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		if out, err = s.st.AmendAgreement(ctx, a, version); err != nil {
			return err
		}
		if err := s.feedBeds(ctx, p, out); err != nil {
			return err
		}
		return s.record(ctx, p, ActionAgreementAmend, "program_agreement", a.ID,
			fmt.Sprintf("version %d → %d: %s", version, out.Version, terms.AmendmentReason))
	})
	return out, err
}

// AgreementVersions lists every version of an agreement, oldest first.
func (s *Service) AgreementVersions(ctx context.Context, p auth.Principal, id string) ([]program.AgreementVersion, error) {
	if _, _, err := s.agreement(ctx, p, id); err != nil {
		return nil, err
	}
	return s.st.AgreementVersions(ctx, id)
}

// ---- Postings ----

// posting loads a posting p may see, with its arrival judged as of today.
func (s *Service) posting(ctx context.Context, p auth.Principal, id string) (program.Posting, side, error) {
	if err := mayRead(p); err != nil {
		return program.Posting{}, noSide, err
	}
	x, err := s.st.Posting(ctx, id)
	if err != nil {
		return x, noSide, err
	}
	sd := sideOf(p, x.HomeHospitalID, x.RecipientHospitalID)
	if sd == noSide {
		return program.Posting{}, noSide, s.outOfReach(ctx, p, "program_posting", id)
	}
	return s.judge(x), sd, nil
}

func (s *Service) judge(x program.Posting) program.Posting {
	arrived := ""
	if x.Arrival != nil {
		arrived = x.Arrival.ArrivedOn
	}
	x.ArrivalStatus = program.ArrivalStatusOn(x.ArrivalDueOn, arrived, program.Today(s.now()))
	return x
}

// Posting returns a posting.
func (s *Service) Posting(ctx context.Context, p auth.Principal, id string) (program.Posting, error) {
	x, _, err := s.posting(ctx, p, id)
	return x, err
}

// Postings lists the postings p sees.
func (s *Service) Postings(ctx context.Context, p auth.Principal, q Query) ([]program.Posting, error) {
	if err := mayRead(p); err != nil {
		return nil, err
	}
	xs, err := s.st.Postings(ctx, listFilter(p, q))
	for i := range xs {
		xs[i] = s.judge(xs[i])
	}
	return xs, err
}

// warningsOrOverride: a posting breaking the program's rules is accepted
// only with the office's reason; without one, the warnings come back as
// field errors the form shows next to their inputs.
func warningsOrOverride(p auth.Principal, ws []program.Warning, reason string, now time.Time) (*program.Override, error) {
	if len(ws) == 0 {
		return nil, nil
	}
	if reason == "" {
		var v apperr.Invalid
		for _, w := range ws {
			v.Add(w.Field, w.Message+" (give override_reason to accept it)")
		}
		return nil, v
	}
	return &program.Override{Reason: reason, By: p.UserID, At: now}, nil
}

// CreatePosting dispatches a doctor of the supporting hospital to a
// department of the recipient.
func (s *Service) CreatePosting(ctx context.Context, p auth.Principal, in program.PostingInput) (program.Posting, error) {
	if err := officeOnly(p); err != nil {
		return program.Posting{}, err
	}
	in, err := in.Check()
	if err != nil {
		return program.Posting{}, err
	}
	pr, sd, err := s.pairing(ctx, p, in.PairingID)
	if err != nil {
		return program.Posting{}, notFoundAsField(err)
	}
	if err := partyOffice(p, sd); err != nil {
		return program.Posting{}, err
	}
	// A doctor is dispatched under a pairing that is in force when the
	// posting starts.
	if pr.Status != directory.PairingActive {
		return program.Posting{}, apperr.Field("pairing_id", "the pairing is "+string(pr.Status))
	}
	if !pr.CoversDay(in.StartsOn) {
		return program.Posting{}, apperr.Field("starts_on", "is outside the pairing's period")
	}
	doc, err := s.dir.StaffMember(ctx, in.StaffID)
	if errors.Is(err, apperr.ErrNotFound) || (err == nil && doc.HospitalID != pr.SupportingHospitalID) {
		return program.Posting{}, apperr.Field("staff_id", "is not on the supporting hospital's staff")
	}
	if err != nil {
		return program.Posting{}, err
	}
	if err := s.recipientDepartment(ctx, pr.RecipientHospitalID, in.RecipientDepartmentID); err != nil {
		return program.Posting{}, err
	}
	specialty := in.Specialty
	if specialty == "" && doc.DepartmentID != nil {
		if d, err := s.dir.Department(ctx, *doc.DepartmentID); err == nil {
			specialty = d.Name
		}
	}
	now := s.now()
	x := program.Posting{ID: newID(), PairingID: pr.ID, StaffID: doc.ID, StaffName: doc.Name, Title: string(doc.Title),
		HomeHospitalID: pr.SupportingHospitalID, HomeDepartmentID: doc.DepartmentID, RecipientHospitalID: pr.RecipientHospitalID,
		RecipientDepartmentID: in.RecipientDepartmentID, StartsOn: in.StartsOn, EndsOn: in.EndsOn, Team: in.Team,
		TeamLeader: in.TeamLeader, Specialty: specialty, ArrivalDueOn: s.cfg.ArrivalDue(in.StartsOn),
		Version: 1, CreatedAt: now, CreatedBy: p.UserID, UpdatedAt: now}
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		if x.Warnings, x.Override, err = s.rules(ctx, p, x, in.OverrideReason, now); err != nil {
			return err
		}
		if err := s.st.CreatePosting(ctx, x); err != nil {
			return err
		}
		detail := fmt.Sprintf("%s (%s) to %s, %s to %s, team %s", doc.Name, doc.Title, pr.RecipientHospitalID, x.StartsOn, x.EndsOn, x.Team)
		if x.Override != nil {
			detail += fmt.Sprintf("; %d warnings overridden: %s", len(x.Warnings), x.Override.Reason)
		}
		return s.record(ctx, p, ActionPostingCreate, "program_posting", x.ID, detail)
	})
	return s.judge(x), err
}

// rules runs the program's checks on x against its team as stored.
func (s *Service) rules(ctx context.Context, p auth.Principal, x program.Posting, reason string, now time.Time) ([]program.Warning, *program.Override, error) {
	titles, err := s.st.TeamTitles(ctx, x.PairingID, x.Team, x.StartsOn, x.EndsOn, x.ID)
	if err != nil {
		return nil, nil, err
	}
	team := make([]directory.Title, len(titles))
	for i, t := range titles {
		team[i] = directory.Title(t)
	}
	ws := program.PostingWarnings(directory.Title(x.Title), x.Team, team, x.StartsOn, x.EndsOn)
	o, err := warningsOrOverride(p, ws, reason, now)
	if ws == nil {
		ws = []program.Warning{}
	}
	return ws, o, err
}

func (s *Service) recipientDepartment(ctx context.Context, hospitalID, departmentID string) error {
	d, err := s.dir.Department(ctx, departmentID)
	if errors.Is(err, apperr.ErrNotFound) || (err == nil && d.HospitalID != hospitalID) {
		return apperr.Field("recipient_department_id", "is not a department of the recipient hospital")
	}
	return err
}

// UpdatePosting changes a posting's period, department or team; the rules
// are checked again and a breach needs the office's reason again.
func (s *Service) UpdatePosting(ctx context.Context, p auth.Principal, id string, version int, patch program.PostingPatch) (program.Posting, error) {
	x, sd, err := s.posting(ctx, p, id)
	if err != nil {
		return x, err
	}
	if err := partyOffice(p, sd); err != nil {
		return program.Posting{}, err
	}
	if version != x.Version {
		return program.Posting{}, apperr.ErrStale
	}
	next, reason, err := patch.Apply(x)
	if err != nil {
		return program.Posting{}, err
	}
	if next.RecipientDepartmentID != x.RecipientDepartmentID {
		if err := s.recipientDepartment(ctx, x.RecipientHospitalID, next.RecipientDepartmentID); err != nil {
			return program.Posting{}, err
		}
	}
	now := s.now()
	next.ArrivalDueOn, next.UpdatedAt = s.cfg.ArrivalDue(next.StartsOn), now
	var out program.Posting
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		ws, o, err := s.rules(ctx, p, next, reason, now)
		if err != nil {
			return err
		}
		next.Warnings, next.Override = ws, o
		if out, err = s.st.UpdatePosting(ctx, next, version); err != nil {
			return err
		}
		detail := fmt.Sprintf("%s to %s, team %s", out.StartsOn, out.EndsOn, out.Team)
		if o != nil {
			detail += "; warnings overridden: " + o.Reason
		}
		return s.record(ctx, p, ActionPostingUpdate, "program_posting", id, detail)
	})
	return s.judge(out), err
}

// recipientOffice: arrival, attendance confirmation, evaluations, the
// appraisal, work log confirmation and the clinic schedule are the
// recipient hospital's to file, by its program office.
func recipientOffice(p auth.Principal, sd side) error {
	if sd != recipient || !p.Has(auth.ProgramOffice) {
		return apperr.Forbidden("only the recipient hospital's program office files this")
	}
	return nil
}

// ConfirmArrival records that the doctor reported for duty (到岗报到).
func (s *Service) ConfirmArrival(ctx context.Context, p auth.Principal, id string, version int, in program.ArrivalInput) (program.Posting, error) {
	x, sd, err := s.posting(ctx, p, id)
	if err != nil {
		return x, err
	}
	if err := recipientOffice(p, sd); err != nil {
		return program.Posting{}, err
	}
	if version != x.Version {
		return program.Posting{}, apperr.ErrStale
	}
	var v apperr.Invalid
	today := program.Today(s.now())
	note := v.Text("note", in.Note, false, 500)
	if _, ok := program.ParseDay(in.ArrivedOn); !ok {
		v.Add("arrived_on", "must be a day YYYY-MM-DD")
	} else if in.ArrivedOn > today {
		v.Add("arrived_on", "must not be in the future")
	} else if in.ArrivedOn < x.StartsOn || in.ArrivedOn > x.EndsOn {
		v.Add("arrived_on", "is outside the posting")
	}
	if err := v.Err(); err != nil {
		return program.Posting{}, err
	}
	x.Arrival = &program.Arrival{ArrivedOn: in.ArrivedOn, ConfirmedBy: p.UserID, ConfirmedAt: s.now(), Note: note}
	x.UpdatedAt = s.now()
	return s.writePosting(ctx, p, x, version, ActionArrival,
		fmt.Sprintf("arrived %s, due %s (%s)", in.ArrivedOn, x.ArrivalDueOn, program.ArrivalStatusOn(x.ArrivalDueOn, in.ArrivedOn, today)))
}

func (s *Service) writePosting(ctx context.Context, p auth.Principal, x program.Posting, version int, action, detail string) (program.Posting, error) {
	var out program.Posting
	err := s.db.InTx(ctx, func(ctx context.Context) error {
		var err error
		if out, err = s.st.UpdatePosting(ctx, x, version); err != nil {
			return err
		}
		return s.record(ctx, p, action, "program_posting", x.ID, detail)
	})
	return s.judge(out), err
}

// Appraise writes the final appraisal (from the posting's last month on).
func (s *Service) Appraise(ctx context.Context, p auth.Principal, id string, version int, in program.AppraisalInput) (program.Posting, error) {
	x, sd, err := s.posting(ctx, p, id)
	if err != nil {
		return x, err
	}
	if err := recipientOffice(p, sd); err != nil {
		return program.Posting{}, err
	}
	if version != x.Version {
		return program.Posting{}, apperr.ErrStale
	}
	var v apperr.Invalid
	if !in.Grade.Valid() {
		v.Add("grade", "must be excellent, competent, basic or unsatisfied")
	}
	comment := v.Text("comment", in.Comment, true, 2000)
	if opens := program.AddDays(x.EndsOn, -30); program.Today(s.now()) < opens {
		v.Add("grade", "the final appraisal is written from "+opens+", the posting's last month")
	}
	if err := v.Err(); err != nil {
		return program.Posting{}, err
	}
	x.Appraisal = &program.Appraisal{Grade: in.Grade, Comment: comment, AppraisedBy: p.UserID, AppraisedAt: s.now()}
	x.UpdatedAt = s.now()
	return s.writePosting(ctx, p, x, version, ActionAppraisal, "grade "+string(in.Grade))
}

// ---- Attendance ----

// isDoctorOf reports whether p is the posting's dispatched doctor.
func (s *Service) isDoctorOf(ctx context.Context, p auth.Principal, x program.Posting) (bool, error) {
	if !p.Has(auth.DispatchedDoctor) {
		return false, nil
	}
	u, err := s.users.User(ctx, p.UserID)
	if errors.Is(err, apperr.ErrNotFound) {
		return false, nil
	}
	return err == nil && u.StaffID != "" && u.StaffID == x.StaffID, err
}

// RecordAttendance records a day: the doctor checks in or takes leave with
// a reason; the recipient's office may also record leave or an absence.
func (s *Service) RecordAttendance(ctx context.Context, p auth.Principal, id string, in program.AttendanceInput) (program.Attendance, error) {
	x, sd, err := s.posting(ctx, p, id)
	if err != nil {
		return program.Attendance{}, err
	}
	doctor, err := s.isDoctorOf(ctx, p, x)
	if err != nil {
		return program.Attendance{}, err
	}
	office := recipientOffice(p, sd) == nil
	if !doctor && !office {
		return program.Attendance{}, apperr.Forbidden("only the posted doctor and the recipient's program office record attendance")
	}
	if in, err = in.Check(x); err != nil {
		return program.Attendance{}, err
	}
	today := program.Today(s.now())
	switch {
	case in.Status == program.Absent && !office:
		return program.Attendance{}, apperr.Field("status", "an absence is recorded by the recipient hospital")
	case in.Status == program.Present && in.Day != today && !office:
		// A check-in is made on the day; a day missed is the recipient's
		// to record.
		return program.Attendance{}, apperr.Field("day", "a check-in is for today ("+today+")")
	case in.Day > today && in.Status != program.Leave:
		return program.Attendance{}, apperr.Field("day", "must not be in the future")
	}
	a := program.Attendance{PostingID: x.ID, Day: in.Day, Status: in.Status, Reason: in.Reason, RecordedBy: p.UserID, RecordedAt: s.now()}
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		if a, err = s.st.PutAttendance(ctx, a); err != nil {
			return err
		}
		return s.record(ctx, p, ActionAttendance, "program_posting", x.ID, fmt.Sprintf("%s %s", in.Day, in.Status))
	})
	return a, err
}

// ConfirmAttendance confirms a recorded day.
func (s *Service) ConfirmAttendance(ctx context.Context, p auth.Principal, id, day string) (program.Attendance, error) {
	x, sd, err := s.posting(ctx, p, id)
	if err != nil {
		return program.Attendance{}, err
	}
	if err := recipientOffice(p, sd); err != nil {
		return program.Attendance{}, err
	}
	if _, ok := program.ParseDay(day); !ok {
		return program.Attendance{}, apperr.ErrNotFound
	}
	var a program.Attendance
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		if a, err = s.st.ConfirmAttendance(ctx, x.ID, day, p.UserID, s.now()); err != nil {
			return err
		}
		return s.record(ctx, p, ActionAttendanceOK, "program_posting", x.ID, day)
	})
	return a, err
}

// MonthAttendance is a posting's days of a month and its rate.
type MonthAttendance struct {
	Days []program.Attendance   `json:"days"`
	Rate program.AttendanceRate `json:"rate"`
}

// Attendance returns a posting's attendance in month (YYYY-MM).
func (s *Service) Attendance(ctx context.Context, p auth.Principal, id, month string) (MonthAttendance, error) {
	x, _, err := s.posting(ctx, p, id)
	if err != nil {
		return MonthAttendance{}, err
	}
	m, ok := program.ParseMonth(month)
	if !ok {
		return MonthAttendance{}, apperr.Field("month", "must be a month YYYY-MM")
	}
	from, to := m.Format(program.DayLayout), m.AddDate(0, 1, -1).Format(program.DayLayout)
	days, err := s.st.AttendanceOf(ctx, x.ID, from, to)
	if err != nil {
		return MonthAttendance{}, err
	}
	if days == nil {
		days = []program.Attendance{}
	}
	return MonthAttendance{Days: days, Rate: program.RateOf(x, month, days, program.Today(s.now()))}, nil
}

// ---- Evaluations ----

// PostingEvaluations are a posting's evaluations, the criteria they score
// and the months overdue.
type PostingEvaluations struct {
	Criteria    []program.Criterion         `json:"criteria"`
	Evaluations []program.Evaluation        `json:"evaluations"`
	Overdue     []program.OverdueEvaluation `json:"overdue"`
}

// Evaluations lists a posting's monthly evaluations and flags those overdue.
func (s *Service) Evaluations(ctx context.Context, p auth.Principal, id string) (PostingEvaluations, error) {
	x, _, err := s.posting(ctx, p, id)
	if err != nil {
		return PostingEvaluations{}, err
	}
	es, err := s.st.Evaluations(ctx, x.ID)
	if err != nil {
		return PostingEvaluations{}, err
	}
	filed := map[string]bool{}
	for _, e := range es {
		filed[e.Month] = true
	}
	out := PostingEvaluations{Criteria: s.cfg.Criteria, Evaluations: es,
		Overdue: s.cfg.OverdueEvaluations(x, filed, program.Today(s.now()))}
	if out.Evaluations == nil {
		out.Evaluations = []program.Evaluation{}
	}
	if out.Overdue == nil {
		out.Overdue = []program.OverdueEvaluation{}
	}
	return out, nil
}

// Evaluate files (version 0) or corrects a month's evaluation. A month is
// evaluated once it has begun; one filed after its due day is marked late.
func (s *Service) Evaluate(ctx context.Context, p auth.Principal, id, month string, version int, in program.EvaluationInput) (program.Evaluation, bool, error) {
	x, sd, err := s.posting(ctx, p, id)
	if err != nil {
		return program.Evaluation{}, false, err
	}
	if err := recipientOffice(p, sd); err != nil {
		return program.Evaluation{}, false, err
	}
	if !slices.Contains(program.MonthsOf(x.StartsOn, x.EndsOn), month) {
		return program.Evaluation{}, false, apperr.ErrNotFound // no such month of this posting
	}
	in, total, err := in.Check(s.cfg.Criteria)
	if err != nil {
		return program.Evaluation{}, false, err
	}
	today := program.Today(s.now())
	if today < month+"-01" {
		return program.Evaluation{}, false, apperr.Field("month", "has not begun")
	}
	due := s.cfg.EvaluationDue(month)
	e := program.Evaluation{PostingID: x.ID, Month: month, Scores: in.Scores, Total: total, Comment: in.Comment,
		EvaluatedBy: p.UserID, EvaluatedAt: s.now(), DueOn: due, Late: today > due}
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		if e, err = s.st.PutEvaluation(ctx, e, version); err != nil {
			return err
		}
		return s.record(ctx, p, ActionEvaluation, "program_posting", x.ID, fmt.Sprintf("%s total %d (due %s)", month, total, due))
	})
	return e, version == 0, err
}

// ---- Work logs ----

// WorkLogs lists a posting's work log.
func (s *Service) WorkLogs(ctx context.Context, p auth.Principal, id string) ([]program.WorkLog, error) {
	x, _, err := s.posting(ctx, p, id)
	if err != nil {
		return nil, err
	}
	ls, err := s.st.WorkLogs(ctx, x.ID)
	if ls == nil {
		ls = []program.WorkLog{}
	}
	return ls, err
}

// AddWorkLog enters a day's work; only the posted doctor does.
func (s *Service) AddWorkLog(ctx context.Context, p auth.Principal, id string, in program.WorkLogInput) (program.WorkLog, error) {
	x, _, err := s.posting(ctx, p, id)
	if err != nil {
		return program.WorkLog{}, err
	}
	doctor, err := s.isDoctorOf(ctx, p, x)
	if err != nil {
		return program.WorkLog{}, err
	}
	if !doctor {
		return program.WorkLog{}, apperr.Forbidden("only the posted doctor enters the work log")
	}
	if in, err = in.Check(x); err != nil {
		return program.WorkLog{}, err
	}
	if in.Day > program.Today(s.now()) {
		return program.WorkLog{}, apperr.Field("day", "must not be in the future")
	}
	w := program.WorkLog{ID: newID(), PostingID: x.ID, Day: in.Day, Counts: in.Counts, TechniqueNames: in.TechniqueNames,
		Note: in.Note, EnteredBy: p.UserID, EnteredAt: s.now()}
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		if err := s.st.CreateWorkLog(ctx, w); err != nil {
			return err
		}
		return s.record(ctx, p, ActionWorkLog, "program_work_log", w.ID, "posting "+x.ID+" "+in.Day)
	})
	return w, err
}

// ConfirmWorkLog confirms an entry of a posting.
func (s *Service) ConfirmWorkLog(ctx context.Context, p auth.Principal, id, logID string) (program.WorkLog, error) {
	x, sd, err := s.posting(ctx, p, id)
	if err != nil {
		return program.WorkLog{}, err
	}
	if err := recipientOffice(p, sd); err != nil {
		return program.WorkLog{}, err
	}
	w, err := s.st.WorkLog(ctx, logID)
	if err != nil {
		return w, err
	}
	if w.PostingID != x.ID {
		return program.WorkLog{}, apperr.ErrNotFound
	}
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		if w, err = s.st.ConfirmWorkLog(ctx, logID, p.UserID, s.now()); err != nil {
			return err
		}
		return s.record(ctx, p, ActionWorkLogOK, "program_work_log", logID, "posting "+x.ID)
	})
	return w, err
}

// ---- Clinic schedule ----

// PublishClinic publishes a dispatched doctor's clinic, at least the lead
// time ahead.
func (s *Service) PublishClinic(ctx context.Context, p auth.Principal, in program.ClinicSessionInput) (program.ClinicSession, error) {
	if err := officeOnly(p); err != nil {
		return program.ClinicSession{}, err
	}
	if !apperr.IsID(in.PostingID) {
		return program.ClinicSession{}, apperr.Field("posting_id", "must be a posting id")
	}
	x, sd, err := s.posting(ctx, p, in.PostingID)
	if errors.Is(err, apperr.ErrNotFound) {
		return program.ClinicSession{}, apperr.Field("posting_id", "no such posting")
	}
	if err != nil {
		return program.ClinicSession{}, err
	}
	if err := recipientOffice(p, sd); err != nil {
		return program.ClinicSession{}, err
	}
	now := s.now()
	if in, err = in.Check(s.cfg, x, program.Today(now)); err != nil {
		return program.ClinicSession{}, err
	}
	c := program.ClinicSession{ID: newID(), PostingID: x.ID, RecipientHospitalID: x.RecipientHospitalID, Day: in.Day,
		StartsAt: in.StartsAt, EndsAt: in.EndsAt, Place: in.Place, PublishedBy: p.UserID, PublishedAt: now}
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		if err := s.st.CreateClinicSession(ctx, c); err != nil {
			return err
		}
		return s.record(ctx, p, ActionClinicPublish, "program_clinic", c.ID, fmt.Sprintf("%s %s %s–%s", x.StaffName, c.Day, c.StartsAt, c.EndsAt))
	})
	return c, err
}

// ClinicSessions lists a hospital's published clinics from one day to
// another (default: today and the next four weeks).
func (s *Service) ClinicSessions(ctx context.Context, p auth.Principal, hospitalID, from, to string) ([]program.ClinicSession, error) {
	if err := mayRead(p); err != nil {
		return nil, err
	}
	if !apperr.IsID(hospitalID) {
		return nil, apperr.Field("hospital_id", "must be a hospital id")
	}
	if !p.CanReach(hospitalID) {
		return nil, s.outOfReach(ctx, p, "hospital", hospitalID)
	}
	from, to, err := s.window(from, to)
	if err != nil {
		return nil, err
	}
	cs, err := s.st.ClinicSessions(ctx, program.ClinicFilter{HospitalID: hospitalID, FromDay: from, ToDay: to, Limit: 1000})
	if cs == nil {
		cs = []program.ClinicSession{}
	}
	return cs, err
}

// PublicWeeks is how far ahead the public page shows.
const PublicWeeks = 4

func (s *Service) window(from, to string) (string, string, error) {
	var v apperr.Invalid
	today := program.Today(s.now())
	if from == "" {
		from = today
	} else if _, ok := program.ParseDay(from); !ok {
		v.Add("from", "must be a day YYYY-MM-DD")
	}
	if to == "" {
		to = program.AddDays(from, 7*PublicWeeks)
	} else if _, ok := program.ParseDay(to); !ok {
		v.Add("to", "must be a day YYYY-MM-DD")
	} else if to < from {
		v.Add("to", "must not be before from")
	}
	return from, to, v.Err()
}

// PublicSchedule is the page residents read: a hospital's name and the
// dispatched doctors' clinics from today for PublicWeeks. It needs no login
// and shows nothing but the doctor's name, title, home hospital and
// specialty.
type PublicSchedule struct {
	HospitalName string
	From, To     string
	Sessions     []program.PublicSession
}

// Public returns the public clinic schedule of a hospital; an unknown
// hospital or one that is not a hospital (an authority) is not found.
func (s *Service) Public(ctx context.Context, hospitalID string) (PublicSchedule, error) {
	if !apperr.IsID(hospitalID) {
		return PublicSchedule{}, apperr.ErrNotFound
	}
	h, err := s.dir.Hospital(ctx, hospitalID)
	if err != nil {
		return PublicSchedule{}, err
	}
	if h.Tier == directory.Authority {
		return PublicSchedule{}, apperr.ErrNotFound
	}
	from, to, _ := s.window("", "")
	rows, err := s.st.PublicSchedule(ctx, hospitalID, from, to)
	for i := range rows {
		if l := directory.Title(rows[i].TitleLabel).Label(); l != "" {
			rows[i].TitleLabel = l
		}
	}
	return PublicSchedule{HospitalName: h.Name, From: from, To: to, Sessions: rows}, err
}

// ---- Trainees ----

// AddTrainee records recipient staff sent to the supporting hospital.
func (s *Service) AddTrainee(ctx context.Context, p auth.Principal, in program.TraineeInput) (program.Trainee, error) {
	if err := officeOnly(p); err != nil {
		return program.Trainee{}, err
	}
	in, err := in.Check()
	if err != nil {
		return program.Trainee{}, err
	}
	pr, sd, err := s.pairing(ctx, p, in.PairingID)
	if err != nil {
		return program.Trainee{}, notFoundAsField(err)
	}
	if err := partyOffice(p, sd); err != nil {
		return program.Trainee{}, err
	}
	st, err := s.dir.StaffMember(ctx, in.StaffID)
	if errors.Is(err, apperr.ErrNotFound) || (err == nil && st.HospitalID != pr.RecipientHospitalID) {
		return program.Trainee{}, apperr.Field("staff_id", "is not on the recipient hospital's staff")
	}
	if err != nil {
		return program.Trainee{}, err
	}
	t := program.Trainee{ID: newID(), PairingID: pr.ID, SupportingHospitalID: pr.SupportingHospitalID, RecipientHospitalID: pr.RecipientHospitalID,
		StaffID: st.ID, StaffName: st.Name, DepartmentID: st.DepartmentID, HostDepartment: in.HostDepartment,
		StartsOn: in.StartsOn, EndsOn: in.EndsOn, CreatedBy: p.UserID, CreatedAt: s.now()}
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		if err := s.st.CreateTrainee(ctx, t); err != nil {
			return err
		}
		return s.record(ctx, p, ActionTraineeCreate, "program_trainee", t.ID, fmt.Sprintf("%s to %s, %s to %s", st.Name, in.HostDepartment, in.StartsOn, in.EndsOn))
	})
	return t, err
}

// Trainees lists the trainees p sees.
func (s *Service) Trainees(ctx context.Context, p auth.Principal, q Query) ([]program.Trainee, error) {
	if err := mayRead(p); err != nil {
		return nil, err
	}
	return s.st.Trainees(ctx, listFilter(p, q))
}
