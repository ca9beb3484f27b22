package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/patient"
	"duikou/internal/referrals"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/referral"
)

// refHTTPEnv is the register's test world (a county hospital paired with a
// tertiary one, and an unrelated county) with the real referral service,
// idempotent POSTs, a county doctor, the tertiary referral desk, a desk
// member of the unrelated county, and a county patient who consented to be
// referred.
type refHTTPEnv struct {
	*regTestEnv
	doctor, desk, outsider, office string
	patient                        string
}

// more adds to the wiring (attachments, a rate limiter).
func newRefHTTPEnv(t *testing.T, db sqldb.DB, more ...func(d *Deps, rec audit.Recorder)) *refHTTPEnv {
	t.Helper()
	env := &refHTTPEnv{}
	patients := store.NewPatients(db)
	env.regTestEnv = newRegTestEnv(t, db, func(d *Deps, rec audit.Recorder) {
		routes := referrals.NewDirectoryRoutes(store.NewDirectory(db), nil)
		svc := referrals.NewService(db, store.NewReferrals(db), rec, routes, nil, referral.DefaultDeadlines())
		d.Referrals = svc
		d.BedPools = referrals.NewBeds(svc, store.NewReferrals(db), store.NewDirectory(db))
		d.Idempotency = store.NewIdempotencyKeys(db, 0)
		d.Tx = db
		for _, f := range more {
			f(d, rec)
		}
	})
	env.doctor = env.user("ref.doctor", env.county, auth.CountyDoctor)
	env.desk = env.user("ref.desk", env.tert, auth.ReferralDesk)
	env.outsider = env.user("ref.outsider", env.foreign, auth.ReferralDesk, auth.CountyDoctor)
	env.office = env.user("ref.office", env.county, auth.ProgramOffice)

	ctx := context.Background()
	now := sqldb.Now()
	doctor := env.users[env.doctor]
	pt := patient.Patient{ID: uuid.Must(uuid.NewV7()).String(), Name: "王秀英", Sex: patient.Female, BirthDate: "1958-03-02",
		HomeHospitalID: env.county.ID, CreatedBy: doctor.UserID, Version: 1, CreatedAt: now, UpdatedAt: now}
	if err := patients.CreatePatient(ctx, pt); err != nil {
		t.Fatal(err)
	}
	if err := patients.CreateConsent(ctx, patient.Consent{ID: uuid.Must(uuid.NewV7()).String(), PatientID: pt.ID,
		ConsenterKind: patient.ByPatient, ConsenterName: "王秀英", Purpose: patient.ForReferral, GrantedAt: now.Add(-time.Hour),
		RecordedBy: doctor.UserID, RecordedAt: now, Active: true}); err != nil {
		t.Fatal(err)
	}
	env.patient = pt.ID
	return env
}

// input is a complete urgent up-referral of the patient to the tertiary
// hospital, as a JSON body.
func (e *refHTTPEnv) input() map[string]any {
	now := time.Now().UTC()
	return map[string]any{
		"direction": "up", "priority": "urgent", "transfer_risk": 2, "patient_id": e.patient,
		"referring_department_id": uuid.Must(uuid.NewV7()).String(), "referring_doctor_id": e.users[e.doctor].UserID,
		"receiving_hospital_id": e.tert.ID, "receiving_department_id": uuid.Must(uuid.NewV7()).String(),
		"diagnoses": []map[string]string{{"code": "I20.0", "text": "不稳定型心绞痛"}},
		"reason":    "需冠脉造影评估", "clinical_summary": "反复胸闷1周", "treatment_given": "阿司匹林、他汀",
		"transport":        map[string]string{"mode": "hospital_vehicle", "escort": "nurse"},
		"requested_window": map[string]any{"from": now, "to": now.Add(48 * time.Hour)},
		"consent_id":       uuid.Must(uuid.NewV7()).String(),
	}
}

func refHTTPIfMatch(version int) string { return `"` + strconv.Itoa(version) + `"` }

// create writes a draft as the county doctor.
func (e *refHTTPEnv) create(t *testing.T) referral.Referral {
	t.Helper()
	res := e.do(e.doctor, http.MethodPost, "/api/v1/referrals", e.input())
	if res.code != http.StatusCreated {
		t.Fatalf("create: %d %s", res.code, res.body)
	}
	var r referral.Referral
	res.json(t, &r)
	return r
}

