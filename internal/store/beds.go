package store

import (
	"context"
	"errors"
	"time"

	"duikou/internal/apperr"
	"duikou/internal/sqldb"
	"duikou/referral"
)

// Green-channel bed pools live with the referral tickets: a bed is reserved
// and released only in the transaction of a ticket's state change, so these
// methods join the transaction in ctx like every other method of Referrals.

const bedPoolCols = `hospital_id, department_id, size, in_use, version, updated_at, updated_by`

func scanBedPool(row sqldb.Row) (referral.BedPool, error) {
	var p referral.BedPool
	err := row.Scan(&p.HospitalID, &p.DepartmentID, &p.Size, &p.InUse, &p.Version, &p.UpdatedAt, &p.UpdatedBy)
	return p.WithFree(), err
}

// BedPool returns the pool of a department, or apperr.ErrNotFound when the
// department has none.
func (s *Referrals) BedPool(ctx context.Context, hospitalID, departmentID string) (referral.BedPool, error) {
	if !apperr.IsID(hospitalID) || !apperr.IsID(departmentID) {
		return referral.BedPool{}, apperr.ErrNotFound
	}
	p, err := scanBedPool(s.db.QueryRow(ctx, `SELECT `+bedPoolCols+` FROM bed_pools
		WHERE hospital_id = $1 AND department_id = $2`, hospitalID, departmentID))
	return p, dirNotFound(err)
}

// CreateBedPool adds a pool with p's size, version 1 and no bed in use. It
// reports false, writing nothing, when the department has a pool already.
func (s *Referrals) CreateBedPool(ctx context.Context, p referral.BedPool, at time.Time) (bool, error) {
	n, err := s.db.Exec(ctx, `INSERT INTO bed_pools (hospital_id, department_id, size, in_use, version, created_at, updated_at, updated_by)
		VALUES ($1, $2, $3, 0, 1, $4, $4, $5) ON CONFLICT (hospital_id, department_id) DO NOTHING`,
		p.HospitalID, p.DepartmentID, p.Size, at, p.UpdatedBy)
	return n == 1, err
}

// SetBedPoolSize sets the size of a pool last seen at expectVersion and
// returns the pool as written. The size is compared with the beds in use by
// the same statement, so an acceptance committing meanwhile cannot leave the
// pool oversubscribed. Errors: apperr.ErrNotFound (no pool), apperr.ErrStale
// (another version), a field error on size (below the beds in use).
func (s *Referrals) SetBedPoolSize(ctx context.Context, hospitalID, departmentID string, size, expectVersion int, by string, at time.Time) (referral.BedPool, error) {
	p, err := scanBedPool(s.db.QueryRow(ctx, `UPDATE bed_pools SET size = $3, version = version + 1, updated_at = $4, updated_by = $5
		WHERE hospital_id = $1 AND department_id = $2 AND version = $6 AND in_use <= $3
		RETURNING `+bedPoolCols, hospitalID, departmentID, size, at, by, expectVersion))
	if !errors.Is(err, sqldb.ErrNoRows) {
		return p, err
	}
	cur, err := s.BedPool(ctx, hospitalID, departmentID)
	switch {
	case err != nil:
		return referral.BedPool{}, err
	case cur.Version != expectVersion:
		return referral.BedPool{}, apperr.ErrStale
	case cur.InUse > size:
		return referral.BedPool{}, referral.PoolBelowInUse(cur.InUse)
	}
	// Neither stale nor too small once read: the row changed between the
	// two statements (possible on PostgreSQL only). The caller sees it as a
	// stale version and reads again.
	return referral.BedPool{}, apperr.ErrStale
}

