package httpapi

import (
	"bytes"
	"context"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"testing"

	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/patient"
	"duikou/internal/secret"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
)

func newPatTestEnv(t *testing.T, db sqldb.DB) *regTestEnv {
	t.Helper()
	box, err := secret.New(bytes.Repeat([]byte{9}, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return newRegTestEnv(t, db, func(d *Deps, rec audit.Recorder) {
		d.Patients = patient.NewService(db, store.NewPatients(db), box, rec)
	})
}

// patTestStoredAnywhere reports whether text appears, in clear or as hex,
// in any column of any row of table.
func patTestStoredAnywhere(t *testing.T, db sqldb.DB, table string, cols []string, text string) bool {
	t.Helper()
	needles := []string{text, hex.EncodeToString([]byte(text))}
	for _, col := range cols {
		rows, err := db.Query(context.Background(), `SELECT COALESCE(CAST(`+col+` AS TEXT), '') FROM `+table)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			for _, n := range needles {
				if strings.Contains(strings.ToLower(v), strings.ToLower(n)) {
					rows.Close()
					return true
				}
			}
		}
		rows.Close()
	}
	return false
}

var patTestPatientCols = []string{"id", "name", "sex", "birth_date", "national_id_cipher", "national_id_hash",
	"national_id_masked", "phone", "address", "home_hospital_id", "created_by"}

var patTestAuditCols = []string{"actor_id", "action", "resource_type", "resource_id", "patient_id", "detail"}

func TestPatientsHTTPCreateRejectsBadInput(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newPatTestEnv(t, db)
		doctor := env.user("doctor", env.county, auth.CountyDoctor)
		for _, tc := range []struct {
			name   string
			body   any
			status int
			fields []string
		}{
			{"malformed JSON", `{"name":"王秀英","sex":`, 400, []string{"body"}},
			{"empty body", ``, 400, []string{"body"}},
			{"unknown field", `{"name":"王秀英","sex":"female","birth_date":"1968-05-21","id_card":"x"}`, 400, []string{"id_card"}},
			{"wrong type: number for a date", `{"name":"王秀英","sex":"female","birth_date":19680521}`, 400, []string{"birth_date"}},
			{"wrong type: array for a name", `{"name":["王","秀英"],"sex":"female","birth_date":"1968-05-21"}`, 400, []string{"name"}},
			{"over-long name", `{"name":"` + strings.Repeat("王", apperr.MaxName+1) + `","sex":"female","birth_date":"1968-05-21"}`, 400, []string{"name"}},
			{"over-long address", `{"name":"王秀英","sex":"female","birth_date":"1968-05-21","address":"` + strings.Repeat("路", apperr.MaxText+1) + `"}`, 400, []string{"address"}},
			{"national ID with a wrong check digit", `{"name":"王秀英","sex":"female","national_id":"510824199003071231"}`, 400, []string{"national_id"}},
			{"national ID too short", `{"name":"王秀英","sex":"female","national_id":"51082419900307123"}`, 400, []string{"national_id"}},
			{"impossible birth date", `{"name":"王秀英","sex":"female","birth_date":"1968-02-30"}`, 400, []string{"birth_date"}},
			{"unknown sex", `{"name":"王秀英","sex":"f","birth_date":"1968-05-21"}`, 400, []string{"sex"}},
			{"control character in the name", `{"name":"王\u0000秀英","sex":"female","birth_date":"1968-05-21"}`, 400, []string{"name"}},
			{"every field wrong at once", `{"name":"","sex":"x","birth_date":"soon","phone":"call me"}`, 400, []string{"name", "sex", "phone", "birth_date"}},
			{"home hospital beyond reach", `{"name":"王秀英","sex":"female","birth_date":"1968-05-21","home_hospital_id":"` + env.foreign.ID + `"}`, 400, []string{"home_hospital_id"}},
			{"oversized body", regTestOversized("address"), 413, nil},
		} {
			before, beforeAudit := env.count("patients"), env.count("audit_log")
			res := env.do(doctor, http.MethodPost, "/api/v1/patients", tc.body)
			if res.code != tc.status {
				t.Errorf("%s: status %d, want %d (%s)", tc.name, res.code, tc.status, res.body)
				continue
			}
			if got := res.problemFields(t); !slices.Equal(got, tc.fields) {
				t.Errorf("%s: problem names fields %v, want %v", tc.name, got, tc.fields)
			}
			if after := env.count("patients"); after != before {
				t.Errorf("%s: patients %d → %d; bad input must change nothing", tc.name, before, after)
			}
			if after := env.count("audit_log"); after != beforeAudit {
				t.Errorf("%s: audit rows %d → %d for a request that changed nothing", tc.name, beforeAudit, after)
			}
		}
		res := env.do(doctor, http.MethodPost, "/api/v1/patients", `{"name":"王秀英","sex":"female","birth_date":"1968-05-21"}`)
		if res.code != http.StatusCreated {
			t.Errorf("a good body: %d %s", res.code, res.body)
		}
	})
}

