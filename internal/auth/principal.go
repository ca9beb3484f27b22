// Package auth is identity and access: users, roles, password login,
// server-side sessions, and the Principal that every other package receives
// to decide what the caller may do.
package auth

import (
	"context"
	"slices"
)

// Role is what a user does in the program. A user may hold several.
type Role string

const (
	CountyDoctor     Role = "county_doctor"
	Specialist       Role = "specialist"
	ReferralDesk     Role = "referral_desk"
	DispatchedDoctor Role = "dispatched_doctor"
	ProgramOffice    Role = "program_office"
	Admin            Role = "admin"
	Auditor          Role = "auditor"
)

// Roles lists every role, in a stable order.
var Roles = []Role{CountyDoctor, Specialist, ReferralDesk, DispatchedDoctor, ProgramOffice, Admin, Auditor}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// ClinicalRoles are the roles that work with patient data.
var ClinicalRoles = []Role{CountyDoctor, Specialist, ReferralDesk, DispatchedDoctor}

// Principal is the authenticated caller. It is built once per request from the
// session and passed explicitly to domain code.
type Principal struct {
	UserID      string
	Username    string
	DisplayName string
	HospitalID  string // the hospital the user acts for
	Roles       []Role
	Supervisor  bool // receives escalations
	SessionID   string
	// Reach is the set of hospitals whose data the caller may see: its own
	// and those it is paired with. Anything else is answered as not found.
	Reach map[string]bool
}

// Has reports whether the principal holds any of the roles.
func (p Principal) Has(roles ...Role) bool {
	for _, r := range roles {
		if slices.Contains(p.Roles, r) {
			return true
		}
	}
	return false
}

// CanReach reports whether data of hospitalID is within the caller's scope.
func (p Principal) CanReach(hospitalID string) bool {
	return hospitalID != "" && (hospitalID == p.HospitalID || p.Reach[hospitalID])
}

// Authenticated reports whether p is a real caller.
func (p Principal) Authenticated() bool { return p.UserID != "" }

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal in ctx, or the zero (anonymous) one.
func FromContext(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}
