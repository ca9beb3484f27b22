package referrals

import (
	"context"
	"time"

	"duikou/internal/apperr"
	"duikou/internal/directory"
	"duikou/internal/sqldb"
	"duikou/referral"
)

// DirectoryRoutes answers referral.Pairings from the directory: a hospital's
// tier, and the partners of the pairings in force today in its own zone.
type DirectoryRoutes struct {
	store directory.Store
	now   func() time.Time
	zones directory.Zones
}

var _ referral.Pairings = (*DirectoryRoutes)(nil)

// NewDirectoryRoutes reads the directory store st; clock nil means sqldb.Now.
func NewDirectoryRoutes(st directory.Store, clock func() time.Time) *DirectoryRoutes {
	if clock == nil {
		clock = sqldb.Now
	}
	return &DirectoryRoutes{store: st, now: clock}
}

func (d *DirectoryRoutes) hospital(ctx context.Context, id string) (directory.Hospital, error) {
	if !apperr.IsID(id) {
		return directory.Hospital{}, apperr.ErrNotFound
	}
	return d.store.Hospital(ctx, id)
}

// Tier returns the hospital's tier, or apperr.ErrNotFound.
func (d *DirectoryRoutes) Tier(ctx context.Context, hospitalID string) (string, error) {
	h, err := d.hospital(ctx, hospitalID)
	if err != nil {
		return "", err
	}
	return string(h.Tier), nil
}

// Partners lists the hospitals paired with hospitalID by a pairing that is
// active and in force today, on either side of it.
func (d *DirectoryRoutes) Partners(ctx context.Context, hospitalID string) ([]string, error) {
	h, err := d.hospital(ctx, hospitalID)
	if err != nil {
		return nil, err
	}
	today := d.now().In(d.zones.Location(h.TimeZone)).Format(time.DateOnly)
	pairs, err := d.store.PairingsOf(ctx, h.ID)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, pr := range pairs {
		if pr.OpenOn(today) {
			out = append(out, pr.Partner(h.ID))
		}
	}
	return out, nil
}
