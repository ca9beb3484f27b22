package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"duikou/consult"
	"duikou/internal/attachments"
	"duikou/internal/auth"
	"duikou/internal/config"
	"duikou/internal/directory"
	"duikou/internal/patient"
	"duikou/internal/store"
	"duikou/referral"
)

// The authorisation matrix: every API route × every role × a resource of the
// caller's own hospital, of a paired hospital and of an unrelated one, with
// the status each must get. A route without a row fails the test, so a new
// route cannot ship without its access rule written down here.

type scope int

const (
	own scope = iota
	paired
	unrelated
)

func (s scope) String() string { return [...]string{"own", "paired", "unrelated"}[s] }

var scopes = []scope{own, paired, unrelated}

// request is one concrete call built for a role and a scope.
type request struct {
	path    string
	body    any
	raw     []byte            // sent as is instead of body, with header
	header  map[string]string // extra request headers
	ifMatch int
	token   string // overrides the role's token (logout needs a fresh one)
	// after sees the status, to keep the fixture in step with what changed.
	after func(code int)
	// stream: the answer is an event stream, ended by the client once it
	// has seen the first event.
	stream bool
}

type row struct {
	method, route string
	build         func(f *fixture, role auth.Role, s scope) request
	expect        func(role auth.Role, s scope) int
}

// only: the listed roles get ok whatever the scope; others are refused 403.
func only(ok int, roles ...auth.Role) func(auth.Role, scope) int {
	return func(r auth.Role, _ scope) int {
		if len(roles) == 0 || slices.Contains(roles, r) {
			return ok
		}
		return http.StatusForbidden
	}
}

// reachable: everyone may call it, but only those who see the whole
// directory get a resource of an unrelated hospital; others get 404.
func reachable(ok int, seeAll ...auth.Role) func(auth.Role, scope) int {
	return func(r auth.Role, s scope) int {
		if s == unrelated && !slices.Contains(seeAll, r) {
			return http.StatusNotFound
		}
		return ok
	}
}

// reachableFor: roles may call it, within reach; others 403.
func reachableFor(ok int, roles ...auth.Role) func(auth.Role, scope) int {
	return func(r auth.Role, s scope) int {
		switch {
		case !slices.Contains(roles, r):
			return http.StatusForbidden
		case s == unrelated && r != auth.Admin:
			return http.StatusNotFound
		}
		return ok
	}
}

// patientRule: clinical roles only (403 for others, whatever the hospital);
// a patient of an unrelated hospital is answered outOfReach.
func patientRule(ok, outOfReach int) func(auth.Role, scope) int {
	return func(r auth.Role, s scope) int {
		switch {
		case !slices.Contains(auth.ClinicalRoles, r):
			return http.StatusForbidden
		case s == unrelated:
			return outOfReach
		}
		return ok
	}
}

// referralRule is the access rule of a referral ticket. Only clinical roles
// reach tickets (403 for the rest, whatever the hospital). A ticket opens to
// the hospitals that are party to it, not to every hospital within reach: the
// matrix caller at 临溪 writes the own ticket (临溪 → 省人民医院), while the
// paired ticket (临溪's township centre → 省人民医院) and the unrelated one
// (马场乡 → 云岭) are none of its business and answer 404. On its own
// ticket, a clinical role outside writers (when given) is refused 403 by the
// state machine.
func referralRule(ok int, writers ...auth.Role) func(auth.Role, scope) int {
	return func(r auth.Role, s scope) int {
		switch {
		case !slices.Contains(auth.ClinicalRoles, r):
			return http.StatusForbidden
		case s != own:
			return http.StatusNotFound
		case len(writers) > 0 && !slices.Contains(writers, r):
			return http.StatusForbidden
		}
		return ok
	}
}

// referralCreateRule: drafts are written by doctors and the referral desk
// (the dispatched doctor treats, but refers through the desk) for a patient
// within reach; a patient of an unrelated hospital is a bad patient_id.
func referralCreateRule(r auth.Role, s scope) int {
	switch {
	case !slices.Contains(referralWriters, r):
		return http.StatusForbidden
	case s == unrelated:
		return http.StatusBadRequest
	}
	return http.StatusCreated
}

// deskRule: the referral desk works its own hospital's queue only; other
// roles are refused 403 whatever the hospital.
func deskRule(ok int) func(auth.Role, scope) int {
	return func(r auth.Role, s scope) int {
		switch {
		case r != auth.ReferralDesk:
			return http.StatusForbidden
		case s != own:
			return http.StatusNotFound
		}
		return ok
	}
}

// bedPoolReadRule: a department's bed pool is seen whole by its own
// hospital's clinical staff, as counts by the referral desks and program
// office of the hospitals it is paired with and by administrators
// everywhere; auditors are refused whatever the hospital.
func bedPoolReadRule(r auth.Role, s scope) int {
	switch {
	case r == auth.Auditor:
		return http.StatusForbidden
	case r == auth.Admin, s == own:
		return http.StatusOK
	case s == paired && (r == auth.ReferralDesk || r == auth.ProgramOffice):
		return http.StatusOK
	}
	return http.StatusNotFound
}

// bedPoolSizeRule: administrators size any pool, the program office those
// within its reach; the referral desk only with the supervisor flag (the
// matrix users have none), other roles never.
func bedPoolSizeRule(r auth.Role, s scope) int {
	switch {
	case r == auth.Admin:
		return http.StatusOK
	case r == auth.ProgramOffice && s != unrelated:
		return http.StatusOK
	case r == auth.ProgramOffice:
		return http.StatusNotFound
	}
	return http.StatusForbidden
}

// statsRule: the program office reads every hospital within reach, clinical
// roles their own hospital only; another hospital is not found. Roles
// without clinical or program duties are refused 403 whatever the hospital.
func statsRule(r auth.Role, s scope) int {
	switch {
	case r != auth.ProgramOffice && !slices.Contains(auth.ClinicalRoles, r):
		return http.StatusForbidden
	case s == unrelated, s == paired && r != auth.ProgramOffice:
		return http.StatusNotFound
	}
	return http.StatusOK
}

// joinRule: the requesting hospital's clinicians join its session; nobody
// joins a session their hospital is no party to (404); other roles are
// refused whatever the hospital.
func joinRule(r auth.Role, s scope) int {
	switch {
	case !slices.Contains([]auth.Role{auth.CountyDoctor, auth.Specialist, auth.DispatchedDoctor}, r):
		return http.StatusForbidden
	case s != own:
		return http.StatusNotFound
	}
	return http.StatusOK
}

// tokenAuthorised are the routes a session does not open: anonymous calls
// get what everyone gets.
var tokenAuthorised = map[string]int{"GET /api/v1/sessions/{sessionID}/ws": http.StatusUpgradeRequired}

