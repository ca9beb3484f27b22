package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"duikou/internal/apperr"
	"duikou/internal/audit"
)

// Actions on user accounts, recorded in the audit log.
const (
	ActionUserCreate         = "user.create"
	ActionUserUpdate         = "user.update"
	ActionUserPasswordReset  = "user.password_reset"
	ActionUserPasswordChange = "user.password_change"
	ActionUserUnlock         = "user.unlock"
)

// Administration of accounts is for administrators only. An administrator
// manages the users of every hospital: accounts are provisioned centrally.
func requireAdmin(p Principal) error {
	if !p.Has(Admin) {
		return apperr.Forbidden("only an administrator manages user accounts")
	}
	return nil
}

// CreateUser opens an account with an initial password.
func (s *Service) CreateUser(ctx context.Context, p Principal, in NewUser) (User, error) {
	if err := requireAdmin(p); err != nil {
		return User{}, err
	}
	var v apperr.Invalid
	username := normalizeUsername(in.Username)
	if !usernamePattern.MatchString(username) {
		v.Add("username", "must be 3 to 64 characters of a-z, 0-9, '.', '_' or '-'")
	}
	display := v.Text("display_name", in.DisplayName, true, apperr.MaxName)
	hospitalID := strings.TrimSpace(in.HospitalID)
	if hospitalID == "" {
		v.Add("hospital_id", "is required")
	} else if !apperr.IsID(hospitalID) {
		v.Add("hospital_id", "must be a hospital id")
	}
	staffID := strings.TrimSpace(in.StaffID)
	if staffID != "" && !apperr.IsID(staffID) {
		v.Add("staff_id", "must be a staff id")
	}
	roles := checkRoles(&v, in.Roles)
	checkPasswordPolicy(&v, "password", in.Password)
	if len(v) > 0 {
		return User{}, v.Err()
	}
	// References are checked after the shape so that a malformed request
	// costs no database round trips.
	if ok, err := s.store.HospitalExists(ctx, hospitalID); err != nil {
		return User{}, err
	} else if !ok {
		v.Add("hospital_id", "no such hospital")
	}
	if staffID != "" {
		h, err := s.store.StaffHospital(ctx, staffID)
		switch {
		case errors.Is(err, apperr.ErrNotFound):
			v.Add("staff_id", "no such staff member")
		case err != nil:
			return User{}, err
		case h != hospitalID:
			v.Add("staff_id", "belongs to another hospital than hospital_id")
		}
	}
	if len(v) > 0 {
		return User{}, v.Err()
	}
	hash, err := hashPassword(in.Password, s.params)
	if err != nil {
		return User{}, err
	}
	now := s.now()
	u := User{
		ID: uuid.Must(uuid.NewV7()).String(), Username: username, DisplayName: display,
		HospitalID: hospitalID, StaffID: staffID, Roles: roles, Supervisor: in.Supervisor,
		Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateUser(ctx, u, hash); err != nil {
			return err
		}
		return s.record(ctx, p, ActionUserCreate, "user", u.ID,
			fmt.Sprintf("username=%s hospital=%s roles=%s supervisor=%t", u.Username, u.HospitalID, joinRoles(u.Roles), u.Supervisor))
	})
	if err != nil {
		return User{}, err
	}
	return u, nil
}

// GetUser returns one account.
func (s *Service) GetUser(ctx context.Context, p Principal, id string) (User, error) {
	if err := requireAdmin(p); err != nil {
		return User{}, err
	}
	if !apperr.IsID(id) {
		return User{}, apperr.ErrNotFound
	}
	return s.store.User(ctx, id)
}

