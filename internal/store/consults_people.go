package store

import (
	"context"
	"time"

	"duikou/internal/apperr"
	"duikou/internal/auth"
	"duikou/internal/sqldb"
)

// What the remote-session service needs besides sessions: the shared outbox,
// a patient's home hospital, and the people and departments a request names,
// read in the caller's transaction.

// EnqueueOutbox adds a message to the outbox every change feeds (the same
// table the referral relay reads by topic).
func (c *Consults) EnqueueOutbox(ctx context.Context, topic, key, payload string, at time.Time) error {
	return NewReferrals(c.db).EnqueueOutbox(ctx, topic, key, payload, at)
}

// PatientHome returns the hospital a patient is registered at, or
// apperr.ErrNotFound.
func (c *Consults) PatientHome(ctx context.Context, patientID string) (string, error) {
	return NewReferrals(c.db).PatientHome(ctx, patientID)
}

// Clinician is what a request or an assignment needs to know of a user: where
// they work, in which roles, and their roster department when they are on it.
type Clinician struct {
	UserID       string
	HospitalID   string
	DepartmentID string // "" when the user is not on the staff roster or has no department there
	Roles        []auth.Role
	Disabled     bool
}

// Clinician returns the user with id, or apperr.ErrNotFound.
func (c *Consults) Clinician(ctx context.Context, userID string) (Clinician, error) {
	if !apperr.IsID(userID) {
		return Clinician{}, apperr.ErrNotFound
	}
	var out Clinician
	var dept *string
	err := c.db.QueryRow(ctx, `SELECT u.id, u.hospital_id, s.department_id, u.disabled
		FROM users u LEFT JOIN staff s ON s.id = u.staff_id AND s.active WHERE u.id = $1`, userID).Scan(
		&out.UserID, &out.HospitalID, &dept, &out.Disabled)
	if err != nil {
		return Clinician{}, dirNotFound(err)
	}
	out.DepartmentID = refStr(dept)
	out.Roles, err = dirQueryAll(ctx, c.db, `SELECT role FROM user_roles WHERE user_id = $1 ORDER BY role`, []any{userID},
		func(r sqldb.Rows) (auth.Role, error) {
			var role string
			err := r.Scan(&role)
			return auth.Role(role), err
		})
	return out, err
}

// DepartmentHospital returns the hospital a department belongs to, or
// apperr.ErrNotFound.
func (c *Consults) DepartmentHospital(ctx context.Context, departmentID string) (string, error) {
	if !apperr.IsID(departmentID) {
		return "", apperr.ErrNotFound
	}
	var h string
	err := c.db.QueryRow(ctx, `SELECT hospital_id FROM departments WHERE id = $1`, departmentID).Scan(&h)
	return h, dirNotFound(err)
}