var referralWriters = []auth.Role{auth.CountyDoctor, auth.Specialist, auth.ReferralDesk}

var directoryReaders = []auth.Role{auth.Admin, auth.ProgramOffice, auth.Auditor}

func matrix() []row {
	fixed := func(path string) func(*fixture, auth.Role, scope) request {
		return func(*fixture, auth.Role, scope) request { return request{path: path} }
	}
	return append([]row{
		// Identity: any signed-in user acts on their own session.
		{"POST", "/api/v1/auth/login", func(f *fixture, r auth.Role, _ scope) request {
			return request{path: "/api/v1/auth/login", body: map[string]string{"username": f.username[r], "password": f.password[r]}, token: "-"}
		}, only(http.StatusOK)},
		{"GET", "/api/v1/auth/me", fixed("/api/v1/auth/me"), only(http.StatusOK)},
		{"POST", "/api/v1/auth/logout", func(f *fixture, r auth.Role, _ scope) request {
			return request{path: "/api/v1/auth/logout", token: f.login(r)}
		}, only(http.StatusNoContent)},
		{"POST", "/api/v1/auth/password", func(f *fixture, r auth.Role, _ scope) request {
			next := fmt.Sprintf("matrix-pass-%d", f.seq())
			return request{path: "/api/v1/auth/password", body: map[string]string{"current_password": f.password[r], "new_password": next},
				after: func(code int) {
					if code == http.StatusNoContent {
						f.password[r] = next
					}
				}}
		}, only(http.StatusNoContent)},

		// User administration: administrators, for every hospital.
		{"GET", "/api/v1/users", fixed("/api/v1/users"), only(http.StatusOK, auth.Admin)},
		{"POST", "/api/v1/users", func(f *fixture, r auth.Role, s scope) request {
			return request{path: "/api/v1/users", body: map[string]any{
				"username": fmt.Sprintf("matrix.new%d", f.seq()), "display_name": "新用户", "hospital_id": f.hospital[s],
				"roles": []string{"county_doctor"}, "password": "a-long-enough-password"}}
		}, only(http.StatusCreated, auth.Admin)},
		{"GET", "/api/v1/users/{userID}", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/users/" + f.user[s]}
		}, only(http.StatusOK, auth.Admin)},
		{"PATCH", "/api/v1/users/{userID}", func(f *fixture, _ auth.Role, s scope) request {
			u, _ := f.app.svc.auth.GetUser(f.ctx, f.admin, f.user[s])
			return request{path: "/api/v1/users/" + f.user[s], body: map[string]any{"display_name": "改名"}, ifMatch: u.Version}
		}, only(http.StatusOK, auth.Admin)},
		{"POST", "/api/v1/users/{userID}/password", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/users/" + f.user[s] + "/password", body: map[string]string{"new_password": "reset-by-the-admin"}}
		}, only(http.StatusNoContent, auth.Admin)},
		{"POST", "/api/v1/users/{userID}/unlock", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/users/" + f.user[s] + "/unlock"}
		}, only(http.StatusOK, auth.Admin)},

		// Directory: read within reach (program staff see all); administrators change it.
		{"GET", "/api/v1/hospitals", fixed("/api/v1/hospitals"), only(http.StatusOK)},
		{"POST", "/api/v1/hospitals", func(f *fixture, _ auth.Role, _ scope) request {
			return request{path: "/api/v1/hospitals", body: map[string]any{
				"name": "矩阵测试医院", "org_code": fmt.Sprintf("12510000MB%08d", f.seq()), "tier": "secondary", "province": "青川省"}}
		}, only(http.StatusCreated, auth.Admin)},
		{"GET", "/api/v1/hospitals/{hospitalID}", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/hospitals/" + f.hospital[s]}
		}, reachable(http.StatusOK, directoryReaders...)},
		{"PATCH", "/api/v1/hospitals/{hospitalID}", func(f *fixture, _ auth.Role, s scope) request {
			h, _ := f.app.svc.directory.Hospital(f.ctx, f.admin, f.hospital[s])
			return request{path: "/api/v1/hospitals/" + f.hospital[s], body: map[string]any{"address": "矩阵路 1 号"}, ifMatch: h.Version}
		}, only(http.StatusOK, auth.Admin)},
		{"GET", "/api/v1/hospitals/{hospitalID}/departments", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/hospitals/" + f.hospital[s] + "/departments"}
		}, reachable(http.StatusOK, directoryReaders...)},
		{"POST", "/api/v1/hospitals/{hospitalID}/departments", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/hospitals/" + f.hospital[s] + "/departments", body: map[string]any{
				"code": fmt.Sprintf("99.%02d", f.seq()%100), "name": "矩阵科"}}
		}, only(http.StatusCreated, auth.Admin)},
		{"GET", "/api/v1/departments/{departmentID}", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/departments/" + f.department[s]}
		}, reachable(http.StatusOK, directoryReaders...)},
		{"PATCH", "/api/v1/departments/{departmentID}", func(f *fixture, _ auth.Role, s scope) request {
			d, _ := f.app.svc.directory.Department(f.ctx, f.admin, f.department[s])
			return request{path: "/api/v1/departments/" + f.department[s], body: map[string]any{"name": d.Name}, ifMatch: d.Version}
		}, only(http.StatusOK, auth.Admin)},
		{"GET", "/api/v1/staff", fixed("/api/v1/staff"), only(http.StatusOK)},
		{"POST", "/api/v1/staff", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/staff", body: map[string]any{
				"hospital_id": f.hospital[s], "name": "矩阵医生", "title": "attending_physician"}}
		}, only(http.StatusCreated, auth.Admin)},
		{"GET", "/api/v1/staff/{staffID}", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/staff/" + f.staff[s]}
		}, reachable(http.StatusOK, directoryReaders...)},
		{"PATCH", "/api/v1/staff/{staffID}", func(f *fixture, _ auth.Role, s scope) request {
			st, _ := f.app.svc.directory.StaffMember(f.ctx, f.admin, f.staff[s])
			return request{path: "/api/v1/staff/" + f.staff[s], body: map[string]any{"phone": "13800000000"}, ifMatch: st.Version}
		}, only(http.StatusOK, auth.Admin)},
		{"GET", "/api/v1/pairings", fixed("/api/v1/pairings"), only(http.StatusOK)},
		{"POST", "/api/v1/pairings", func(f *fixture, _ auth.Role, s scope) request {
			// Ended, and on a day of its own, so each call is a new valid pairing.
			n := f.seq()
			day := fmt.Sprintf("2000-%02d-%02d", 1+n/28%12, 1+n%28)
			sup, rec := f.pairingSides(s)
			return request{path: "/api/v1/pairings", body: map[string]any{
				"supporting_hospital_id": sup, "recipient_hospital_id": rec, "starts_on": day, "ends_on": day, "status": "ended"}}
		}, reachableFor(http.StatusCreated, auth.Admin, auth.ProgramOffice)},
		{"GET", "/api/v1/pairings/{pairingID}", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/pairings/" + f.pairing[s]}
		}, reachable(http.StatusOK, directoryReaders...)},
		{"PATCH", "/api/v1/pairings/{pairingID}", func(f *fixture, _ auth.Role, s scope) request {
			p, _ := f.app.svc.directory.Pairing(f.ctx, f.admin, f.pairing[s])
			return request{path: "/api/v1/pairings/" + f.pairing[s], body: map[string]any{"status": string(p.Status)}, ifMatch: p.Version}
		}, reachableFor(http.StatusOK, auth.Admin, auth.ProgramOffice)},

		// Patients: clinical roles only, within reach; nobody else, whatever the hospital.
		{"POST", "/api/v1/patients", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/patients", body: map[string]any{
				"name": "矩阵患者", "sex": "female", "birth_date": "1960-05-01", "home_hospital_id": f.hospital[s]}}
		}, patientRule(http.StatusCreated, http.StatusBadRequest)},
		{"GET", "/api/v1/patients", fixed("/api/v1/patients"), only(http.StatusOK, auth.ClinicalRoles...)},
		{"POST", "/api/v1/patients/search", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/patients/search", body: map[string]any{"national_id": f.nationalID[s]}}
		}, only(http.StatusOK, auth.ClinicalRoles...)},
		{"GET", "/api/v1/patients/{patientID}", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/patients/" + f.patient[s]}
		}, patientRule(http.StatusOK, http.StatusNotFound)},
		{"PATCH", "/api/v1/patients/{patientID}", func(f *fixture, _ auth.Role, s scope) request {
			pt, _ := f.app.svc.patients.Get(f.ctx, f.clinician(s), f.patient[s])
			return request{path: "/api/v1/patients/" + f.patient[s], body: map[string]any{"phone": "13900000000"}, ifMatch: pt.Version}
		}, patientRule(http.StatusOK, http.StatusNotFound)},
		{"GET", "/api/v1/patients/{patientID}/consents", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/patients/" + f.patient[s] + "/consents"}
		}, patientRule(http.StatusOK, http.StatusNotFound)},
		{"POST", "/api/v1/patients/{patientID}/consents", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/patients/" + f.patient[s] + "/consents", body: map[string]any{
				"consenter_kind": "patient", "consenter_name": "矩阵患者", "purpose": "referral"}}
		}, patientRule(http.StatusCreated, http.StatusNotFound)},
		{"POST", "/api/v1/patients/{patientID}/consents/{consentID}/withdraw", func(f *fixture, _ auth.Role, s scope) request {
			c, err := f.app.svc.patients.RecordConsent(f.ctx, f.clinician(s), f.patient[s], patient.ConsentInput{
				ConsenterKind: "patient", ConsenterName: "矩阵患者", Purpose: "remote_consultation"})
			if err != nil {
				f.t.Errorf("consent to withdraw: %v", err)
			}
			return request{path: "/api/v1/patients/" + f.patient[s] + "/consents/" + c.ID + "/withdraw", body: map[string]any{"reason": "患者改变主意"}}
		}, patientRule(http.StatusOK, http.StatusNotFound)},

		// Referrals: clinical roles only; a ticket opens to its parties.
		{"POST", "/api/v1/referrals", func(f *fixture, _ auth.Role, s scope) request {
			// The caller's own patient, one of the paired hospital (within
			// reach) and one of the unrelated hospital (beyond it).
			pt := map[scope]string{own: f.refPatient[own], paired: f.patient[paired], unrelated: f.patient[unrelated]}[s]
			in := f.referralInput(auth.Principal{UserID: f.user[own], HospitalID: f.hospital[own]}, pt, f.hospital[paired], f.department[own], f.department[paired])
			return request{path: "/api/v1/referrals", body: in}
		}, referralCreateRule},
		{"GET", "/api/v1/referrals", fixed("/api/v1/referrals"), only(http.StatusOK, auth.ClinicalRoles...)},
		// The change stream is the caller's own hospital's, whatever it asks.
		{"GET", "/api/v1/referrals/stream", func(*fixture, auth.Role, scope) request {
			return request{path: "/api/v1/referrals/stream", stream: true}
		}, only(http.StatusOK, auth.ClinicalRoles...)},
		{"GET", "/api/v1/referrals/{referralID}", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/referrals/" + f.ticket[s]}
		}, referralRule(http.StatusOK)},
		{"GET", "/api/v1/referrals/{referralID}/slip", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/referrals/" + f.ticket[s] + "/slip"}
		}, referralRule(http.StatusOK)},
		{"GET", "/api/v1/referrals/{referralID}/events", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/referrals/" + f.ticket[s] + "/events"}
		}, referralRule(http.StatusOK)},
		{"PUT", "/api/v1/referrals/{referralID}", func(f *fixture, _ auth.Role, s scope) request {
			// A fresh draft of the scope's referrer each time; drafts are the
			// referring hospital's own business, so elsewhere it is not found.
			p := f.referrer[s]
			in := f.referralInput(p, f.refPatient[s], f.refTo[s], f.refFromDept[s], f.refToDept[s])
			in.ConsentID = f.refConsent[s]
			d, err := f.app.svc.referrals.Create(f.ctx, p, in)
			if err != nil {
				f.t.Errorf("draft of %s: %v", s, err)
			}
			in.Reason = "补充：心电图提示ST段压低"
			return request{path: "/api/v1/referrals/" + d.ID, body: in, ifMatch: d.Version}
		}, referralRule(http.StatusOK, referralWriters...)},
		{"GET", "/api/v1/referrals/{referralID}/escalations", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/referrals/" + f.ticket[s] + "/escalations"}
		}, referralRule(http.StatusOK)},
		{"POST", "/api/v1/referrals/{referralID}/actions/{action}", func(f *fixture, _ auth.Role, s scope) request {
			// A fresh submitted ticket each time, cancelled by the caller: the
			// referring side's doctors and desk may cancel what they sent.
			t := f.submittedReferral(s)
			return request{path: "/api/v1/referrals/" + t.ID + "/actions/cancel", body: map[string]string{"reason": "患者家属决定就近治疗"}, ifMatch: t.Version}
		}, referralRule(http.StatusOK, referralWriters...)},

		// Referral queues: the referral desk of the hospital itself; another
		// hospital's queue is not found. 临溪 receives no ticket, so its queue
		// is empty and a claim finds nothing.
		{"GET", "/api/v1/referral-queues/{hospitalID}", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/referral-queues/" + f.hospital[s]}
		}, deskRule(http.StatusOK)},
		{"GET", "/api/v1/referral-queues/{hospitalID}/stream", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/referral-queues/" + f.hospital[s] + "/stream", stream: true}
		}, deskRule(http.StatusOK)},
		{"POST", "/api/v1/referral-queues/{hospitalID}/claim", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/referral-queues/" + f.hospital[s] + "/claim", body: map[string]any{}}
		}, deskRule(http.StatusNoContent)},
		// The own desk holds no claim on the paired ticket, so renewing is a
		// conflict; other hospitals find no such queue.
		{"POST", "/api/v1/referral-queues/{hospitalID}/leases/{referralID}", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/referral-queues/" + f.hospital[s] + "/leases/" + f.ticket[paired], body: map[string]any{}}
		}, deskRule(http.StatusNotFound)},

		// Green-channel bed pools: see bedPoolReadRule and bedPoolSizeRule.
		// The paired hospital (省人民医院) has demo pools; the county
		// hospitals' departments have none until the matrix sizes them.
		{"GET", "/api/v1/hospitals/{hospitalID}/departments/{departmentID}/bed-pool", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/hospitals/" + f.hospital[s] + "/departments/" + f.department[s] + "/bed-pool"}
		}, bedPoolReadRule},
		{"PUT", "/api/v1/hospitals/{hospitalID}/departments/{departmentID}/bed-pool", func(f *fixture, _ auth.Role, s scope) request {
			p, err := f.app.svc.beds.Pool(f.ctx, f.admin, f.hospital[s], f.department[s])
			if err == nil && !p.Configured() {
				size := 2
				p, _, err = f.app.svc.beds.SetSize(f.ctx, f.admin, f.hospital[s], f.department[s], 0, &size)
			}
			if err != nil {
				f.t.Errorf("bed pool of %s: %v", s, err)
			}
			return request{path: "/api/v1/hospitals/" + f.hospital[s] + "/departments/" + f.department[s] + "/bed-pool",
				body: map[string]int{"size": p.Size}, ifMatch: p.Version}
		}, bedPoolSizeRule},

		// Attachments: clinical roles only. Anyone clinical may upload for
		// their own hospital, naming a patient within reach (a patient of the
		// unrelated hospital is a bad patient_id). A file opens to its
		// hospital and to parties of a ticket carrying it, not to every
		// hospital within reach: the paired hospital's file, carried to
		// nobody, is as unknown to the caller as the unrelated one's.
		{"POST", "/api/v1/attachments", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/attachments?patient_id=" + f.patient[s], raw: f.png(),
				header: map[string]string{"Content-Type": "image/png", "Content-Disposition": `attachment; filename="matrix.png"`}}
		}, patientRule(http.StatusCreated, http.StatusBadRequest)},
		{"GET", "/api/v1/attachments/{attachmentID}", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/attachments/" + f.fileOf(s)}
		}, referralRule(http.StatusOK)},

		// Referral statistics: the program office reads hospitals within its
		// reach (临溪's office: 临溪 and its partner 省人民医院); clinical
		// staff only their own hospital; administrators and auditors none.
		{"GET", "/api/v1/referral-stats", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/referral-stats?from=2026-01-01&to=2026-12-31&period=month&hospital_id=" + f.hospital[s]}
		}, statsRule},
		// Remote sessions: clinical roles only; a session opens to the
		// hospitals taking part (here the own session: 临溪 → 省人民医院).
		{"POST", "/api/v1/sessions", func(f *fixture, _ auth.Role, s scope) request {
			// The caller's own patient, one of the paired hospital (within
			// reach) and one of the unrelated hospital (beyond it).
			pt := map[scope]string{own: f.refPatient[own], paired: f.patient[paired], unrelated: f.patient[unrelated]}[s]
			return request{path: "/api/v1/sessions", body: f.sessionInput(pt, f.hospital[paired], f.refToDept[own])}
		}, sessionCreateRule},
		{"GET", "/api/v1/sessions", fixed("/api/v1/sessions"), only(http.StatusOK, auth.ClinicalRoles...)},
		{"GET", "/api/v1/sessions/{sessionID}", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/sessions/" + f.session[s].ID}
		}, referralRule(http.StatusOK)},
		{"GET", "/api/v1/sessions/{sessionID}/events", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/sessions/" + f.session[s].ID + "/events"}
		}, referralRule(http.StatusOK)},
		{"GET", "/api/v1/sessions/{sessionID}/escalations", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/sessions/" + f.session[s].ID + "/escalations"}
		}, referralRule(http.StatusOK)},
		// The session stream is the caller's own hospital's, whatever it asks.
		{"GET", "/api/v1/sessions/stream", func(*fixture, auth.Role, scope) request {
			return request{path: "/api/v1/sessions/stream", stream: true}
		}, only(http.StatusOK, auth.ClinicalRoles...)},
		{"GET", "/api/v1/sessions/{sessionID}/attendance", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/sessions/" + f.session[s].ID + "/attendance"}
		}, referralRule(http.StatusOK)},
		{"POST", "/api/v1/sessions/{sessionID}/actions/{action}", func(f *fixture, _ auth.Role, s scope) request {
			// A fresh request each time, cancelled by the caller: the
			// requesting side's doctors may withdraw what they asked.
			x := f.requestedSession(s)
			return request{path: "/api/v1/sessions/" + x.ID + "/actions/cancel", body: map[string]string{"reason": "患者已好转"}, ifMatch: x.Version}
		}, referralRule(http.StatusOK, sessionRequesters...)},
		// The opinion is the target's: the requesting side is refused.
		{"PUT", "/api/v1/sessions/{sessionID}/opinion", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/sessions/" + f.session[s].ID + "/opinion", ifMatch: f.session[s].Version,
				body: map[string]string{"findings": "所见", "impression": "印象", "recommendations": "建议"}}
		}, referralRule(http.StatusForbidden)},
		{"POST", "/api/v1/sessions/{sessionID}/opinion/addenda", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/sessions/" + f.signed[s].ID + "/opinion/addenda", body: map[string]string{"text": "补充"}}
		}, referralRule(http.StatusForbidden)},
		// The requesting side drafts the up-referral, as it writes referrals.
		{"POST", "/api/v1/sessions/{sessionID}/opinion/referral", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/sessions/" + f.signed[s].ID + "/opinion/referral"}
		}, referralRule(http.StatusCreated, referralWriters...)},

		// Remote-clinic slots: seen by the specialist's hospital and those
		// paired with it; published by specialists in their own hospital;
		// booked by doctors of paired hospitals; withdrawn by their specialist.
		{"GET", "/api/v1/clinic-slots", fixed("/api/v1/clinic-slots"), only(http.StatusOK, auth.ClinicalRoles...)},
		{"POST", "/api/v1/clinic-slots", func(f *fixture, _ auth.Role, s scope) request {
			start := clinicStart()
			return request{path: "/api/v1/clinic-slots", body: map[string]any{"department_id": f.department[s],
				"start": start, "end": start.Add(30 * time.Minute)}}
		}, slotPublishRule},
		{"POST", "/api/v1/clinic-slots/{slotID}/book", func(f *fixture, _ auth.Role, s scope) request {
			slot := f.publishSlot(f.slotOwner[s], f.department[s])
			return request{path: "/api/v1/clinic-slots/" + slot.ID + "/book", body: map[string]any{
				"patient_id": f.refPatient[own], "question": "血压控制不佳", "clinical_summary": "女，68岁"}}
		}, slotBookRule},
		{"POST", "/api/v1/clinic-slots/{slotID}/cancel", func(f *fixture, _ auth.Role, s scope) request {
			by := f.slotOwner[s]
			if s == own {
				by = f.roleUser[auth.Specialist] // the caller's own slot, for the specialist among them
			}
			slot := f.publishSlot(by, f.department[s])
			return request{path: "/api/v1/clinic-slots/" + slot.ID + "/cancel", body: map[string]string{"reason": "出差"}}
		}, slotCancelRule},

		// Remote sessions' rooms: the clinicians of the session's parties
		// join (rtc.Permissions decides who, as what); the matrix caller at
		// 临溪 asked for the own session (临溪 → 省人民医院), scheduled now;
		// the paired one (临溪's township centre → 省人民医院) and the
		// unrelated one (马场乡 → 云岭) are none of its business.
		{"POST", "/api/v1/sessions/{sessionID}/join", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/sessions/" + f.sessionOf(s) + "/join", body: map[string]any{}}
		}, joinRule},
		// The WebSocket is authorised by the join token in its first
		// message, not by the API session: whoever calls, a plain GET is
		// told to upgrade (the handshake itself is tested end to end in
		// rtc_test.go).
		{"GET", "/api/v1/sessions/{sessionID}/ws", func(f *fixture, _ auth.Role, s scope) request {
			return request{path: "/api/v1/sessions/" + f.sessionOf(s) + "/ws"}
		}, only(http.StatusUpgradeRequired)},

		// Reference data: the ICD-10 code list, for every signed-in user.
		{"GET", "/api/v1/icd10", fixed("/api/v1/icd10?q=I21"), only(http.StatusOK)},

		// Audit: auditors only.
		{"GET", "/api/v1/audit-events", fixed("/api/v1/audit-events"), only(http.StatusOK, auth.Auditor)},
		{"GET", "/api/v1/audit-events/verify", fixed("/api/v1/audit-events/verify"), only(http.StatusOK, auth.Auditor)},
	}, programMatrix()...)
}

