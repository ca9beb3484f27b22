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
	"duikou/internal/referrals"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/referral"
)

// statsHTTPEnv is the register's world (a county hospital paired with a
// tertiary one, and an unrelated county) with the real statistics service
// and one urgent up-referral sent at 23:30 UTC on 31 March 2026, which is
// 1 April in China, claimed ten minutes later.
type statsHTTPEnv struct {
	*regTestEnv
	doctor, office, outsider, admin string
}

func newStatsHTTPEnv(t *testing.T, db sqldb.DB) *statsHTTPEnv {
	t.Helper()
	env := &statsHTTPEnv{}
	now := time.Date(2026, 5, 10, 0, 0, 0, 0, time.UTC)
	env.regTestEnv = newRegTestEnv(t, db, func(d *Deps, rec audit.Recorder) {
		d.ReferralStats = referrals.NewStats(store.NewReferrals(db), rec, func() time.Time { return now }, referral.DefaultDeadlines(), 0)
	})
	env.doctor = env.user("stats.doctor", env.county, auth.CountyDoctor)
	env.office = env.user("stats.office", env.county, auth.ProgramOffice)
	env.outsider = env.user("stats.outsider", env.foreign, auth.ReferralDesk)
	env.admin = env.user("stats.admin", env.county, auth.Admin)

	sub := time.Date(2026, 3, 31, 23, 30, 0, 0, time.UTC)
	claimed := sub.Add(10 * time.Minute)
	id := func() string { return uuid.Must(uuid.NewV7()).String() }
	if err := store.NewReferrals(db).Create(context.Background(), referral.Referral{ID: id(), Direction: referral.Up,
		Priority: referral.Urgent, PatientID: id(), ReferringHospitalID: env.county.ID, ReceivingHospitalID: env.tert.ID,
		Diagnoses: []referral.Diagnosis{{Code: "I21.0", Text: "急性前壁心肌梗死"}}, Attachments: []referral.AttachmentRef{},
		Status: referral.Claimed, Version: 3, CreatedBy: id(), CreatedAt: sub, UpdatedAt: claimed,
		SubmittedAt: &sub, QueuedAt: &sub, ClaimedAt: &claimed, ClaimedBy: id()}); err != nil {
		t.Fatal(err)
	}
	return env
}

const statsPath = "/api/v1/referral-stats?"

func TestReferralStatsHTTPAnswersInChartShape(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newStatsHTTPEnv(t, db)
		res := env.do(env.office, http.MethodGet, statsPath+"from=2026-03-01&to=2026-04-30&period=month", nil)
		if res.code != http.StatusOK {
			t.Fatalf("got %d: %s", res.code, res.body)
		}
		var got struct {
			Periods []struct {
				Label    string         `json:"label"`
				Total    int            `json:"total"`
				ByStatus map[string]int `json:"by_status"`
			} `json:"periods"`
			Timings []struct {
				Band    string         `json:"band"`
				ToClaim map[string]any `json:"to_claim"`
			} `json:"timings"`
			UpByCounty struct {
				Months    []string `json:"months"`
				Hospitals []struct {
					HospitalID string `json:"hospital_id"`
					Counts     []int  `json:"counts"`
				} `json:"hospitals"`
			} `json:"up_referrals_by_county"`
			TopDiagnoses struct {
				Items  []map[string]any `json:"items"`
				Hidden int              `json:"hidden"`
			} `json:"top_diagnoses"`
		}
		res.json(t, &got)
		// The ticket sent on 31 March UTC counts in April (China).
		if len(got.Periods) != 2 || got.Periods[0].Label != "2026-03" || got.Periods[0].Total != 0 ||
			got.Periods[1].Label != "2026-04" || got.Periods[1].Total != 1 || got.Periods[1].ByStatus["claimed"] != 1 ||
			len(got.Periods[0].ByStatus) != len(referral.Statuses) {
			t.Errorf("periods: %+v", got.Periods)
		}
		if len(got.Timings) != 4 || got.Timings[2].Band != "urgent" || got.Timings[2].ToClaim["p50_seconds"] != float64(600) ||
			got.Timings[0].ToClaim["p50_seconds"] != nil || got.Timings[0].ToClaim["n"] != float64(0) {
			t.Errorf("timings: %+v", got.Timings)
		}
		if !slices.Equal(got.UpByCounty.Months, []string{"2026-03", "2026-04"}) || len(got.UpByCounty.Hospitals) != 1 ||
			!slices.Equal(got.UpByCounty.Hospitals[0].Counts, []int{0, 1}) {
			t.Errorf("up-referrals by county: %+v", got.UpByCounty)
		}
		// One referral is a small cell: the office sees it hidden.
		if len(got.TopDiagnoses.Items) != 0 || got.TopDiagnoses.Hidden != 1 {
			t.Errorf("top diagnoses for the office: %+v", got.TopDiagnoses)
		}
		if cc := res.hdr.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q", cc)
		}
	})
}

