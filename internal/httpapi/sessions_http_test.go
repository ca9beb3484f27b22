package httpapi

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"duikou/consult"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/consults"
	"duikou/internal/directory"
	"duikou/internal/patient"
	"duikou/internal/referrals"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/referral"
)

// sesHTTPEnv is the register's test world with the real remote-session
// service: a county doctor, a tertiary specialist of cardiology (on the
// roster there) who accepts and answers, a doctor of the unrelated county,
// and county patients with and without the consents a session needs.
type sesHTTPEnv struct {
	*regTestEnv
	doctor, specialist, outsider string
	cardio                       string
	patient, unconsented         string
}

func newSesHTTPEnv(t *testing.T, db sqldb.DB) *sesHTTPEnv {
	t.Helper()
	env := &sesHTTPEnv{}
	patients := store.NewPatients(db)
	env.regTestEnv = newRegTestEnv(t, db, func(d *Deps, rec audit.Recorder) {
		reg := patient.NewService(db, patients, nil, rec)
		dir := store.NewDirectory(db)
		refs := referrals.NewService(db, store.NewReferrals(db), rec, referrals.NewDirectoryRoutes(dir, nil), nil, referral.DefaultDeadlines())
		d.Sessions = consults.NewService(db, store.NewConsults(db), rec, reg, directory.NewService(db, dir, rec), refs, consult.Deadlines{}, nil)
		d.Idempotency = store.NewIdempotencyKeys(db, 0)
		d.Tx = db
	})
	ctx := context.Background()
	now := sqldb.Now()
	cardio := directory.Department{ID: uuid.Must(uuid.NewV7()).String(), HospitalID: env.tert.ID, Code: "03.04", Name: "心血管内科",
		Version: 1, CreatedAt: now, UpdatedAt: now}
	if err := store.NewDirectory(db).CreateDepartment(ctx, cardio); err != nil {
		t.Fatal(err)
	}
	env.cardio = cardio.ID
	env.doctor = env.user("ses.doctor", env.county, auth.CountyDoctor)
	env.specialist = env.user("ses.specialist", env.tert, auth.Specialist)
	env.outsider = env.user("ses.outsider", env.foreign, auth.CountyDoctor, auth.Specialist)
	// The assignment check reads roles from the user's account.
	if _, err := db.Exec(ctx, `INSERT INTO user_roles (user_id, role) VALUES ($1, 'specialist')`, env.users[env.specialist].UserID); err != nil {
		t.Fatal(err)
	}
	doctor := env.users[env.doctor]
	addPatient := func(consented bool) string {
		pt := patient.Patient{ID: uuid.Must(uuid.NewV7()).String(), Name: "王秀英", Sex: patient.Female, BirthDate: "1958-03-02",
			HomeHospitalID: env.county.ID, CreatedBy: doctor.UserID, Version: 1, CreatedAt: now, UpdatedAt: now}
		if err := patients.CreatePatient(ctx, pt); err != nil {
			t.Fatal(err)
		}
		for _, purpose := range []patient.Purpose{patient.ForRemoteConsultation, patient.ForDataSharing} {
			if !consented {
				break
			}
			c := patient.Consent{ID: uuid.Must(uuid.NewV7()).String(), PatientID: pt.ID, ConsenterKind: patient.ByPatient,
				ConsenterName: "王秀英", Purpose: purpose, GrantedAt: now.Add(-time.Hour), RecordedBy: doctor.UserID, RecordedAt: now, Active: true}
			if purpose == patient.ForDataSharing {
				c.SharedWithHospitalID = &env.tert.ID
			}
			if err := patients.CreateConsent(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		return pt.ID
	}
	env.patient, env.unconsented = addPatient(true), addPatient(false)
	return env
}

// input is an urgent consult of patientID with the tertiary cardiology, as
// a JSON body.
func (e *sesHTTPEnv) input(patientID string) map[string]any {
	return map[string]any{
		"kind": "consult", "urgency": "urgent", "target_hospital_id": e.tert.ID, "target_department_ids": []string{e.cardio},
		"question": "胸痛待查，是否需要冠脉造影？", "clinical_summary": "男，62岁，反复胸闷1周", "patient_id": patientID,
	}
}

func (e *sesHTTPEnv) create(t *testing.T, patientID string) consult.Session {
	t.Helper()
	res := e.do(e.doctor, http.MethodPost, "/api/v1/sessions", e.input(patientID))
	if res.code != http.StatusCreated {
		t.Fatalf("create: %d %s", res.code, res.body)
	}
	var s consult.Session
	res.json(t, &s)
	return s
}

// act takes an action and expects status; it returns the session answered.
func (e *sesHTTPEnv) act(t *testing.T, token string, s consult.Session, a string, body any, status int) consult.Session {
	t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	res := e.do(token, http.MethodPost, "/api/v1/sessions/"+s.ID+"/actions/"+a, body, "If-Match", refHTTPIfMatch(s.Version))
	if res.code != status {
		t.Fatalf("%s: got %d, want %d: %s", a, res.code, status, res.body)
	}
	out := s
	if status == http.StatusOK {
		res.json(t, &out)
		if got := res.hdr.Get("ETag"); got != refHTTPIfMatch(out.Version) {
			t.Errorf("%s: ETag %s, want version %d", a, got, out.Version)
		}
	}
	return out
}

func (e *sesHTTPEnv) accept(t *testing.T, s consult.Session) consult.Session {
	return e.act(t, e.specialist, s, "accept", map[string]any{"specialists": []map[string]string{
		{"specialist_id": e.users[e.specialist].UserID, "department_id": e.cardio}}}, http.StatusOK)
}

func (e *sesHTTPEnv) schedule() map[string]any {
	start := time.Now().UTC().Add(time.Hour)
	return map[string]any{"schedule": map[string]any{"start": start, "end": start.Add(time.Hour)}}
}

func TestSessionsHTTPBadInputNamesTheField(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newSesHTTPEnv(t, db)
		for _, c := range []struct {
			name   string
			edit   func(map[string]any)
			fields []string
		}{
			{"no kind", func(b map[string]any) { delete(b, "kind") }, []string{"kind"}},
			{"unknown kind", func(b map[string]any) { b["kind"] = "webinar" }, []string{"kind"}},
			{"expert clinic requested", func(b map[string]any) { b["kind"] = "expert_clinic" }, []string{"kind"}},
			{"unknown urgency", func(b map[string]any) { b["urgency"] = "asap" }, []string{"urgency"}},
			{"urgency of the wrong type", func(b map[string]any) { b["urgency"] = 3 }, []string{"urgency"}},
			{"no question", func(b map[string]any) { b["question"] = " " }, []string{"question"}},
			{"target not paired", func(b map[string]any) { b["target_hospital_id"] = env.foreign.ID }, []string{"target_hospital_id", "target_department_ids[0]"}},
			{"target is an id", func(b map[string]any) { b["target_hospital_id"] = "省医院" }, []string{"target_hospital_id"}},
			{"two departments for a consult", func(b map[string]any) {
				b["target_department_ids"] = []string{env.cardio, uuid.Must(uuid.NewV7()).String()}
			}, []string{"target_department_ids", "target_department_ids[1]"}},
			{"department of another hospital", func(b map[string]any) {
				b["target_department_ids"] = []string{uuid.Must(uuid.NewV7()).String()}
			}, []string{"target_department_ids[0]"}},
			{"no patient", func(b map[string]any) { delete(b, "patient_id") }, []string{"patient_id"}},
			{"unknown patient", func(b map[string]any) { b["patient_id"] = uuid.Must(uuid.NewV7()).String() }, []string{"patient_id"}},
			{"unknown field", func(b map[string]any) { b["requesting_hospital_id"] = env.tert.ID }, []string{"requesting_hospital_id"}},
			{"attachment without a kind", func(b map[string]any) {
				b["attachments"] = []map[string]any{{"id": uuid.Must(uuid.NewV7()).String(), "name": "ecg.pdf", "content_type": "application/pdf", "size": 100}}
			}, []string{"attachments[0].kind"}},
		} {
			body := env.input(env.patient)
			c.edit(body)
			res := env.do(env.doctor, http.MethodPost, "/api/v1/sessions", body)
			if res.code != http.StatusBadRequest || !slices.Equal(res.problemFields(t), c.fields) {
				t.Errorf("%s: %d %s, want 400 naming %v", c.name, res.code, res.body, c.fields)
			}
		}
		if n := env.count("consult_sessions"); n != 0 {
			t.Fatalf("refused requests were stored: %d", n)
		}

		for _, c := range []struct {
			query  string
			fields []string
		}{
			{"kind=webinar", []string{"kind"}},
			{"status=done&urgency=now", []string{"status", "urgency"}},
			{"hospital_id=x", []string{"hospital_id"}},
			{"from=yesterday", []string{"from"}},
			{"from=2026-11-22T08:00:00Z&to=2026-11-21T08:00:00Z", []string{"to"}},
			{"cursor=***", []string{"cursor"}},
		} {
			res := env.do(env.doctor, http.MethodGet, "/api/v1/sessions?"+c.query, nil)
			if res.code != http.StatusBadRequest || !slices.Equal(res.problemFields(t), c.fields) {
				t.Errorf("list ?%s: %d %s, want 400 naming %v", c.query, res.code, res.body, c.fields)
			}
		}

		s := env.create(t, env.patient)
		s = env.accept(t, s)
		tomorrow := time.Now().UTC().Add(24 * time.Hour)
		for _, c := range []struct {
			name   string
			body   any
			fields []string
		}{
			{"no schedule", map[string]any{}, []string{"schedule"}},
			{"end before start", map[string]any{"schedule": map[string]any{"start": tomorrow, "end": tomorrow.Add(-time.Hour)}}, []string{"schedule.end"}},
			{"start in the past", map[string]any{"schedule": map[string]any{"start": "2020-01-01T10:00:00Z", "end": "2020-01-01T11:00:00Z"}}, []string{"schedule.start"}},
			{"a consent in the body", map[string]any{"consent": map[string]bool{"RemoteConsultation": true}}, []string{"consent"}},
			{"not JSON", "{", []string{"body"}},
		} {
			res := env.do(env.specialist, http.MethodPost, "/api/v1/sessions/"+s.ID+"/actions/schedule", c.body, "If-Match", refHTTPIfMatch(s.Version))
			if res.code != http.StatusBadRequest || !slices.Equal(res.problemFields(t), c.fields) {
				t.Errorf("schedule with %s: %d %s, want 400 naming %v", c.name, res.code, res.body, c.fields)
			}
		}
		res := env.do(env.specialist, http.MethodPost, "/api/v1/sessions/"+s.ID+"/actions/teleport", map[string]any{}, "If-Match", refHTTPIfMatch(s.Version))
		if res.code != http.StatusNotFound {
			t.Errorf("unknown action: %d %s", res.code, res.body)
		}

		for _, c := range []struct {
			query  string
			fields []string
		}{
			{"from=soon", []string{"from"}},
			{"specialist_id=x&limit=0", []string{"specialist_id", "limit"}},
			{"from=2026-11-22T08:00:00Z&to=2026-11-21T08:00:00Z", []string{"to"}},
		} {
			res := env.do(env.doctor, http.MethodGet, "/api/v1/clinic-slots?"+c.query, nil)
			if res.code != http.StatusBadRequest || !slices.Equal(res.problemFields(t), c.fields) {
				t.Errorf("slots ?%s: %d %s, want 400 naming %v", c.query, res.code, res.body, c.fields)
			}
		}
		res = env.do(env.specialist, http.MethodPost, "/api/v1/clinic-slots", map[string]any{"department_id": env.cardio, "capacity": 99})
		if res.code != http.StatusBadRequest || !slices.Equal(res.problemFields(t), []string{"capacity", "start", "end"}) {
			t.Errorf("publish nonsense: %d %s", res.code, res.body)
		}
	})
}

