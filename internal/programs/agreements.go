package programs

// Agreements (对口支援协议书): one per pairing and period, amended as new
// versions.

import (
	"context"
	"errors"
	"fmt"

	"duikou/internal/apperr"
	"duikou/internal/auth"
	"duikou/internal/directory"
	"duikou/internal/program"
)

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