func TestPatientsHTTPScope(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newPatTestEnv(t, db)
		doctor := env.user("doctor", env.county, auth.CountyDoctor)
		specialist := env.user("specialist", env.tert, auth.Specialist)
		outsider := env.user("outsider", env.foreign, auth.CountyDoctor)
		office := env.user("office", env.county, auth.ProgramOffice)

		create := func(token, body string) patient.Patient {
			t.Helper()
			res := env.do(token, http.MethodPost, "/api/v1/patients", body)
			if res.code != http.StatusCreated {
				t.Fatalf("create: %d %s", res.code, res.body)
			}
			var p patient.Patient
			res.json(t, &p)
			return p
		}
		atTert := create(specialist, `{"name":"张伟","sex":"male","birth_date":"1970-01-01"}`)
		far := create(outsider, `{"name":"张强","sex":"male","birth_date":"1980-01-01"}`)

		// Paired hospital: visible, and the read is recorded.
		skip := len(env.auditActions(0))
		res := env.do(doctor, http.MethodGet, "/api/v1/patients/"+atTert.ID, nil)
		if res.code != 200 || res.hdr.Get("ETag") != `"1"` {
			t.Errorf("patient of the paired hospital: %d %q", res.code, res.hdr.Get("ETag"))
		}
		if got := env.auditActions(skip); !slices.Equal(got, []string{"patient.read " + atTert.ID + " " + atTert.ID + " success"}) {
			t.Errorf("reading a patient writes patient.read: %v", got)
		}

		// Unrelated hospital: not found, and the attempt is recorded.
		skip = len(env.auditActions(0))
		if res := env.do(doctor, http.MethodGet, "/api/v1/patients/"+far.ID, nil); res.code != http.StatusNotFound {
			t.Errorf("patient of an unrelated hospital: %d", res.code)
		}
		if got := env.auditActions(skip); !slices.Equal(got, []string{"access.denied " + far.ID + " " + far.ID + " denied"}) {
			t.Errorf("denied read audit: %v", got)
		}
		for _, path := range []string{"/api/v1/patients/" + far.ID + "/consents"} {
			if res := env.do(doctor, http.MethodGet, path, nil); res.code != http.StatusNotFound {
				t.Errorf("GET %s: %d", path, res.code)
			}
		}
		if res := env.do(doctor, http.MethodPatch, "/api/v1/patients/"+far.ID, `{"name":"x"}`, "If-Match", `"1"`); res.code != http.StatusNotFound {
			t.Errorf("patch a patient of an unrelated hospital: %d", res.code)
		}

		// A body naming another hospital never widens scope.
		before := env.count("patients")
		res = env.do(doctor, http.MethodPost, "/api/v1/patients",
			`{"name":"李明","sex":"male","birth_date":"1990-01-01","home_hospital_id":"`+env.foreign.ID+`"}`)
		if res.code != 400 || env.count("patients") != before {
			t.Errorf("register at an unrelated hospital: %d, patients %d → %d", res.code, before, env.count("patients"))
		}
		own := create(doctor, `{"name":"李明","sex":"male","birth_date":"1990-01-01"}`)
		if own.HomeHospitalID != env.county.ID || own.CreatedBy != env.users[doctor].UserID {
			t.Errorf("home defaults to the caller's hospital: %+v", own)
		}
		res = env.do(doctor, http.MethodPatch, "/api/v1/patients/"+own.ID, `{"home_hospital_id":"`+env.foreign.ID+`"}`, "If-Match", `"1"`)
		if res.code != 400 || !slices.Equal(res.problemFields(t), []string{"home_hospital_id"}) {
			t.Errorf("move a patient to an unrelated hospital: %d %s", res.code, res.body)
		}
		var list List[patient.Patient]
		env.do(doctor, http.MethodGet, "/api/v1/patients?home_hospital_id="+env.foreign.ID, nil).json(t, &list)
		if len(list.Items) != 0 {
			t.Errorf("filtering by an unrelated hospital shows %d patients", len(list.Items))
		}
		env.do(doctor, http.MethodGet, "/api/v1/patients?q=张", nil).json(t, &list)
		if len(list.Items) != 1 || list.Items[0].ID != atTert.ID {
			t.Errorf("name search is scoped: %+v", list.Items)
		}

		// Roles that do not treat patients get 403, recorded.
		skip = len(env.auditActions(0))
		if res := env.do(office, http.MethodGet, "/api/v1/patients/"+own.ID, nil); res.code != http.StatusForbidden {
			t.Errorf("program office reads a patient: %d", res.code)
		}
		if got := env.auditActions(skip); len(got) != 1 || !strings.HasPrefix(got[0], "access.denied") {
			t.Errorf("role refusal audit: %v", got)
		}
	})
}

