package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"duikou/internal/auth"
)

// AuthService is what the API needs of identity and access.
type AuthService interface {
	// Authenticate turns a session token into the caller, or fails with
	// apperr.ErrUnauthenticated (unknown, expired, idle or revoked).
	Authenticate(ctx context.Context, token string) (auth.Principal, error)
	// CSRFToken is the token a browser must echo on unsafe requests.
	CSRFToken(sessionID string) string

	Login(ctx context.Context, username, password, clientAddr, userAgent string) (auth.LoginResult, error)
	Logout(ctx context.Context, p auth.Principal) error
	ChangePassword(ctx context.Context, p auth.Principal, current, newPassword string) error

	CreateUser(ctx context.Context, p auth.Principal, in auth.NewUser) (auth.User, error)
	GetUser(ctx context.Context, p auth.Principal, id string) (auth.User, error)
	ListUsers(ctx context.Context, p auth.Principal, f auth.UserFilter) ([]auth.User, error)
	UpdateUser(ctx context.Context, p auth.Principal, id string, version int, c auth.UserChanges) (auth.User, error)
	ResetPassword(ctx context.Context, p auth.Principal, id, newPassword string) error
	Unlock(ctx context.Context, p auth.Principal, id string) (auth.User, error)
}

func (a *API) mountPublicAuth(r chi.Router) {
	r.Post("/auth/login", a.login)
}

func (a *API) mountAuth(r chi.Router) {
	r.Post("/auth/logout", a.logout)
	r.Get("/auth/me", a.me)
	r.Post("/auth/password", a.changePassword)

	r.Route("/users", func(r chi.Router) {
		r.Use(a.allow(auth.Admin))
		r.Get("/", a.listUsers)
		r.Post("/", a.createUser)
		r.Get("/{userID}", a.getUser)
		r.Patch("/{userID}", a.updateUser)
		r.Post("/{userID}/password", a.resetPassword)
		r.Post("/{userID}/unlock", a.unlockUser)
	})
}

// LoginRequest is the body of POST /auth/login.
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// SessionUser is the signed-in user as the client needs it.
type SessionUser struct {
	ID          string      `json:"id"`
	Username    string      `json:"username"`
	DisplayName string      `json:"display_name"`
	HospitalID  string      `json:"hospital_id"`
	Roles       []auth.Role `json:"roles"`
	Supervisor  bool        `json:"supervisor"`
}

func sessionUserOf(p auth.Principal) SessionUser {
	roles := p.Roles
	if roles == nil {
		roles = []auth.Role{}
	}
	return SessionUser{ID: p.UserID, Username: p.Username, DisplayName: p.DisplayName,
		HospitalID: p.HospitalID, Roles: roles, Supervisor: p.Supervisor}
}

// LoginResponse carries the session token once: API clients send it as a
// bearer token, browsers get it in the cookie as well.
type LoginResponse struct {
	Token     string      `json:"token"`
	CSRFToken string      `json:"csrf_token"`
	ExpiresAt time.Time   `json:"expires_at"`
	User      SessionUser `json:"user"`
}

// MeResponse is GET /auth/me.
type MeResponse struct {
	User      SessionUser `json:"user"`
	CSRFToken string      `json:"csrf_token"`
}

// ChangePasswordRequest is the body of POST /auth/password.
type ChangePasswordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// ResetPasswordRequest is the body of POST /users/{userID}/password.
type ResetPasswordRequest struct {
	NewPassword string `json:"new_password"`
}

// UserJSON is an account as administrators see it. No password hash, ever.
type UserJSON struct {
	ID           string      `json:"id"`
	Username     string      `json:"username"`
	DisplayName  string      `json:"display_name"`
	HospitalID   string      `json:"hospital_id"`
	StaffID      *string     `json:"staff_id"`
	Roles        []auth.Role `json:"roles"`
	Supervisor   bool        `json:"supervisor"`
	Disabled     bool        `json:"disabled"`
	FailedLogins int         `json:"failed_logins"`
	LockedUntil  *time.Time  `json:"locked_until"`
	Version      int         `json:"version"`
	CreatedAt    time.Time   `json:"created_at"`
	UpdatedAt    time.Time   `json:"updated_at"`
}

func userJSONOf(u auth.User) UserJSON {
	j := UserJSON{
		ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, HospitalID: u.HospitalID,
		Roles: u.Roles, Supervisor: u.Supervisor, Disabled: u.Disabled, FailedLogins: u.FailedLogins,
		LockedUntil: u.LockedUntil, Version: u.Version, CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC(),
	}
	if u.StaffID != "" {
		s := u.StaffID
		j.StaffID = &s
	}
	if j.Roles == nil {
		j.Roles = []auth.Role{}
	}
	return j
}

// CreateUserRequest is the body of POST /users.
type CreateUserRequest struct {
	Username    string      `json:"username"`
	DisplayName string      `json:"display_name"`
	HospitalID  string      `json:"hospital_id"`
	StaffID     string      `json:"staff_id"`
	Roles       []auth.Role `json:"roles"`
	Supervisor  bool        `json:"supervisor"`
	Password    string      `json:"password"`
}

