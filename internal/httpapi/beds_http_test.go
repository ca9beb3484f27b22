package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"duikou/internal/auth"
	"duikou/internal/directory"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/referral"
)

// bedHTTPEnv is the referral world with a cardiology department at the
// tertiary hospital, its desk supervisor, the county's desk and an auditor.
type bedHTTPEnv struct {
	*refHTTPEnv
	cardio, countyDept     string
	supervisor, countyDesk string
	auditor                string
}

func newBedHTTPEnv(t *testing.T, db sqldb.DB) *bedHTTPEnv {
	t.Helper()
	env := &bedHTTPEnv{refHTTPEnv: newRefHTTPEnv(t, db)}
	admin := auth.Principal{UserID: "admin", Roles: []auth.Role{auth.Admin}}
	dept := func(h directory.Hospital, code, name string) string {
		d, err := env.dir.CreateDepartment(context.Background(), admin, h.ID, directory.DepartmentInput{Code: code, Name: name})
		if err != nil {
			t.Fatal(err)
		}
		return d.ID
	}
	env.cardio = dept(env.tert, "03.04", "心血管内科")
	env.countyDept = dept(env.county, "03", "内科")
	env.supervisor = env.user("bed.supervisor", env.tert, auth.ReferralDesk)
	p := env.users[env.supervisor]
	p.Supervisor = true
	env.users[env.supervisor] = p
	env.countyDesk = env.user("bed.county.desk", env.county, auth.ReferralDesk)
	env.auditor = env.user("bed.auditor", env.tert, auth.Auditor)
	return env
}

func (e *bedHTTPEnv) poolPath(hospital, department string) string {
	return "/api/v1/hospitals/" + hospital + "/departments/" + department + "/bed-pool"
}

func (e *bedHTTPEnv) pool(t *testing.T, token string) (referral.BedPool, regTestResponse) {
	t.Helper()
	res := e.do(token, http.MethodGet, e.poolPath(e.tert.ID, e.cardio), nil)
	if res.code != http.StatusOK {
		t.Fatalf("read pool: %d %s", res.code, res.body)
	}
	var p referral.BedPool
	res.json(t, &p)
	return p, res
}

// acceptedGreen sends a green-channel ticket to cardiology, has the desk
// claim it and try to accept it, expecting status.
func (e *bedHTTPEnv) acceptGreen(t *testing.T, status int) (referral.Referral, regTestResponse) {
	t.Helper()
	in := e.input()
	in["priority"], in["green_channel"], in["green_category"], in["transfer_risk"] = "emergency", true, "chest_pain", 1
	in["transport"] = map[string]string{"mode": "ambulance", "escort": "doctor"}
	in["receiving_department_id"] = e.cardio
	res := e.do(e.doctor, http.MethodPost, "/api/v1/referrals", in)
	if res.code != http.StatusCreated {
		t.Fatalf("create: %d %s", res.code, res.body)
	}
	var r referral.Referral
	res.json(t, &r)
	r = e.act(t, e.doctor, r, "submit", nil, http.StatusOK)
	r = e.act(t, e.desk, r, "claim", nil, http.StatusOK)
	res = e.do(e.desk, http.MethodPost, "/api/v1/referrals/"+r.ID+"/actions/accept", map[string]any{}, "If-Match", refHTTPIfMatch(r.Version))
	if res.code != status {
		t.Fatalf("accept: got %d, want %d: %s", res.code, status, res.body)
	}
	return r, res
}

func TestBedPoolHTTPCreateResizeAndAcceptance(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newBedHTTPEnv(t, db)
		path := env.poolPath(env.tert.ID, env.cardio)

		// No pool yet: nothing reserved, nothing to match.
		p, res := env.pool(t, env.desk)
		if p.Configured() || p.Size != 0 || res.hdr.Get("ETag") != "" {
			t.Fatalf("pool before creation: %+v ETag %q", p, res.hdr.Get("ETag"))
		}
		if res := env.do(env.supervisor, http.MethodPut, path, map[string]any{"size": 1}); res.code != http.StatusPreconditionRequired {
			t.Fatalf("PUT without a precondition: %d %s", res.code, res.body)
		}
		res = env.do(env.supervisor, http.MethodPut, path, map[string]any{"size": 1}, "If-None-Match", "*")
		if res.code != http.StatusCreated || res.hdr.Get("ETag") != `"1"` {
			t.Fatalf("create: %d ETag %q %s", res.code, res.hdr.Get("ETag"), res.body)
		}
		if res := env.do(env.supervisor, http.MethodPut, path, map[string]any{"size": 2}, "If-None-Match", "*"); res.code != http.StatusPreconditionFailed {
			t.Fatalf("creating it again: %d %s", res.code, res.body)
		}

		// One bed: the first green ticket gets it, the second is told the pool is full.
		first, _ := env.acceptGreen(t, http.StatusOK)
		_, res = env.acceptGreen(t, http.StatusConflict)
		var prob Problem
		res.json(t, &prob)
		if !strings.Contains(prob.Detail, "is full (1 of 1 beds in use)") {
			t.Errorf("full pool problem: %+v", prob)
		}
		p, res = env.pool(t, env.desk)
		if p.Size != 1 || p.InUse != 1 || p.Free != 0 || len(p.Reservations) != 1 || p.Reservations[0].Number != first.Number ||
			res.hdr.Get("ETag") != `"1"` {
			t.Fatalf("pool with one bed held: %+v ETag %q", p, res.hdr.Get("ETag"))
		}

		if res := env.do(env.supervisor, http.MethodPut, path, map[string]any{"size": 0}, "If-Match", `"1"`); res.code != http.StatusBadRequest ||
			!slices.Equal(res.problemFields(t), []string{"size"}) {
			t.Fatalf("below the beds in use: %d %s", res.code, res.body)
		}
		if res := env.do(env.supervisor, http.MethodPut, path, map[string]any{"size": 3}, "If-Match", `"4"`); res.code != http.StatusPreconditionFailed {
			t.Fatalf("an old version: %d %s", res.code, res.body)
		}
		res = env.do(env.supervisor, http.MethodPut, path, map[string]any{"size": 3}, "If-Match", `"1"`)
		if res.code != http.StatusOK || res.hdr.Get("ETag") != `"2"` {
			t.Fatalf("resize: %d ETag %q %s", res.code, res.hdr.Get("ETag"), res.body)
		}
		res.json(t, &p)
		if p.Size != 3 || p.InUse != 1 || p.Free != 2 {
			t.Fatalf("after resizing: %+v", p)
		}
		env.acceptGreen(t, http.StatusOK)
	})
}