// act takes an action and expects status; it returns the ticket answered.
func (e *refHTTPEnv) act(t *testing.T, token string, r referral.Referral, a string, body any, status int) referral.Referral {
	t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	res := e.do(token, http.MethodPost, "/api/v1/referrals/"+r.ID+"/actions/"+a, body, "If-Match", refHTTPIfMatch(r.Version))
	if res.code != status {
		t.Fatalf("%s: got %d, want %d: %s", a, res.code, status, res.body)
	}
	var out referral.Referral
	if status == http.StatusOK {
		res.json(t, &out)
		if got := res.hdr.Get("ETag"); got != refHTTPIfMatch(out.Version) {
			t.Errorf("%s: ETag %s, want version %d", a, got, out.Version)
		}
	}
	return out
}

func TestReferralsHTTPLifecycleUpToAcceptance(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newRefHTTPEnv(t, db)
		draft := env.create(t)
		if draft.Status != referral.Draft || draft.ReferringHospitalID != env.county.ID || draft.Version != 1 {
			t.Fatalf("draft %+v", draft)
		}
		// The receiving desk does not see a draft; the referrer reads it with its ETag.
		if res := env.do(env.desk, http.MethodGet, "/api/v1/referrals/"+draft.ID, nil); res.code != http.StatusNotFound {
			t.Errorf("desk reads a draft: %d", res.code)
		}
		res := env.do(env.doctor, http.MethodGet, "/api/v1/referrals/"+draft.ID, nil)
		if res.code != http.StatusOK || res.hdr.Get("ETag") != `"1"` {
			t.Fatalf("read draft: %d ETag %s", res.code, res.hdr.Get("ETag"))
		}

		sub := env.act(t, env.doctor, draft, "submit", nil, http.StatusOK)
		if sub.Status != referral.Submitted || sub.Number == "" {
			t.Fatalf("submitted %+v", sub)
		}
		claimed := env.act(t, env.desk, sub, "claim", nil, http.StatusOK)
		if claimed.Status != referral.Claimed || claimed.ClaimedBy != env.users[env.desk].UserID {
			t.Fatalf("claimed %+v", claimed)
		}
		accepted := env.act(t, env.desk, claimed, "accept", map[string]string{"reason": "收入心内科"}, http.StatusOK)
		if accepted.Status != referral.Accepted || !accepted.FeeWaived || accepted.ExamSlipNumber == "" {
			t.Fatalf("accepted %+v", accepted)
		}

		res = env.do(env.doctor, http.MethodGet, "/api/v1/referrals/"+draft.ID+"/events", nil)
		if res.code != http.StatusOK {
			t.Fatalf("events: %d %s", res.code, res.body)
		}
		var evs List[referral.Event]
		res.json(t, &evs)
		var steps []string
		for _, e := range evs.Items {
			steps = append(steps, string(e.From)+"→"+string(e.To))
		}
		if want := []string{"draft→submitted", "submitted→claimed", "claimed→accepted"}; !slices.Equal(steps, want) {
			t.Errorf("events %v, want %v", steps, want)
		}

		// Both hospitals find it in their lists; the unrelated one does not.
		for token, want := range map[string]int{env.doctor: 1, env.desk: 1, env.outsider: 0} {
			res := env.do(token, http.MethodGet, "/api/v1/referrals?status=accepted&direction=up", nil)
			var l List[referral.Referral]
			res.json(t, &l)
			if res.code != http.StatusOK || len(l.Items) != want {
				t.Errorf("list as %s: %d, %d items, want %d", env.users[token].Username, res.code, len(l.Items), want)
			}
		}
	})
}