func TestReferralStatsHTTPRejectsBadInput(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newStatsHTTPEnv(t, db)
		const ok = "from=2026-03-01&to=2026-04-30"
		for _, tc := range []struct {
			name, query string
			status      int
			field       string
		}{
			{"from missing", "to=2026-04-30", 400, "from"},
			{"from not a date", "from=2026-3-1&to=2026-04-30", 400, "from"},
			{"from an instant", "from=2026-03-01T00:00:00Z&to=2026-04-30", 400, "from"},
			{"to missing", "from=2026-03-01", 400, "to"},
			{"to not a real day", "from=2026-03-01&to=2026-02-30", 400, "to"},
			{"to before from", "from=2026-03-01&to=2026-02-28", 400, "to"},
			{"more than three years", "from=2023-03-01&to=2026-03-01", 422, "to"},
			{"an unknown period", ok + "&period=fortnight", 400, "period"},
			{"a malformed hospital", ok + "&hospital_id=linxi", 400, "hospital_id"},
			{"an unknown direction", ok + "&direction=sideways", 400, "direction"},
			{"top zero", ok + "&top=0", 400, "top"},
			{"top above 50", ok + "&top=51", 400, "top"},
			{"top not a number", ok + "&top=ten", 400, "top"},
			{"county_top above 10", ok + "&county_top=11", 400, "county_top"},
			{"an unknown diagnosis level", ok + "&diagnosis_level=chapter", 400, "diagnosis_level"},
		} {
			res := env.do(env.office, http.MethodGet, statsPath+tc.query, nil)
			if res.code != tc.status {
				t.Errorf("%s: got %d, want %d: %s", tc.name, res.code, tc.status, res.body)
				continue
			}
			if fields := res.problemFields(t); !slices.Equal(fields, []string{tc.field}) {
				t.Errorf("%s: fields %v, want [%s]", tc.name, fields, tc.field)
			}
		}
		// Every bad parameter is named at once.
		res := env.do(env.office, http.MethodGet, statsPath+"period=x&direction=y&top=-1", nil)
		if fields := res.problemFields(t); res.code != 400 || !slices.Equal(fields, []string{"from", "to", "period", "direction", "top"}) {
			t.Errorf("several at once: %d %v", res.code, fields)
		}
		// Exactly three years is fine.
		if res := env.do(env.office, http.MethodGet, statsPath+"from=2023-03-01&to=2026-02-28&period=year", nil); res.code != http.StatusOK {
			t.Errorf("three years: %d %s", res.code, res.body)
		}
	})
}

func TestReferralStatsHTTPScope(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newStatsHTTPEnv(t, db)
		q := statsPath + "from=2026-03-01&to=2026-04-30&hospital_id="
		for _, tc := range []struct {
			name, token, hospital string
			status                int
		}{
			{"a county hospital's staff read their own figures", env.doctor, env.county.ID, 200},
			{"another county's staff cannot read them", env.outsider, env.county.ID, 404},
			{"nor can the county read the other county's", env.doctor, env.foreign.ID, 404},
			{"a county doctor does not read the tertiary partner's figures", env.doctor, env.tert.ID, 404},
			{"the county's program office reads its partner", env.office, env.tert.ID, 200},
			{"but not an unrelated county", env.office, env.foreign.ID, 404},
			{"an unknown hospital is not found either", env.office, uuid.Must(uuid.NewV7()).String(), 404},
			{"administrators read no clinical figures", env.admin, env.county.ID, 403},
		} {
			if res := env.do(tc.token, http.MethodGet, q+tc.hospital, nil); res.code != tc.status {
				t.Errorf("%s: got %d, want %d: %s", tc.name, res.code, tc.status, res.body)
			}
		}
		// The doctor, reading their own hospital, sees the single diagnosis:
		// they may list that ticket anyway.
		res := env.do(env.doctor, http.MethodGet, statsPath+"from=2026-03-01&to=2026-04-30", nil)
		var rep referral.StatsReport
		res.json(t, &rep)
		if len(rep.TopDiagnoses.Items) != 1 || rep.TopDiagnoses.Items[0].Code != "I21.0" || rep.TopDiagnoses.Hidden != 0 {
			t.Errorf("own top diagnoses: %+v", rep.TopDiagnoses)
		}
		// Reads and refusals are in the audit log (five not found from the
		// service, the administrator's 403 from the role gate), and no
		// statistics row names a patient.
		acts := env.auditActions(0)
		reads, denied := 0, 0
		for _, a := range acts {
			switch {
			case strings.HasPrefix(a, referrals.ActionStats+" "):
				reads++
			case strings.HasPrefix(a, audit.AccessDenied+" "):
				denied++
			}
		}
		if reads != 3 || denied != 6 {
			t.Errorf("audit: %d reads and %d refusals, want 3 and 6: %v", reads, denied, acts)
		}
		var named int
		if err := db.QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE action = $1 AND patient_id <> ''`,
			referrals.ActionStats).Scan(&named); err != nil || named != 0 {
			t.Errorf("statistics rows naming a patient: %d (%v)", named, err)
		}
	})
}