func TestPatientsHTTPNationalIDIsNeverInClear(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newPatTestEnv(t, db)
		doctor := env.user("doctor", env.county, auth.CountyDoctor)
		const id = "11010519491231002X"

		res := env.do(doctor, http.MethodPost, "/api/v1/patients", `{"name":"王秀英","sex":"female","national_id":"11010519491231002x"}`)
		if res.code != http.StatusCreated {
			t.Fatalf("create: %d %s", res.code, res.body)
		}
		var p patient.Patient
		res.json(t, &p)
		if p.NationalIDMasked != "1101**********002X" || p.BirthDate != "1949-12-31" {
			t.Errorf("created: %+v", p)
		}
		bodies := [][]byte{res.body}
		if res := env.do(doctor, http.MethodPost, "/api/v1/patients", `{"name":"王秀英","sex":"female","national_id":"`+id+`"}`); res.code != http.StatusConflict {
			t.Errorf("same ID twice: %d", res.code)
		}
		got := env.do(doctor, http.MethodGet, "/api/v1/patients/"+p.ID, nil)
		search := env.do(doctor, http.MethodPost, "/api/v1/patients/search", `{"national_id":"`+id+`"}`)
		var found List[patient.Patient]
		search.json(t, &found)
		if search.code != 200 || len(found.Items) != 1 || found.Items[0].ID != p.ID {
			t.Errorf("search by ID: %d %s", search.code, search.body)
		}
		list := env.do(doctor, http.MethodGet, "/api/v1/patients", nil)
		bodies = append(bodies, got.body, search.body, list.body)
		for _, b := range bodies {
			if bytes.Contains(bytes.ToUpper(b), []byte(id)) || bytes.Contains(b, []byte(`"national_id"`)) {
				t.Errorf("a response carries the full national ID: %s", b)
			}
		}
		if patTestStoredAnywhere(t, db, "patients", patTestPatientCols, id) {
			t.Error("the national ID is stored in clear (or hex) in patients")
		}
		if patTestStoredAnywhere(t, db, "audit_log", patTestAuditCols, id) {
			t.Error("the national ID reached the audit log")
		}
		var masked string
		var cipher []byte
		if err := db.QueryRow(context.Background(), `SELECT national_id_masked, national_id_cipher FROM patients WHERE id = $1`, p.ID).Scan(&masked, &cipher); err != nil {
			t.Fatal(err)
		}
		if masked != "1101**********002X" || len(cipher) < 18 {
			t.Errorf("stored masked %q, cipher %d bytes", masked, len(cipher))
		}
		if res := env.do(doctor, http.MethodPost, "/api/v1/patients/search", `{"national_id":"11010519491231002"}`); res.code != 400 || !slices.Equal(res.problemFields(t), []string{"national_id"}) {
			t.Errorf("search with a malformed ID: %d", res.code)
		}
		if res := env.do(doctor, http.MethodGet, "/api/v1/patients/search", nil); res.code == http.StatusOK {
			t.Error("search by GET, with the ID in the URL, is answered")
		}
	})
}