func TestReferralsHTTPActionsNeedTheCurrentVersion(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newRefHTTPEnv(t, db)
		draft := env.create(t)
		path := "/api/v1/referrals/" + draft.ID + "/actions/submit"

		if res := env.do(env.doctor, http.MethodPost, path, map[string]any{}); res.code != http.StatusPreconditionRequired {
			t.Errorf("without If-Match: %d %s", res.code, res.body)
		}
		sub := env.act(t, env.doctor, draft, "submit", nil, http.StatusOK)
		// The desk claims at the version it never saw: stale.
		env.act(t, env.desk, draft, "claim", nil, http.StatusPreconditionFailed)
		// Nothing changed: the ticket still waits, at the submitted version.
		res := env.do(env.doctor, http.MethodGet, "/api/v1/referrals/"+draft.ID, nil)
		var now referral.Referral
		res.json(t, &now)
		if now.Status != referral.Submitted || now.Version != sub.Version {
			t.Errorf("after a stale claim: %s v%d, want submitted v%d", now.Status, now.Version, sub.Version)
		}

		if res := env.do(env.doctor, http.MethodPost, "/api/v1/referrals/"+draft.ID+"/actions/approve", map[string]any{},
			"If-Match", refHTTPIfMatch(sub.Version)); res.code != http.StatusNotFound {
			t.Errorf("unknown action: %d %s", res.code, res.body)
		}
	})
}

func TestReferralsHTTPNonPartiesFindNothing(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newRefHTTPEnv(t, db)
		sub := env.act(t, env.doctor, env.create(t), "submit", nil, http.StatusOK)
		for _, tc := range []struct{ method, path string }{
			{http.MethodGet, "/api/v1/referrals/" + sub.ID},
			{http.MethodGet, "/api/v1/referrals/" + sub.ID + "/events"},
		} {
			if res := env.do(env.outsider, tc.method, tc.path, nil); res.code != http.StatusNotFound {
				t.Errorf("%s %s as outsider: %d", tc.method, tc.path, res.code)
			}
		}
		env.act(t, env.outsider, sub, "claim", nil, http.StatusNotFound)
		var denied int
		for _, a := range env.auditActions(0) {
			if a == audit.AccessDenied+" "+sub.ID+" "+env.patient+" denied" {
				denied++
			}
		}
		if denied != 3 {
			t.Errorf("%d denied reads audited, want 3: %v", denied, env.auditActions(0))
		}
		// The program office never reaches clinical tickets, whatever the hospital.
		if res := env.do(env.office, http.MethodGet, "/api/v1/referrals/"+sub.ID, nil); res.code != http.StatusForbidden {
			t.Errorf("program office: %d", res.code)
		}
	})
}

func TestReferralsHTTPRefusesBadInput(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newRefHTTPEnv(t, db)
		unknown := env.input()
		unknown["referring_hospital_id"] = env.tert.ID
		before := env.count("referrals")
		res := env.do(env.doctor, http.MethodPost, "/api/v1/referrals", unknown)
		if fields := res.problemFields(t); res.code != http.StatusBadRequest || !slices.Equal(fields, []string{"referring_hospital_id"}) {
			t.Errorf("unknown field: %d fields %v", res.code, fields)
		}
		if env.count("referrals") != before {
			t.Error("a refused create wrote a ticket")
		}

		for _, tc := range []struct {
			query  url.Values
			fields []string
		}{
			{url.Values{"direction": {"sideways"}}, []string{"direction"}},
			{url.Values{"status": {"lost"}, "priority": {"whenever"}}, []string{"priority", "status"}},
			{url.Values{"green_channel": {"yes"}}, []string{"green_channel"}},
			{url.Values{"patient_id": {"42"}, "department_id": {"x"}}, []string{"department_id", "patient_id"}},
			{url.Values{"from": {"yesterday"}}, []string{"from"}},
			{url.Values{"from": {"2026-11-22T00:00:00Z"}, "to": {"2026-11-21T00:00:00Z"}}, []string{"to"}},
			{url.Values{"limit": {"0"}}, []string{"limit"}},
		} {
			res := env.do(env.doctor, http.MethodGet, "/api/v1/referrals?"+tc.query.Encode(), nil)
			fields := res.problemFields(t)
			slices.Sort(fields)
			if res.code != http.StatusBadRequest || !slices.Equal(fields, tc.fields) {
				t.Errorf("list %s: %d fields %v, want 400 %v", tc.query.Encode(), res.code, fields, tc.fields)
			}
		}
	})
}

