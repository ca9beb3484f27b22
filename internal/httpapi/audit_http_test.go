package httpapi

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"

	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
)

// auditHTTPAuth maps bearer tokens to principals: the token is the role
// name, and "auditor" is the one caller allowed into the audit log. Only
// the session methods are implemented; the audit routes call nothing else.
type auditHTTPAuth struct{ AuthService }

func (auditHTTPAuth) Authenticate(_ context.Context, token string) (auth.Principal, error) {
	role := auth.Role(token)
	if !role.Valid() {
		return auth.Principal{}, apperr.ErrUnauthenticated
	}
	return auth.Principal{UserID: "user-" + token, Username: token, HospitalID: "hosp-1",
		Roles: []auth.Role{role}, SessionID: "session-" + token}, nil
}

func (auditHTTPAuth) CSRFToken(string) string { return "csrf" }

type auditHTTPFixture struct {
	db      sqldb.DB
	log     *audit.Log
	handler http.Handler
}

func newAuditHTTPFixture(db sqldb.DB) auditHTTPFixture {
	l := audit.NewLog(store.NewAuditLog(db), nil)
	api := New(Config{}, Deps{Log: slog.New(slog.DiscardHandler), Auth: auditHTTPAuth{}, Audit: l, AuditLog: l})
	return auditHTTPFixture{db: db, log: l, handler: api.Handler()}
}

func (fx auditHTTPFixture) get(t *testing.T, token, target string, into any) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	fx.handler.ServeHTTP(rec, req)
	if into != nil && rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), into); err != nil {
			t.Fatalf("GET %s: %v in %s", target, err, rec.Body)
		}
	}
	return rec
}

func (fx auditHTTPFixture) record(t *testing.T, entries ...audit.Entry) {
	t.Helper()
	for _, e := range entries {
		if err := fx.log.Record(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

func (fx auditHTTPFixture) search(t *testing.T, f audit.Filter) []audit.Entry {
	t.Helper()
	got, err := fx.log.Search(context.Background(), f, audit.Page{Limit: audit.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestAuditHTTPOnlyAuditorsReachTheLog(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		fx := newAuditHTTPFixture(db)
		for _, path := range []string{"/api/v1/audit-events", "/api/v1/audit-events/verify"} {
			if rec := fx.get(t, "", path, nil); rec.Code != http.StatusUnauthorized {
				t.Errorf("anonymous GET %s: %d, want 401", path, rec.Code)
			}
			for _, role := range auth.Roles {
				want := http.StatusForbidden
				if role == auth.Auditor {
					want = http.StatusOK
				}
				if rec := fx.get(t, string(role), path, nil); rec.Code != want {
					t.Errorf("%s GET %s: %d, want %d: %s", role, path, rec.Code, want, rec.Body)
				}
			}
		}
		// Each refusal is itself in the log.
		denied := fx.search(t, audit.Filter{Action: audit.AccessDenied, ActorID: "user-admin"})
		if len(denied) != 2 || denied[0].Outcome != audit.Denied || denied[0].ResourceID != "GET /api/v1/audit-events/verify" {
			t.Fatalf("admin's refusals recorded as %+v", denied)
		}
	})
}

func TestAuditHTTPSearch(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		fx := newAuditHTTPFixture(db)
		for i := range 5 {
			fx.record(t, audit.Entry{ActorID: "doctor-1", ActorHospitalID: "hosp-2", Action: "patient.read",
				ResourceType: "patient", ResourceID: "p-1", PatientID: "p-1", Outcome: audit.Success, Detail: fmt.Sprint(i)})
		}
		fx.record(t, audit.Entry{ActorID: "doctor-2", Action: "patient.read", PatientID: "p-2", Outcome: audit.Denied})

		var list List[auditEvent]
		if rec := fx.get(t, "auditor", "/api/v1/audit-events?patient_id=p-1&outcome=success&limit=2", &list); rec.Code != http.StatusOK {
			t.Fatalf("search: %d %s", rec.Code, rec.Body)
		}
		var details []string
		for pages := 1; ; pages++ {
			for _, e := range list.Items {
				if e.PatientID != "p-1" || e.ActorHospitalID != "hosp-2" || len(e.Hash) != 2*audit.HashSize || e.At.IsZero() {
					t.Fatalf("item %+v", e)
				}
				if _, err := hex.DecodeString(e.PrevHash); err != nil {
					t.Fatalf("prev_hash %q is not hex", e.PrevHash)
				}
				details = append(details, e.Detail)
			}
			if list.NextCursor == "" {
				break
			}
			if pages > 3 {
				t.Fatal("pages do not end")
			}
			cursor := list.NextCursor
			list = List[auditEvent]{}
			fx.get(t, "auditor", "/api/v1/audit-events?patient_id=p-1&outcome=success&limit=2&cursor="+url.QueryEscape(cursor), &list)
		}
		if !slices.Equal(details, []string{"4", "3", "2", "1", "0"}) {
			t.Fatalf("pages gave details %v, want 4..0 newest first", details)
		}

		// Every search is on record: who searched, for which patient.
		searches := fx.search(t, audit.Filter{Action: audit.SearchLog})
		if len(searches) != 3 {
			t.Fatalf("%d searches recorded, want 3", len(searches))
		}
		s := searches[2]
		if s.ActorID != "user-auditor" || s.ActorHospitalID != "hosp-1" || s.PatientID != "p-1" || s.Outcome != audit.Success ||
			s.ResourceType != "audit_log" || s.Detail != `{"outcome":"success","patient_id":"p-1"}` || s.RequestID == "" {
			t.Fatalf("first search recorded as %+v", s)
		}
	})
}

func TestAuditHTTPSearchRefusesBadParameters(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		fx := newAuditHTTPFixture(db)
		cases := []struct {
			query string
			want  []string // fields named in the problem
		}{
			{"from=yesterday", []string{"from"}},
			{"to=2025-13-01T00:00:00Z", []string{"to"}},
			{"from=2025-03-02T00:00:00Z&to=2025-03-01T00:00:00Z", []string{"to"}},
			{"outcome=maybe", []string{"outcome"}},
			{"limit=0", []string{"limit"}},
			{"limit=201", []string{"limit"}},
			{"cursor=not-base64!", []string{"cursor"}},
			{"cursor=" + "LTU", []string{"cursor"}}, // "-5"
			{"patientid=p-1", []string{"patientid"}},
			{"action=a&action=b", []string{"action"}},
			{"from=soon&outcome=maybe", []string{"from", "outcome"}},
		}
		for _, tc := range cases {
			rec := fx.get(t, "auditor", "/api/v1/audit-events?"+tc.query, nil)
			var p Problem
			json.Unmarshal(rec.Body.Bytes(), &p)
			var fields []string
			for _, e := range p.Errors {
				fields = append(fields, e.Field)
			}
			if rec.Code != http.StatusBadRequest || !slices.Equal(fields, tc.want) {
				t.Errorf("?%s: %d fields %v, want 400 naming %v", tc.query, rec.Code, fields, tc.want)
			}
		}
		// A refused search changes nothing, and so records nothing.
		if got := fx.search(t, audit.Filter{Action: audit.SearchLog}); len(got) != 0 {
			t.Fatalf("refused searches recorded: %+v", got)
		}
	})
}