// Every change demands If-Match (428 without it) and refuses a version the
// caller has not seen (412); a repeat of the current state is a no-op.
func TestSessionsHTTPVersions(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newSesHTTPEnv(t, db)
		s := env.create(t, env.patient)
		path := "/api/v1/sessions/" + s.ID
		if res := env.do(env.specialist, http.MethodPost, path+"/actions/decline", map[string]any{"reason": "x"}); res.code != http.StatusPreconditionRequired {
			t.Errorf("action without If-Match: %d %s", res.code, res.body)
		}
		if res := env.do(env.specialist, http.MethodPost, path+"/actions/decline", map[string]any{"reason": "x"}, "If-Match", "latest"); res.code != http.StatusBadRequest {
			t.Errorf("action with a malformed If-Match: %d %s", res.code, res.body)
		}
		s = env.accept(t, s)
		// The repeat with the same assignment is answered unchanged, even at the old version.
		old := s
		old.Version--
		if again := env.accept(t, old); again.Version != s.Version {
			t.Errorf("repeated accept moved the version to %d", again.Version)
		}
		if res := env.do(env.specialist, http.MethodPost, path+"/actions/schedule", env.schedule(), "If-Match", refHTTPIfMatch(s.Version-1)); res.code != http.StatusPreconditionFailed {
			t.Errorf("schedule at a stale version: %d %s", res.code, res.body)
		}
		draft := map[string]any{"findings": "LAD狭窄", "impression": "冠心病", "recommendations": "药物治疗"}
		if res := env.do(env.specialist, http.MethodPut, path+"/opinion", draft); res.code != http.StatusPreconditionRequired {
			t.Errorf("opinion without If-Match: %d %s", res.code, res.body)
		}
		if res := env.do(env.specialist, http.MethodPut, path+"/opinion", draft, "If-Match", refHTTPIfMatch(s.Version+1)); res.code != http.StatusPreconditionFailed {
			t.Errorf("opinion at a version never seen: %d %s", res.code, res.body)
		}
		res := env.do(env.specialist, http.MethodPut, path+"/opinion", draft, "If-Match", refHTTPIfMatch(s.Version))
		if res.code != http.StatusOK || res.hdr.Get("ETag") != refHTTPIfMatch(s.Version+1) {
			t.Errorf("opinion draft: %d %s (ETag %s)", res.code, res.body, res.hdr.Get("ETag"))
		}
	})
}