func TestReferralsHTTPListPagesWithACursor(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newRefHTTPEnv(t, db)
		var made []string
		for range 3 {
			made = append(made, env.create(t).ID)
		}
		var seen []string
		path := "/api/v1/referrals?limit=2"
		for range 3 {
			res := env.do(env.doctor, http.MethodGet, path, nil)
			var l List[referral.Referral]
			res.json(t, &l)
			for _, r := range l.Items {
				seen = append(seen, r.ID)
			}
			if l.NextCursor == "" {
				break
			}
			path = "/api/v1/referrals?limit=2&cursor=" + l.NextCursor
		}
		if !slices.Equal(seen, made) {
			t.Errorf("paged %v, want %v", seen, made)
		}
	})
}

func TestReferralsHTTPRetriedCreateAnswersTheSameTicket(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newRefHTTPEnv(t, db)
		body := env.input()
		first := env.do(env.doctor, http.MethodPost, "/api/v1/referrals", body, IdempotencyHeader, "ref-key-1")
		again := env.do(env.doctor, http.MethodPost, "/api/v1/referrals", body, IdempotencyHeader, "ref-key-1")
		if first.code != http.StatusCreated || again.code != http.StatusCreated {
			t.Fatalf("first %d, retry %d: %s", first.code, again.code, again.body)
		}
		var a, b referral.Referral
		first.json(t, &a)
		again.json(t, &b)
		if a.ID != b.ID || env.count("referrals") != 1 {
			t.Errorf("retry made ticket %s after %s; %d tickets stored", b.ID, a.ID, env.count("referrals"))
		}
		other := env.input()
		other["reason"] = "另一个理由"
		if res := env.do(env.doctor, http.MethodPost, "/api/v1/referrals", other, IdempotencyHeader, "ref-key-1"); res.code != http.StatusUnprocessableEntity {
			t.Errorf("same key, other body: %d", res.code)
		}
	})
}

func TestReferralsHTTPEscalationsShowOnTheTicket(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newRefHTTPEnv(t, db)
		sub := env.act(t, env.doctor, env.create(t), "submit", nil, http.StatusOK)
		path := "/api/v1/referrals/" + sub.ID + "/escalations"
		list := func(token string) []referral.Escalation {
			t.Helper()
			res := env.do(token, http.MethodGet, path, nil)
			if res.code != http.StatusOK {
				t.Fatalf("escalations: %d %s", res.code, res.body)
			}
			var l List[referral.Escalation]
			res.json(t, &l)
			if l.Items == nil {
				t.Fatal("no items array")
			}
			return l.Items
		}
		if got := list(env.desk); len(got) != 0 {
			t.Fatalf("before any deadline: %+v", got)
		}
		// The urgent ticket waits unclaimed past its hour (the watcher's
		// tick needs no lease).
		at := sub.ClaimBy.Add(time.Second)
		watcher := referrals.NewWatcher(db, store.NewReferrals(db), audit.NewLog(store.NewAuditLog(db), nil), nil,
			referral.DefaultDeadlines(), referrals.WatcherOptions{Now: func() time.Time { return at }})
		if n, err := watcher.Tick(context.Background()); err != nil || n != 1 {
			t.Fatalf("tick: %d %v", n, err)
		}
		for _, token := range []string{env.doctor, env.desk} {
			got := list(token)
			if len(got) != 1 || got[0].Kind != referral.ClaimBreach || !got[0].Due.Equal(*sub.ClaimBy) ||
				got[0].Status != referral.Submitted || !got[0].RaisedAt.Equal(at) || got[0].ReferralID != sub.ID {
				t.Errorf("as %s: %+v", env.users[token].Username, got)
			}
		}
		if res := env.do(env.outsider, http.MethodGet, path, nil); res.code != http.StatusNotFound {
			t.Errorf("outsider: %d", res.code)
		}
		// The ticket itself is unchanged and carries its deadlines.
		res := env.do(env.doctor, http.MethodGet, "/api/v1/referrals/"+sub.ID, nil)
		var now referral.Referral
		res.json(t, &now)
		if now.Status != referral.Submitted || now.Version != sub.Version || now.ClaimBy == nil || !now.ClaimBy.Equal(*sub.ClaimBy) {
			t.Errorf("after the escalation: %s v%d claim by %v", now.Status, now.Version, now.ClaimBy)
		}
	})
}
