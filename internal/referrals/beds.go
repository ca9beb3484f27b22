package referrals

import (
	"context"
	"errors"
	"fmt"
	"time"

	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/directory"
	"duikou/internal/store"
	"duikou/referral"
)

// Audit actions of green-channel bed pools.
const (
	ActionBedReserve    = "bed_pool.reserve"
	ActionBedRelease    = "bed_pool.release"
	ActionBedPoolCreate = "bed_pool.create"
	ActionBedPoolUpdate = "bed_pool.update"
)

// Audited resource types: a pool is named by its department, a held bed by
// its reservation.
const (
	resourceBedPool     = "bed_pool"
	resourceReservation = "bed_reservation"
)

// reserveBed holds a bed of the receiving department's pool for r, which
// Decide has just accepted, in the caller's transaction. No free bed is a
// conflict that says why; the caller's transaction then writes nothing.
func (s *Service) reserveBed(ctx context.Context, p auth.Principal, r referral.Referral, now time.Time) error {
	if !apperr.IsID(r.ReceivingDepartmentID) {
		return referral.NoBedFree(referral.BedPool{})
	}
	res := referral.BedReservation{ID: r.BedReservationID, HospitalID: r.ReceivingHospitalID, DepartmentID: r.ReceivingDepartmentID,
		ReferralID: r.ID, HeldAt: now, HeldBy: p.UserID}
	pool, ok, err := s.store.ReserveBed(ctx, res)
	if err != nil {
		return err
	}
	if !ok {
		return referral.NoBedFree(pool)
	}
	return s.recordBed(ctx, p, ActionBedReserve, r, res.ID,
		fmt.Sprintf("%s holds a reserved bed of department %s (%d of %d in use)", r.Number, r.ReceivingDepartmentID, pool.InUse, pool.Size))
}

// releaseBed gives back the bed r holds as it ends (see
// referral.ReleasesBed), in the transaction of that change.
func (s *Service) releaseBed(ctx context.Context, p auth.Principal, r referral.Referral, ev referral.Event, now time.Time) error {
	res, ok, err := s.store.ReleaseBed(ctx, r.ID, p.UserID, string(ev.To), now)
	if err != nil || !ok {
		return err
	}
	return s.recordBed(ctx, p, ActionBedRelease, r, res.ID,
		fmt.Sprintf("%s gave its reserved bed of department %s back on %s", r.Number, res.DepartmentID, ev.To))
}

func (s *Service) recordBed(ctx context.Context, p auth.Principal, action string, r referral.Referral, reservationID, detail string) error {
	src := audit.SourceFrom(ctx)
	return s.audit.Record(ctx, audit.Entry{
		At: s.now(), ActorID: p.UserID, ActorHospitalID: p.HospitalID, Action: action,
		ResourceType: resourceReservation, ResourceID: reservationID, PatientID: r.PatientID, Outcome: audit.Success,
		RequestID: src.RequestID, ClientAddr: src.ClientAddr, Detail: detail,
	})
}

// BedStore is what the bed pool routes need of storage; store.Referrals
// implements it.
type BedStore interface {
	BedPool(ctx context.Context, hospitalID, departmentID string) (referral.BedPool, error)
	CreateBedPool(ctx context.Context, p referral.BedPool, at time.Time) (bool, error)
	SetBedPoolSize(ctx context.Context, hospitalID, departmentID string, size, expectVersion int, by string, at time.Time) (referral.BedPool, error)
	HeldBeds(ctx context.Context, hospitalID, departmentID string) ([]referral.BedReservation, error)
}

var _ BedStore = (*store.Referrals)(nil)

// Departments finds a department; directory.Store implements it.
type Departments interface {
	Department(ctx context.Context, id string) (directory.Department, error)
}

// Beds serves the green-channel bed pools: reading a department's pool and
// setting its size. Beds are taken and given back by the referral service
// itself, in the transaction of a ticket's acceptance or end.
type Beds struct {
	svc  *Service
	st   BedStore
	dept Departments
}

// NewBeds builds the bed pool service on the referral service, the pool
// store and the directory's departments.
func NewBeds(svc *Service, st BedStore, dept Departments) *Beds {
	return &Beds{svc: svc, st: st, dept: dept}
}

// poolView is how much of a pool a caller sees.
type poolView int

const (
	viewNone   poolView = iota
	viewCounts          // size, beds in use, free beds
	viewFull            // and the tickets holding the beds
)

