package referral

import (
	"fmt"
	"strconv"
	"time"

	"duikou/internal/apperr"
)

// MaxBedPoolSize bounds one department's reserved beds: more than any ward
// has, small enough that a mistyped size is caught.
const MaxBedPoolSize = 1000

// BedPool is the beds a receiving department keeps for green-channel
// patients (按一定比例动态预留专用病床). Its size is set per pairing
// agreement; InUse counts the beds held by accepted tickets.
//
// Version counts changes of the pool's settings (its size), not of InUse:
// an acceptance on a busy ward must not make a supervisor's edit stale, and
// the size is checked against the beds in use when it is written anyway.
// A department with no pool has zero reserved beds and version 0.
type BedPool struct {
	HospitalID   string     `json:"hospital_id"`
	DepartmentID string     `json:"department_id"`
	Size         int        `json:"size"`
	InUse        int        `json:"in_use"`
	Free         int        `json:"free"`
	Version      int        `json:"version"`
	UpdatedAt    *time.Time `json:"updated_at"`
	UpdatedBy    string     `json:"updated_by,omitempty"`
	// Reservations are the beds held now, oldest first. Only the receiving
	// hospital's own staff see them; for anyone else they are null.
	Reservations []BedReservation `json:"reservations"`
}

// Configured reports whether the department has a pool at all.
func (p BedPool) Configured() bool { return p.Version > 0 }

// WithFree fills in Free from Size and InUse.
func (p BedPool) WithFree() BedPool {
	p.Free = max(0, p.Size-p.InUse)
	return p
}

// BedState is where a reservation stands.
type BedState string

const (
	BedHeld     BedState = "held"
	BedReleased BedState = "released"
)

// BedReservation is one reserved bed held by one ticket.
type BedReservation struct {
	ID            string     `json:"id"`
	HospitalID    string     `json:"hospital_id"`
	DepartmentID  string     `json:"department_id"`
	ReferralID    string     `json:"referral_id"`
	Number        string     `json:"number"` // the ticket's 转诊单号
	State         BedState   `json:"state"`
	HeldAt        time.Time  `json:"held_at"`
	HeldBy        string     `json:"held_by"`
	ReleasedAt    *time.Time `json:"released_at,omitempty"`
	ReleasedBy    string     `json:"released_by,omitempty"`
	ReleaseReason string     `json:"release_reason,omitempty"`
}

// ReleasesBed reports whether a ticket moving into s gives its reserved bed
// back to the pool:
//   - cancelled and no_show: the patient is not coming, and the bed must be
//     free for the next critical patient at once, not when someone notices;
//   - completed: the receiving side recorded how its care ended (discharged,
//     referred back, died …); the patient has left the referral path, and a
//     patient still on the ward is an ordinary inpatient by then.
//
// A bed is not given back on arrival: the patient arrives into the reserved
// bed and occupies it. Nor on close, which only says the referrer read the
// feedback and may never happen. Every path out of accepted passes through
// exactly one of these three states, so no bed is held for ever.
func ReleasesBed(s Status) bool {
	return s == Cancelled || s == NoShow || s == Completed
}

// CheckPoolSize validates a new size for a pool with inUse beds held.
func CheckPoolSize(size *int, inUse int) (int, error) {
	switch {
	case size == nil:
		return 0, apperr.Field("size", "is required: the number of beds reserved for referred patients")
	case *size < 0 || *size > MaxBedPoolSize:
		return 0, apperr.Field("size", "must be a whole number from 0 to "+strconv.Itoa(MaxBedPoolSize))
	case *size < inUse:
		return 0, PoolBelowInUse(inUse)
	}
	return *size, nil
}

// PoolBelowInUse is the refusal of a size below the beds held now: the
// pool would be oversubscribed.
func PoolBelowInUse(inUse int) error {
	return apperr.Field("size", fmt.Sprintf("must not be below the %d beds in use; release or wait for them first", inUse))
}

// NoBedFree is the refusal of a green-channel acceptance when the
// department's pool has no free bed (or the department has none reserved).
func NoBedFree(p BedPool) error {
	if !p.Configured() || p.Size == 0 {
		return apperr.Conflict("the receiving department has no reserved green-channel bed pool; " +
			"ask a referral desk supervisor to set its size, or reject with no_capacity or redirect the patient")
	}
	return apperr.Conflict(fmt.Sprintf("the green-channel bed pool of the receiving department is full (%d of %d beds in use); "+
		"reject with no_capacity or redirect the patient", p.InUse, p.Size))
}