func TestAuditHTTPVerify(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		fx := newAuditHTTPFixture(db)
		for i := range 20 {
			fx.record(t, audit.Entry{Action: "patient.read", Outcome: audit.Success, PatientID: fmt.Sprint("p-", i)})
		}
		var rep audit.Report
		if rec := fx.get(t, "auditor", "/api/v1/audit-events/verify", &rep); rec.Code != http.StatusOK || !rep.OK || rep.RowsChecked != 20 || rep.Breaks == nil {
			t.Fatalf("verify: %d %+v", rec.Code, rep)
		}

		target := fx.search(t, audit.Filter{PatientID: "p-7"})[0]
		auditHTTPTamper(t, db, `UPDATE audit_log SET patient_id = 'p-8' WHERE seq = $1`, target.Seq)
		rep = audit.Report{}
		if rec := fx.get(t, "auditor", "/api/v1/audit-events/verify", &rep); rec.Code != http.StatusOK {
			t.Fatalf("verify of a broken log: %d, want 200 with the report", rec.Code)
		}
		want := audit.Break{Chain: target.Chain, ChainSeq: target.ChainSeq, Seq: target.Seq,
			Reason: "hash does not match the row's content: the row was altered"}
		if rep.OK || len(rep.Breaks) != 1 || rep.Breaks[0] != want {
			t.Fatalf("report %+v, want the break %+v", rep, want)
		}
		verifications := fx.search(t, audit.Filter{Action: audit.VerifyLog})
		if len(verifications) != 2 || verifications[0].ActorID != "user-auditor" || verifications[0].Detail != "ok=false rows_checked=21 chains=16 breaks=1" {
			t.Fatalf("verifications recorded as %+v", verifications)
		}
	})
}

// auditHTTPTamper changes audit rows as someone with database access could,
// with the append-only triggers out of the way.
func auditHTTPTamper(t *testing.T, db sqldb.DB, stmt string, args ...any) {
	t.Helper()
	ctx := context.Background()
	err := db.InTx(ctx, func(ctx context.Context) error {
		pre, post := `DROP TRIGGER audit_log_no_update`, ``
		if db.Dialect() == sqldb.Postgres {
			pre, post = `ALTER TABLE audit_log DISABLE TRIGGER USER`, `ALTER TABLE audit_log ENABLE TRIGGER USER`
		}
		for _, s := range []string{pre, stmt, post} {
			if s == "" {
				continue
			}
			a := args
			if s != stmt {
				a = nil
			}
			if _, err := db.Exec(ctx, s, a...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
