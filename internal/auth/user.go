package auth

import (
	"context"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"duikou/internal/apperr"
)

// User is an account: a person working for one hospital in one or more roles.
// Version counts changes to what an administrator edits (display name, roles,
// supervisor, disabled); login counters and the lock change without it so
// that a failed login never makes an administrator's edit stale.
type User struct {
	ID           string
	Username     string
	DisplayName  string
	HospitalID   string
	StaffID      string // the staff roster entry, "" when the user is not on it
	Roles        []Role
	Supervisor   bool
	Disabled     bool
	FailedLogins int        // consecutive failures since the last success or lock
	LockedUntil  *time.Time // refused until then after too many failures
	Version      int
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// LockedAt reports whether the account is locked at instant now.
func (u User) LockedAt(now time.Time) bool {
	return u.LockedUntil != nil && now.Before(*u.LockedUntil)
}

// Session is a server-side login. The bearer token is never stored: the
// store keeps its SHA-256 only, so a database leak yields no usable session.
type Session struct {
	ID         string
	UserID     string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time // absolute; the session ends then however active it is
	RevokedAt  *time.Time
	ClientAddr string
	UserAgent  string
}

// UserFilter selects a page of users, ordered by id.
type UserFilter struct {
	HospitalID string // "" for every hospital
	Role       Role   // "" for any role
	After      string // continue after this user id
	Limit      int    // rows to return; the store returns exactly this many at most
}

// NewUser is what an administrator supplies to create an account.
type NewUser struct {
	Username    string
	DisplayName string
	HospitalID  string
	StaffID     string
	Roles       []Role
	Supervisor  bool
	Password    string
}

// UserChanges is a partial update: nil fields are left as they are.
type UserChanges struct {
	DisplayName *string
	Roles       *[]Role
	Supervisor  *bool
	Disabled    *bool
}

// LoginFailure is what counting one failed login did.
type LoginFailure int

const (
	// FailureCounted: one more consecutive failure, below the threshold.
	FailureCounted LoginFailure = iota
	// FailureLocked: this failure reached the threshold and locked the account.
	FailureLocked
	// FailureWhileLocked: the account was already locked; nothing was counted.
	FailureWhileLocked
)

// Store keeps users and sessions. Implemented by store.Users; every method
// joins the transaction in ctx when there is one.
type Store interface {
	InTx(ctx context.Context, fn func(ctx context.Context) error) error

	// HospitalExists reports whether the hospital is in the directory.
	HospitalExists(ctx context.Context, hospitalID string) (bool, error)
	// StaffHospital returns the hospital of a staff roster entry, or apperr.ErrNotFound.
	StaffHospital(ctx context.Context, staffID string) (string, error)

	// CreateUser inserts u with its roles; a taken username is apperr.ErrConflict.
	CreateUser(ctx context.Context, u User, passwordHash string) error
	// User returns the user with its roles, or apperr.ErrNotFound.
	User(ctx context.Context, id string) (User, error)
	// UserByUsername returns the user and its password hash, or apperr.ErrNotFound.
	UserByUsername(ctx context.Context, username string) (User, string, error)
	// PasswordHash returns the user's stored hash, or apperr.ErrNotFound.
	PasswordHash(ctx context.Context, userID string) (string, error)
	// ListUsers returns up to f.Limit users matching f, ordered by id.
	ListUsers(ctx context.Context, f UserFilter) ([]User, error)
	// UpdateUser stores the editable fields of u if the stored version is
	// still u.Version, and returns the user as stored (version + 1).
	// apperr.ErrStale on a version mismatch, apperr.ErrNotFound if absent.
	UpdateUser(ctx context.Context, u User, at time.Time) (User, error)
	// SetPasswordHash replaces the user's password hash.
	SetPasswordHash(ctx context.Context, userID, hash string, at time.Time) error

	// RegisterFailedLogin counts one failed login at instant at. When the
	// count reaches threshold the account is locked until lockUntil and the
	// count restarts, so that after the lock the user again has threshold
	// attempts. Failures while the account is locked are not counted.
	RegisterFailedLogin(ctx context.Context, userID string, at time.Time, threshold int, lockUntil time.Time) (LoginFailure, error)
	// ClearFailedLogins resets the counter and lifts any lock.
	ClearFailedLogins(ctx context.Context, userID string) error

	// CreateSession stores s under the SHA-256 of its token.
	CreateSession(ctx context.Context, s Session, tokenHash []byte) error
	// SessionWithUser returns the session stored under tokenHash with its
	// user and the user's roles, read together: it is the one read of an
	// authenticated request. apperr.ErrNotFound if there is no such session.
	SessionWithUser(ctx context.Context, tokenHash []byte) (Session, User, error)
	// TouchSession records activity at instant at.
	TouchSession(ctx context.Context, sessionID string, at time.Time) error
	// RevokeSession ends one session (no-op if already revoked).
	RevokeSession(ctx context.Context, sessionID string, at time.Time) error
	// RevokeUserSessions ends every live session of the user except keep
	// ("" for none) and returns how many it ended.
	RevokeUserSessions(ctx context.Context, userID, keep string, at time.Time) (int, error)
}

var usernamePattern = regexp.MustCompile(`^[a-z0-9._-]{3,64}$`)

// normalizeUsername is applied on create and on login alike, so that
// "Zhang.Wei " logs in as "zhang.wei".
func normalizeUsername(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// checkRoles requires at least one known role and returns them deduplicated
// in the canonical order of Roles.
func checkRoles(v *apperr.Invalid, roles []Role) []Role {
	if len(roles) == 0 {
		v.Add("roles", "must name at least one role")
		return nil
	}
	for i, r := range roles {
		if !r.Valid() {
			v.Add("roles["+strconv.Itoa(i)+"]", "must be one of "+roleList())
		}
	}
	var out []Role
	for _, r := range Roles {
		if slices.Contains(roles, r) {
			out = append(out, r)
		}
	}
	return out
}

func roleList() string {
	names := make([]string, len(Roles))
	for i, r := range Roles {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}
