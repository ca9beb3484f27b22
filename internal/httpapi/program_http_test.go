package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/directory"
	"duikou/internal/program"
	"duikou/internal/programs"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
)

// progHTTPEnv: the tertiary hospital supports the county; each has a
// program office, the foreign hospital has one too; an associate chief of
// the tertiary hospital is dispatched (with an account), a county
// department receives.
type progHTTPEnv struct {
	*regTestEnv
	office, countyOffice, foreignOffice, doctor string
	pairing, recDept, associate, attending      string
	today                                       string
}

func newProgHTTPEnv(t *testing.T, db sqldb.DB) *progHTTPEnv {
	t.Helper()
	env := &progHTTPEnv{today: program.Today(time.Now())}
	env.regTestEnv = newRegTestEnv(t, db, func(d *Deps, rec audit.Recorder) {
		svc, err := programs.NewService(db, store.NewProgram(db), store.NewDirectory(db), store.NewUsers(db), store.NewAttachments(db), rec, nil, program.Config{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		d.Program = svc
	})
	ctx := context.Background()
	dir := store.NewDirectory(db)
	now := sqldb.Now()
	prs, err := dir.PairingsOf(ctx, env.county.ID)
	if err != nil || len(prs) != 1 {
		t.Fatalf("pairing: %v %v", prs, err)
	}
	env.pairing = prs[0].ID
	dept := directory.Department{ID: uuid.Must(uuid.NewV7()).String(), HospitalID: env.county.ID, Code: "03", Name: "内科", Version: 1, CreatedAt: now, UpdatedAt: now}
	if err := dir.CreateDepartment(ctx, dept); err != nil {
		t.Fatal(err)
	}
	env.recDept = dept.ID
	staff := func(name string, title directory.Title) string {
		s := directory.Staff{ID: uuid.Must(uuid.NewV7()).String(), HospitalID: env.tert.ID, Name: name, Title: title,
			Phone: "13800000000", Active: true, Version: 1, CreatedAt: now, UpdatedAt: now}
		if err := dir.CreateStaff(ctx, s); err != nil {
			t.Fatal(err)
		}
		return s.ID
	}
	env.associate = staff("<b>李</b>副主任", "associate_chief_physician")
	env.attending = staff("王主治", "attending_physician")
	env.office = env.user("prog.office", env.tert, auth.ProgramOffice)
	env.countyOffice = env.user("prog.county.office", env.county, auth.ProgramOffice)
	env.foreignOffice = env.user("prog.foreign.office", env.foreign, auth.ProgramOffice)
	env.doctor = env.user("prog.doctor", env.tert, auth.DispatchedDoctor)
	if _, err := db.Exec(ctx, `UPDATE users SET staff_id = $1 WHERE id = $2`, env.associate, env.users[env.doctor].UserID); err != nil {
		t.Fatal(err)
	}
	return env
}

func (e *progHTTPEnv) postingBody() map[string]any {
	return map[string]any{"pairing_id": e.pairing, "staff_id": e.associate, "recipient_department_id": e.recDept,
		"starts_on": program.AddDays(e.today, -40), "ends_on": program.AddDays(e.today, 160), "team": "第一批", "specialty": "心血管内科"}
}

func (e *progHTTPEnv) posting(t *testing.T) program.Posting {
	t.Helper()
	res := e.do(e.office, http.MethodPost, "/api/v1/postings", e.postingBody())
	if res.code != http.StatusCreated {
		t.Fatalf("create posting: %d %s", res.code, res.body)
	}
	var x program.Posting
	res.json(t, &x)
	return x
}

func TestProgramPostingBadInputNamesTheField(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		e := newProgHTTPEnv(t, db)
		for _, tc := range []struct {
			name   string
			change func(b map[string]any)
			fields []string
		}{
			{"no pairing", func(b map[string]any) { delete(b, "pairing_id") }, []string{"pairing_id"}},
			{"a pairing that is not one", func(b map[string]any) { b["pairing_id"] = uuid.Must(uuid.NewV7()).String() }, []string{"pairing_id"}},
			{"no staff", func(b map[string]any) { b["staff_id"] = "x" }, []string{"staff_id"}},
			{"a department of the supporting hospital", func(b map[string]any) { b["recipient_department_id"] = uuid.Must(uuid.NewV7()).String() }, []string{"recipient_department_id"}},
			{"a malformed day", func(b map[string]any) { b["starts_on"] = "2026-02-30" }, []string{"starts_on"}},
			{"ends before it starts", func(b map[string]any) { b["ends_on"] = "2020-01-01" }, []string{"ends_on"}},
			{"no team", func(b map[string]any) { b["team"] = " " }, []string{"team"}},
			// The program's rules, without the office's reason.
			{"an attending alone for two months", func(b map[string]any) {
				b["staff_id"] = e.attending
				b["ends_on"] = program.AddDays(e.today, 20)
			}, []string{"team", "ends_on"}},
		} {
			b := e.postingBody()
			tc.change(b)
			res := e.do(e.office, http.MethodPost, "/api/v1/postings", b)
			if res.code != http.StatusBadRequest {
				t.Errorf("%s: %d %s, want 400", tc.name, res.code, res.body)
				continue
			}
			if got := res.problemFields(t); !slices.Equal(got, tc.fields) {
				t.Errorf("%s: fields %v, want %v", tc.name, got, tc.fields)
			}
		}
		b := e.postingBody()
		b["unknown"] = 1
		if res := e.do(e.office, http.MethodPost, "/api/v1/postings", b); res.code != http.StatusBadRequest {
			t.Errorf("an unknown field: %d", res.code)
		}
		b = e.postingBody()
		b["staff_id"], b["ends_on"], b["override_reason"] = e.attending, program.AddDays(e.today, 20), "短期支援，已报卫健委同意"
		res := e.do(e.office, http.MethodPost, "/api/v1/postings", b)
		var x program.Posting
		if res.code != http.StatusCreated {
			t.Fatalf("with a reason: %d %s", res.code, res.body)
		}
		res.json(t, &x)
		if x.Override == nil || len(x.Warnings) != 2 || res.hdr.Get("ETag") != `"1"` {
			t.Errorf("override: %+v %+v etag %s", x.Override, x.Warnings, res.hdr.Get("ETag"))
		}
	})
}

