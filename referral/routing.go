package referral

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"duikou/internal/apperr"
)

// Hospital tiers as the directory names them. Only the three that treat
// patients take part in referral.
const (
	TierTertiary  = "tertiary"  // 三级
	TierSecondary = "secondary" // 二级, the county hospital
	TierTownship  = "township"  // 乡镇卫生院
)

func level(tier string) int {
	switch tier {
	case TierTertiary:
		return 3
	case TierSecondary:
		return 2
	case TierTownship:
		return 1
	}
	return 0
}

// Pairings is what routing needs to know about the program's map. The store
// answers it from the directory; tests answer it from a literal.
type Pairings interface {
	// Tier returns a hospital's tier, or apperr.ErrNotFound.
	Tier(ctx context.Context, hospitalID string) (string, error)
	// Partners returns the hospitals paired with hospitalID by an active
	// pairing, whichever side of it they are on.
	Partners(ctx context.Context, hospitalID string) ([]string, error)
}

// CheckRoute says whether a referral may go from one hospital to another.
// Referrals follow the pairings so that each patient goes where the
// agreement has prepared a green channel and a reserved bed:
//
//   - up from a township centre: to a county hospital it is paired with, or
//     to a tertiary partner of that county hospital (or to a higher-level
//     hospital it is paired with directly);
//   - up from a county hospital: to a tertiary hospital it is paired with;
//   - down: to the patient's home county hospital, or to a township centre
//     paired with it (the patient's own township when home is a township).
//
// A refusal is a field error on receiving_hospital_id; a failure of pr is
// returned as it is.
func CheckRoute(ctx context.Context, pr Pairings, dir Direction, from, to, patientHome string) error {
	const field = "receiving_hospital_id"
	if from == to {
		return apperr.Field(field, "must be another hospital than the referring one")
	}
	fromTier, err := pr.Tier(ctx, from)
	if err != nil {
		return fmt.Errorf("referral route: tier of referring hospital: %w", err)
	}
	toTier, err := pr.Tier(ctx, to)
	if errors.Is(err, apperr.ErrNotFound) {
		return apperr.Field(field, "is not a known hospital")
	}
	if err != nil {
		return fmt.Errorf("referral route: tier of receiving hospital: %w", err)
	}
	if level(toTier) == 0 {
		return apperr.Field(field, "must be a hospital that treats patients")
	}

	switch dir {
	case Up:
		if level(toTier) <= level(fromTier) {
			return apperr.Field(field, "an up-referral must go to a higher level of care")
		}
		ok, err := upReachable(ctx, pr, from, fromTier, to)
		if err != nil {
			return err
		}
		if !ok {
			return apperr.Field(field, "is not paired with the referring hospital (nor, for a township centre, with its county hospital)")
		}
		return nil
	case Down:
		if level(toTier) >= level(fromTier) {
			return apperr.Field(field, "a down-referral must go to a lower level of care")
		}
		ok, err := homeReachable(ctx, pr, patientHome, to)
		if err != nil {
			return err
		}
		if !ok {
			return apperr.Field(field, "must be the patient's home county hospital or a township centre paired with it")
		}
		return nil
	}
	return apperr.Field("direction", "must be up or down")
}

// upReachable: a direct partner of higher level, or for a township centre a
// tertiary partner of one of its county hospitals.
func upReachable(ctx context.Context, pr Pairings, from, fromTier, to string) (bool, error) {
	partners, err := pr.Partners(ctx, from)
	if err != nil {
		return false, fmt.Errorf("referral route: partners of %s: %w", from, err)
	}
	if slices.Contains(partners, to) {
		return true, nil
	}
	if fromTier != TierTownship {
		return false, nil
	}
	counties, err := ofTier(ctx, pr, partners, TierSecondary)
	if err != nil {
		return false, err
	}
	for _, c := range counties {
		cp, err := pr.Partners(ctx, c)
		if err != nil {
			return false, fmt.Errorf("referral route: partners of %s: %w", c, err)
		}
		if slices.Contains(cp, to) {
			return true, nil
		}
	}
	return false, nil
}

// homeReachable: the home county hospitals are the home itself when it is a
// county hospital, or the county hospitals a home township centre is paired
// with; the target is one of them or a township centre paired with one.
func homeReachable(ctx context.Context, pr Pairings, home, to string) (bool, error) {
	if home == "" {
		return false, errors.New("referral route: the patient's home hospital is not known")
	}
	homeTier, err := pr.Tier(ctx, home)
	if err != nil {
		return false, fmt.Errorf("referral route: tier of home hospital: %w", err)
	}
	var counties []string
	switch homeTier {
	case TierSecondary:
		counties = []string{home}
	case TierTownship:
		partners, err := pr.Partners(ctx, home)
		if err != nil {
			return false, fmt.Errorf("referral route: partners of %s: %w", home, err)
		}
		if counties, err = ofTier(ctx, pr, partners, TierSecondary); err != nil {
			return false, err
		}
	}
	for _, c := range counties {
		if c == to {
			return true, nil
		}
		cp, err := pr.Partners(ctx, c)
		if err != nil {
			return false, fmt.Errorf("referral route: partners of %s: %w", c, err)
		}
		if !slices.Contains(cp, to) {
			continue
		}
		tier, err := pr.Tier(ctx, to)
		if err != nil {
			return false, fmt.Errorf("referral route: tier of %s: %w", to, err)
		}
		if tier == TierTownship {
			return true, nil
		}
	}
	return false, nil
}

func ofTier(ctx context.Context, pr Pairings, ids []string, tier string) ([]string, error) {
	var out []string
	for _, id := range ids {
		t, err := pr.Tier(ctx, id)
		if errors.Is(err, apperr.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("referral route: tier of %s: %w", id, err)
		}
		if t == tier {
			out = append(out, id)
		}
	}
	return out, nil
}
