package httpapi

import (
	"net/http"

	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/directory"
	"duikou/internal/patient"
	"duikou/referral"
)

// Query parameters shared by every list.
var (
	qCursor = queryParam{"cursor", "next_cursor of the previous page"}
	qLimit  = queryParam{"limit", "page size, 1–200 (default 50)"}
)

// paged prepends the cursor and limit to a list's own filters.
func paged(filters ...queryParam) []queryParam {
	return append([]queryParam{qCursor, qLimit}, filters...)
}

// operations is the documented API. Keep it beside the router: the OpenAPI
// test fails when a route is missing here or listed here without a route.
func operations() []operation {
	var (
		admin          = []auth.Role{auth.Admin}
		pairingEditors = []auth.Role{auth.Admin, auth.ProgramOffice}
		auditors       = []auth.Role{auth.Auditor}
		clinical       = auth.ClinicalRoles
	)
	return []operation{
		{Method: http.MethodGet, Path: "/api/v1/openapi.json", Summary: "This OpenAPI document", Tag: "meta", Public: true, Response: map[string]any{}},

		// ---- Auth: the caller's own session ----
		{Method: http.MethodPost, Path: "/api/v1/auth/login", Summary: "Log in; returns the session token (also set as cookie) and CSRF token", Tag: "auth",
			Public: true, Request: LoginRequest{}, Response: LoginResponse{}},
		{Method: http.MethodPost, Path: "/api/v1/auth/logout", Summary: "End the current session", Tag: "auth",
			Status: http.StatusNoContent},
		{Method: http.MethodGet, Path: "/api/v1/auth/me", Summary: "The signed-in user and the session's CSRF token", Tag: "auth",
			Response: MeResponse{}},
		{Method: http.MethodPost, Path: "/api/v1/auth/password", Summary: "Change one's own password", Tag: "auth",
			Request: ChangePasswordRequest{}, Status: http.StatusNoContent},

		// ---- Users: account administration ----
		{Method: http.MethodGet, Path: "/api/v1/users", Summary: "List user accounts", Tag: "users", Roles: admin,
			Response: List[UserJSON]{}, Query: paged(
				queryParam{"hospital_id", "only accounts of this hospital"},
				queryParam{"role", "only accounts holding this role"},
			)},
		{Method: http.MethodPost, Path: "/api/v1/users", Summary: "Create a user account", Tag: "users", Roles: admin,
			Request: CreateUserRequest{}, Response: UserJSON{}, Status: http.StatusCreated},
		{Method: http.MethodGet, Path: "/api/v1/users/{userID}", Summary: "Read a user account", Tag: "users", Roles: admin,
			Response: UserJSON{}},
		{Method: http.MethodPatch, Path: "/api/v1/users/{userID}", Summary: "Change a user's name, roles, supervisor flag or disabled state", Tag: "users", Roles: admin,
			Request: UpdateUserRequest{}, Response: UserJSON{}, IfMatch: true},
		{Method: http.MethodPost, Path: "/api/v1/users/{userID}/password", Summary: "Set a new password for a user", Tag: "users", Roles: admin,
			Request: ResetPasswordRequest{}, Status: http.StatusNoContent},
		{Method: http.MethodPost, Path: "/api/v1/users/{userID}/unlock", Summary: "Lift a lockout after failed logins", Tag: "users", Roles: admin,
			Response: UserJSON{}},

		// ---- Directory: hospitals, departments, staff, pairings ----
		{Method: http.MethodGet, Path: "/api/v1/hospitals", Summary: "List hospitals within reach", Tag: "directory",
			Response: List[directory.Hospital]{}, Query: paged(
				queryParam{"tier", "authority, tertiary, secondary or township"},
				queryParam{"province", "exact province name"},
				queryParam{"county", "exact county name"},
			)},
		{Method: http.MethodPost, Path: "/api/v1/hospitals", Summary: "Register a hospital", Tag: "directory", Roles: admin,
			Request: directory.HospitalInput{}, Response: directory.Hospital{}, Status: http.StatusCreated},
		{Method: http.MethodGet, Path: "/api/v1/hospitals/{hospitalID}", Summary: "Read a hospital", Tag: "directory",
			Response: directory.Hospital{}},
		{Method: http.MethodPatch, Path: "/api/v1/hospitals/{hospitalID}", Summary: "Change a hospital", Tag: "directory", Roles: admin,
			Request: directory.HospitalPatch{}, Response: directory.Hospital{}, IfMatch: true},

		{Method: http.MethodGet, Path: "/api/v1/hospitals/{hospitalID}/departments", Summary: "List a hospital's departments", Tag: "directory",
			Response: List[directory.Department]{}, Query: paged()},
		{Method: http.MethodPost, Path: "/api/v1/hospitals/{hospitalID}/departments", Summary: "Add a department to a hospital", Tag: "directory", Roles: admin,
			Request: directory.DepartmentInput{}, Response: directory.Department{}, Status: http.StatusCreated},
		{Method: http.MethodGet, Path: "/api/v1/departments/{departmentID}", Summary: "Read a department", Tag: "directory",
			Response: directory.Department{}},
		{Method: http.MethodPatch, Path: "/api/v1/departments/{departmentID}", Summary: "Change a department", Tag: "directory", Roles: admin,
			Request: directory.DepartmentPatch{}, Response: directory.Department{}, IfMatch: true},

		{Method: http.MethodGet, Path: "/api/v1/staff", Summary: "List staff within reach", Tag: "directory",
			Response: List[directory.Staff]{}, Query: paged(
				queryParam{"hospital_id", "only staff of this hospital"},
				queryParam{"department_id", "only staff of this department"},
				queryParam{"title", "only staff with this professional title code"},
			)},
		{Method: http.MethodPost, Path: "/api/v1/staff", Summary: "Add a staff member to the roster", Tag: "directory", Roles: admin,
			Request: directory.StaffInput{}, Response: directory.Staff{}, Status: http.StatusCreated},
		{Method: http.MethodGet, Path: "/api/v1/staff/{staffID}", Summary: "Read a staff member", Tag: "directory",
			Response: directory.Staff{}},
		{Method: http.MethodPatch, Path: "/api/v1/staff/{staffID}", Summary: "Change a staff member", Tag: "directory", Roles: admin,
			Request: directory.StaffPatch{}, Response: directory.Staff{}, IfMatch: true},

		{Method: http.MethodGet, Path: "/api/v1/pairings", Summary: "List pairings within reach", Tag: "directory",
			Response: List[directory.Pairing]{}, Query: paged(
				queryParam{"hospital_id", "only pairings with this hospital on either side"},
				queryParam{"status", "active, suspended or ended"},
			)},
		{Method: http.MethodPost, Path: "/api/v1/pairings", Summary: "Pair a supporting hospital with a recipient", Tag: "directory", Roles: pairingEditors,
			Request: directory.PairingInput{}, Response: directory.Pairing{}, Status: http.StatusCreated},
		{Method: http.MethodGet, Path: "/api/v1/pairings/{pairingID}", Summary: "Read a pairing", Tag: "directory",
			Response: directory.Pairing{}},
		{Method: http.MethodPatch, Path: "/api/v1/pairings/{pairingID}", Summary: "Change a pairing's period or status", Tag: "directory", Roles: pairingEditors,
			Request: directory.PairingPatch{}, Response: directory.Pairing{}, IfMatch: true},

		// ---- Patients: the register and consent ----
		{Method: http.MethodGet, Path: "/api/v1/patients", Summary: "List patients within reach (each shown patient is audited)", Tag: "patients", Roles: clinical,
			Response: List[patient.Patient]{}, Query: paged(
				queryParam{"q", "name prefix"},
				queryParam{"home_hospital_id", "only patients registered at this hospital"},
			)},
		{Method: http.MethodPost, Path: "/api/v1/patients", Summary: "Register a patient", Tag: "patients", Roles: clinical,
			Request: patient.PatientInput{}, Response: patient.Patient{}, Status: http.StatusCreated},
		{Method: http.MethodPost, Path: "/api/v1/patients/search", Summary: "Find patients by exact national ID (sent in the body, never in the URL)", Tag: "patients", Roles: clinical,
			Request: patient.SearchInput{}, Response: List[patient.Patient]{}},
		{Method: http.MethodGet, Path: "/api/v1/patients/{patientID}", Summary: "Read a patient", Tag: "patients", Roles: clinical,
			Response: patient.Patient{}},
		{Method: http.MethodPatch, Path: "/api/v1/patients/{patientID}", Summary: "Change a patient's details", Tag: "patients", Roles: clinical,
			Request: patient.PatientPatch{}, Response: patient.Patient{}, IfMatch: true},
		{Method: http.MethodGet, Path: "/api/v1/patients/{patientID}/consents", Summary: "List a patient's consents, withdrawn ones included", Tag: "patients", Roles: clinical,
			Response: List[patient.Consent]{}, Query: paged()},
		{Method: http.MethodPost, Path: "/api/v1/patients/{patientID}/consents", Summary: "Record a consent", Tag: "patients", Roles: clinical,
			Request: patient.ConsentInput{}, Response: patient.Consent{}, Status: http.StatusCreated},
		{Method: http.MethodPost, Path: "/api/v1/patients/{patientID}/consents/{consentID}/withdraw", Summary: "Withdraw a consent (it stays on record)", Tag: "patients", Roles: clinical,
			Request: patient.WithdrawInput{}, Response: patient.Consent{}},

		// ---- Referrals: two-way referral tickets (the domain decides each action by side and role) ----
		{Method: http.MethodPost, Path: "/api/v1/referrals", Summary: "Write a referral draft for the caller's hospital (honours Idempotency-Key)", Tag: "referrals", Roles: clinical,
			Request: referral.Input{}, Response: referral.Referral{}, Status: http.StatusCreated},
		{Method: http.MethodGet, Path: "/api/v1/referrals", Summary: "List referrals the caller's hospital is a party to (each shown ticket is audited)", Tag: "referrals", Roles: clinical,
			Response: List[referral.Referral]{}, Query: paged(
				queryParam{"direction", "up or down"},
				queryParam{"status", "one status, e.g. submitted"},
				queryParam{"priority", "routine, urgent or emergency"},
				queryParam{"green_channel", "true or false"},
				queryParam{"referring_hospital_id", "only tickets from this hospital"},
				queryParam{"receiving_hospital_id", "only tickets to this hospital"},
				queryParam{"department_id", "only tickets from or to this department"},
				queryParam{"patient_id", "only tickets of this patient"},
				queryParam{"from", "submitted at or after this instant, RFC 3339"},
				queryParam{"to", "submitted before this instant, RFC 3339"},
			)},
		{Method: http.MethodGet, Path: "/api/v1/referrals/{referralID}", Summary: "Read a referral", Tag: "referrals", Roles: clinical,
			Response: referral.Referral{}},
		{Method: http.MethodPost, Path: "/api/v1/referrals/{referralID}/actions/{action}", Summary: "Move a referral: submit, claim, release, accept, reject, request_info, resubmit, redirect, schedule, depart, arrive, complete, close, cancel or mark_no_show", Tag: "referrals", Roles: clinical,
			Request: referral.ActionInput{}, Response: referral.Referral{}, IfMatch: true},
		{Method: http.MethodGet, Path: "/api/v1/referrals/{referralID}/events", Summary: "A referral's history, oldest first", Tag: "referrals", Roles: clinical,
			Response: List[referral.Event]{}},
		{Method: http.MethodGet, Path: "/api/v1/referrals/{referralID}/escalations", Summary: "A referral's escalations: each claim or decide deadline that passed (kind, due, when raised, the status then), in the order raised; an escalation never changes the ticket", Tag: "referrals", Roles: clinical,
			Response: List[referral.Escalation]{}},

		{Method: http.MethodGet, Path: "/api/v1/referral-queues/{hospitalID}", Summary: "The caller's hospital's referral queue in serving order (green channel, emergency, urgent, routine; oldest first), with waiting times, deadlines and leases; the referral desk and supervisors only", Tag: "referrals", Roles: []auth.Role{auth.ReferralDesk},
			Response: List[QueueItem]{}, Query: []queryParam{
				{"department_id", "only this receiving department's queue"},
				{"limit", "how many from the head, 1–500 (default 100)"},
			}},
		{Method: http.MethodPost, Path: "/api/v1/referral-queues/{hospitalID}/claim", Summary: "Claim the next ticket of the caller's hospital's queue (204 when none can be claimed)", Tag: "referrals", Roles: []auth.Role{auth.ReferralDesk},
			Request: QueueClaimRequest{}, Response: referral.Referral{}},

		// ---- Audit ----
		{Method: http.MethodGet, Path: "/api/v1/audit-events", Summary: "Search the audit log, newest first (the search is itself audited)", Tag: "audit", Roles: auditors,
			Response: List[auditEvent]{}, Query: paged(
				queryParam{"actor_id", "exact user id of the actor"},
				queryParam{"actor_hospital_id", "exact hospital id of the actor"},
				queryParam{"patient_id", "exact patient id"},
				queryParam{"action", "exact action, e.g. auth.login or access.denied"},
				queryParam{"resource_type", "exact resource type"},
				queryParam{"resource_id", "exact resource id"},
				queryParam{"outcome", "success, denied or failure"},
				queryParam{"from", "entries at or after this instant, RFC 3339"},
				queryParam{"to", "entries before this instant, RFC 3339"},
			)},
		{Method: http.MethodGet, Path: "/api/v1/audit-events/verify", Summary: "Verify every hash chain of the audit log (200 with ok=false when broken)", Tag: "audit", Roles: auditors,
			Response: audit.Report{}},
	}
}