// viewOf decides what p sees of a pool of hospitalID:
//   - the hospital's own clinical staff (the referral desk, its doctors)
//     see everything, the tickets holding beds included: they admit the
//     patients;
//   - the referral desks of hospitals paired with it see the counts, so a
//     county desk knows before sending a critical patient whether a reserved
//     bed is free;
//   - administrators, and the program office within its reach, see the
//     counts: they set sizes per pairing agreement.
//
// A ticket number is not clinical data, but which ticket holds which bed is
// the receiving hospital's own business, so no one else sees it.
func viewOf(p auth.Principal, hospitalID string) poolView {
	switch {
	case p.HospitalID == hospitalID && p.Has(auth.ClinicalRoles...):
		return viewFull
	case p.Has(auth.Admin):
		return viewCounts
	case p.Has(auth.ReferralDesk, auth.ProgramOffice) && p.CanReach(hospitalID):
		return viewCounts
	}
	return viewNone
}

// mayResize reports whether p may set sizes of hospitalID's pools: its own
// referral desk supervisors, administrators, and the program office within
// its reach (the health commission's reaches the province).
func mayResize(p auth.Principal, hospitalID string) bool {
	switch {
	case p.Has(auth.Admin):
		return true
	case p.Has(auth.ProgramOffice) && p.CanReach(hospitalID):
		return true
	}
	return p.Has(auth.ReferralDesk) && p.Supervisor && p.HospitalID == hospitalID
}

// outOfReach records that p asked for a pool it may not see and answers
// not found, so that the pool's existence does not leak.
func (b *Beds) outOfReach(ctx context.Context, p auth.Principal, departmentID string) error {
	src := audit.SourceFrom(ctx)
	if err := b.svc.audit.Record(ctx, audit.Entry{
		At: b.svc.now(), ActorID: p.UserID, ActorHospitalID: p.HospitalID, Action: audit.AccessDenied,
		ResourceType: resourceBedPool, ResourceID: departmentID, Outcome: audit.Denied,
		RequestID: src.RequestID, ClientAddr: src.ClientAddr, Detail: "outside the caller's reach",
	}); err != nil {
		return err
	}
	return apperr.ErrNotFound
}

// department checks that departmentID is a department of hospitalID.
func (b *Beds) department(ctx context.Context, hospitalID, departmentID string) error {
	if !apperr.IsID(hospitalID) || !apperr.IsID(departmentID) {
		return apperr.ErrNotFound
	}
	d, err := b.dept.Department(ctx, departmentID)
	if err != nil {
		return err
	}
	if d.HospitalID != hospitalID {
		return apperr.ErrNotFound
	}
	return nil
}

// pool reads a department's pool as view shows it. A department without a
// pool has none reserved: size 0, version 0.
func (b *Beds) pool(ctx context.Context, hospitalID, departmentID string, view poolView) (referral.BedPool, error) {
	pool, err := b.st.BedPool(ctx, hospitalID, departmentID)
	if errors.Is(err, apperr.ErrNotFound) {
		pool, err = referral.BedPool{HospitalID: hospitalID, DepartmentID: departmentID}, nil
	}
	if err != nil {
		return referral.BedPool{}, err
	}
	return b.show(ctx, pool, view)
}

func (b *Beds) show(ctx context.Context, pool referral.BedPool, view poolView) (referral.BedPool, error) {
	pool = pool.WithFree()
	pool.Reservations = nil
	if view == viewFull {
		held, err := b.st.HeldBeds(ctx, pool.HospitalID, pool.DepartmentID)
		if err != nil {
			return referral.BedPool{}, err
		}
		pool.Reservations = append([]referral.BedReservation{}, held...)
	}
	return pool, nil
}

// Pool returns the bed pool of a department of hospitalID as p may see it.
func (b *Beds) Pool(ctx context.Context, p auth.Principal, hospitalID, departmentID string) (referral.BedPool, error) {
	if !p.Has(append([]auth.Role{auth.Admin, auth.ProgramOffice}, auth.ClinicalRoles...)...) {
		return referral.BedPool{}, apperr.Forbidden("only hospital staff, administrators and the program office see bed pools")
	}
	view := viewOf(p, hospitalID)
	if view == viewNone {
		return referral.BedPool{}, b.outOfReach(ctx, p, departmentID)
	}
	if err := b.department(ctx, hospitalID, departmentID); err != nil {
		return referral.BedPool{}, err
	}
	return b.pool(ctx, hospitalID, departmentID, view)
}