func TestProgramEditsNeedTheVersionRead(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		e := newProgHTTPEnv(t, db)
		x := e.posting(t)
		path := "/api/v1/postings/" + x.ID
		if res := e.do(e.office, http.MethodPatch, path, map[string]any{"specialty": "心内"}); res.code != http.StatusPreconditionRequired {
			t.Errorf("without If-Match: %d", res.code)
		}
		if res := e.do(e.office, http.MethodPatch, path, map[string]any{"specialty": "心内"}, "If-Match", `"7"`); res.code != http.StatusPreconditionFailed {
			t.Errorf("stale: %d", res.code)
		}
		if res := e.do(e.office, http.MethodPatch, path, map[string]any{"specialty": "心内"}, "If-Match", `"1"`); res.code != http.StatusOK || res.hdr.Get("ETag") != `"2"` {
			t.Errorf("current: %d %s", res.code, res.body)
		}
		arrival := map[string]any{"arrived_on": program.AddDays(e.today, -39)}
		if res := e.do(e.countyOffice, http.MethodPut, path+"/arrival", arrival, "If-Match", `"1"`); res.code != http.StatusPreconditionFailed {
			t.Errorf("arrival over an old version: %d", res.code)
		}
		arrival["arrived_on"] = program.AddDays(e.today, 1)
		if res := e.do(e.countyOffice, http.MethodPut, path+"/arrival", arrival, "If-Match", `"2"`); res.code != http.StatusBadRequest || !slices.Equal(res.problemFields(t), []string{"arrived_on"}) {
			t.Errorf("arrival tomorrow: %d %s", res.code, res.body)
		}
		arrival["arrived_on"] = program.AddDays(e.today, -39)
		res := e.do(e.countyOffice, http.MethodPut, path+"/arrival", arrival, "If-Match", `"2"`)
		var got program.Posting
		if res.code != http.StatusOK {
			t.Fatalf("arrival: %d %s", res.code, res.body)
		}
		res.json(t, &got)
		if got.ArrivalStatus != program.ArrivalOnTime {
			t.Errorf("arrival status %s", got.ArrivalStatus)
		}

		month := e.today[:7]
		scores := map[string]any{"scores": map[string]int{"discipline": 20, "ethics": 20, "clinical": 30, "teaching": 30}}
		evPath := path + "/evaluations/" + month
		if res := e.do(e.countyOffice, http.MethodPut, evPath, scores); res.code != http.StatusPreconditionRequired {
			t.Errorf("evaluation without a precondition: %d", res.code)
		}
		bad := map[string]any{"scores": map[string]int{"discipline": 21, "made_up": 1}}
		if res := e.do(e.countyOffice, http.MethodPut, evPath, bad, "If-None-Match", "*"); res.code != http.StatusBadRequest ||
			!slices.Equal(res.problemFields(t), []string{"scores.discipline", "scores.ethics", "scores.clinical", "scores.teaching", "scores.made_up"}) {
			t.Errorf("bad scores: %d %s", res.code, res.body)
		}
		if res := e.do(e.countyOffice, http.MethodPut, evPath, scores, "If-None-Match", "*"); res.code != http.StatusCreated || res.hdr.Get("ETag") != `"1"` {
			t.Errorf("first filing: %d %s", res.code, res.body)
		}
		if res := e.do(e.countyOffice, http.MethodPut, evPath, scores, "If-None-Match", "*"); res.code != http.StatusPreconditionFailed {
			t.Errorf("filing twice: %d", res.code)
		}
		if res := e.do(e.countyOffice, http.MethodPut, evPath, scores, "If-Match", `"1"`); res.code != http.StatusOK {
			t.Errorf("correction: %d %s", res.code, res.body)
		}
	})
}

