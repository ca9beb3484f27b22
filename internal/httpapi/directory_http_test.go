package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/directory"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
)

// regTestAuth maps bearer tokens to principals. The embedded interface is
// nil: these tests call nothing else of the auth service.
type regTestAuth struct {
	AuthService
	users map[string]auth.Principal
}

func (f regTestAuth) Authenticate(_ context.Context, token string) (auth.Principal, error) {
	if p, ok := f.users[token]; ok {
		return p, nil
	}
	return auth.Principal{}, apperr.ErrUnauthenticated
}

func (f regTestAuth) CSRFToken(string) string { return "" }

// regTestEnv is an API over real stores on one engine, with a few hospitals
// and callers: a tertiary hospital paired with a county hospital, and an
// unrelated county hospital in another province.
type regTestEnv struct {
	t       *testing.T
	db      sqldb.DB
	h       http.Handler
	dir     *directory.Service
	tert    directory.Hospital
	county  directory.Hospital
	foreign directory.Hospital
	users   map[string]auth.Principal // by token
}

func newRegTestEnv(t *testing.T, db sqldb.DB, extra func(d *Deps, rec audit.Recorder)) *regTestEnv {
	t.Helper()
	ctx := context.Background()
	rec := audit.NewLog(store.NewAuditLog(db), nil) // the real, hash-chained log
	dirStore := store.NewDirectory(db)
	env := &regTestEnv{t: t, db: db, dir: directory.NewService(db, dirStore, rec), users: map[string]auth.Principal{}}
	mk := func(n int, tier directory.Tier, province string) directory.Hospital {
		now := sqldb.Now()
		h := directory.Hospital{ID: uuid.Must(uuid.NewV7()).String(), Name: fmt.Sprintf("医院%d", n),
			OrgCode: fmt.Sprintf("12510000%010d", n), Tier: tier, Province: province,
			TimeZone: directory.DefaultTimeZone, Version: 1, CreatedAt: now, UpdatedAt: now}
		if err := dirStore.CreateHospital(ctx, h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	env.tert = mk(1, directory.Tertiary, "四川省")
	env.county = mk(2, directory.Secondary, "四川省")
	env.foreign = mk(3, directory.Secondary, "贵州省")
	now := sqldb.Now()
	if err := dirStore.CreatePairing(ctx, directory.Pairing{ID: uuid.Must(uuid.NewV7()).String(),
		SupportingHospitalID: env.tert.ID, RecipientHospitalID: env.county.ID, StartsOn: "2020-01-01",
		Status: directory.PairingActive, Version: 1, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	d := Deps{Log: slog.New(slog.DiscardHandler), Auth: regTestAuth{users: env.users}, Audit: rec, Directory: env.dir}
	if extra != nil {
		extra(&d, rec)
	}
	env.h = New(Config{}, d).Handler()
	return env
}

// user registers a caller at hospital h (with a users row, which consents
// and patients refer to) and returns its bearer token.
func (e *regTestEnv) user(name string, h directory.Hospital, roles ...auth.Role) string {
	e.t.Helper()
	reach, err := e.dir.Reach(context.Background(), h.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	p := auth.Principal{UserID: uuid.Must(uuid.NewV7()).String(), Username: name, HospitalID: h.ID, Roles: roles, Reach: reach}
	now := sqldb.Now()
	if _, err := e.db.Exec(context.Background(), `INSERT INTO users (id, username, display_name, hospital_id, password_hash,
		created_at, updated_at) VALUES ($1, $2, $2, $3, 'x', $4, $4)`, p.UserID, name, h.ID, now); err != nil {
		e.t.Fatal(err)
	}
	token := "token-" + name
	e.users[token] = p
	return token
}

type regTestResponse struct {
	code int
	hdr  http.Header
	body []byte
}

func (r regTestResponse) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// problemFields lists the fields a problem document names.
func (r regTestResponse) problemFields(t *testing.T) []string {
	t.Helper()
	if ct := r.hdr.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("content type %q, want application/problem+json (body %s)", ct, r.body)
	}
	var p Problem
	r.json(t, &p)
	var out []string
	for _, f := range p.Errors {
		out = append(out, f.Field)
	}
	return out
}

// do sends a request. body is a string (sent as is), an io.Reader (sent
// without a declared length) or a value encoded as JSON; hdr are pairs.
func (e *regTestEnv) do(token, method, path string, body any, hdr ...string) regTestResponse {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case io.Reader:
		rd = b
	default:
		js, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req := httptest.NewRequest(method, path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return regTestResponse{code: rec.Code, hdr: rec.Header(), body: rec.Body.Bytes()}
}

func (e *regTestEnv) count(table string) int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// auditActions lists "action resource_id patient_id outcome" (empty parts
// left out) of the audit rows written after the first skip rows.
func (e *regTestEnv) auditActions(skip int) []string {
	e.t.Helper()
	rows, err := e.db.Query(context.Background(), `SELECT action, resource_id, patient_id, outcome FROM audit_log ORDER BY seq`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a, id, pid, o string
		if err := rows.Scan(&a, &id, &pid, &o); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, strings.Join(strings.Fields(a+" "+id+" "+pid+" "+o), " "))
	}
	if skip > len(out) {
		return nil
	}
	return out[skip:]
}

// regTestOversized is a JSON object over the 1 MiB body limit, streamed
// without a declared length so that the decoder, not the length check,
// meets the limit.
func regTestOversized(field string) io.Reader {
	return io.MultiReader(strings.NewReader(`{"`+field+`":"`), strings.NewReader(strings.Repeat("a", 1<<20+10)), strings.NewReader(`"}`))
}

func TestDirectoryHTTPHospitalCreateRejectsBadInput(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newRegTestEnv(t, db, nil)
		admin := env.user("admin", env.tert, auth.Admin)
		good := `"name":"苍溪县人民医院","org_code":"12510824452000000X","tier":"secondary","province":"四川省"`
		for _, tc := range []struct {
			name   string
			body   any
			status int
			fields []string
		}{
			{"malformed JSON", `{"name":"苍溪县人民医院",`, 400, []string{"body"}},
			{"not an object", `["a"]`, 400, []string{"body"}},
			{"unknown field", `{` + good + `,"beds":300}`, 400, []string{"beds"}},
			{"wrong type", `{"name":42,"org_code":"12510824452000000X","tier":"secondary","province":"四川省"}`, 400, []string{"name"}},
			{"two values", `{` + good + `}{}`, 400, []string{"body"}},
			{"over-long name", `{"name":"` + strings.Repeat("医", apperr.MaxName+1) + `","org_code":"12510824452000000X","tier":"secondary","province":"四川省"}`, 400, []string{"name"}},
			{"over-long address", `{` + good + `,"address":"` + strings.Repeat("路", apperr.MaxText+1) + `"}`, 400, []string{"address"}},
			{"bad org code", `{"name":"苍溪县人民医院","org_code":"12510824452000000I","tier":"secondary","province":"四川省"}`, 400, []string{"org_code"}},
			{"unknown tier", `{"name":"苍溪县人民医院","org_code":"12510824452000000X","tier":"big","province":"四川省"}`, 400, []string{"tier"}},
			{"every required field missing", `{}`, 400, []string{"name", "org_code", "tier", "province"}},
			{"oversized body", regTestOversized("name"), 413, nil},
			{"oversized body with declared length", `{"name":"` + strings.Repeat("a", 1<<20) + `"}`, 413, nil},
		} {
			before := env.count("hospitals")
			res := env.do(admin, http.MethodPost, "/api/v1/hospitals", tc.body)
			if res.code != tc.status {
				t.Errorf("%s: status %d, want %d (%s)", tc.name, res.code, tc.status, res.body)
				continue
			}
			if got := res.problemFields(t); !slices.Equal(got, tc.fields) {
				t.Errorf("%s: problem names fields %v, want %v", tc.name, got, tc.fields)
			}
			if after := env.count("hospitals"); after != before {
				t.Errorf("%s: hospitals %d → %d; bad input must change nothing", tc.name, before, after)
			}
		}
		if res := env.do(admin, http.MethodPost, "/api/v1/hospitals", `{`+good+`}`); res.code != http.StatusCreated {
			t.Errorf("the good body itself: %d %s", res.code, res.body)
		}
	})
}

func TestDirectoryHTTPHospitals(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newRegTestEnv(t, db, nil)
		admin := env.user("admin", env.tert, auth.Admin)
		office := env.user("office", env.tert, auth.ProgramOffice)
		doctor := env.user("doctor", env.county, auth.CountyDoctor)

		body := map[string]string{"name": "苍溪县人民医院", "org_code": "12510824452000000X", "tier": "secondary", "province": "四川省", "county": "苍溪县"}
		if res := env.do(doctor, http.MethodPost, "/api/v1/hospitals", body); res.code != http.StatusForbidden {
			t.Errorf("doctor creates a hospital: %d", res.code)
		}
		if res := env.do(office, http.MethodPost, "/api/v1/hospitals", body); res.code != http.StatusForbidden {
			t.Errorf("program office creates a hospital: %d", res.code)
		}
		res := env.do(admin, http.MethodPost, "/api/v1/hospitals", body)
		if res.code != http.StatusCreated || res.hdr.Get("ETag") != `"1"` {
			t.Fatalf("admin creates: %d etag %q %s", res.code, res.hdr.Get("ETag"), res.body)
		}
		var h directory.Hospital
		res.json(t, &h)
		if h.TimeZone != "Asia/Shanghai" || h.Version != 1 {
			t.Errorf("created hospital: %+v", h)
		}
		if res := env.do(admin, http.MethodPost, "/api/v1/hospitals", body); res.code != http.StatusConflict {
			t.Errorf("same org code again: %d", res.code)
		}

		path := "/api/v1/hospitals/" + h.ID
		if res := env.do(admin, http.MethodGet, path, nil); res.code != 200 || res.hdr.Get("ETag") != `"1"` {
			t.Errorf("get: %d etag %q", res.code, res.hdr.Get("ETag"))
		}
		patch := map[string]string{"address": "陵江镇"}
		if res := env.do(admin, http.MethodPatch, path, patch); res.code != http.StatusPreconditionRequired {
			t.Errorf("patch without If-Match: %d", res.code)
		}
		if res := env.do(admin, http.MethodPatch, path, patch, "If-Match", `"7"`); res.code != http.StatusPreconditionFailed {
			t.Errorf("patch at a wrong version: %d", res.code)
		}
		if res := env.do(admin, http.MethodPatch, path, `{"beds":1}`, "If-Match", `"1"`); res.code != http.StatusBadRequest {
			t.Errorf("patch with an unknown field: %d", res.code)
		}
		res = env.do(admin, http.MethodPatch, path, patch, "If-Match", `"1"`)
		if res.code != 200 || res.hdr.Get("ETag") != `"2"` {
			t.Errorf("patch: %d etag %q %s", res.code, res.hdr.Get("ETag"), res.body)
		}
		if res := env.do(doctor, http.MethodPatch, path, patch, "If-Match", `"2"`); res.code != http.StatusForbidden {
			t.Errorf("doctor patches: %d", res.code)
		}

		// The county doctor sees its own and its paired hospital, nothing else.
		var list List[directory.Hospital]
		env.do(doctor, http.MethodGet, "/api/v1/hospitals", nil).json(t, &list)
		var names []string
		for _, h := range list.Items {
			names = append(names, h.ID)
		}
		if want := []string{env.tert.ID, env.county.ID}; !slices.Equal(names, want) {
			t.Errorf("doctor lists %v, want %v", names, want)
		}
		skip := len(env.auditActions(0))
		if res := env.do(doctor, http.MethodGet, "/api/v1/hospitals/"+env.foreign.ID, nil); res.code != http.StatusNotFound {
			t.Errorf("doctor reads an unrelated hospital: %d", res.code)
		}
		if got := env.auditActions(skip); !slices.Equal(got, []string{"access.denied " + env.foreign.ID + " denied"}) {
			t.Errorf("audit after a denied read: %v", got)
		}
		if res := env.do(doctor, http.MethodGet, "/api/v1/hospitals/not-an-id", nil); res.code != http.StatusNotFound {
			t.Errorf("malformed id: %d", res.code)
		}

		// Admin pages through all four, two at a time, filtered by province.
		env.do(admin, http.MethodGet, "/api/v1/hospitals?province=四川省&limit=2", nil).json(t, &list)
		if len(list.Items) != 2 || list.NextCursor == "" {
			t.Fatalf("first page: %+v", list)
		}
		var rest List[directory.Hospital]
		env.do(admin, http.MethodGet, "/api/v1/hospitals?province=四川省&limit=2&cursor="+list.NextCursor, nil).json(t, &rest)
		if len(rest.Items) != 1 || rest.NextCursor != "" || rest.Items[0].ID != h.ID {
			t.Errorf("second page: %+v", rest)
		}
		if res := env.do(admin, http.MethodGet, "/api/v1/hospitals?tier=huge", nil); res.code != 400 {
			t.Errorf("unknown tier filter: %d", res.code)
		}
		env.do(admin, http.MethodGet, "/api/v1/hospitals?tier=secondary&county=苍溪县", nil).json(t, &list)
		if len(list.Items) != 1 || list.Items[0].ID != h.ID {
			t.Errorf("tier and county filter: %+v", list.Items)
		}
	})
}

