package programs

// Postings (派驻): the program's rules, arrival and the final appraisal.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"duikou/internal/apperr"
	"duikou/internal/auth"
	"duikou/internal/directory"
	"duikou/internal/program"
)

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
