package httpapi

import (
	"net/http"

	"duikou/attachment"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/directory"
	"duikou/internal/patient"
	"duikou/referral"
	"duikou/referral/icd10"
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
		{Method: http.MethodGet, Path: "/api/v1/referrals/stream", Summary: "Live stream (text/event-stream) of changes to the tickets the caller's hospital is a party to, either side: first an event \"ready\" once subscribed, then \"changed\" events whose data is {type, id, number, status, version, at} (no patient data; the same change may come twice, compare versions), heartbeat comments every 15 s; the server ends it after 5 minutes (reconnect); no replay: re-read after \"ready\" on reconnect; 429 beyond the per-user cap of open streams; opening is audited", Tag: "referrals", Roles: clinical,
			ContentType: "text/event-stream"},
		{Method: http.MethodGet, Path: "/api/v1/referrals/{referralID}", Summary: "Read a referral", Tag: "referrals", Roles: clinical,
			Response: referral.Referral{}},
		{Method: http.MethodPut, Path: "/api/v1/referrals/{referralID}", Summary: "Rewrite a referral's content: the referring hospital, while it is a draft or the receiving desk has asked for information", Tag: "referrals", Roles: clinical,
			Request: referral.Input{}, Response: referral.Referral{}, IfMatch: true},
		{Method: http.MethodPost, Path: "/api/v1/referrals/{referralID}/actions/{action}", Summary: "Move a referral: submit, claim, release, accept, reject, request_info, resubmit, redirect, schedule, depart, arrive, complete, close, cancel or mark_no_show", Tag: "referrals", Roles: clinical,
			Request: referral.ActionInput{}, Response: referral.Referral{}, IfMatch: true},
		{Method: http.MethodGet, Path: "/api/v1/referrals/{referralID}/slip", Summary: "The printable referral slip (转诊单) as an HTML page for A4, in Simplified Chinese, with the ticket number as a QR code (inline PNG); for both parties, audited as a read of the ticket and of the patient; a draft has no slip (409); answered with Content-Security-Policy allowing only inline style and data: images", Tag: "referrals", Roles: clinical,
			ContentType: "text/html"},
		{Method: http.MethodGet, Path: "/api/v1/referrals/{referralID}/events", Summary: "A referral's history, oldest first", Tag: "referrals", Roles: clinical,
			Response: List[referral.Event]{}},
		{Method: http.MethodGet, Path: "/api/v1/referrals/{referralID}/escalations", Summary: "A referral's escalations: each claim or decide deadline that passed (kind, due, when raised, the status then), in the order raised; an escalation never changes the ticket", Tag: "referrals", Roles: clinical,
			Response: List[referral.Escalation]{}},

		{Method: http.MethodGet, Path: "/api/v1/referral-queues/{hospitalID}", Summary: "The caller's hospital's referral queue in serving order (green channel, emergency, urgent, routine; oldest first), with waiting times, deadlines and leases; the referral desk and supervisors only", Tag: "referrals", Roles: []auth.Role{auth.ReferralDesk},
			Response: List[QueueItem]{}, Query: []queryParam{
				{"department_id", "only this receiving department's queue"},
				{"limit", "how many from the head, 1–500 (default 100)"},
			}},
		{Method: http.MethodGet, Path: "/api/v1/referral-queues/{hospitalID}/stream", Summary: "Live stream (text/event-stream) of the caller's hospital's referral queue, for the referral desk and supervisors: first an event \"ready\" once subscribed, then one event per queue change named by its type (queued, removed, claimed, escalated …) with the change as JSON data and a sequence id, heartbeat comments every 15 s; the server ends it after 5 minutes (reconnect); no replay: re-read the queue after \"ready\" on reconnect; 429 beyond the per-user cap of open streams; opening is audited as a queue watch", Tag: "referrals", Roles: []auth.Role{auth.ReferralDesk},
			ContentType: "text/event-stream"},
		{Method: http.MethodPost, Path: "/api/v1/referral-queues/{hospitalID}/claim", Summary: "Claim the next ticket of the caller's hospital's queue (204 when none can be claimed)", Tag: "referrals", Roles: []auth.Role{auth.ReferralDesk},
			Request: QueueClaimRequest{}, Response: referral.Referral{}},
		{Method: http.MethodPost, Path: "/api/v1/referral-queues/{hospitalID}/leases/{referralID}", Summary: "Renew the caller's lease on a ticket they claimed, so no colleague takes it over while they work on it (409 when the claim is no longer theirs or the lease lapsed)", Tag: "referrals", Roles: []auth.Role{auth.ReferralDesk},
			Response: QueueLease{}},

		{Method: http.MethodGet, Path: "/api/v1/hospitals/{hospitalID}/departments/{departmentID}/bed-pool", Summary: "A department's green-channel bed pool: size, beds in use, free beds; the hospital's own staff also see the tickets holding beds (null for partners' desks and program staff, who see counts). Without a pool: size 0, version 0, no ETag", Tag: "referrals", Roles: bedPoolReaders,
			Response: referral.BedPool{}},
		{Method: http.MethodPut, Path: "/api/v1/hospitals/{hospitalID}/departments/{departmentID}/bed-pool", Summary: "Set a department's reserved bed count (0–1000, not below the beds in use) under If-Match; create the pool with If-None-Match: * (201); the hospital's referral desk supervisors, administrators and the program office", Tag: "referrals", Roles: bedPoolSizers,
			Request: BedPoolRequest{}, Response: referral.BedPool{}, IfMatch: true},

		// ---- Attachments: uploaded files, carried by referral tickets (and later consultations) ----
		{Method: http.MethodPost, Path: "/api/v1/attachments", Summary: "Upload a file for the caller's hospital: the raw bytes as the body, Content-Type one of application/pdf, image/jpeg, image/png, application/dicom and matching the file's first bytes, at most 50 MiB (413 beyond); answers its id, size and SHA-256 (honours Idempotency-Key)", Tag: "attachments", Roles: clinical,
			RawRequest: attachment.Types, Response: attachment.Attachment{}, Status: http.StatusCreated,
			Headers: []queryParam{{"Content-Disposition", `the file's name: attachment; filename="ecg.pdf", or filename*=UTF-8''%E5%BF%83%E7%94%B5%E5%9B%BE.pdf beyond ASCII`}},
			Query:   []queryParam{{"patient_id", "optional: the patient the file is about (within reach); a ticket of another patient cannot carry it"}}},
		{Method: http.MethodGet, Path: "/api/v1/attachments/{attachmentID}", Summary: "Download a file (Content-Disposition: attachment): the uploader's hospital, or a hospital that is a party to a referral carrying it; others get 404. The read is audited", Tag: "attachments", Roles: clinical,
			RawResponse: attachment.Types},

		{Method: http.MethodGet, Path: "/api/v1/referral-stats", Summary: "Referral statistics of a range of days (China's calendar): counts per period by direction, status, priority and green channel; " +
			"median and 90th-percentile (nearest-rank) times to claim and to decision per band; deadline breaches; up-referrals per county hospital per month; " +
			"top principal diagnoses of up-referrals overall and per county hospital. The program office reads hospitals within its reach, clinical staff their own hospital; " +
			"diagnosis counts under 3 are hidden from readers who cannot list the tickets. At most 3 years and 200,000 tickets (422 beyond). The read is audited",
			Tag: "referrals", Roles: referral.StatsReaders, Response: referral.StatsReport{}, Query: []queryParam{
				{"from", "first day counted, YYYY-MM-DD (required)"},
				{"to", "last day counted, YYYY-MM-DD, at most 3 years after from (required)"},
				{"period", "day, week (ISO, from Monday), month (default), quarter or year"},
				{"hospital_id", "only tickets this hospital is a party to (within the caller's reach; default: every hospital the caller may read)"},
				{"direction", "up or down (default both)"},
				{"top", "how many diagnoses overall, 1–50 (default 10)"},
				{"county_top", "how many diagnoses per county hospital, 1–10 (default 4)"},
				{"diagnosis_level", "code (as written, default) or category (three-character ICD-10 category)"},
			}},

		// ---- Reference data ----
		{Method: http.MethodGet, Path: "/api/v1/icd10", Summary: "Search the ICD-10 code list shipped with the product (a curated list of common categories and the subdivisions referrals carry most, with Simplified Chinese and English names) by code, with or without the dot, or by part of a name; exact code first, then code prefixes, then names; any signed-in user, not audited (no patient data)", Tag: "referrals",
			Response: List[icd10.Code]{}, Query: []queryParam{
				{"q", "a code (I21, i21.0) or part of a name (心肌梗死, infarction)"},
				{"limit", "at most this many, 1–50 (default 20)"},
			}},

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