func TestDirectoryHTTPDepartmentsStaffPairings(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newRegTestEnv(t, db, nil)
		admin := env.user("admin", env.tert, auth.Admin)
		office := env.user("office", env.tert, auth.ProgramOffice)
		doctor := env.user("doctor", env.county, auth.CountyDoctor)

		deps := "/api/v1/hospitals/" + env.county.ID + "/departments"
		if res := env.do(doctor, http.MethodPost, deps, map[string]string{"code": "03", "name": "内科"}); res.code != 403 {
			t.Errorf("doctor adds a department: %d", res.code)
		}
		res := env.do(admin, http.MethodPost, deps, map[string]string{"code": "03", "name": "内科"})
		if res.code != 201 {
			t.Fatalf("add department: %d %s", res.code, res.body)
		}
		var dep directory.Department
		res.json(t, &dep)
		if res := env.do(admin, http.MethodPost, deps, map[string]string{"code": "3", "name": "内科"}); res.code != 400 {
			t.Errorf("bad department code: %d", res.code)
		}
		var depList List[directory.Department]
		env.do(doctor, http.MethodGet, deps, nil).json(t, &depList)
		if len(depList.Items) != 1 || depList.Items[0].ID != dep.ID {
			t.Errorf("departments: %+v", depList)
		}
		if res := env.do(doctor, http.MethodGet, "/api/v1/hospitals/"+env.foreign.ID+"/departments", nil); res.code != 404 {
			t.Errorf("departments of an unrelated hospital: %d", res.code)
		}
		res = env.do(admin, http.MethodPatch, "/api/v1/departments/"+dep.ID, map[string]string{"name": "大内科"}, "If-Match", `"1"`)
		if res.code != 200 || res.hdr.Get("ETag") != `"2"` {
			t.Errorf("rename department: %d %s", res.code, res.body)
		}
		if res := env.do(doctor, http.MethodGet, "/api/v1/departments/"+dep.ID, nil); res.code != 200 || res.hdr.Get("ETag") != `"2"` {
			t.Errorf("get department: %d", res.code)
		}

		res = env.do(admin, http.MethodPost, "/api/v1/staff", map[string]any{"hospital_id": env.county.ID, "department_id": dep.ID,
			"name": "李医生", "title": "attending_physician", "phone": "13800000000"})
		if res.code != 201 {
			t.Fatalf("add staff: %d %s", res.code, res.body)
		}
		var s directory.Staff
		res.json(t, &s)
		if s.TitleLabel != "主治医师" || !s.Active {
			t.Errorf("staff: %+v", s)
		}
		if res := env.do(admin, http.MethodPost, "/api/v1/staff", map[string]any{"hospital_id": env.foreign.ID,
			"name": "赵医生", "title": "chief_physician"}); res.code != 201 {
			t.Fatalf("add staff elsewhere: %d", res.code)
		}
		var staff List[directory.Staff]
		env.do(doctor, http.MethodGet, "/api/v1/staff", nil).json(t, &staff)
		if len(staff.Items) != 1 || staff.Items[0].ID != s.ID {
			t.Errorf("doctor's staff list is scoped: %+v", staff.Items)
		}
		env.do(admin, http.MethodGet, "/api/v1/staff?title=chief_physician", nil).json(t, &staff)
		if len(staff.Items) != 1 || staff.Items[0].HospitalID != env.foreign.ID {
			t.Errorf("title filter: %+v", staff.Items)
		}
		env.do(admin, http.MethodGet, "/api/v1/staff?department_id="+dep.ID, nil).json(t, &staff)
		if len(staff.Items) != 1 || staff.Items[0].ID != s.ID {
			t.Errorf("department filter: %+v", staff.Items)
		}
		if res := env.do(admin, http.MethodGet, "/api/v1/staff?hospital_id=nope", nil); res.code != 400 || !slices.Equal(res.problemFields(t), []string{"hospital_id"}) {
			t.Errorf("malformed hospital filter: %d", res.code)
		}
		res = env.do(admin, http.MethodPatch, "/api/v1/staff/"+s.ID, map[string]any{"active": false}, "If-Match", `"1"`)
		if res.code != 200 {
			t.Errorf("deactivate: %d %s", res.code, res.body)
		}
		if res := env.do(doctor, http.MethodGet, "/api/v1/staff/"+s.ID, nil); res.code != 200 || res.hdr.Get("ETag") != `"2"` {
			t.Errorf("get staff: %d %q", res.code, res.hdr.Get("ETag"))
		}

		// Pairings: the program office manages those between hospitals it can
		// reach (the health commission's office: its province); doctors only read.
		township := directory.HospitalInput{Name: "陵江镇卫生院", OrgCode: "12510824452000009X", Tier: "township", Province: "四川省"}
		var town, commission directory.Hospital
		env.do(admin, http.MethodPost, "/api/v1/hospitals", township).json(t, &town)
		env.do(admin, http.MethodPost, "/api/v1/hospitals", directory.HospitalInput{Name: "四川省卫生健康委员会",
			OrgCode: "11510000MB0000000X", Tier: "authority", Province: "四川省"}).json(t, &commission)
		provinceOffice := env.user("province-office", commission, auth.ProgramOffice)
		pairing := map[string]string{"supporting_hospital_id": env.county.ID, "recipient_hospital_id": town.ID, "starts_on": "2025-01-01"}
		if res := env.do(doctor, http.MethodPost, "/api/v1/pairings", pairing); res.code != 403 {
			t.Errorf("doctor pairs: %d", res.code)
		}
		if res := env.do(office, http.MethodPost, "/api/v1/pairings", pairing); res.code != 404 {
			t.Errorf("a hospital's program office pairs a hospital beyond its reach: %d", res.code)
		}
		office = provinceOffice
		res = env.do(office, http.MethodPost, "/api/v1/pairings", pairing)
		if res.code != 201 {
			t.Fatalf("office pairs: %d %s", res.code, res.body)
		}
		var pr directory.Pairing
		res.json(t, &pr)
		if res := env.do(office, http.MethodPost, "/api/v1/pairings", map[string]string{"supporting_hospital_id": town.ID,
			"recipient_hospital_id": env.county.ID, "starts_on": "2025-01-01"}); res.code != 400 {
			t.Errorf("township supporting a county hospital: %d", res.code)
		}
		var prs List[directory.Pairing]
		env.do(office, http.MethodGet, "/api/v1/pairings?hospital_id="+env.county.ID+"&status=active", nil).json(t, &prs)
		if len(prs.Items) != 2 {
			t.Errorf("pairings of the county hospital: %+v", prs.Items)
		}
		res = env.do(office, http.MethodPatch, "/api/v1/pairings/"+pr.ID, map[string]string{"status": "suspended"}, "If-Match", `"1"`)
		if res.code != 200 || res.hdr.Get("ETag") != `"2"` {
			t.Errorf("suspend: %d %s", res.code, res.body)
		}
		if res := env.do(office, http.MethodGet, "/api/v1/pairings/"+pr.ID, nil); res.code != 200 || res.hdr.Get("ETag") != `"2"` {
			t.Errorf("get pairing: %d", res.code)
		}
		// The doctor's reach was computed before the new pairing: the township
		// is outside it, so the pairing is not shown.
		if res := env.do(doctor, http.MethodGet, "/api/v1/pairings/"+pr.ID, nil); res.code != 404 {
			t.Errorf("doctor reads a pairing with a hospital outside its reach: %d", res.code)
		}
	})
}