func TestPatientsHTTPUpdateAndConsents(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newPatTestEnv(t, db)
		doctor := env.user("doctor", env.county, auth.CountyDoctor)
		desk := env.user("desk", env.tert, auth.ReferralDesk)

		var p patient.Patient
		env.do(doctor, http.MethodPost, "/api/v1/patients", `{"name":"王秀英","sex":"female","birth_date":"1968-05-21"}`).json(t, &p)
		path := "/api/v1/patients/" + p.ID
		if res := env.do(doctor, http.MethodPatch, path, `{"phone":"13900000000"}`); res.code != http.StatusPreconditionRequired {
			t.Errorf("patch without If-Match: %d", res.code)
		}
		if res := env.do(doctor, http.MethodPatch, path, `{"phone":"13900000000"}`, "If-Match", `"5"`); res.code != http.StatusPreconditionFailed {
			t.Errorf("patch at a wrong version: %d", res.code)
		}
		res := env.do(desk, http.MethodPatch, path, `{"phone":"13900000000","address":"苍溪县陵江镇"}`, "If-Match", `"1"`)
		if res.code != 200 || res.hdr.Get("ETag") != `"2"` {
			t.Errorf("patch from the paired hospital's referral desk: %d %s", res.code, res.body)
		}
		skip := len(env.auditActions(0))
		res = env.do(doctor, http.MethodPatch, path, `{"national_id":"510824199003071230","birth_date":"1990-03-07"}`, "If-Match", `"2"`)
		if res.code != 200 {
			t.Fatalf("set the national ID: %d %s", res.code, res.body)
		}
		if got := env.auditActions(skip); !slices.Equal(got, []string{"patient.update " + p.ID + " " + p.ID + " success"}) {
			t.Errorf("update audit: %v", got)
		}

		consents := path + "/consents"
		if res := env.do(doctor, http.MethodPost, consents, `{"consenter_kind":"patient","consenter_name":"王秀英","purpose":"data_sharing"}`); res.code != 400 ||
			!slices.Equal(res.problemFields(t), []string{"shared_with_hospital_id"}) {
			t.Errorf("data sharing without a hospital: %d %s", res.code, res.body)
		}
		if res := env.do(doctor, http.MethodPost, consents, `{"consenter_kind":"patient","consenter_name":"王秀英","purpose":"data_sharing","shared_with_hospital_id":"`+env.foreign.ID+`"}`); res.code != 400 {
			t.Errorf("data sharing with an unrelated hospital: %d", res.code)
		}
		res = env.do(doctor, http.MethodPost, consents, `{"consenter_kind":"guardian","consenter_name":"王建国","relationship":"儿子","purpose":"data_sharing","shared_with_hospital_id":"`+env.tert.ID+`"}`)
		if res.code != http.StatusCreated {
			t.Fatalf("record consent: %d %s", res.code, res.body)
		}
		var c patient.Consent
		res.json(t, &c)
		if !c.Active || c.RecordedBy != env.users[doctor].UserID {
			t.Errorf("consent: %+v", c)
		}
		var list List[patient.Consent]
		env.do(desk, http.MethodGet, consents, nil).json(t, &list)
		if len(list.Items) != 1 || list.Items[0].ID != c.ID {
			t.Errorf("consents: %+v", list)
		}
		withdraw := consents + "/" + c.ID + "/withdraw"
		if res := env.do(doctor, http.MethodPost, withdraw, `{}`); res.code != 400 || !slices.Equal(res.problemFields(t), []string{"reason"}) {
			t.Errorf("withdraw without a reason: %d", res.code)
		}
		res = env.do(doctor, http.MethodPost, withdraw, `{"reason":"家属要求撤回"}`)
		if res.code != 200 {
			t.Fatalf("withdraw: %d %s", res.code, res.body)
		}
		res.json(t, &c)
		if c.Active || c.WithdrawnAt == nil || c.WithdrawReason != "家属要求撤回" {
			t.Errorf("withdrawn consent: %+v", c)
		}
		if res := env.do(doctor, http.MethodPost, withdraw, `{"reason":"again"}`); res.code != http.StatusConflict {
			t.Errorf("withdraw twice: %d", res.code)
		}
		var actions []string
		for _, row := range env.auditActions(0) {
			if strings.HasPrefix(row, "consent.") {
				actions = append(actions, strings.Fields(row)[0])
			}
		}
		if want := []string{"consent.record", "consent.read", "consent.withdraw"}; !slices.Equal(actions, want) {
			t.Errorf("consent audit: %v, want %v", actions, want)
		}
	})
}
