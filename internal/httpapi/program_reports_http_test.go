package httpapi

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/program"
	"duikou/internal/programs"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
)

func TestProgramReportsAnswerInEachFormatWithinReach(t *testing.T) {
	db := sqldbtest.SQLite(t)
	now := time.Date(2026, 6, 10, 2, 0, 0, 0, time.UTC)
	env := newRegTestEnv(t, db, func(d *Deps, rec audit.Recorder) {
		d.ProgramReports = programs.NewReports(store.NewProgram(db), store.NewDirectory(db), store.NewUsers(db), store.NewConsults(db),
			store.NewReferrals(db), rec, program.Config{}, func() time.Time { return now })
	})
	office := env.user("rep.office", env.county, auth.ProgramOffice)
	doctor := env.user("rep.doctor", env.county, auth.CountyDoctor)
	outsider := env.user("rep.outsider", env.foreign, auth.ProgramOffice)
	prs, err := store.NewDirectory(db).PairingsOf(context.Background(), env.county.ID)
	if err != nil || len(prs) != 1 {
		t.Fatal(prs, err)
	}
	path := "/api/v1/program-reports?period=2026-H1&pairing_id=" + prs[0].ID

	res := env.do(doctor, http.MethodGet, path, nil)
	var rep programs.Report
	if res.code != http.StatusOK {
		t.Fatalf("json: %d %s", res.code, res.body)
	}
	res.json(t, &rep)
	if rep.Scope.Kind != "pairing" || rep.Period.To != "2026-06-30" || len(rep.Compliance) != 1 || res.hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("json report %+v, headers %v", rep, res.hdr)
	}

	res = env.do(office, http.MethodGet, path+"&format=csv", nil)
	if res.code != http.StatusOK || !strings.HasPrefix(res.hdr.Get("Content-Type"), "text/csv") ||
		!bytes.HasPrefix(res.body, []byte("\xEF\xBB\xBF")) || !strings.Contains(res.hdr.Get("Content-Disposition"), "program-report-pairing-2026-H1.csv") {
		t.Errorf("csv: %d %v", res.code, res.hdr)
	}

	// Accept names the workbook.
	res = env.do(office, http.MethodGet, path, nil, "Accept", xlsxType)
	if res.code != http.StatusOK || res.hdr.Get("Content-Type") != xlsxType {
		t.Fatalf("xlsx: %d %v %s", res.code, res.hdr, res.body)
	}
	f, err := excelize.OpenReader(bytes.NewReader(res.body))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := f.GetCellValue("合规", "A1"); v != "对口支援工作达标情况" {
		t.Errorf("workbook compliance sheet A1 %q (sheets %v)", v, f.GetSheetList())
	}
	_ = f.Close()

	res = env.do(office, http.MethodGet, path+"&format=html", nil)
	if res.code != http.StatusOK || !strings.HasPrefix(res.hdr.Get("Content-Type"), "text/html") || res.hdr.Get("Content-Security-Policy") == "" ||
		!strings.Contains(string(res.body), "对口支援半年工作报告") {
		t.Errorf("html: %d %v", res.code, res.hdr)
	}

	res = env.do(office, http.MethodGet, "/api/v1/program-reports/compliance?format=html&year=2026&pairing_id="+prs[0].ID, nil)
	if res.code != http.StatusOK || !strings.Contains(string(res.body), "达标情况") {
		t.Errorf("compliance html: %d %s", res.code, res.body)
	}

	for _, c := range []struct {
		token, path string
		want        int
	}{
		{office, path + "&format=pdf", http.StatusBadRequest},
		{office, "/api/v1/program-reports?period=2026-H3&pairing_id=" + prs[0].ID, http.StatusBadRequest},
		{outsider, path + "&format=xlsx", http.StatusNotFound},
		{doctor, "/api/v1/program-reports/reminders", http.StatusForbidden},
	} {
		if res := env.do(c.token, http.MethodGet, c.path, nil); res.code != c.want {
			t.Errorf("%s: %d, want %d: %s", c.path, res.code, c.want, res.body)
		}
	}

	// 10 June: the first half's report is due on the 20th.
	res = env.do(office, http.MethodGet, "/api/v1/program-reports/reminders", nil)
	var rs ReminderList
	res.json(t, &rs)
	if res.code != http.StatusOK || len(rs.Items) != 1 || rs.Items[0].DueOn != "2026-06-20" || rs.Items[0].DaysLeft != 10 {
		t.Errorf("reminders %d %+v", res.code, rs)
	}
}