// fixture is a wired server with the demo province, a user of every role at
// the county hospital 临溪 (own), whose tertiary partner is 省人民医院
// (paired), and 云岭县人民医院 (unrelated), with one resource of each kind
// per hospital.
type fixture struct {
	t        *testing.T
	ctx      context.Context
	app      *App
	handler  http.Handler
	admin    auth.Principal
	n        atomic.Int64
	username map[auth.Role]string
	password map[auth.Role]string
	token    map[auth.Role]string

	hospital, department, staff, pairing, user map[scope]string
	patient, nationalID                        map[scope]string
	township                                   map[scope]string

	// Referral parties per scope: who writes the scope's tickets, for which
	// of its patients (who consented to be referred), to which hospital and
	// department; ticket is one submitted ticket per scope.
	referrer                                              map[scope]auth.Principal
	refPatient, refConsent, refFromDept, refTo, refToDept map[scope]string
	ticket                                                map[scope]string

	// Remote sessions per scope: the requesting doctor (with reach), one
	// requested session and one with a signed opinion advising referral;
	// slotOwner is a specialist of the scope's hospital who publishes slots.
	roleUser             map[auth.Role]auth.Principal
	requester, slotOwner map[scope]auth.Principal
	session, signed      map[scope]consult.Session
	// files: one uploaded file per scope's hospital, made on first use.
	files map[scope]string
	// progs: program records per scope's pairing, made on first use.
	progs map[scope]progWorld
	// sessions: one scheduled remote session per scope, made on first use.
	sessions map[scope]string
}