// No consent, no schedule: the problem names the consent, the session stays
// accepted. Once scheduled, the session runs, its opinion is signed and then
// cannot be changed through the API; it is amended by addenda, which the
// session shows.
func TestSessionsHTTPConsentAndSignedOpinion(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newSesHTTPEnv(t, db)
		bare := env.accept(t, env.create(t, env.unconsented))
		res := env.do(env.specialist, http.MethodPost, "/api/v1/sessions/"+bare.ID+"/actions/schedule", env.schedule(), "If-Match", refHTTPIfMatch(bare.Version))
		if res.code != http.StatusBadRequest || !slices.Equal(res.problemFields(t), []string{"consent", "consent"}) {
			t.Errorf("schedule without consent: %d %s", res.code, res.body)
		}

		s := env.accept(t, env.create(t, env.patient))
		s = env.act(t, env.specialist, s, "schedule", env.schedule(), http.StatusOK)
		s = env.act(t, env.specialist, s, "start", nil, http.StatusOK)
		s = env.act(t, env.specialist, s, "end", nil, http.StatusOK)
		opinion := map[string]any{"findings": "LAD近段狭窄约70%", "impression": "不稳定型心绞痛", "recommendations": "建议上转行冠脉造影",
			"diagnoses": []map[string]string{{"code": "I20.0", "text": "不稳定型心绞痛"}}, "referral_advised": true, "suggested_department_id": env.cardio}
		s = env.act(t, env.specialist, s, "sign_opinion", map[string]any{"opinion": opinion}, http.StatusOK)
		path := "/api/v1/sessions/" + s.ID

		changed := map[string]any{"findings": "无明显狭窄", "impression": "正常", "recommendations": "随访"}
		if res := env.do(env.specialist, http.MethodPut, path+"/opinion", changed, "If-Match", refHTTPIfMatch(s.Version)); res.code != http.StatusConflict {
			t.Errorf("rewrite a signed opinion: %d %s", res.code, res.body)
		}
		if res := env.do(env.specialist, http.MethodPost, path+"/actions/sign_opinion", map[string]any{"opinion": changed}, "If-Match", refHTTPIfMatch(s.Version)); res.code != http.StatusConflict {
			t.Errorf("sign other text: %d %s", res.code, res.body)
		}
		if res := env.do(env.doctor, http.MethodPost, path+"/opinion/addenda", AddendumRequest{Text: "补充"}); res.code != http.StatusForbidden {
			t.Errorf("addendum by the requester: %d %s", res.code, res.body)
		}
		if res := env.do(env.specialist, http.MethodPost, path+"/opinion/addenda", map[string]any{"text": ""}); res.code != http.StatusBadRequest || !slices.Equal(res.problemFields(t), []string{"text"}) {
			t.Errorf("empty addendum: %d %s", res.code, res.body)
		}
		res = env.do(env.specialist, http.MethodPost, path+"/opinion/addenda", AddendumRequest{Text: "补充：肌钙蛋白复查阴性"})
		if res.code != http.StatusCreated {
			t.Fatalf("addendum: %d %s", res.code, res.body)
		}
		res = env.do(env.doctor, http.MethodGet, path, nil)
		var d consults.Detail
		res.json(t, &d)
		if res.code != http.StatusOK || d.Opinion == nil || d.Opinion.Findings != "LAD近段狭窄约70%" || !d.Opinion.Intact(s.ID) ||
			len(d.Addenda) != 1 || d.Addenda[0].Seq != 1 {
			t.Fatalf("read the signed session: %d %s", res.code, res.body)
		}

		// The requester drafts the up-referral the opinion advises.
		res = env.do(env.doctor, http.MethodPost, path+"/opinion/referral", nil)
		var r referral.Referral
		res.json(t, &r)
		if res.code != http.StatusCreated || r.Status != referral.Draft || r.PatientID != env.patient || r.ReceivingDepartmentID != env.cardio {
			t.Fatalf("draft the referral: %d %s", res.code, res.body)
		}
		s = env.act(t, env.doctor, s, "acknowledge", nil, http.StatusOK)
		res = env.do(env.doctor, http.MethodGet, path+"/events", nil)
		var evs List[consult.Event]
		res.json(t, &evs)
		if res.code != http.StatusOK || len(evs.Items) != 8 {
			t.Errorf("history: %d, %d events", res.code, len(evs.Items))
		}
	})
}