// UpdateUserRequest is the body of PATCH /users/{userID}: absent fields stay.
type UpdateUserRequest struct {
	DisplayName *string      `json:"display_name,omitempty"`
	Roles       *[]auth.Role `json:"roles,omitempty"`
	Supervisor  *bool        `json:"supervisor,omitempty"`
	Disabled    *bool        `json:"disabled,omitempty"`
}

func (a *API) login(w http.ResponseWriter, r *http.Request) {
	// A foreign page must not log a browser into an account of its choosing.
	if !a.originAllowed(r) {
		writeProblem(w, r, http.StatusForbidden, "login from a foreign Origin is refused")
		return
	}
	var req LoginRequest
	if !a.readJSON(w, r, &req) {
		return
	}
	res, err := a.Auth.Login(r.Context(), req.Username, req.Password, a.clientAddr(r), r.UserAgent())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	// The session's token is stored only as a hash: its answer is never
	// kept for idempotent replay, should login ever take an Idempotency-Key.
	notForReplay(r.Context())
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: res.Token, Path: "/", Expires: res.ExpiresAt,
		HttpOnly: true, Secure: a.cfg.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
	writeJSON(w, http.StatusOK, LoginResponse{
		Token: res.Token, CSRFToken: res.CSRFToken, ExpiresAt: res.ExpiresAt.UTC(), User: sessionUserOf(res.Principal),
	})
}

func (a *API) logout(w http.ResponseWriter, r *http.Request) {
	if err := a.Auth.Logout(r.Context(), auth.FromContext(r.Context())); err != nil {
		a.writeError(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, Expires: time.Unix(0, 0),
		HttpOnly: true, Secure: a.cfg.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) me(w http.ResponseWriter, r *http.Request) {
	p := auth.FromContext(r.Context())
	writeJSON(w, http.StatusOK, MeResponse{User: sessionUserOf(p), CSRFToken: a.Auth.CSRFToken(p.SessionID)})
}

func (a *API) changePassword(w http.ResponseWriter, r *http.Request) {
	var req ChangePasswordRequest
	if !a.readJSON(w, r, &req) {
		return
	}
	if err := a.Auth.ChangePassword(r.Context(), auth.FromContext(r.Context()), req.CurrentPassword, req.NewPassword); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request) {
	page, err := pageFrom(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	users, err := a.Auth.ListUsers(r.Context(), auth.FromContext(r.Context()), auth.UserFilter{
		HospitalID: q.Get("hospital_id"), Role: auth.Role(q.Get("role")), After: page.Cursor, Limit: page.Limit + 1,
	})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	items := make([]UserJSON, len(users))
	for i, u := range users {
		items[i] = userJSONOf(u)
	}
	writeJSON(w, http.StatusOK, listOf(items, page.Limit, func(u UserJSON) string { return u.ID }))
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request) {
	var req CreateUserRequest
	if !a.readJSON(w, r, &req) {
		return
	}
	u, err := a.Auth.CreateUser(r.Context(), auth.FromContext(r.Context()), auth.NewUser{
		Username: req.Username, DisplayName: req.DisplayName, HospitalID: req.HospitalID, StaffID: req.StaffID,
		Roles: req.Roles, Supervisor: req.Supervisor, Password: req.Password,
	})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/users/"+u.ID)
	setETag(w, u.Version)
	writeJSON(w, http.StatusCreated, userJSONOf(u))
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request) {
	u, err := a.Auth.GetUser(r.Context(), auth.FromContext(r.Context()), chi.URLParam(r, "userID"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	setETag(w, u.Version)
	writeJSON(w, http.StatusOK, userJSONOf(u))
}

func (a *API) updateUser(w http.ResponseWriter, r *http.Request) {
	version, err := ifMatch(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var req UpdateUserRequest
	if !a.readJSON(w, r, &req) {
		return
	}
	u, err := a.Auth.UpdateUser(r.Context(), auth.FromContext(r.Context()), chi.URLParam(r, "userID"), version, auth.UserChanges{
		DisplayName: req.DisplayName, Roles: req.Roles, Supervisor: req.Supervisor, Disabled: req.Disabled,
	})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	setETag(w, u.Version)
	writeJSON(w, http.StatusOK, userJSONOf(u))
}

func (a *API) resetPassword(w http.ResponseWriter, r *http.Request) {
	var req ResetPasswordRequest
	if !a.readJSON(w, r, &req) {
		return
	}
	if err := a.Auth.ResetPassword(r.Context(), auth.FromContext(r.Context()), chi.URLParam(r, "userID"), req.NewPassword); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) unlockUser(w http.ResponseWriter, r *http.Request) {
	u, err := a.Auth.Unlock(r.Context(), auth.FromContext(r.Context()), chi.URLParam(r, "userID"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	setETag(w, u.Version)
	writeJSON(w, http.StatusOK, userJSONOf(u))
}