func TestProgramRecordsOfAnUnrelatedHospitalAreNotFound(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		e := newProgHTTPEnv(t, db)
		x := e.posting(t)
		res := e.do(e.office, http.MethodPost, "/api/v1/agreements", map[string]any{"pairing_id": e.pairing,
			"terms": map[string]any{"starts_on": "2026-01-01", "ends_on": "2028-12-31", "commitments": map[string]any{"teams_per_year": 2, "days_per_year": 180}}})
		if res.code != http.StatusCreated {
			t.Fatalf("agreement: %d %s", res.code, res.body)
		}
		var a program.Agreement
		res.json(t, &a)
		for _, path := range []string{"/api/v1/postings/" + x.ID, "/api/v1/postings/" + x.ID + "/attendance?month=" + e.today[:7],
			"/api/v1/postings/" + x.ID + "/evaluations", "/api/v1/postings/" + x.ID + "/work-logs",
			"/api/v1/agreements/" + a.ID, "/api/v1/agreements/" + a.ID + "/versions", "/api/v1/clinic-schedules?hospital_id=" + e.county.ID} {
			if res := e.do(e.foreignOffice, http.MethodGet, path, nil); res.code != http.StatusNotFound {
				t.Errorf("GET %s by an unrelated office: %d", path, res.code)
			}
			if res := e.do(e.countyOffice, http.MethodGet, path, nil); res.code != http.StatusOK {
				t.Errorf("GET %s by the recipient's office: %d %s", path, res.code, res.body)
			}
		}
		if res := e.do(e.foreignOffice, http.MethodPost, "/api/v1/postings/"+x.ID+"/attendance", map[string]any{"day": e.today, "status": "absent"}); res.code != http.StatusNotFound {
			t.Errorf("an unrelated office recording attendance: %d", res.code)
		}
		var list List[program.Posting]
		e.do(e.foreignOffice, http.MethodGet, "/api/v1/postings", nil).json(t, &list)
		if len(list.Items) != 0 {
			t.Errorf("an unrelated office's list: %v", list.Items)
		}
		// A doctor's record: their postings, whoever else is posted.
		for _, tc := range []struct {
			staff string
			n     int
		}{{e.associate, 1}, {e.attending, 0}} {
			var mine List[program.Posting]
			e.do(e.countyOffice, http.MethodGet, "/api/v1/postings?staff_id="+tc.staff, nil).json(t, &mine)
			if len(mine.Items) != tc.n {
				t.Errorf("postings of staff %s: %d, want %d", tc.staff, len(mine.Items), tc.n)
			}
		}
		if res := e.do(e.countyOffice, http.MethodGet, "/api/v1/postings?staff_id=x&pairing_id=y", nil); res.code != http.StatusBadRequest ||
			!slices.Equal(res.problemFields(t), []string{"pairing_id", "staff_id"}) {
			t.Errorf("bad filters: %d %s", res.code, res.body)
		}
		// The doctor checks in and logs the day's work; the recipient confirms.
		if res := e.do(e.doctor, http.MethodPost, "/api/v1/postings/"+x.ID+"/attendance", map[string]any{"day": e.today, "status": "present"}); res.code != http.StatusOK {
			t.Errorf("check-in: %d %s", res.code, res.body)
		}
		if res := e.do(e.countyOffice, http.MethodPost, "/api/v1/postings/"+x.ID+"/attendance/"+e.today+"/confirmation", map[string]any{}); res.code != http.StatusOK {
			t.Errorf("confirm: %d %s", res.code, res.body)
		}
		res = e.do(e.doctor, http.MethodPost, "/api/v1/postings/"+x.ID+"/work-logs", map[string]any{"day": e.today,
			"counts": map[string]int{"outpatients": 28, "lectures": 1, "new_techniques": 1}, "technique_names": []string{"床旁超声"}})
		if res.code != http.StatusCreated {
			t.Fatalf("work log: %d %s", res.code, res.body)
		}
		res = e.do(e.doctor, http.MethodPost, "/api/v1/postings/"+x.ID+"/work-logs", map[string]any{"day": e.today,
			"counts": map[string]int{"operations": -1}, "technique_names": []string{"x"}})
		if res.code != http.StatusBadRequest || !slices.Equal(res.problemFields(t), []string{"counts.operations", "technique_names"}) {
			t.Errorf("bad work log: %d %s", res.code, res.body)
		}
	})
}