// A hospital that takes no part in a session gets 404 on every route, and
// the session is not in its list.
func TestSessionsHTTPNonPartiesGetNotFound(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newSesHTTPEnv(t, db)
		s := env.create(t, env.patient)
		path := "/api/v1/sessions/" + s.ID
		ifMatch := []string{"If-Match", refHTTPIfMatch(s.Version)}
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{http.MethodGet, path, nil},
			{http.MethodGet, path + "/events", nil},
			{http.MethodGet, path + "/attendance", nil},
			{http.MethodPost, path + "/actions/cancel", map[string]any{"reason": "x"}},
			{http.MethodPost, path + "/actions/accept", map[string]any{}},
			{http.MethodPut, path + "/opinion", map[string]any{"findings": "x"}},
			{http.MethodPost, path + "/opinion/addenda", map[string]any{"text": "x"}},
			{http.MethodPost, path + "/opinion/referral", nil},
			{http.MethodGet, "/api/v1/sessions/" + uuid.Must(uuid.NewV7()).String(), nil},
		} {
			if res := env.do(env.outsider, c.method, c.path, c.body, ifMatch...); res.code != http.StatusNotFound {
				t.Errorf("%s %s by an outsider: %d %s", c.method, c.path, res.code, res.body)
			}
		}
		res := env.do(env.outsider, http.MethodGet, "/api/v1/sessions", nil)
		var l List[consult.Session]
		res.json(t, &l)
		if res.code != http.StatusOK || len(l.Items) != 0 {
			t.Errorf("outsider's list: %d %s", res.code, res.body)
		}
		res = env.do(env.specialist, http.MethodGet, "/api/v1/sessions?kind=consult&urgency=urgent&hospital_id="+env.county.ID, nil)
		res.json(t, &l)
		if res.code != http.StatusOK || len(l.Items) != 1 || l.Items[0].ID != s.ID {
			t.Errorf("target's filtered list: %d %s", res.code, res.body)
		}
	})
}