// ReserveBed holds a bed of the pool of res's department for res's ticket.
// ok is false, with nothing written, when the pool has no free bed or the
// department no pool; pool is then the pool as it stands (version 0 when
// there is none), for the refusal to say why.
//
// The count is moved by one conditional UPDATE checked by its row count:
// on PostgreSQL a concurrent reservation of the same pool waits for this
// transaction's row lock and then re-evaluates the condition on the row as
// committed, on SQLite writers are serialised, so the last bed is never
// handed out twice. The table's CHECK (in_use <= size) backs this up.
func (s *Referrals) ReserveBed(ctx context.Context, res referral.BedReservation) (pool referral.BedPool, ok bool, err error) {
	pool, err = scanBedPool(s.db.QueryRow(ctx, `UPDATE bed_pools SET in_use = in_use + 1
		WHERE hospital_id = $1 AND department_id = $2 AND in_use < size
		RETURNING `+bedPoolCols, res.HospitalID, res.DepartmentID))
	if errors.Is(err, sqldb.ErrNoRows) {
		pool, err = s.BedPool(ctx, res.HospitalID, res.DepartmentID)
		if errors.Is(err, apperr.ErrNotFound) {
			return referral.BedPool{HospitalID: res.HospitalID, DepartmentID: res.DepartmentID}, false, nil
		}
		return pool, false, err
	}
	if err != nil {
		return referral.BedPool{}, false, err
	}
	_, err = s.db.Exec(ctx, `INSERT INTO bed_reservations (id, hospital_id, department_id, referral_id, state, held_at, held_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		res.ID, res.HospitalID, res.DepartmentID, res.ReferralID, string(referral.BedHeld), res.HeldAt, res.HeldBy)
	if errors.Is(err, sqldb.ErrUniqueViolation) {
		// The transaction is given up by the caller; the count moved above
		// is undone with it.
		return referral.BedPool{}, false, apperr.Conflict("this referral already holds a reserved bed")
	}
	if err != nil {
		return referral.BedPool{}, false, err
	}
	return pool, true, nil
}

// ReleaseBed gives back the bed the ticket holds, if it holds one, and
// returns the released reservation. The reservation is marked first and the
// count moved only when that changed a row, so releasing twice (a retry, a
// second instance) frees one bed once; CHECK (in_use >= 0) backs this up.
func (s *Referrals) ReleaseBed(ctx context.Context, referralID, by, reason string, at time.Time) (referral.BedReservation, bool, error) {
	res, err := scanBedReservation(s.db.QueryRow(ctx, `UPDATE bed_reservations
		SET state = $2, released_at = $3, released_by = $4, release_reason = $5
		WHERE referral_id = $1 AND state = $6
		RETURNING `+bedReservationCols+`, ''`,
		referralID, string(referral.BedReleased), at, by, reason, string(referral.BedHeld)))
	if errors.Is(err, sqldb.ErrNoRows) {
		return referral.BedReservation{}, false, nil
	}
	if err != nil {
		return referral.BedReservation{}, false, err
	}
	n, err := s.db.Exec(ctx, `UPDATE bed_pools SET in_use = in_use - 1 WHERE hospital_id = $1 AND department_id = $2`,
		res.HospitalID, res.DepartmentID)
	if err != nil {
		return referral.BedReservation{}, false, err
	}
	if n != 1 {
		return referral.BedReservation{}, false, errors.New("store: a held bed's pool is missing")
	}
	return res, true, nil
}

const bedReservationCols = `id, hospital_id, department_id, referral_id, state, held_at, held_by, released_at, released_by, release_reason`

func scanBedReservation(row sqldb.Row) (referral.BedReservation, error) {
	var r referral.BedReservation
	var state string
	var releasedBy *string
	err := row.Scan(&r.ID, &r.HospitalID, &r.DepartmentID, &r.ReferralID, &state, &r.HeldAt, &r.HeldBy,
		&r.ReleasedAt, &releasedBy, &r.ReleaseReason, &r.Number)
	r.State, r.ReleasedBy = referral.BedState(state), refStr(releasedBy)
	return r, err
}

// HeldBeds lists the beds held now in a department's pool, oldest first,
// with their tickets' numbers.
func (s *Referrals) HeldBeds(ctx context.Context, hospitalID, departmentID string) ([]referral.BedReservation, error) {
	return dirQueryAll(ctx, s.db, `SELECT b.id, b.hospital_id, b.department_id, b.referral_id, b.state, b.held_at, b.held_by,
		b.released_at, b.released_by, b.release_reason, COALESCE(r.number, '')
		FROM bed_reservations b JOIN referrals r ON r.id = b.referral_id
		WHERE b.hospital_id = $1 AND b.department_id = $2 AND b.state = $3
		ORDER BY b.held_at, b.id`, []any{hospitalID, departmentID, string(referral.BedHeld)},
		func(r sqldb.Rows) (referral.BedReservation, error) { return scanBedReservation(r) })
}

// BedReservation returns the reservation a ticket holds or held, or
// apperr.ErrNotFound.
func (s *Referrals) BedReservation(ctx context.Context, referralID string) (referral.BedReservation, error) {
	if !apperr.IsID(referralID) {
		return referral.BedReservation{}, apperr.ErrNotFound
	}
	r, err := scanBedReservation(s.db.QueryRow(ctx, `SELECT `+bedReservationCols+`, '' FROM bed_reservations WHERE referral_id = $1`, referralID))
	return r, dirNotFound(err)
}