func TestPublicClinicScheduleNeedsNoLoginAndShowsOnlyTheDoctor(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		e := newProgHTTPEnv(t, db)
		x := e.posting(t)
		in := map[string]any{"posting_id": x.ID, "day": program.AddDays(e.today, 6), "starts_at": "08:30", "ends_at": "11:30", "place": `<img src=x onerror=alert(1)>门诊三楼`}
		if res := e.do(e.countyOffice, http.MethodPost, "/api/v1/clinic-schedules", in); res.code != http.StatusBadRequest || !slices.Equal(res.problemFields(t), []string{"day"}) {
			t.Errorf("six days ahead: %d %s", res.code, res.body)
		}
		in["day"] = program.AddDays(e.today, 7)
		if res := e.do(e.countyOffice, http.MethodPost, "/api/v1/clinic-schedules", in); res.code != http.StatusCreated {
			t.Fatalf("publish: %d %s", res.code, res.body)
		}
		res := e.do("", http.MethodGet, "/public/clinic-schedule/"+e.county.ID, nil)
		if res.code != http.StatusOK || !strings.HasPrefix(res.hdr.Get("Content-Type"), "text/html") {
			t.Fatalf("public page: %d %s", res.code, res.body)
		}
		page := string(res.body)
		for _, want := range []string{"医院2 对口支援专家门诊安排", "&lt;b&gt;李&lt;/b&gt;副主任", "副主任医师", "医院1", "心血管内科", "&lt;img src=x onerror=alert(1)&gt;门诊三楼", program.AddDays(e.today, 7)} {
			if !strings.Contains(page, want) {
				t.Errorf("page lacks %q", want)
			}
		}
		for _, never := range []string{"<img", "<b>", "13800000000"} {
			if strings.Contains(page, never) {
				t.Errorf("page contains %q", never)
			}
		}
		if res.hdr.Get("Content-Security-Policy") == "" {
			t.Error("no Content-Security-Policy")
		}
		for _, id := range []string{uuid.Must(uuid.NewV7()).String(), "not-an-id"} {
			if res := e.do("", http.MethodGet, "/public/clinic-schedule/"+id, nil); res.code != http.StatusNotFound {
				t.Errorf("unknown hospital %s: %d", id, res.code)
			}
		}
	})
}