// ListUsers returns a page of accounts (limit+1 rows when another page
// follows), optionally of one hospital or role.
func (s *Service) ListUsers(ctx context.Context, p Principal, f UserFilter) ([]User, error) {
	if err := requireAdmin(p); err != nil {
		return nil, err
	}
	var v apperr.Invalid
	if f.HospitalID != "" && !apperr.IsID(f.HospitalID) {
		v.Add("hospital_id", "must be a hospital id")
	}
	if f.Role != "" && !f.Role.Valid() {
		v.Add("role", "must be one of "+roleList())
	}
	if f.After != "" && !apperr.IsID(f.After) {
		v.Add("cursor", "is not a cursor this server issued")
	}
	if f.Limit < 1 || f.Limit > 1000 {
		v.Add("limit", "must be from 1 to 1000")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return s.store.ListUsers(ctx, f)
}

// UpdateUser applies an administrator's changes to the version they read.
// Disabling an account ends its sessions. Administrators cannot disable
// themselves or drop their own admin role, so the last administrator cannot
// lock everyone out by mistake.
func (s *Service) UpdateUser(ctx context.Context, p Principal, id string, version int, c UserChanges) (User, error) {
	if err := requireAdmin(p); err != nil {
		return User{}, err
	}
	if !apperr.IsID(id) {
		return User{}, apperr.ErrNotFound
	}
	var v apperr.Invalid
	var display string
	var roles []Role
	if c.DisplayName == nil && c.Roles == nil && c.Supervisor == nil && c.Disabled == nil {
		v.Add("body", "names no field to change (display_name, roles, supervisor, disabled)")
	}
	if c.DisplayName != nil {
		display = v.Text("display_name", *c.DisplayName, true, apperr.MaxName)
	}
	if c.Roles != nil {
		roles = checkRoles(&v, *c.Roles)
	}
	if err := v.Err(); err != nil {
		return User{}, err
	}
	if id == p.UserID {
		if c.Disabled != nil && *c.Disabled {
			return User{}, apperr.Conflict("you cannot disable your own account")
		}
		if c.Roles != nil && !slices.Contains(roles, Admin) {
			return User{}, apperr.Conflict("you cannot remove your own admin role")
		}
	}
	var out User
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		// Roles, the supervisor flag and disabling change what a session
		// may do: forget the sessions read before, once this has committed.
		s.sessionsChanged(ctx)
		cur, err := s.store.User(ctx, id)
		if err != nil {
			return err
		}
		if cur.Version != version {
			return apperr.ErrStale
		}
		next := cur
		var changed []string
		if c.DisplayName != nil && display != cur.DisplayName {
			next.DisplayName = display
			changed = append(changed, "display_name changed")
		}
		if c.Roles != nil && !slices.Equal(roles, cur.Roles) {
			next.Roles = roles
			changed = append(changed, fmt.Sprintf("roles %s -> %s", joinRoles(cur.Roles), joinRoles(roles)))
		}
		if c.Supervisor != nil && *c.Supervisor != cur.Supervisor {
			next.Supervisor = *c.Supervisor
			changed = append(changed, fmt.Sprintf("supervisor %t -> %t", cur.Supervisor, next.Supervisor))
		}
		if c.Disabled != nil && *c.Disabled != cur.Disabled {
			next.Disabled = *c.Disabled
			changed = append(changed, fmt.Sprintf("disabled %t -> %t", cur.Disabled, next.Disabled))
		}
		if len(changed) == 0 {
			out = cur // nothing to change: no new version, no audit row
			return nil
		}
		now := s.now()
		if out, err = s.store.UpdateUser(ctx, next, now); err != nil {
			return err
		}
		if next.Disabled && !cur.Disabled {
			if _, err := s.store.RevokeUserSessions(ctx, id, "", now); err != nil {
				return err
			}
		}
		return s.record(ctx, p, ActionUserUpdate, "user", id, strings.Join(changed, "; "))
	})
	if err != nil {
		return User{}, err
	}
	return out, nil
}

// ResetPassword sets a new password chosen by an administrator and ends
// every session of that user.
func (s *Service) ResetPassword(ctx context.Context, p Principal, id, newPassword string) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	if !apperr.IsID(id) {
		return apperr.ErrNotFound
	}
	var v apperr.Invalid
	checkPasswordPolicy(&v, "new_password", newPassword)
	if err := v.Err(); err != nil {
		return err
	}
	hash, err := hashPassword(newPassword, s.params)
	if err != nil {
		return err
	}
	now := s.now()
	return s.store.InTx(ctx, func(ctx context.Context) error {
		s.sessionsChanged(ctx) // the user's sessions end
		if _, err := s.store.User(ctx, id); err != nil {
			return err
		}
		if err := s.store.SetPasswordHash(ctx, id, hash, now); err != nil {
			return err
		}
		n, err := s.store.RevokeUserSessions(ctx, id, "", now)
		if err != nil {
			return err
		}
		return s.record(ctx, p, ActionUserPasswordReset, "user", id, fmt.Sprintf("%d sessions ended", n))
	})
}