// SetSize sets the number of reserved beds of a department of hospitalID.
// version is the pool's version the caller read; 0 creates the pool and is
// stale when one exists. The size may not go below the beds in use: that
// is checked by the writing statement itself, so an acceptance committing
// meanwhile cannot slip past it. created reports that the pool was new.
func (b *Beds) SetSize(ctx context.Context, p auth.Principal, hospitalID, departmentID string, version int, size *int) (_ referral.BedPool, created bool, _ error) {
	if !p.Has(auth.Admin, auth.ProgramOffice) && !(p.Has(auth.ReferralDesk) && p.Supervisor) {
		return referral.BedPool{}, false, apperr.Forbidden("only a referral desk supervisor of the hospital, an administrator or the program office sets bed pool sizes")
	}
	if !mayResize(p, hospitalID) {
		return referral.BedPool{}, false, b.outOfReach(ctx, p, departmentID)
	}
	if err := b.department(ctx, hospitalID, departmentID); err != nil {
		return referral.BedPool{}, false, err
	}
	n, err := referral.CheckPoolSize(size, 0)
	if err != nil {
		return referral.BedPool{}, false, err
	}
	now := b.svc.now()
	var out referral.BedPool
	err = b.svc.db.InTx(ctx, func(ctx context.Context) error {
		detail := ""
		if version == 0 {
			ok, err := b.st.CreateBedPool(ctx, referral.BedPool{HospitalID: hospitalID, DepartmentID: departmentID, Size: n, UpdatedBy: p.UserID}, now)
			if err != nil {
				return err
			}
			if !ok {
				return apperr.ErrStale // If-None-Match: * failed: the pool exists
			}
			if out, err = b.st.BedPool(ctx, hospitalID, departmentID); err != nil {
				return err
			}
			created, detail = true, fmt.Sprintf("size %d", n)
		} else {
			cur, err := b.st.BedPool(ctx, hospitalID, departmentID)
			if errors.Is(err, apperr.ErrNotFound) {
				return apperr.ErrStale // the caller names a version of a pool that is not there
			}
			if err != nil {
				return err
			}
			if out, err = b.st.SetBedPoolSize(ctx, hospitalID, departmentID, n, version, p.UserID, now); err != nil {
				return err
			}
			detail = fmt.Sprintf("size %d → %d (%d in use)", cur.Size, out.Size, out.InUse)
		}
		action := ActionBedPoolUpdate
		if created {
			action = ActionBedPoolCreate
		}
		src := audit.SourceFrom(ctx)
		return b.svc.audit.Record(ctx, audit.Entry{
			At: now, ActorID: p.UserID, ActorHospitalID: p.HospitalID, Action: action,
			ResourceType: resourceBedPool, ResourceID: departmentID, Outcome: audit.Success,
			RequestID: src.RequestID, ClientAddr: src.ClientAddr, Detail: "hospital " + hospitalID + ": " + detail,
		})
	})
	if err != nil {
		return referral.BedPool{}, false, err
	}
	out, err = b.show(ctx, out, viewOf(p, hospitalID))
	return out, created, err
}

// SetSizeFromAgreement sets a department's pool to the reserved beds a
// pairing agreement names (program.GreenChannel), creating the pool when
// there is none. It runs in the caller's transaction (the agreement's), so
// the terms and the pool change together; the caller has already decided
// that p may write the agreement. A size below the beds in use now is
// refused as a field error, and the agreement with it.
func (b *Beds) SetSizeFromAgreement(ctx context.Context, p auth.Principal, hospitalID, departmentID string, size int) error {
	if !mayResize(p, hospitalID) {
		return apperr.Forbidden("the caller may not size this hospital's bed pools")
	}
	if err := b.department(ctx, hospitalID, departmentID); err != nil {
		return err
	}
	n, err := referral.CheckPoolSize(&size, 0)
	if err != nil {
		return err
	}
	now := b.svc.now()
	return b.svc.db.InTx(ctx, func(ctx context.Context) error {
		cur, err := b.st.BedPool(ctx, hospitalID, departmentID)
		action, detail := ActionBedPoolUpdate, ""
		switch {
		case errors.Is(err, apperr.ErrNotFound):
			ok, err := b.st.CreateBedPool(ctx, referral.BedPool{HospitalID: hospitalID, DepartmentID: departmentID, Size: n, UpdatedBy: p.UserID}, now)
			if err != nil {
				return err
			}
			if !ok {
				return apperr.ErrStale
			}
			action, detail = ActionBedPoolCreate, fmt.Sprintf("size %d", n)
		case err != nil:
			return err
		case cur.Size == n:
			return nil
		default:
			out, err := b.st.SetBedPoolSize(ctx, hospitalID, departmentID, n, cur.Version, p.UserID, now)
			if err != nil {
				return err
			}
			detail = fmt.Sprintf("size %d → %d (%d in use)", cur.Size, out.Size, out.InUse)
		}
		src := audit.SourceFrom(ctx)
		return b.svc.audit.Record(ctx, audit.Entry{
			At: now, ActorID: p.UserID, ActorHospitalID: p.HospitalID, Action: action,
			ResourceType: resourceBedPool, ResourceID: departmentID, Outcome: audit.Success,
			RequestID: src.RequestID, ClientAddr: src.ClientAddr, Detail: "hospital " + hospitalID + ": " + detail + ", per the pairing agreement",
		})
	})
}