// sessionOf creates (once) the scope's remote session, scheduled to start
// now, straight through the consult store: own is 临溪's request to
// 省人民医院 about its patient, paired is 临溪's township centre's, and
// unrelated is 马场乡's to 云岭.
func (f *fixture) sessionOf(s scope) string {
	if id, ok := f.sessions[s]; ok {
		return id
	}
	from := map[scope]string{own: f.hospital[own], paired: f.township[own], unrelated: f.township[unrelated]}[s]
	to := map[scope]string{own: f.hospital[paired], paired: f.hospital[paired], unrelated: f.hospital[unrelated]}[s]
	toDept := map[scope]string{own: f.department[paired], paired: f.department[paired], unrelated: f.department[unrelated]}[s]
	now := time.Now().UTC()
	sess := consult.Session{ID: uuid.Must(uuid.NewV7()).String(), Kind: consult.Consult, Urgency: consult.Urgent,
		RequesterID: f.user[s], RequestingHospitalID: from, TargetHospitalID: to, TargetDepartmentIDs: []string{toDept},
		Question: "矩阵会诊", ClinicalSummary: "胸痛", PatientID: f.patient[s],
		Status: consult.Scheduled, Version: 3, CreatedAt: now, UpdatedAt: now,
		Specialists: []consult.Assignment{{SpecialistID: f.user[paired], DepartmentID: toDept}},
		Schedule:    &consult.Period{Start: now.Add(-5 * time.Minute), End: now.Add(time.Hour)}, ScheduledAt: &now}
	if err := store.NewConsults(f.app.DB).CreateSession(f.ctx, sess); err != nil {
		f.t.Errorf("session of %s: %v", s, err)
	}
	if f.sessions == nil {
		f.sessions = map[scope]string{}
	}
	f.sessions[s] = sess.ID
	return sess.ID
}