func TestProgramClinicChangeAndCancelNeedTheVersionRead(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		e := newProgHTTPEnv(t, db)
		x := e.posting(t)
		res := e.do(e.countyOffice, http.MethodPost, "/api/v1/clinic-schedules", map[string]any{"posting_id": x.ID,
			"day": program.AddDays(e.today, 7), "starts_at": "08:30", "ends_at": "11:30", "place": "门诊三楼"})
		if res.code != http.StatusCreated || res.hdr.Get("ETag") != `"1"` {
			t.Fatalf("publish: %d %s", res.code, res.body)
		}
		var c program.ClinicSession
		res.json(t, &c)
		path := "/api/v1/clinic-schedules/" + c.ID
		move := map[string]any{"starts_at": "14:00", "ends_at": "17:00"}
		if res := e.do(e.countyOffice, http.MethodPatch, path, move); res.code != http.StatusPreconditionRequired {
			t.Errorf("without If-Match: %d", res.code)
		}
		if res := e.do(e.countyOffice, http.MethodPatch, path, move, "If-Match", `"2"`); res.code != http.StatusPreconditionFailed {
			t.Errorf("stale: %d", res.code)
		}
		if res := e.do(e.foreignOffice, http.MethodPatch, path, move, "If-Match", `"1"`); res.code != http.StatusNotFound {
			t.Errorf("an unrelated office: %d", res.code)
		}
		if res := e.do(e.countyOffice, http.MethodPatch, path, map[string]any{"ends_at": "25:00"}, "If-Match", `"1"`); res.code != http.StatusBadRequest ||
			!slices.Equal(res.problemFields(t), []string{"ends_at"}) {
			t.Errorf("a bad time: %d %s", res.code, res.body)
		}
		if res := e.do(e.countyOffice, http.MethodPatch, path, move, "If-Match", `"1"`); res.code != http.StatusOK || res.hdr.Get("ETag") != `"2"` {
			t.Errorf("change: %d %s", res.code, res.body)
		}
		cancel := map[string]any{"reason": "医生返院"}
		if res := e.do(e.countyOffice, http.MethodPost, path+"/cancel", cancel); res.code != http.StatusPreconditionRequired {
			t.Errorf("cancel without If-Match: %d", res.code)
		}
		if res := e.do(e.countyOffice, http.MethodPost, path+"/cancel", cancel, "If-Match", `"1"`); res.code != http.StatusPreconditionFailed {
			t.Errorf("cancel on a stale version: %d", res.code)
		}
		if res := e.do(e.countyOffice, http.MethodPost, path+"/cancel", map[string]any{"reason": ""}, "If-Match", `"2"`); res.code != http.StatusBadRequest ||
			!slices.Equal(res.problemFields(t), []string{"reason"}) {
			t.Errorf("cancel without a reason: %d %s", res.code, res.body)
		}
		if res := e.do(e.foreignOffice, http.MethodPost, path+"/cancel", cancel, "If-Match", `"2"`); res.code != http.StatusNotFound {
			t.Errorf("cancel by an unrelated office: %d", res.code)
		}
		if res := e.do(e.countyOffice, http.MethodPost, path+"/cancel", cancel, "If-Match", `"2"`); res.code != http.StatusOK {
			t.Fatalf("cancel: %d %s", res.code, res.body)
		}
		page := e.do("", http.MethodGet, "/public/clinic-schedule/"+e.county.ID, nil)
		if page.code != http.StatusOK || strings.Contains(string(page.body), program.AddDays(e.today, 7)) {
			t.Errorf("the public page still shows the cancelled clinic: %d", page.code)
		}
		if res := e.do(e.countyOffice, http.MethodPatch, path, move, "If-Match", `"3"`); res.code != http.StatusConflict {
			t.Errorf("changing a cancelled clinic: %d %s", res.code, res.body)
		}
	})
}