func TestBedPoolHTTPRefusesBadInputByField(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newBedHTTPEnv(t, db)
		path := env.poolPath(env.tert.ID, env.cardio)
		if res := env.do(env.supervisor, http.MethodPut, path, map[string]any{"size": 2}, "If-None-Match", "*"); res.code != http.StatusCreated {
			t.Fatalf("create: %d %s", res.code, res.body)
		}
		tests := []struct {
			name  string
			body  any
			hdr   []string
			field string
		}{
			{"no size", map[string]any{}, nil, "size"},
			{"a negative size", map[string]any{"size": -1}, nil, "size"},
			{"a size above 1000", map[string]any{"size": 1001}, nil, "size"},
			{"a size as text", json.RawMessage(`{"size": "3"}`), nil, "size"},
			{"a fractional size", json.RawMessage(`{"size": 2.5}`), nil, "size"},
			{"a null size", json.RawMessage(`{"size": null}`), nil, "size"},
			{"an unknown field", map[string]any{"size": 2, "in_use": 0}, nil, "in_use"},
			{"not JSON", "size=2", nil, "body"},
			{"a malformed If-Match", map[string]any{"size": 2}, []string{"If-Match", "v1"}, "If-Match"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				hdr := tc.hdr
				if hdr == nil {
					hdr = []string{"If-Match", `"1"`}
				}
				res := env.do(env.supervisor, http.MethodPut, path, tc.body, hdr...)
				if res.code != http.StatusBadRequest || !slices.Equal(res.problemFields(t), []string{tc.field}) {
					t.Fatalf("got %d %s, want 400 naming %s", res.code, res.body, tc.field)
				}
			})
		}
		if p, _ := env.pool(t, env.desk); p.Size != 2 || p.Version != 1 {
			t.Fatalf("refused input changed the pool: %+v", p)
		}
	})
}

func TestBedPoolHTTPWhoSeesAndSizes(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newBedHTTPEnv(t, db)
		path := env.poolPath(env.tert.ID, env.cardio)
		if res := env.do(env.supervisor, http.MethodPut, path, map[string]any{"size": 2}, "If-None-Match", "*"); res.code != http.StatusCreated {
			t.Fatalf("create: %d %s", res.code, res.body)
		}
		env.acceptGreen(t, http.StatusOK)
		reads := []struct {
			name  string
			token string
			path  string
			code  int
			full  bool
		}{
			{"the desk sees the tickets holding beds", env.desk, path, http.StatusOK, true},
			{"the partner county's desk sees counts only", env.countyDesk, path, http.StatusOK, false},
			{"the county's program office sees counts only", env.office, path, http.StatusOK, false},
			{"the partner county's doctor does not see it", env.doctor, path, http.StatusNotFound, false},
			{"an unrelated desk does not see it", env.outsider, path, http.StatusNotFound, false},
			{"an auditor is refused", env.auditor, path, http.StatusForbidden, false},
			{"a department of another hospital is not found", env.desk, env.poolPath(env.tert.ID, env.countyDept), http.StatusNotFound, false},
			{"an unknown department is not found", env.desk, env.poolPath(env.tert.ID, "0190a0b0-0000-7000-8000-000000000009"), http.StatusNotFound, false},
		}
		for _, tc := range reads {
			t.Run(tc.name, func(t *testing.T) {
				res := env.do(tc.token, http.MethodGet, tc.path, nil)
				if res.code != tc.code {
					t.Fatalf("got %d, want %d: %s", res.code, tc.code, res.body)
				}
				if res.code != http.StatusOK {
					return
				}
				var raw map[string]json.RawMessage
				res.json(t, &raw)
				if shown := string(raw["reservations"]) != "null"; shown != tc.full || string(raw["in_use"]) != "1" || string(raw["free"]) != "1" {
					t.Fatalf("body %s: reservations shown %v, want %v", res.body, shown, tc.full)
				}
			})
		}
		writes := []struct {
			name  string
			token string
			code  int
		}{
			{"a desk member without the supervisor flag is refused", env.desk, http.StatusForbidden},
			{"a doctor is refused by the gate", env.doctor, http.StatusForbidden},
			{"the partner county's desk is refused", env.countyDesk, http.StatusForbidden},
			{"an unrelated desk is refused", env.outsider, http.StatusForbidden},
		}
		for _, tc := range writes {
			t.Run(tc.name, func(t *testing.T) {
				if res := env.do(tc.token, http.MethodPut, path, map[string]any{"size": 5}, "If-Match", `"1"`); res.code != tc.code {
					t.Fatalf("got %d, want %d: %s", res.code, tc.code, res.body)
				}
			})
		}
		// The county's program office reaches its partner and may size its pools.
		if res := env.do(env.office, http.MethodPut, path, map[string]any{"size": 4}, "If-Match", `"1"`); res.code != http.StatusOK {
			t.Fatalf("program office resizing: %d %s", res.code, res.body)
		}
	})
}