// png is a real PNG image to upload.
func (f *fixture) png() []byte {
	b, err := os.ReadFile("../../attachment/testdata/video-001.png")
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

// fileOf uploads (once) a file at the scope's hospital, as its user.
func (f *fixture) fileOf(s scope) string {
	if id, ok := f.files[s]; ok {
		return id
	}
	a, err := f.app.svc.files.Upload(f.ctx, f.clinician(s), attachments.UploadInput{Name: "矩阵.png", ContentType: "image/png"}, bytes.NewReader(f.png()))
	if err != nil {
		f.t.Errorf("file of %s: %v", s, err)
	}
	if f.files == nil {
		f.files = map[scope]string{}
	}
	f.files[s] = a.ID
	return a.ID
}

func (f *fixture) seq() int { return int(f.n.Add(1)) }

// pairingSides picks two hospitals of a scope that may be paired.
func (f *fixture) pairingSides(s scope) (string, string) {
	switch s {
	case own:
		return f.hospital[paired], f.hospital[own]
	case paired:
		return f.hospital[paired], f.township[own]
	}
	return f.hospital[paired], f.township[unrelated]
}

// Valid national IDs (checksums right), one per hospital's patient.
var nationalIDs = map[scope]string{own: "11010519491231002X", paired: "110105194912310011", unrelated: "110105194912310046"}

// clinician acts at the scope's own hospital, to set up its patients.
func (f *fixture) clinician(s scope) auth.Principal {
	return auth.Principal{UserID: f.user[s], HospitalID: f.hospital[s], Roles: []auth.Role{auth.CountyDoctor}}
}

func (f *fixture) login(r auth.Role) string {
	// Each login from its own address: the per-address login limit is not
	// what this test is about.
	res, err := f.app.svc.auth.Login(f.ctx, f.username[r], f.password[r], fmt.Sprintf("198.51.100.%d", f.seq()%250), "matrix")
	if err != nil {
		f.t.Errorf("login %s: %v", r, err)
	}
	return res.Token
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	a, err := New(ctx, config.Config{DataDir: t.TempDir(), Demo: true, RedisPrefix: "matrix"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	f := &fixture{t: t, ctx: ctx, app: a, handler: a.Handler(),
		admin:    auth.Principal{UserID: "system", Roles: []auth.Role{auth.Admin}},
		username: map[auth.Role]string{}, password: map[auth.Role]string{}, token: map[auth.Role]string{},
		roleUser: map[auth.Role]auth.Principal{},
		hospital: map[scope]string{}, department: map[scope]string{}, staff: map[scope]string{},
		pairing: map[scope]string{}, user: map[scope]string{}, township: map[scope]string{},
		patient: map[scope]string{}, nationalID: map[scope]string{},
	}
	dir := a.svc.directory
	hs, err := dir.Hospitals(ctx, f.admin, directory.HospitalQuery{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]string{}
	for _, h := range hs {
		byName[h.Name] = h.ID
	}
	f.hospital[own], f.hospital[paired], f.hospital[unrelated] = byName["临溪县人民医院"], byName["青川省人民医院"], byName["云岭县人民医院"]
	f.township[own], f.township[unrelated] = byName["临溪县城关镇卫生院"], byName["云岭县马场乡卫生院"]

	for _, s := range scopes {
		ds, err := dir.Departments(ctx, f.admin, f.hospital[s], "", 1)
		if err != nil || len(ds) == 0 {
			t.Fatalf("departments of %s: %v", s, err)
		}
		f.department[s] = ds[0].ID
		st, err := dir.CreateStaff(ctx, f.admin, directory.StaffInput{HospitalID: f.hospital[s], Name: "矩阵" + s.String(), Title: "attending_physician"})
		if err != nil {
			t.Fatal(err)
		}
		f.staff[s] = st.ID
		u, err := a.svc.auth.CreateUser(ctx, f.admin, auth.NewUser{Username: "matrix.target." + s.String(), DisplayName: "目标",
			HospitalID: f.hospital[s], Roles: []auth.Role{auth.CountyDoctor}, Password: "target-password-1"})
		if err != nil {
			t.Fatal(err)
		}
		f.user[s] = u.ID
		f.nationalID[s] = nationalIDs[s]
		pt, err := a.svc.patients.Create(ctx, f.clinician(s), patient.PatientInput{Name: "患者" + s.String(), Sex: "male",
			BirthDate: "1949-12-31", NationalID: nationalIDs[s], HomeHospitalID: f.hospital[s]})
		if err != nil {
			t.Fatal(err)
		}
		f.patient[s] = pt.ID
	}
	// Pairings: the caller's own (省人民医院 → 临溪), one between two
	// hospitals the caller reaches but not its own, and an unrelated one.
	ps, err := dir.Pairings(ctx, f.admin, directory.PairingQuery{HospitalID: f.hospital[own], Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.SupportingHospitalID == f.hospital[paired] && p.RecipientHospitalID == f.hospital[own] {
			f.pairing[own] = p.ID
		}
	}
	between, err := dir.CreatePairing(ctx, f.admin, directory.PairingInput{SupportingHospitalID: f.hospital[paired],
		RecipientHospitalID: f.township[own], StartsOn: "2025-01-01", Status: "active"})
	if err != nil {
		t.Fatal(err)
	}
	f.pairing[paired] = between.ID
	ps, err = dir.Pairings(ctx, f.admin, directory.PairingQuery{HospitalID: f.hospital[unrelated], Limit: 200})
	if err != nil || len(ps) == 0 {
		t.Fatalf("pairings of the unrelated hospital: %v", err)
	}
	f.pairing[unrelated] = ps[0].ID

	f.referralParties(byName)

	for _, r := range auth.Roles {
		f.username[r] = "matrix." + string(r)
		f.password[r] = "matrix-password-0"
		u, err := a.svc.auth.CreateUser(ctx, f.admin, auth.NewUser{Username: f.username[r], DisplayName: "矩阵 " + string(r),
			HospitalID: f.hospital[own], Roles: []auth.Role{r}, Password: f.password[r]})
		if err != nil {
			t.Fatal(err)
		}
		f.roleUser[r] = auth.Principal{UserID: u.ID, HospitalID: f.hospital[own], Roles: []auth.Role{r}}
		f.token[r] = f.login(r)
	}
	f.sessionParties()
	return f
}

func (f *fixture) do(method string, req request, token string) (int, string) {
	var body io.Reader
	if req.body != nil {
		b, _ := json.Marshal(req.body)
		body = bytes.NewReader(b)
	}
	if req.raw != nil {
		body = bytes.NewReader(req.raw)
	}
	hr := httptest.NewRequest(method, req.path, body)
	if req.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	for k, v := range req.header {
		hr.Header.Set(k, v)
	}
	if token != "" && token != "-" {
		hr.Header.Set("Authorization", "Bearer "+token)
	}
	if req.ifMatch > 0 {
		hr.Header.Set("If-Match", `"`+strconv.Itoa(req.ifMatch)+`"`)
	}
	hr.RemoteAddr = fmt.Sprintf("192.0.2.%d:4000", f.seq()%250)
	rec := httptest.NewRecorder()
	if req.stream {
		ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
		defer cancel()
		hr = hr.WithContext(ctx)
		f.handler.ServeHTTP(&hangUp{ResponseRecorder: rec, after: "event: ready", hangUp: cancel}, hr)
	} else {
		f.handler.ServeHTTP(rec, hr)
	}
	if req.after != nil {
		req.after(rec.Code)
	}
	return rec.Code, rec.Body.String()
}

// hangUp is a client that leaves an event stream once it has read after.
type hangUp struct {
	*httptest.ResponseRecorder
	after  string
	hangUp func()
}

func (h *hangUp) Write(b []byte) (int, error) {
	n, err := h.ResponseRecorder.Write(b)
	if strings.Contains(h.Body.String(), h.after) {
		h.hangUp()
	}
	return n, err
}

func routesOf(t *testing.T, h http.Handler) []string {
	t.Helper()
	var out []string
	chi.Walk(h.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = strings.TrimSuffix(route, "/")
		if strings.HasPrefix(route, "/api/v1/") && !strings.HasSuffix(route, "/*") && route != "/api/v1/openapi.json" {
			out = append(out, method+" "+route)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func TestAuthorizationMatrix(t *testing.T) {
	f := newFixture(t)
	rows := matrix()
	byRoute := map[string]row{}
	for _, r := range rows {
		byRoute[r.method+" "+r.route] = r
	}
	routes := routesOf(t, f.handler)
	for _, rt := range routes {
		if _, ok := byRoute[rt]; !ok {
			t.Errorf("route %s has no row in the authorisation matrix", rt)
		}
	}
	for k := range byRoute {
		if !slices.Contains(routes, k) {
			t.Errorf("matrix row %s matches no route", k)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	for _, r := range rows {
		t.Run(r.method+" "+r.route, func(t *testing.T) {
			if r.route != "/api/v1/auth/login" {
				// Denied by default: no session, no access.
				want := http.StatusUnauthorized
				if code, ok := tokenAuthorised[r.method+" "+r.route]; ok {
					want = code
				}
				req := r.build(f, auth.Admin, own)
				if code, body := f.do(r.method, req, "-"); code != want {
					t.Errorf("anonymous: got %d, want %d: %s", code, want, body)
				}
			}
			for _, role := range auth.Roles {
				for _, s := range scopes {
					req := r.build(f, role, s)
					tok := req.token
					if tok == "" {
						tok = f.token[role]
					}
					want := r.expect(role, s)
					if code, body := f.do(r.method, req, tok); code != want {
						t.Errorf("%s, %s hospital: got %d, want %d: %s", role, s, code, want, body)
					}
				}
			}
		})
	}
}

// referralParties sets up the referral tickets of each scope: 临溪 refers
// to 省人民医院 (own); 临溪's township centre refers to 省人民医院, its
// county hospital's tertiary partner (paired); 马场乡 refers to its county
// hospital 云岭 (unrelated).
func (f *fixture) referralParties(byName map[string]string) {
	t := f.t
	f.referrer, f.ticket = map[scope]auth.Principal{}, map[scope]string{}
	f.refPatient, f.refConsent, f.refFromDept = map[scope]string{}, map[scope]string{}, map[scope]string{}
	f.refTo = map[scope]string{own: f.hospital[paired], paired: f.hospital[paired], unrelated: f.hospital[unrelated]}
	f.refToDept = map[scope]string{own: f.department[paired], paired: f.department[paired], unrelated: f.department[unrelated]}
	from := map[scope]string{own: f.hospital[own], paired: f.township[own], unrelated: f.township[unrelated]}
	for _, s := range scopes {
		u, err := f.app.svc.auth.CreateUser(f.ctx, f.admin, auth.NewUser{Username: "matrix.referrer." + s.String(), DisplayName: "转诊医生",
			HospitalID: from[s], Roles: []auth.Role{auth.CountyDoctor}, Password: "referrer-password-1"})
		if err != nil {
			t.Fatal(err)
		}
		f.referrer[s] = auth.Principal{UserID: u.ID, HospitalID: from[s], Roles: []auth.Role{auth.CountyDoctor}}
		ds, err := f.app.svc.directory.Departments(f.ctx, f.admin, from[s], "", 1)
		if err != nil || len(ds) == 0 {
			t.Fatalf("departments of the referrer of %s: %v", s, err)
		}
		f.refFromDept[s] = ds[0].ID
		pt, err := f.app.svc.patients.Create(f.ctx, f.referrer[s], patient.PatientInput{Name: "转诊患者" + s.String(), Sex: "female",
			BirthDate: "1956-04-12", HomeHospitalID: from[s]})
		if err != nil {
			t.Fatal(err)
		}
		c, err := f.app.svc.patients.RecordConsent(f.ctx, f.referrer[s], pt.ID, patient.ConsentInput{
			ConsenterKind: "patient", ConsenterName: "转诊患者", Purpose: "referral"})
		if err != nil {
			t.Fatal(err)
		}
		f.refPatient[s], f.refConsent[s] = pt.ID, c.ID
		f.ticket[s] = f.submittedReferral(s).ID
	}
}

// referralInput is a complete urgent up-referral.
func (f *fixture) referralInput(by auth.Principal, patientID, to, fromDept, toDept string) referral.Input {
	now := time.Now().UTC()
	return referral.Input{
		Direction: referral.Up, Priority: referral.Urgent, TransferRisk: referral.RiskII,
		PatientID: patientID, ReferringDepartmentID: fromDept, ReferringDoctorID: by.UserID,
		ReceivingHospitalID: to, ReceivingDepartmentID: toDept,
		Diagnoses: []referral.Diagnosis{{Code: "I20.0", Text: "不稳定型心绞痛"}},
		Reason:    "需冠脉造影评估", ClinicalSummary: "反复胸闷1周", TreatmentGiven: "阿司匹林、他汀",
		Transport:       referral.Transport{Mode: referral.ByHospitalVehicle, Escort: referral.EscortNurse},
		RequestedWindow: &referral.Window{From: now, To: now.Add(48 * time.Hour)},
		ConsentID:       f.refConsent[own],
	}
}

// submittedReferral writes and submits a new ticket of scope s through the
// service, as the scope's referrer.
func (f *fixture) submittedReferral(s scope) referral.Referral {
	p := f.referrer[s]
	in := f.referralInput(p, f.refPatient[s], f.refTo[s], f.refFromDept[s], f.refToDept[s])
	in.ConsentID = f.refConsent[s]
	svc := f.app.svc.referrals
	r, err := svc.Create(f.ctx, p, in)
	if err == nil {
		r, err = svc.Act(f.ctx, p, r.ID, r.Version, referral.Submit, referral.ActionInput{})
	}
	if err != nil {
		// Errorf, not Fatalf: rows build their requests inside subtests.
		f.t.Errorf("referral of %s: %v", s, err)
	}
	return r
}

// sessionRequesters ask for remote sessions and withdraw them.
var sessionRequesters = []auth.Role{auth.CountyDoctor, auth.Specialist, auth.DispatchedDoctor}

// sessionCreateRule: doctors of the caller's hospital request sessions about
// a patient within reach; a patient of an unrelated hospital is a bad
// patient_id.
func sessionCreateRule(r auth.Role, s scope) int {
	switch {
	case !slices.Contains(sessionRequesters, r):
		return http.StatusForbidden
	case s == unrelated:
		return http.StatusBadRequest
	}
	return http.StatusCreated
}

// slotPublishRule: specialists publish slots in their own hospital's
// departments; another hospital's department is a bad department_id.
func slotPublishRule(r auth.Role, s scope) int {
	switch {
	case r != auth.Specialist:
		return http.StatusForbidden
	case s != own:
		return http.StatusBadRequest
	}
	return http.StatusCreated
}

// slotBookRule: a remote clinic serves the hospitals paired with the
// specialist's, not its own (403); doctors of the paired county book; a slot
// of an unrelated hospital is not found.
func slotBookRule(r auth.Role, s scope) int {
	switch {
	case !slices.Contains(auth.ClinicalRoles, r):
		return http.StatusForbidden
	case s == unrelated:
		return http.StatusNotFound
	case s == own || !slices.Contains(sessionRequesters, r):
		return http.StatusForbidden
	}
	return http.StatusCreated
}

// slotCancelRule: only the slot's own specialist withdraws it; another
// hospital's slot is not found.
func slotCancelRule(r auth.Role, s scope) int {
	switch {
	case !slices.Contains(auth.ClinicalRoles, r):
		return http.StatusForbidden
	case s != own:
		return http.StatusNotFound
	case r != auth.Specialist:
		return http.StatusForbidden
	}
	return http.StatusOK
}

// clinicStart is 09:00 in China on a day at least two weeks ahead: a slot
// then may still be published today.
func clinicStart() time.Time {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		loc = time.FixedZone("CST", 8*3600)
	}
	d := time.Now().Add(15 * 24 * time.Hour).In(loc)
	return time.Date(d.Year(), d.Month(), d.Day(), 9, 0, 0, 0, loc).UTC()
}

// sessionParties sets up the remote sessions of each scope, along the same
// routes as the referrals: 临溪 asks 省人民医院 (own), 临溪's township centre
// asks 省人民医院 (paired), 马场乡 asks 云岭 (unrelated). Each requester's
// patient consented to remote consultation and to sharing data with the
// target; a specialist of each target answers and signs an opinion that
// advises referral. Each scope's hospital also has a specialist who
// publishes clinic slots.
func (f *fixture) sessionParties() {
	t := f.t
	f.requester, f.slotOwner = map[scope]auth.Principal{}, map[scope]auth.Principal{}
	f.session, f.signed = map[scope]consult.Session{}, map[scope]consult.Session{}
	principal := func(name, hospital string, role auth.Role) auth.Principal {
		u, err := f.app.svc.auth.CreateUser(f.ctx, f.admin, auth.NewUser{Username: name, DisplayName: "会诊医生",
			HospitalID: hospital, Roles: []auth.Role{role}, Password: "session-password-1"})
		if err != nil {
			t.Fatal(err)
		}
		reach, err := f.app.svc.directory.Reach(f.ctx, hospital)
		if err != nil {
			t.Fatal(err)
		}
		return auth.Principal{UserID: u.ID, HospitalID: hospital, Roles: []auth.Role{role}, Reach: reach}
	}
	for _, s := range scopes {
		f.slotOwner[s] = principal("matrix.clinic."+s.String(), f.hospital[s], auth.Specialist)
	}
	for _, s := range scopes {
		req := f.referrer[s]
		f.requester[s] = principal("matrix.requester."+s.String(), req.HospitalID, auth.CountyDoctor)
		for _, c := range []patient.ConsentInput{
			{ConsenterKind: "patient", ConsenterName: "转诊患者", Purpose: "remote_consultation"},
			{ConsenterKind: "patient", ConsenterName: "转诊患者", Purpose: "data_sharing", SharedWithHospitalID: f.refTo[s]},
		} {
			if _, err := f.app.svc.patients.RecordConsent(f.ctx, f.requester[s], f.refPatient[s], c); err != nil {
				t.Fatalf("consent of %s: %v", s, err)
			}
		}
		f.session[s] = f.requestedSession(s)

		// The target's specialist runs a session to its signed opinion.
		target := principal("matrix.answer."+s.String(), f.refTo[s], auth.Specialist)
		svc := f.app.svc.consults
		x := f.requestedSession(s)
		var err error
		step := func(a consult.Action, in consult.ActionInput) {
			if err == nil {
				x, err = svc.Act(f.ctx, target, x.ID, x.Version, a, in)
			}
		}
		start := time.Now().Add(time.Hour).UTC()
		step(consult.Accept, consult.ActionInput{Specialists: []consult.Assignment{{SpecialistID: target.UserID, DepartmentID: f.refToDept[s]}}})
		step(consult.Schedule, consult.ActionInput{Schedule: &consult.Period{Start: start, End: start.Add(time.Hour)}})
		step(consult.Start, consult.ActionInput{})
		step(consult.End, consult.ActionInput{})
		step(consult.Sign, consult.ActionInput{Opinion: &consult.OpinionInput{Findings: "LAD狭窄约70%", Impression: "不稳定型心绞痛",
			Recommendations: "上转造影", ReferralAdvised: true, SuggestedDepartmentID: f.refToDept[s]}})
		if err != nil {
			t.Fatalf("signed session of %s: %v", s, err)
		}
		f.signed[s] = x
	}
}

// sessionInput is an urgent consult of patientID with department dept of
// hospital to.
func (f *fixture) sessionInput(patientID, to, dept string) consult.Input {
	return consult.Input{Kind: consult.Consult, Urgency: consult.Urgent, TargetHospitalID: to, TargetDepartmentIDs: []string{dept},
		Question: "胸痛待查，是否需要冠脉造影？", ClinicalSummary: "男，62岁，反复胸闷1周", PatientID: patientID}
}

// requestedSession writes a new request of scope s through the service.
func (f *fixture) requestedSession(s scope) consult.Session {
	x, err := f.app.svc.consults.Request(f.ctx, f.requester[s], f.sessionInput(f.refPatient[s], f.refTo[s], f.refToDept[s]))
	if err != nil {
		f.t.Errorf("session of %s: %v", s, err)
	}
	return x
}

// publishSlot publishes a clinic slot of specialist by in dept.
func (f *fixture) publishSlot(by auth.Principal, dept string) consult.ClinicSlot {
	start := clinicStart()
	slot, err := f.app.svc.consults.Publish(f.ctx, by, consult.SlotInput{DepartmentID: dept, Start: start, End: start.Add(30 * time.Minute)})
	if err != nil {
		f.t.Errorf("slot in %s: %v", dept, err)
	}
	return slot
}