func TestProgramTraineeCorrectionNeedsTheVersionRead(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		e := newProgHTTPEnv(t, db)
		now := sqldb.Now()
		nurse := directory.Staff{ID: uuid.Must(uuid.NewV7()).String(), HospitalID: e.county.ID, Name: "陈护士", Title: "nurse",
			Active: true, Version: 1, CreatedAt: now, UpdatedAt: now}
		if err := store.NewDirectory(db).CreateStaff(context.Background(), nurse); err != nil {
			t.Fatal(err)
		}
		res := e.do(e.countyOffice, http.MethodPost, "/api/v1/trainees", map[string]any{"pairing_id": e.pairing, "staff_id": nurse.ID,
			"host_department": "重症医学科", "starts_on": "2026-04-01", "ends_on": "2026-06-30"})
		if res.code != http.StatusCreated || res.hdr.Get("ETag") != `"1"` {
			t.Fatalf("add: %d %s", res.code, res.body)
		}
		var tr program.Trainee
		res.json(t, &tr)
		path := "/api/v1/trainees/" + tr.ID
		fix := map[string]any{"ends_on": "2026-07-31"}
		if res := e.do(e.countyOffice, http.MethodPatch, path, fix); res.code != http.StatusPreconditionRequired {
			t.Errorf("without If-Match: %d", res.code)
		}
		if res := e.do(e.countyOffice, http.MethodPatch, path, fix, "If-Match", `"2"`); res.code != http.StatusPreconditionFailed {
			t.Errorf("stale: %d", res.code)
		}
		if res := e.do(e.foreignOffice, http.MethodPatch, path, fix, "If-Match", `"1"`); res.code != http.StatusNotFound {
			t.Errorf("an unrelated office: %d", res.code)
		}
		if res := e.do(e.countyOffice, http.MethodPatch, path, map[string]any{"ends_on": "2026-03-01"}, "If-Match", `"1"`); res.code != http.StatusBadRequest ||
			!slices.Equal(res.problemFields(t), []string{"ends_on"}) {
			t.Errorf("ends before it starts: %d %s", res.code, res.body)
		}
		if res := e.do(e.countyOffice, http.MethodPatch, path, map[string]any{"staff_id": nurse.ID}, "If-Match", `"1"`); res.code != http.StatusBadRequest {
			t.Errorf("changing who was sent: %d %s", res.code, res.body)
		}
		res = e.do(e.office, http.MethodPatch, path, fix, "If-Match", `"1"`)
		if res.code != http.StatusOK || res.hdr.Get("ETag") != `"2"` {
			t.Fatalf("correction by the supporting office: %d %s", res.code, res.body)
		}
		res.json(t, &tr)
		if tr.EndsOn != "2026-07-31" || tr.HostDepartment != "重症医学科" {
			t.Errorf("corrected: %+v", tr)
		}
	})
}

func TestProgramWorkLogCorrectionNeedsTheVersionReadAndNoConfirmation(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		e := newProgHTTPEnv(t, db)
		x := e.posting(t)
		res := e.do(e.doctor, http.MethodPost, "/api/v1/postings/"+x.ID+"/work-logs", map[string]any{"day": e.today, "counts": map[string]int{"outpatients": 28}})
		if res.code != http.StatusCreated || res.hdr.Get("ETag") != `"1"` {
			t.Fatalf("work log: %d %s", res.code, res.body)
		}
		var l program.WorkLog
		res.json(t, &l)
		path := "/api/v1/postings/" + x.ID + "/work-logs/" + l.ID
		fix := map[string]any{"counts": map[string]int{"outpatients": 25, "lectures": 1}}
		if res := e.do(e.doctor, http.MethodPatch, path, fix); res.code != http.StatusPreconditionRequired {
			t.Errorf("without If-Match: %d", res.code)
		}
		if res := e.do(e.doctor, http.MethodPatch, path, fix, "If-Match", `"2"`); res.code != http.StatusPreconditionFailed {
			t.Errorf("stale: %d", res.code)
		}
		if res := e.do(e.foreignOffice, http.MethodPatch, path, fix, "If-Match", `"1"`); res.code != http.StatusForbidden {
			t.Errorf("an office (not a doctor): %d", res.code)
		}
		if res := e.do(e.doctor, http.MethodPatch, path, map[string]any{"counts": map[string]int{"operations": -1}}, "If-Match", `"1"`); res.code != http.StatusBadRequest ||
			!slices.Equal(res.problemFields(t), []string{"counts.operations"}) {
			t.Errorf("a negative count: %d %s", res.code, res.body)
		}
		res = e.do(e.doctor, http.MethodPatch, path, fix, "If-Match", `"1"`)
		if res.code != http.StatusOK || res.hdr.Get("ETag") != `"2"` {
			t.Fatalf("correction: %d %s", res.code, res.body)
		}
		res.json(t, &l)
		if l.Counts.Outpatients != 25 || l.Counts.Lectures != 1 {
			t.Errorf("corrected: %+v", l.Counts)
		}
		if res := e.do(e.countyOffice, http.MethodPost, path+"/confirmation", map[string]any{}); res.code != http.StatusOK {
			t.Fatalf("confirm: %d %s", res.code, res.body)
		}
		if res := e.do(e.doctor, http.MethodPatch, path, fix, "If-Match", `"3"`); res.code != http.StatusConflict {
			t.Errorf("correcting a confirmed entry: %d %s", res.code, res.body)
		}
	})
}