// Unlock lifts a lock after failed logins and resets the counter.
func (s *Service) Unlock(ctx context.Context, p Principal, id string) (User, error) {
	if err := requireAdmin(p); err != nil {
		return User{}, err
	}
	if !apperr.IsID(id) {
		return User{}, apperr.ErrNotFound
	}
	var out User
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		if _, err := s.store.User(ctx, id); err != nil {
			return err
		}
		if err := s.store.ClearFailedLogins(ctx, id); err != nil {
			return err
		}
		var err error
		if out, err = s.store.User(ctx, id); err != nil {
			return err
		}
		return s.record(ctx, p, ActionUserUnlock, "user", id, "")
	})
	return out, err
}

// ChangePassword lets the caller replace their own password, proving they
// know the current one. A wrong current password counts as a failed login
// (a stolen session cannot be used to guess it) and the caller's other
// sessions end, since a change often follows a suspected compromise.
func (s *Service) ChangePassword(ctx context.Context, p Principal, current, newPassword string) error {
	if !p.Authenticated() {
		return apperr.ErrUnauthenticated
	}
	var v apperr.Invalid
	if current == "" {
		v.Add("current_password", "is required")
	}
	checkPasswordPolicy(&v, "new_password", newPassword)
	if len(v) == 0 && current == newPassword {
		v.Add("new_password", "must differ from the current password")
	}
	if err := v.Err(); err != nil {
		return err
	}
	hash, err := s.store.PasswordHash(ctx, p.UserID)
	if err != nil {
		return err
	}
	if len(current) > maxLoginField {
		current = current[:maxLoginField]
	}
	ok, _, err := verifyPassword(current, hash, s.params)
	if err != nil {
		return fmt.Errorf("verify password of user %s: %w", p.UserID, err)
	}
	now := s.now()
	if !ok {
		u, err := s.store.User(ctx, p.UserID)
		if err != nil {
			return err
		}
		src := audit.SourceFrom(ctx)
		err = s.failLogin(ctx, u, audit.Entry{
			At: now, ActorID: u.ID, ActorHospitalID: u.HospitalID, ResourceType: "user", ResourceID: u.ID,
			RequestID: src.RequestID, ClientAddr: src.ClientAddr,
		})
		if errors.Is(err, apperr.ErrUnauthenticated) {
			// The session is still good: it is the field that is wrong.
			return apperr.Field("current_password", "is wrong")
		}
		return err
	}
	newHash, err := hashPassword(newPassword, s.params)
	if err != nil {
		return err
	}
	return s.store.InTx(ctx, func(ctx context.Context) error {
		s.sessionsChanged(ctx) // the user's other sessions end
		if err := s.store.SetPasswordHash(ctx, p.UserID, newHash, now); err != nil {
			return err
		}
		n, err := s.store.RevokeUserSessions(ctx, p.UserID, p.SessionID, now)
		if err != nil {
			return err
		}
		return s.record(ctx, p, ActionUserPasswordChange, "user", p.UserID, fmt.Sprintf("%d other sessions ended", n))
	})
}

func joinRoles(roles []Role) string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return strings.Join(names, ",")
}

// BootstrapAdmin creates the first administrator of a fresh installation,
// when no account holds the admin role yet; otherwise it does nothing. The
// audit row names the actor "system".
func (s *Service) BootstrapAdmin(ctx context.Context, in NewUser) (created bool, err error) {
	admins, err := s.store.ListUsers(ctx, UserFilter{Role: Admin, Limit: 1})
	if err != nil || len(admins) > 0 {
		return false, err
	}
	if !slices.Contains(in.Roles, Admin) {
		in.Roles = append(slices.Clone(in.Roles), Admin)
	}
	system := Principal{UserID: "system", Roles: []Role{Admin}}
	if _, err := s.CreateUser(ctx, system, in); err != nil {
		return false, err
	}
	return true, nil
}
