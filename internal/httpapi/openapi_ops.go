package httpapi

import (
	"net/http"

	"duikou/attachment"
	"duikou/consult"
	"duikou/internal/consults"

	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/directory"
	"duikou/internal/patient"
	"duikou/internal/program"
	"duikou/internal/programs"
	"duikou/internal/rtc"
	"duikou/referral"
	"duikou/referral/icd10"
)

// Query parameters shared by every list.
var (
	qCursor = queryParam{"cursor", "next_cursor of the previous page"}
	qLimit  = queryParam{"limit", "page size, 1–200 (default 50)"}
	// Program records' lists.
	qPairing         = queryParam{"pairing_id", "only this pairing"}
	qProgramHospital = queryParam{"hospital_id", "only pairings with this hospital on either side"}
	qReportFormat    = queryParam{"format", "json (default), csv, xlsx or html; else taken from Accept"}
	qProgramStaff    = queryParam{"staff_id", "only this staff member's (postings: a doctor's record with its appraisals; trainees: their stays)"}
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
		// ---- Remote sessions: consultations, MDTs, teaching rounds, imaging reviews, expert clinics ----
		{Method: http.MethodPost, Path: "/api/v1/sessions", Summary: "Request a remote session from a hospital paired with the caller's (honours Idempotency-Key)", Tag: "sessions", Roles: clinical,
			Request: consult.Input{}, Response: consult.Session{}, Status: http.StatusCreated},
		{Method: http.MethodGet, Path: "/api/v1/sessions", Summary: "List remote sessions the caller's hospital takes part in (each shown session is audited)", Tag: "sessions", Roles: clinical,
			Response: List[consult.Session]{}, Query: paged(
				queryParam{"kind", "consult, mdt, teaching_round, imaging_review or expert_clinic"},
				queryParam{"status", "one status, e.g. scheduled"},
				queryParam{"urgency", "routine, urgent or emergency"},
				queryParam{"hospital_id", "only sessions requested by or sent to this hospital"},
				queryParam{"patient_id", "only sessions about this patient"},
				queryParam{"from", "sessions scheduled (or, without a time yet, requested) at or after this instant, RFC 3339"},
				queryParam{"to", "sessions scheduled (or requested) before this instant, RFC 3339"},
			)},
		{Method: http.MethodGet, Path: "/api/v1/sessions/stream", Summary: "Live stream (text/event-stream) of the remote sessions the caller's hospital takes part in (requesting, target or invited): first an event \"ready\" once subscribed, then \"changed\" events whose data is {type, id, kind, urgency, status, version, respond_by (while requested), at} and, at the target hospital, \"escalated\" events when a request passes its response deadline {type, id, kind, urgency, status, escalation_id, breach, due, at}; no patient data; the same notice may come twice (compare versions, escalation ids); heartbeat comments every 15 s; the server ends it after 5 minutes (reconnect); no replay: re-read after \"ready\" on reconnect; 429 beyond the per-user cap of open streams; opening is audited", Tag: "sessions", Roles: clinical,
			ContentType: "text/event-stream"},
		{Method: http.MethodGet, Path: "/api/v1/sessions/{sessionID}", Summary: "Read a remote session with its opinion and addenda", Tag: "sessions", Roles: clinical,
			Response: consults.Detail{}},
		{Method: http.MethodPost, Path: "/api/v1/sessions/{sessionID}/actions/{action}", Summary: "Move a remote session: accept, decline, schedule, start, end, sign_opinion, acknowledge or cancel (scheduling and starting need the patient's consents)", Tag: "sessions", Roles: clinical,
			Request: consult.ActionInput{}, Response: consult.Session{}, IfMatch: true},
		{Method: http.MethodGet, Path: "/api/v1/sessions/{sessionID}/escalations", Summary: "A remote session's escalations: each response deadline (respond_by, per urgency, -session-deadlines) that passed with the request unanswered (kind, due, when raised, the status then), in the order raised; an escalation never changes the session", Tag: "sessions", Roles: clinical,
			Response: List[consult.Escalation]{}},
		{Method: http.MethodGet, Path: "/api/v1/sessions/{sessionID}/events", Summary: "A remote session's history, oldest first", Tag: "sessions", Roles: clinical,
			Response: List[consult.Event]{}},
		{Method: http.MethodPut, Path: "/api/v1/sessions/{sessionID}/opinion", Summary: "Save the opinion draft (an assigned specialist, until it is signed)", Tag: "sessions", Roles: clinical,
			Request: consult.OpinionInput{}, Response: consult.Session{}, IfMatch: true},
		{Method: http.MethodPost, Path: "/api/v1/sessions/{sessionID}/opinion/addenda", Summary: "Append a signed addendum to a signed opinion", Tag: "sessions", Roles: clinical,
			Request: AddendumRequest{}, Response: consult.Addendum{}, Status: http.StatusCreated},
		{Method: http.MethodPost, Path: "/api/v1/sessions/{sessionID}/opinion/referral", Summary: "Draft the up-referral a signed opinion advises (the requesting hospital); answers the referral draft", Tag: "sessions", Roles: clinical,
			Response: referral.Referral{}, Status: http.StatusCreated},
		{Method: http.MethodGet, Path: "/api/v1/sessions/{sessionID}/attendance", Summary: "Who attended while the session was live, per person, reconnects merged", Tag: "sessions", Roles: clinical,
			Response: List[consult.Attendance]{}},

		{Method: http.MethodGet, Path: "/api/v1/clinic-slots", Summary: "Remote-clinic slots visible to the caller's hospital (its own and its paired hospitals'), by start time", Tag: "sessions", Roles: clinical,
			Response: List[consult.ClinicSlot]{}, Query: []queryParam{
				{"from", "slots starting at or after this instant, RFC 3339 (default now)"},
				{"to", "slots starting before this instant, RFC 3339 (default from + 14 days; at most 14 weeks after from)"},
				{"specialist_id", "only this specialist's slots"},
				{"department_id", "only this department's slots"},
				{"limit", "at most this many, 1–200 (default 50)"},
			}},
		{Method: http.MethodPost, Path: "/api/v1/clinic-slots", Summary: "Publish a slot of the calling specialist's remote clinic (by the start of the week before its week)", Tag: "sessions", Roles: clinical,
			Request: consult.SlotInput{}, Response: consult.ClinicSlot{}, Status: http.StatusCreated},
		{Method: http.MethodPost, Path: "/api/v1/clinic-slots/{slotID}/book", Summary: "Book a place on a paired hospital's slot, first come; answers the scheduled expert-clinic session (409 when full)", Tag: "sessions", Roles: clinical,
			Request: consult.BookingInput{}, Response: consult.Session{}, Status: http.StatusCreated},
		{Method: http.MethodPost, Path: "/api/v1/clinic-slots/{slotID}/cancel", Summary: "Withdraw one's own slot that nobody is booked on", Tag: "sessions", Roles: clinical,
			Request: SlotCancelRequest{}, Response: consult.ClinicSlot{}},

		// ---- Remote sessions: the live room ----
		{Method: http.MethodPost, Path: "/api/v1/sessions/{sessionID}/join", Summary: "Join a remote session's live room: the assigned specialists host (publish, subscribe, present, admit); the requesting hospital's doctors publish and subscribe (and may present in an imaging review); in a teaching round, doctors of invited hospitals subscribe. Open while live, or scheduled from 15 minutes before its start to its end (409 otherwise); others of the session's hospitals 403, anyone else 404. Audited, with the patient. Answers a join token living 2 minutes (send it in the WebSocket's first message or subprotocol header, never in a URL), the WebSocket URL and ICE servers with short-lived TURN credentials", Tag: "sessions", Roles: joinRoles,
			Response: rtc.Ticket{}},
		{Method: http.MethodGet, Path: socketPattern, Summary: "The room's WebSocket (subprotocol duikou.v1): upgrade from an allowed Origin, then send {\"type\":\"join\",\"seq\":1,\"payload\":{\"room\":…,\"token\":…}} within 10 s, or offer the subprotocol duikou.token.<token> too. No session cookie is needed or read: the join token authorises. A plain GET answers 426", Tag: "sessions", Public: true,
			Status: http.StatusSwitchingProtocols},

		// ---- Program reports ----
		{Method: http.MethodGet, Path: "/api/v1/program-reports", Summary: "A program report (对口支援工作报告) of one scope — pairing_id, hospital_id, or province (with county) for the program office — for a period " +
			"(a month 2026-03, quarter 2026-Q1, half year 2026-H1 — the half-year report due 20 June / 20 December — or year 2026, in Asia/Shanghai): " +
			"workload from confirmed work logs (unconfirmed entries counted apart, not summed) plus Duikou's own consultations and teaching rounds of the posted doctors (each session once per posting), " +
			"attendance, monthly evaluations (averages, late, overdue), arrivals, trainees, Duikou sessions held by kind (ended, opinion signed, acknowledged), referrals up and down (a pairing: between its two hospitals) " +
			"and the top 4 up-referral diagnoses per county hospital over the three years ending with the period (counts under 3 hidden); pairing and hospital reports carry each pairing's compliance checklist. " +
			"format=json (default), csv (UTF-8 with BOM), xlsx (a sheet per table) or html (a printable A4 page in Chinese), or the same by Accept. " +
			"Program offices read hospitals and pairings within reach, a pairing's staff their own pairings and hospital; at most a year, 500 hospitals, 2,000 postings, 50,000 sessions, 200,000 referrals (422 beyond). Audited",
			Tag: "program", Roles: programReaders, Response: programs.Report{}, RawResponse: []string{"text/csv", xlsxType, "text/html"}, Query: []queryParam{
				{"pairing_id", "one pairing"}, {"hospital_id", "one hospital and its pairings"},
				{"province", "a province (program office only)"}, {"county", "a county of the province"},
				{"period", "2026-03, 2026-Q1, 2026-H1 or 2026 (required)"}, qReportFormat}},
		{Method: http.MethodGet, Path: "/api/v1/program-reports/compliance", Summary: "A pairing's compliance checklist for a year against the program's minimums (an activity and training each quarter, a free clinic each half year, 2 recipient staff studying a month or more, team composition) " +
			"and its agreement's commitments (teams, days of service, trainees): green met; amber not yet met while the quarter, half or year is running, or met only by an accepted override; red a period ended without it, a breach nobody accepted, or no agreement. Each with its reason. Audited",
			Tag: "program", Roles: programReaders, Response: programs.PairingCompliance{}, RawResponse: []string{"text/csv", xlsxType, "text/html"}, Query: []queryParam{
				{"pairing_id", "the pairing (required)"}, {"year", "e.g. 2026 (required)"}, qReportFormat}},
		{Method: http.MethodGet, Path: "/api/v1/program-reports/reminders", Summary: "Half-year reports (半年报) due: one per active pairing the program office sees, shown from 14 days before the due day (20 June, 20 December) until it; the document itself is GET /program-reports?period=YYYY-H1&format=html", Tag: "program", Roles: programOffice,
			Response: ReminderList{}},

		// ---- Program records: agreements, postings, attendance, evaluations, work logs, clinics, trainees ----
		{Method: http.MethodGet, Path: "/api/v1/agreements", Summary: "List pairing agreements (对口支援协议书) of the caller's pairings (a program office: every pairing whose two hospitals it reaches)", Tag: "program", Roles: programReaders,
			Response: List[program.Agreement]{}, Query: paged(qPairing, qProgramHospital)},
		{Method: http.MethodPost, Path: "/api/v1/agreements", Summary: "Record a pairing's agreement as version 1: period, commitments, recipient's duties, green-channel terms (reserved beds per department of the supporting hospital set its referral bed pools), targets, the signed document (an attachment id)", Tag: "program", Roles: programOffice,
			Request: programs.AgreementInput{}, Response: program.Agreement{}, Status: http.StatusCreated},
		{Method: http.MethodGet, Path: "/api/v1/agreements/{agreementID}", Summary: "Read an agreement's current version", Tag: "program", Roles: programReaders,
			Response: program.Agreement{}},
		{Method: http.MethodPut, Path: "/api/v1/agreements/{agreementID}", Summary: "Amend an agreement: the whole terms, with amendment_reason, become the next version; earlier versions stay readable", Tag: "program", Roles: programOffice,
			Request: program.Terms{}, Response: program.Agreement{}, IfMatch: true},
		{Method: http.MethodGet, Path: "/api/v1/agreements/{agreementID}/versions", Summary: "Every version of an agreement as written, oldest first", Tag: "program", Roles: programReaders,
			Response: AgreementVersions{}},
		{Method: http.MethodGet, Path: "/api/v1/postings", Summary: "List postings (派驻) of dispatched doctors in the caller's pairings, each with its arrival status (pending, on_time, late, missing) as of today", Tag: "program", Roles: programReaders,
			Response: List[program.Posting]{}, Query: paged(qPairing, qProgramHospital, qProgramStaff)},
		{Method: http.MethodPost, Path: "/api/v1/postings", Summary: "Dispatch a doctor of the supporting hospital to a department of the recipient. Program rules (title at least 主治医师, a 副主任医师 or above per team, at least 6 months) that are not met answer 422 with the fields at fault unless override_reason is given; the override is kept with who and why", Tag: "program", Roles: programOffice,
			Request: program.PostingInput{}, Response: program.Posting{}, Status: http.StatusCreated},
		{Method: http.MethodGet, Path: "/api/v1/postings/{postingID}", Summary: "Read a posting", Tag: "program", Roles: programReaders,
			Response: program.Posting{}},
		{Method: http.MethodPatch, Path: "/api/v1/postings/{postingID}", Summary: "Change a posting's period, recipient department, team or specialty; the rules are checked again (override_reason again when not met)", Tag: "program", Roles: programOffice,
			Request: program.PostingPatch{}, Response: program.Posting{}, IfMatch: true},
		{Method: http.MethodPut, Path: "/api/v1/postings/{postingID}/arrival", Summary: "Confirm the doctor's arrival (到岗报到); the recipient hospital's program office, under the posting's If-Match. Due within the configured days after the start (default 7)", Tag: "program", Roles: programOffice,
			Request: program.ArrivalInput{}, Response: program.Posting{}, IfMatch: true},
		{Method: http.MethodPut, Path: "/api/v1/postings/{postingID}/appraisal", Summary: "The final appraisal at the end of the posting (from its last month), by the recipient hospital's program office", Tag: "program", Roles: programOffice,
			Request: program.AppraisalInput{}, Response: program.Posting{}, IfMatch: true},
		{Method: http.MethodGet, Path: "/api/v1/postings/{postingID}/attendance", Summary: "A posting's attendance (日常考勤) in a month: the recorded days and the attendance rate", Tag: "program", Roles: programReaders,
			Response: programs.MonthAttendance{}, Query: []queryParam{{"month", "YYYY-MM (required)"}}},
		{Method: http.MethodPost, Path: "/api/v1/postings/{postingID}/attendance", Summary: "Record a day: the posted doctor checks in today or takes leave with a reason; the recipient's program office may also record an absence. A confirmed day is not rewritten (409)", Tag: "program", Roles: programCheckIns,
			Request: program.AttendanceInput{}, Response: program.Attendance{}},
		{Method: http.MethodPost, Path: "/api/v1/postings/{postingID}/attendance/{day}/confirmation", Summary: "The recipient hospital's program office confirms a recorded day (a repeat is a no-op)", Tag: "program", Roles: programOffice,
			Response: program.Attendance{}},
		{Method: http.MethodGet, Path: "/api/v1/postings/{postingID}/evaluations", Summary: "A posting's monthly evaluations (月评), the criteria they score and the months overdue (due by the configured day of the next month, default the 10th)", Tag: "program", Roles: programReaders,
			Response: programs.PostingEvaluations{}},
		{Method: http.MethodPut, Path: "/api/v1/postings/{postingID}/evaluations/{month}", Summary: "File a month's evaluation with If-None-Match: * (201) or correct it under If-Match; the recipient hospital's program office; one filed after its due day is marked late", Tag: "program", Roles: programOffice,
			Request: program.EvaluationInput{}, Response: program.Evaluation{}, IfMatch: true},
		{Method: http.MethodGet, Path: "/api/v1/postings/{postingID}/work-logs", Summary: "A posting's work log by day", Tag: "program", Roles: programReaders,
			Response: WorkLogList{}},
		{Method: http.MethodPost, Path: "/api/v1/postings/{postingID}/work-logs", Summary: "The posted doctor enters a day's work: outpatients, ward rounds, operations, demonstrations, teaching rounds, lectures, case discussions, consultations, people trained, free clinics and people served, new techniques. Consultations and teaching rounds are those held outside Duikou: the reports add Duikou's own sessions of the doctor, never entered", Tag: "program", Roles: programDoctor,
			Request: program.WorkLogInput{}, Response: program.WorkLog{}, Status: http.StatusCreated},
		{Method: http.MethodPatch, Path: "/api/v1/postings/{postingID}/work-logs/{logID}", Summary: "The posted doctor corrects a work log entry the recipient has not confirmed (fields left out keep their value; counts, when given, replace all counts), under the entry's If-Match; a confirmed entry is refused (409)", Tag: "program", Roles: programDoctor,
			Request: program.WorkLogPatch{}, Response: program.WorkLog{}, IfMatch: true},
		{Method: http.MethodPost, Path: "/api/v1/postings/{postingID}/work-logs/{logID}/confirmation", Summary: "The recipient hospital's program office confirms a work log entry (once; again is 409)", Tag: "program", Roles: programOffice,
			Response: program.WorkLog{}},
		{Method: http.MethodGet, Path: "/api/v1/clinic-schedules", Summary: "A hospital's published clinics of dispatched doctors (default: today and the next four weeks); residents read them without login at /public/clinic-schedule/{hospitalID}", Tag: "program", Roles: programReaders,
			Response: ClinicSessionList{}, Query: []queryParam{{"hospital_id", "the recipient hospital (required)"}, {"from", "first day YYYY-MM-DD"}, {"to", "last day YYYY-MM-DD"}}},
		{Method: http.MethodPost, Path: "/api/v1/clinic-schedules", Summary: "Publish a dispatched doctor's clinic, at least the configured lead time ahead (default one week, 提前一周公示); the recipient hospital's program office", Tag: "program", Roles: programOffice,
			Request: program.ClinicSessionInput{}, Response: program.ClinicSession{}, Status: http.StatusCreated},
		{Method: http.MethodPatch, Path: "/api/v1/clinic-schedules/{clinicID}", Summary: "Move a published clinic to another day, time or place (fields left out keep their value; the new day keeps the lead time from today); the recipient hospital's program office, under the clinic's If-Match; a cancelled clinic is not changed (409)", Tag: "program", Roles: programOffice,
			Request: program.ClinicChange{}, Response: program.ClinicSession{}, IfMatch: true},
		{Method: http.MethodPost, Path: "/api/v1/clinic-schedules/{clinicID}/cancel", Summary: "Cancel a published clinic with a reason (required); it stays on record, marked cancelled, and leaves the public page; the recipient hospital's program office, under the clinic's If-Match", Tag: "program", Roles: programOffice,
			Request: program.ClinicCancel{}, Response: program.ClinicSession{}, IfMatch: true},
		{Method: http.MethodGet, Path: "/api/v1/trainees", Summary: "List recipient staff sent to the supporting hospital to study (进修)", Tag: "program", Roles: programReaders,
			Response: List[program.Trainee]{}, Query: paged(qPairing, qProgramHospital, qProgramStaff)},
		{Method: http.MethodPost, Path: "/api/v1/trainees", Summary: "Record a recipient staff member sent to the supporting hospital to study: who, host department, from, to", Tag: "program", Roles: programOffice,
			Request: program.TraineeInput{}, Response: program.Trainee{}, Status: http.StatusCreated},
		{Method: http.MethodPatch, Path: "/api/v1/trainees/{traineeID}", Summary: "Correct a trainee record's host department or period (fields left out keep their value; who was sent is not changed); a program office of the pairing's hospitals, under the record's If-Match", Tag: "program", Roles: programOffice,
			Request: program.TraineePatch{}, Response: program.Trainee{}, IfMatch: true},

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
