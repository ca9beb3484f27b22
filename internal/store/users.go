package store

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"duikou/internal/apperr"
	"duikou/internal/auth"
	"duikou/internal/sqldb"
)

// Users keeps accounts, their roles and their sessions (tables users,
// user_roles, sessions). It implements auth.Store.
type Users struct {
	db sqldb.DB
}

// NewUsers returns the user store on db.
func NewUsers(db sqldb.DB) *Users { return &Users{db: db} }

var (
	_ auth.Store      = (*Users)(nil)
	_ auth.PurgeStore = (*Users)(nil)
)

// InTx runs fn in a transaction (joining the one in ctx, if any).
func (s *Users) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	return s.db.InTx(ctx, fn)
}

// HospitalExists reports whether the hospital is in the directory.
func (s *Users) HospitalExists(ctx context.Context, hospitalID string) (bool, error) {
	var one int
	err := s.db.QueryRow(ctx, `SELECT 1 FROM hospitals WHERE id = $1`, hospitalID).Scan(&one)
	if errors.Is(err, sqldb.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// StaffHospital returns the hospital a staff roster entry belongs to.
func (s *Users) StaffHospital(ctx context.Context, staffID string) (string, error) {
	var h string
	err := s.db.QueryRow(ctx, `SELECT hospital_id FROM staff WHERE id = $1`, staffID).Scan(&h)
	if errors.Is(err, sqldb.ErrNoRows) {
		return "", apperr.ErrNotFound
	}
	return h, err
}

// CreateUser inserts the user and its roles in one transaction.
func (s *Users) CreateUser(ctx context.Context, u auth.User, passwordHash string) error {
	return s.db.InTx(ctx, func(ctx context.Context) error {
		_, err := s.db.Exec(ctx, `
			INSERT INTO users (id, username, display_name, hospital_id, staff_id, password_hash,
			                   supervisor, disabled, failed_logins, locked_until, version, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, NULL, $9, $10, $11)`,
			u.ID, u.Username, u.DisplayName, u.HospitalID, nullable(u.StaffID), passwordHash,
			u.Supervisor, u.Disabled, u.Version, u.CreatedAt, u.UpdatedAt)
		if errors.Is(err, sqldb.ErrUniqueViolation) {
			return apperr.Conflict("the username is taken")
		}
		if err != nil {
			return err
		}
		return s.insertRoles(ctx, u.ID, u.Roles)
	})
}

func (s *Users) insertRoles(ctx context.Context, userID string, roles []auth.Role) error {
	for _, r := range roles {
		if _, err := s.db.Exec(ctx, `INSERT INTO user_roles (user_id, role) VALUES ($1, $2)`, userID, string(r)); err != nil {
			return err
		}
	}
	return nil
}

const userColumns = `u.id, u.username, u.display_name, u.hospital_id, u.staff_id, u.supervisor, u.disabled,
	u.failed_logins, u.locked_until, u.version, u.created_at, u.updated_at`

func scanUser(row sqldb.Row, extra ...any) (auth.User, error) {
	var u auth.User
	var staff *string
	dest := append([]any{&u.ID, &u.Username, &u.DisplayName, &u.HospitalID, &staff, &u.Supervisor, &u.Disabled,
		&u.FailedLogins, &u.LockedUntil, &u.Version, &u.CreatedAt, &u.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return auth.User{}, err
	}
	if staff != nil {
		u.StaffID = *staff
	}
	return u, nil
}

// User returns the user with its roles.
func (s *Users) User(ctx context.Context, id string) (auth.User, error) {
	u, err := scanUser(s.db.QueryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE u.id = $1`, id))
	if errors.Is(err, sqldb.ErrNoRows) {
		return auth.User{}, apperr.ErrNotFound
	}
	if err != nil {
		return auth.User{}, err
	}
	return u, s.loadRoles(ctx, []*auth.User{&u})
}

// UserByUsername returns the user and its password hash.
func (s *Users) UserByUsername(ctx context.Context, username string) (auth.User, string, error) {
	var hash string
	u, err := scanUser(s.db.QueryRow(ctx,
		`SELECT `+userColumns+`, u.password_hash FROM users u WHERE u.username = $1`, username), &hash)
	if errors.Is(err, sqldb.ErrNoRows) {
		return auth.User{}, "", apperr.ErrNotFound
	}
	if err != nil {
		return auth.User{}, "", err
	}
	return u, hash, s.loadRoles(ctx, []*auth.User{&u})
}

// PasswordHash returns the user's stored password hash.
func (s *Users) PasswordHash(ctx context.Context, userID string) (string, error) {
	var hash string
	err := s.db.QueryRow(ctx, `SELECT password_hash FROM users WHERE id = $1`, userID).Scan(&hash)
	if errors.Is(err, sqldb.ErrNoRows) {
		return "", apperr.ErrNotFound
	}
	return hash, err
}

// ListUsers returns up to f.Limit users after f.After, ordered by id.
func (s *Users) ListUsers(ctx context.Context, f auth.UserFilter) ([]auth.User, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.HospitalID != "" {
		where = append(where, "u.hospital_id = "+arg(f.HospitalID))
	}
	if f.Role != "" {
		where = append(where, "EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = u.id AND r.role = "+arg(string(f.Role))+")")
	}
	if f.After != "" {
		where = append(where, "u.id > "+arg(f.After))
	}
	q := `SELECT ` + userColumns + ` FROM users u`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY u.id LIMIT " + arg(f.Limit)
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var users []auth.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	ptrs := make([]*auth.User, len(users))
	for i := range users {
		ptrs[i] = &users[i]
	}
	return users, s.loadRoles(ctx, ptrs)
}

// loadRoles fills in the roles of users with one query, in the canonical
// role order.
func (s *Users) loadRoles(ctx context.Context, users []*auth.User) error {
	if len(users) == 0 {
		return nil
	}
	byID := make(map[string]*auth.User, len(users))
	marks := make([]string, len(users))
	args := make([]any, len(users))
	for i, u := range users {
		byID[u.ID] = u
		u.Roles = nil
		marks[i] = "$" + strconv.Itoa(i+1)
		args[i] = u.ID
	}
	rows, err := s.db.Query(ctx,
		`SELECT user_id, role FROM user_roles WHERE user_id IN (`+strings.Join(marks, ", ")+`)`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	held := map[string]map[auth.Role]bool{}
	for rows.Next() {
		var id, role string
		if err := rows.Scan(&id, &role); err != nil {
			return err
		}
		if held[id] == nil {
			held[id] = map[auth.Role]bool{}
		}
		held[id][auth.Role(role)] = true
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for id, u := range byID {
		u.Roles = inRoleOrder(held[id])
	}
	return nil
}

// inRoleOrder lists the roles held in the canonical order of auth.Roles
// (nil for none).
func inRoleOrder(held map[auth.Role]bool) []auth.Role {
	var out []auth.Role
	for _, r := range auth.Roles {
		if held[r] {
			out = append(out, r)
		}
	}
	return out
}

// UpdateUser writes the editable fields if the stored version is u.Version.
func (s *Users) UpdateUser(ctx context.Context, u auth.User, at time.Time) (auth.User, error) {
	err := s.db.InTx(ctx, func(ctx context.Context) error {
		n, err := s.db.Exec(ctx, `
			UPDATE users SET display_name = $1, supervisor = $2, disabled = $3,
			       version = version + 1, updated_at = $4
			WHERE id = $5 AND version = $6`,
			u.DisplayName, u.Supervisor, u.Disabled, at, u.ID, u.Version)
		if err != nil {
			return err
		}
		if n == 0 {
			var one int
			err := s.db.QueryRow(ctx, `SELECT 1 FROM users WHERE id = $1`, u.ID).Scan(&one)
			if errors.Is(err, sqldb.ErrNoRows) {
				return apperr.ErrNotFound
			}
			if err != nil {
				return err
			}
			return apperr.ErrStale
		}
		if _, err := s.db.Exec(ctx, `DELETE FROM user_roles WHERE user_id = $1`, u.ID); err != nil {
			return err
		}
		return s.insertRoles(ctx, u.ID, u.Roles)
	})
	if err != nil {
		return auth.User{}, err
	}
	return s.User(ctx, u.ID)
}

// SetPasswordHash replaces the password hash. The profile version does not
// change: a password is not part of what an administrator edits with If-Match.
func (s *Users) SetPasswordHash(ctx context.Context, userID, hash string, at time.Time) error {
	n, err := s.db.Exec(ctx, `UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3`, hash, at, userID)
	if err == nil && n == 0 {
		return apperr.ErrNotFound
	}
	return err
}

// RegisterFailedLogin increments the counter atomically; the row lock taken
// by the UPDATE serialises concurrent failures of the same account until the
// transaction ends, so exactly one of them sets the lock. A lock that has
// run out is cleared by the same statement.
func (s *Users) RegisterFailedLogin(ctx context.Context, userID string, at time.Time, threshold int, lockUntil time.Time) (auth.LoginFailure, error) {
	result := auth.FailureCounted
	err := s.db.InTx(ctx, func(ctx context.Context) error {
		var n int
		err := s.db.QueryRow(ctx, `
			UPDATE users SET failed_logins = failed_logins + 1, locked_until = NULL
			WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $2)
			RETURNING failed_logins`, userID, at).Scan(&n)
		if errors.Is(err, sqldb.ErrNoRows) {
			var one int
			err := s.db.QueryRow(ctx, `SELECT 1 FROM users WHERE id = $1`, userID).Scan(&one)
			if errors.Is(err, sqldb.ErrNoRows) {
				return apperr.ErrNotFound
			}
			result = auth.FailureWhileLocked
			return err
		}
		if err != nil {
			return err
		}
		if n < threshold {
			return nil
		}
		result = auth.FailureLocked
		_, err = s.db.Exec(ctx, `UPDATE users SET failed_logins = 0, locked_until = $1 WHERE id = $2`, lockUntil, userID)
		return err
	})
	return result, err
}

// ClearFailedLogins resets the counter and lifts any lock.
func (s *Users) ClearFailedLogins(ctx context.Context, userID string) error {
	n, err := s.db.Exec(ctx, `UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1`, userID)
	if err == nil && n == 0 {
		return apperr.ErrNotFound
	}
	return err
}

// CreateSession stores the session under its token hash.
func (s *Users) CreateSession(ctx context.Context, sess auth.Session, tokenHash []byte) error {
	_, err := s.db.Exec(ctx, `
		INSERT INTO sessions (id, token_hash, user_id, created_at, last_seen_at, expires_at, revoked_at, client_addr, user_agent)
		VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8)`,
		sess.ID, tokenHash, sess.UserID, sess.CreatedAt, sess.LastSeenAt, sess.ExpiresAt, sess.ClientAddr, sess.UserAgent)
	return err
}

// SessionWithUser finds a session by the SHA-256 of its token, together
// with its user and the user's roles, in one statement: it runs on every
// authenticated request. The roles are joined as one row per role (a user
// without roles gives one row with a NULL role), which both engines answer
// alike without an aggregate.
func (s *Users) SessionWithUser(ctx context.Context, tokenHash []byte) (auth.Session, auth.User, error) {
	rows, err := s.db.Query(ctx, `
		SELECT `+userColumns+`,
		       s.id, s.created_at, s.last_seen_at, s.expires_at, s.revoked_at, s.client_addr, s.user_agent,
		       r.role
		FROM sessions s
		JOIN users u ON u.id = s.user_id
		LEFT JOIN user_roles r ON r.user_id = u.id
		WHERE s.token_hash = $1`, tokenHash)
	if err != nil {
		return auth.Session{}, auth.User{}, err
	}
	defer rows.Close()
	var (
		sess  auth.Session
		u     auth.User
		found bool
		held  = map[auth.Role]bool{}
	)
	for rows.Next() {
		var role *string
		u, err = scanUser(rows, &sess.ID, &sess.CreatedAt, &sess.LastSeenAt, &sess.ExpiresAt, &sess.RevokedAt,
			&sess.ClientAddr, &sess.UserAgent, &role)
		if err != nil {
			return auth.Session{}, auth.User{}, err
		}
		found = true
		if role != nil {
			held[auth.Role(*role)] = true
		}
	}
	if err := rows.Err(); err != nil {
		return auth.Session{}, auth.User{}, err
	}
	if !found {
		return auth.Session{}, auth.User{}, apperr.ErrNotFound
	}
	sess.UserID = u.ID
	u.Roles = inRoleOrder(held)
	return sess, u, nil
}

// TouchSession moves last_seen_at forward (never back, should two
// instances touch the same session at once).
func (s *Users) TouchSession(ctx context.Context, sessionID string, at time.Time) error {
	_, err := s.db.Exec(ctx, `UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND last_seen_at < $1`, at, sessionID)
	return err
}

// RevokeSession ends one session; revoking twice keeps the first instant.
func (s *Users) RevokeSession(ctx context.Context, sessionID string, at time.Time) error {
	_, err := s.db.Exec(ctx, `UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`, at, sessionID)
	return err
}

// RevokeUserSessions ends every live session of the user except keep.
func (s *Users) RevokeUserSessions(ctx context.Context, userID, keep string, at time.Time) (int, error) {
	q := `UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL AND expires_at > $1`
	args := []any{at, userID}
	if keep != "" {
		q += ` AND id <> $3`
		args = append(args, keep)
	}
	n, err := s.db.Exec(ctx, q, args...)
	return int(n), err
}

// PurgeSessions deletes up to limit sessions whose absolute expiry is
// before before, oldest first, in one statement, and returns how many it
// deleted: fewer than limit means nothing older is left.
//
// A session has ended by its expires_at however it ended (a logout, a
// revocation or the idle timeout only end it sooner), so a session
// expiring before before has ended before it too, and only expires_at,
// which the index sessions_expires orders, needs to be read; a session
// that ended early is kept at most its absolute lifetime longer. The
// statement deletes by primary key what the index finds, so two purges at
// once delete each row once, and a purge never holds many rows or a long
// transaction.
func (s *Users) PurgeSessions(ctx context.Context, before time.Time, limit int) (int64, error) {
	return s.db.Exec(ctx, `DELETE FROM sessions WHERE id IN (
		SELECT id FROM sessions WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)`, before, limit)
}

// nullable stores "" as NULL, for optional references.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