// A retried request with the same Idempotency-Key creates one session.
func TestSessionsHTTPIdempotentCreate(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newSesHTTPEnv(t, db)
		first := env.do(env.doctor, http.MethodPost, "/api/v1/sessions", env.input(env.patient), "Idempotency-Key", "ses-1")
		again := env.do(env.doctor, http.MethodPost, "/api/v1/sessions", env.input(env.patient), "Idempotency-Key", "ses-1")
		var a, b consult.Session
		first.json(t, &a)
		again.json(t, &b)
		if first.code != http.StatusCreated || again.code != http.StatusCreated || a.ID != b.ID || again.hdr.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("retried create: %d %s / %d %s", first.code, first.body, again.code, again.body)
		}
		if n := env.count("consult_sessions"); n != 1 {
			t.Fatalf("%d sessions after a retried create", n)
		}
	})
}

// Clinic slots over HTTP: the specialist publishes, the paired county sees
// and books (the place then full: 409), the unrelated county sees nothing.
func TestSessionsHTTPClinicSlots(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newSesHTTPEnv(t, db)
		loc, _ := time.LoadLocation("Asia/Shanghai")
		d := time.Now().Add(15 * 24 * time.Hour).In(loc)
		start := time.Date(d.Year(), d.Month(), d.Day(), 9, 0, 0, 0, loc)
		res := env.do(env.specialist, http.MethodPost, "/api/v1/clinic-slots", map[string]any{
			"department_id": env.cardio, "start": start, "end": start.Add(30 * time.Minute), "capacity": 1})
		var slot consult.ClinicSlot
		res.json(t, &slot)
		if res.code != http.StatusCreated || slot.Status != consult.SlotPublished {
			t.Fatalf("publish: %d %s", res.code, res.body)
		}
		window := "/api/v1/clinic-slots?to=" + start.Add(24*time.Hour).UTC().Format(time.RFC3339)
		var l List[consult.ClinicSlot]
		env.do(env.doctor, http.MethodGet, window, nil).json(t, &l)
		if len(l.Items) != 1 || l.Items[0].ID != slot.ID {
			t.Errorf("county's slots: %+v", l.Items)
		}
		env.do(env.outsider, http.MethodGet, window, nil).json(t, &l)
		if len(l.Items) != 0 {
			t.Errorf("unrelated county's slots: %+v", l.Items)
		}
		book := map[string]any{"patient_id": env.patient, "question": "血压控制不佳", "clinical_summary": "女，68岁"}
		if res := env.do(env.outsider, http.MethodPost, "/api/v1/clinic-slots/"+slot.ID+"/book", book); res.code != http.StatusNotFound {
			t.Errorf("unrelated county books: %d %s", res.code, res.body)
		}
		res = env.do(env.doctor, http.MethodPost, "/api/v1/clinic-slots/"+slot.ID+"/book", book)
		var s consult.Session
		res.json(t, &s)
		if res.code != http.StatusCreated || s.Kind != consult.ExpertClinic || s.Status != consult.Scheduled {
			t.Fatalf("book: %d %s", res.code, res.body)
		}
		book["question"] = "再约一次"
		if res := env.do(env.doctor, http.MethodPost, "/api/v1/clinic-slots/"+slot.ID+"/book", book); res.code != http.StatusConflict {
			t.Errorf("book a full slot: %d %s", res.code, res.body)
		}
		if res := env.do(env.specialist, http.MethodPost, "/api/v1/clinic-slots/"+slot.ID+"/cancel", map[string]any{"reason": "出差"}); res.code != http.StatusConflict {
			t.Errorf("cancel a booked slot: %d %s", res.code, res.body)
		}
	})
}
