package referrals_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/directory"
	"duikou/internal/referrals"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/referral"
)

// memAudit keeps the entries a statistics read writes.
type memAudit struct{ entries []audit.Entry }

func (m *memAudit) Record(_ context.Context, e audit.Entry) error {
	m.entries = append(m.entries, e)
	return nil
}

// statsWorld is a tertiary hospital T with two county hospitals A and B and
// a township centre C referring to it, and an unrelated county D referring
// to its own tertiary hospital U. The figures below are computed by hand
// from the tickets statsFixture writes.
type statsWorld struct {
	db                sqldb.DB
	audit             *memAudit
	svc               *referrals.Stats
	T, A, B, C, D, U  string
	office, countyDoc auth.Principal
	now               time.Time
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func newStatsWorld(t *testing.T, db sqldb.DB, maxTickets int) *statsWorld {
	t.Helper()
	ctx := context.Background()
	w := &statsWorld{db: db, audit: &memAudit{}, now: utc("2026-05-10T00:00:00Z")}
	dir := store.NewDirectory(db)
	hospital := func(n int, name string, tier directory.Tier) string {
		h := directory.Hospital{ID: refID(), Name: name, OrgCode: fmt.Sprintf("12510000MB%08d", n), Tier: tier,
			Province: "青川省", TimeZone: directory.DefaultTimeZone, Version: 1, CreatedAt: w.now, UpdatedAt: w.now}
		if err := dir.CreateHospital(ctx, h); err != nil {
			t.Fatal(err)
		}
		return h.ID
	}
	w.T = hospital(1, "青川省人民医院", directory.Tertiary)
	w.A = hospital(2, "临溪县人民医院", directory.Secondary)
	w.B = hospital(3, "石门县人民医院", directory.Secondary)
	w.C = hospital(4, "临溪县城关镇卫生院", directory.Township)
	w.D = hospital(5, "云岭县人民医院", directory.Secondary)
	w.U = hospital(6, "云岭市中心医院", directory.Tertiary)
	// The tertiary hospital's program office reaches its partners; D and U
	// are beyond it.
	w.office = auth.Principal{UserID: refID(), HospitalID: w.T, Roles: []auth.Role{auth.ProgramOffice},
		Reach: map[string]bool{w.T: true, w.A: true, w.B: true, w.C: true}}
	w.countyDoc = auth.Principal{UserID: refID(), HospitalID: w.A, Roles: []auth.Role{auth.CountyDoctor},
		Reach: map[string]bool{w.A: true, w.T: true}}
	w.svc = referrals.NewStats(store.NewReferrals(db), w.audit, func() time.Time { return w.now }, referral.DefaultDeadlines(), maxTickets)
	statsFixture(t, db, w)
	return w
}

// ticket is one fixture ticket: times are offsets from submission (the
// desk's queue entry is the submission unless queued says otherwise).
type ticket struct {
	from, to      string
	dir           referral.Direction
	prio          referral.Priority
	green         bool
	status        referral.Status
	submitted     string
	queued        time.Duration // after submission
	claim, decide time.Duration // after the queue entry; 0: not done
	code, text    string
}

func statsFixture(t *testing.T, db sqldb.DB, w *statsWorld) {
	t.Helper()
	up, down := referral.Up, referral.Down
	const urgent, routine, emergency = referral.Urgent, referral.Routine, referral.Emergency
	m, h := time.Minute, time.Hour
	tickets := []ticket{
		// March (China): 4 tickets.
		{w.A, w.T, up, urgent, false, referral.Accepted, "2026-03-05T02:00:00Z", 0, 30 * m, 2 * h, "I21.0", "急性前壁心肌梗死"}, // t1
		{w.A, w.T, up, urgent, false, referral.Rejected, "2026-03-10T02:00:00Z", 0, 90 * m, 5 * h, "I21.0", "急性心肌梗死"},   // t2: both late
		{w.B, w.T, up, routine, false, referral.Accepted, "2026-03-15T04:00:00Z", 0, 2 * h, 80 * h, "J18.9", "肺炎"},      // t9: decision late
		{w.T, w.A, down, routine, false, referral.Accepted, "2026-03-20T06:00:00Z", 0, h, 2 * h, "", ""},                // t11
		// April (China): 7 tickets. 23:30 UTC on 31 March is 07:30 on 1 April in China.
		{w.A, w.T, up, urgent, false, referral.Accepted, "2026-03-31T23:30:00Z", 0, 10 * m, h, "I21.1", "急性下壁心肌梗死"},      // t3
		{w.A, w.T, up, routine, false, referral.Submitted, "2026-04-02T01:00:00Z", 0, 0, 0, "I63.9", "脑梗死"},              // t4: still waiting
		{w.A, w.T, up, emergency, true, referral.Accepted, "2026-04-03T00:00:00Z", 0, 3 * m, 8 * m, "I21.0", "急性前壁心肌梗死"}, // t5
		{w.A, w.T, up, emergency, true, referral.Accepted, "2026-04-04T00:00:00Z", 0, 6 * m, 9 * m, "I21.0", "急性前壁心肌梗死"}, // t6: claim late
		{w.A, w.T, up, urgent, false, referral.Redirected, "2026-04-05T00:00:00Z", 0, 20 * m, 40 * m, "I63.9", "脑梗死"},    // t7: replaced
		{w.A, w.T, up, urgent, false, referral.Claimed, "2026-04-05T00:00:00Z", 40 * m, 10 * m, 0, "I63.9", "脑梗死"},       // t8: its replacement, held undecided
		{w.C, w.T, up, urgent, false, referral.Cancelled, "2026-04-10T03:00:00Z", 0, 0, 0, "I21.0", "心梗"},                // t10: township, cancelled
		// Outside the range: 23:59 on 28 February and 00:00 on 1 May in China.
		{w.A, w.T, up, urgent, false, referral.Accepted, "2026-02-28T15:59:00Z", 0, m, 2 * m, "I21.0", "急性前壁心肌梗死"},
		{w.A, w.T, up, urgent, false, referral.Accepted, "2026-04-30T16:00:00Z", 0, m, 2 * m, "I21.0", "急性前壁心肌梗死"},
		// Outside the office's reach.
		{w.D, w.U, up, urgent, false, referral.Accepted, "2026-03-05T02:00:00Z", 0, m, 2 * m, "I21.0", "急性前壁心肌梗死"},
	}
	st := store.NewReferrals(db)
	ctx := context.Background()
	for i, tk := range tickets {
		sub := utc(tk.submitted)
		q := sub.Add(tk.queued)
		r := referral.Referral{ID: refID(), Direction: tk.dir, Priority: tk.prio, GreenChannel: tk.green,
			PatientID: refID(), ReferringHospitalID: tk.from, ReceivingHospitalID: tk.to, Status: tk.status, Version: 3,
			CreatedBy: refID(), CreatedAt: sub.Add(-time.Hour), UpdatedAt: sub, SubmittedAt: &sub, QueuedAt: &q,
			Diagnoses: []referral.Diagnosis{}, Attachments: []referral.AttachmentRef{}}
		if tk.green {
			r.GreenCategory = referral.ChestPain
		}
		if tk.code != "" {
			r.Diagnoses = []referral.Diagnosis{{Code: tk.code, Text: tk.text}, {Code: "I10", Text: "高血压"}}
		}
		if tk.claim > 0 {
			c := q.Add(tk.claim)
			r.ClaimedAt, r.ClaimedBy = &c, refID()
		}
		if tk.decide > 0 {
			d := q.Add(tk.decide)
			r.DecidedAt, r.DecidedBy = &d, refID()
		}
		if tk.status == referral.Cancelled {
			e := sub.Add(3 * time.Hour)
			r.EndedAt = &e
		}
		if err := st.Create(ctx, r); err != nil {
			t.Fatalf("ticket %d: %v", i, err)
		}
	}
	// A draft never sent counts nowhere.
	now := utc("2026-03-06T00:00:00Z")
	if err := st.Create(ctx, referral.Referral{ID: refID(), Direction: up, PatientID: refID(), ReferringHospitalID: w.A,
		Status: referral.Draft, Version: 1, CreatedBy: refID(), CreatedAt: now, UpdatedAt: now,
		Diagnoses: []referral.Diagnosis{}, Attachments: []referral.AttachmentRef{}}); err != nil {
		t.Fatal(err)
	}
}

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func sec(v int64) *int64 { return &v }

func TestReferralStatsAgainstHandComputedFigures(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newStatsWorld(t, db, 0)
		ctx := context.Background()
		rep, err := w.svc.Report(ctx, w.office, referral.StatsRequest{From: day("2026-03-01"), To: day("2026-04-30"), Period: referral.Month})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Tickets != 11 || rep.Hospitals != 4 || rep.From != "2026-03-01" || rep.To != "2026-04-30" || rep.TimeZone != "Asia/Shanghai" {
			t.Errorf("header: %d tickets of %d hospitals, %s..%s %s; want 11 of 4, 2026-03-01..2026-04-30 Asia/Shanghai",
				rep.Tickets, rep.Hospitals, rep.From, rep.To, rep.TimeZone)
		}

		statuses := func(kv map[string]int) map[string]int {
			out := map[string]int{}
			for _, s := range referral.Statuses {
				out[string(s)] = kv[string(s)]
			}
			return out
		}
		wantPeriods := []referral.PeriodCounts{
			{Label: "2026-03", Start: "2026-03-01", End: "2026-03-31", Total: 4,
				ByDirection: map[string]int{"up": 3, "down": 1},
				ByStatus:    statuses(map[string]int{"accepted": 3, "rejected": 1}),
				ByPriority:  map[string]int{"urgent": 2, "routine": 2, "emergency": 0},
				Breaches:    referral.BreachCounts{Claim: 1, Decision: 2}},
			{Label: "2026-04", Start: "2026-04-01", End: "2026-04-30", Total: 7,
				ByDirection: map[string]int{"up": 7, "down": 0},
				ByStatus:    statuses(map[string]int{"accepted": 3, "submitted": 1, "redirected": 1, "claimed": 1, "cancelled": 1}),
				ByPriority:  map[string]int{"urgent": 4, "routine": 1, "emergency": 2}, Green: 2,
				Breaches: referral.BreachCounts{Claim: 2, Decision: 2}},
		}
		if !reflect.DeepEqual(rep.Periods, wantPeriods) {
			t.Errorf("periods:\n got %+v\nwant %+v", rep.Periods, wantPeriods)
		}

		// Urgent claims 600, 600, 1200, 1800, 5400 s: the median is rank 3,
		// the 90th percentile rank ⌈4.5⌉ = 5.
		wantTimings := []referral.BandTimings{
			{Band: "green", Claim: referral.Spread{N: 2, P50: sec(180), P90: sec(360)}, Decision: referral.Spread{N: 2, P50: sec(480), P90: sec(540)}},
			{Band: "emergency"},
			{Band: "urgent", Claim: referral.Spread{N: 5, P50: sec(1200), P90: sec(5400)}, Decision: referral.Spread{N: 4, P50: sec(3600), P90: sec(18000)}},
			{Band: "routine", Claim: referral.Spread{N: 2, P50: sec(3600), P90: sec(7200)}, Decision: referral.Spread{N: 2, P50: sec(7200), P90: sec(288000)}},
		}
		if !reflect.DeepEqual(rep.Timings, wantTimings) {
			t.Errorf("timings:\n got %s\nwant %s", js(rep.Timings), js(wantTimings))
		}
		wantBreaches := []referral.BandBreaches{
			{Band: "green", Queued: 2, BreachCounts: referral.BreachCounts{Claim: 1}},
			{Band: "emergency"},
			{Band: "urgent", Queued: 6, BreachCounts: referral.BreachCounts{Claim: 1, Decision: 2}},
			{Band: "routine", Queued: 3, BreachCounts: referral.BreachCounts{Claim: 1, Decision: 2}},
		}
		if !reflect.DeepEqual(rep.Breaches, wantBreaches) {
			t.Errorf("breaches:\n got %+v\nwant %+v", rep.Breaches, wantBreaches)
		}

		// The replaced ticket t7 is one referral with its replacement; the
		// township centre is no county hospital.
		wantCounty := referral.CountySeries{Months: []string{"2026-03", "2026-04"}, Hospitals: []referral.CountyCount{
			{HospitalID: w.A, Name: "临溪县人民医院", Counts: []int{2, 5}, Total: 7},
			{HospitalID: w.B, Name: "石门县人民医院", Counts: []int{1, 0}, Total: 1},
		}}
		if !reflect.DeepEqual(rep.UpByCounty, wantCounty) {
			t.Errorf("up-referrals by county:\n got %+v\nwant %+v", rep.UpByCounty, wantCounty)
		}

		// The office cannot list these tickets: counts under 3 are hidden.
		// I21.0 is first on t1, t2, t5, t6 and t10 (the township's); the
		// commonest wording is t1's, t5's and t6's.
		wantTop := referral.DiagnosisList{Items: []referral.DiagnosisCount{{Code: "I21.0", Text: "急性前壁心肌梗死", Count: 5}}, Hidden: 3, MinCount: 3}
		if !reflect.DeepEqual(rep.TopDiagnoses, wantTop) {
			t.Errorf("top diagnoses:\n got %+v\nwant %+v", rep.TopDiagnoses, wantTop)
		}
		wantByCounty := []referral.CountyDiagnoses{
			{HospitalID: w.A, Name: "临溪县人民医院", DiagnosisList: referral.DiagnosisList{
				Items: []referral.DiagnosisCount{{Code: "I21.0", Text: "急性前壁心肌梗死", Count: 4}}, Hidden: 2, MinCount: 3}},
			{HospitalID: w.B, Name: "石门县人民医院", DiagnosisList: referral.DiagnosisList{Items: []referral.DiagnosisCount{}, Hidden: 1, MinCount: 3}},
		}
		if !reflect.DeepEqual(rep.TopByCounty, wantByCounty) {
			t.Errorf("top diagnoses by county:\n got %+v\nwant %+v", rep.TopByCounty, wantByCounty)
		}

		// The read is audited as an aggregate: no patient named.
		if n := len(w.audit.entries); n != 1 {
			t.Fatalf("%d audit entries, want 1", n)
		}
		if e := w.audit.entries[0]; e.Action != referrals.ActionStats || e.PatientID != "" || e.ActorID != w.office.UserID || e.Outcome != audit.Success {
			t.Errorf("audit entry %+v", e)
		}
	})
}

func js(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestReferralStatsOwnHospitalCategoriesAndDirection(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newStatsWorld(t, db, 0)
		ctx := context.Background()
		march, april := day("2026-03-01"), day("2026-04-30")

		// A county doctor reads their own hospital: the tickets it is a party
		// to (t1–t8 and the down-referral t11), every count shown, since the
		// doctor may list those tickets anyway.
		rep, err := w.svc.Report(ctx, w.countyDoc, referral.StatsRequest{From: march, To: april, Period: referral.Quarter})
		if err != nil {
			t.Fatal(err)
		}
		// The range cuts both quarters: Q1 is counted from March, Q2 to April.
		type span struct {
			label, start, end string
			total             int
		}
		var got []span
		for _, p := range rep.Periods {
			got = append(got, span{p.Label, p.Start, p.End, p.Total})
		}
		want := []span{{"2026-Q1", "2026-03-01", "2026-03-31", 3}, {"2026-Q2", "2026-04-01", "2026-04-30", 6}}
		if rep.Tickets != 9 || !reflect.DeepEqual(got, want) {
			t.Errorf("own hospital: %d tickets in %+v; want 9 in %+v", rep.Tickets, got, want)
		}
		wantTop := referral.DiagnosisList{Items: []referral.DiagnosisCount{
			{Code: "I21.0", Text: "急性前壁心肌梗死", Count: 4}, {Code: "I63.9", Text: "脑梗死", Count: 2}}, MinCount: 1}
		rep, err = w.svc.Report(ctx, w.countyDoc, referral.StatsRequest{From: march, To: april, Period: referral.Month, Top: 2})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(rep.TopDiagnoses, wantTop) {
			t.Errorf("own top 2:\n got %+v\nwant %+v", rep.TopDiagnoses, wantTop)
		}

		// By category, I21.0 and I21.1 are one disease.
		rep, err = w.svc.Report(ctx, w.office, referral.StatsRequest{From: march, To: april, Level: referral.ByCategory})
		if err != nil {
			t.Fatal(err)
		}
		wantCat := referral.DiagnosisList{Items: []referral.DiagnosisCount{{Code: "I21", Text: "急性前壁心肌梗死", Count: 6}}, Hidden: 2, MinCount: 3}
		if !reflect.DeepEqual(rep.TopDiagnoses, wantCat) {
			t.Errorf("by category:\n got %+v\nwant %+v", rep.TopDiagnoses, wantCat)
		}

		// Down-referrals only: t11 in March.
		rep, err = w.svc.Report(ctx, w.office, referral.StatsRequest{From: march, To: april, Direction: referral.Down})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Tickets != 1 || rep.Periods[0].ByDirection["down"] != 1 || len(rep.UpByCounty.Hospitals) != 0 {
			t.Errorf("down only: %+v", rep)
		}

		// One day by the week: the Sunday 5 April (China) is in ISO week 14.
		rep, err = w.svc.Report(ctx, w.office, referral.StatsRequest{From: day("2026-04-05"), To: day("2026-04-05"), Period: referral.Week})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Tickets != 2 || len(rep.Periods) != 1 || rep.Periods[0].Label != "2026-W14" || rep.Periods[0].Start != "2026-04-05" || rep.Periods[0].End != "2026-04-05" {
			t.Errorf("one Sunday: %d tickets, %+v", rep.Tickets, rep.Periods)
		}
	})
}

func TestReferralStatsScopeAndBounds(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newStatsWorld(t, db, 5)
		ctx := context.Background()
		march, april := day("2026-03-01"), day("2026-04-30")
		tests := []struct {
			name  string
			p     auth.Principal
			q     referral.StatsRequest
			check func(error) bool
		}{
			{"a county doctor cannot read another county's figures", w.countyDoc,
				referral.StatsRequest{From: march, To: march, HospitalID: w.B}, func(err error) bool { return errors.Is(err, apperr.ErrNotFound) }},
			{"nor its tertiary partner's, beyond its own tickets", w.countyDoc,
				referral.StatsRequest{From: march, To: march, HospitalID: w.T}, func(err error) bool { return errors.Is(err, apperr.ErrNotFound) }},
			{"the office cannot read a hospital beyond its reach", w.office,
				referral.StatsRequest{From: march, To: march, HospitalID: w.D}, func(err error) bool { return errors.Is(err, apperr.ErrNotFound) }},
			{"an administrator reads no clinical figures", auth.Principal{UserID: refID(), HospitalID: w.T, Roles: []auth.Role{auth.Admin}},
				referral.StatsRequest{From: march, To: march}, func(err error) bool { return errors.Is(err, apperr.ErrForbidden) }},
			{"to before from", w.office, referral.StatsRequest{From: april, To: march}, invalidField("to")},
			{"more than three years", w.office, referral.StatsRequest{From: day("2023-03-01"), To: day("2026-03-01")}, tooLarge("to")},
			{"more tickets than one request reads", w.office, referral.StatsRequest{From: march, To: april}, tooLarge("to")},
		}
		for _, tt := range tests {
			if _, err := w.svc.Report(ctx, tt.p, tt.q); !tt.check(err) {
				t.Errorf("%s: %v", tt.name, err)
			}
		}
		// Exactly three years is allowed; the office's hospitals hold only
		// 3 tickets in it (the last on 10 March).
		if _, err := w.svc.Report(ctx, w.office, referral.StatsRequest{From: day("2023-03-11"), To: day("2026-03-10")}); err != nil {
			t.Errorf("three years: %v", err)
		}
		if _, err := w.svc.Report(ctx, w.countyDoc, referral.StatsRequest{From: march, To: march, HospitalID: w.A}); err != nil {
			t.Errorf("own hospital by id: %v", err)
		}
		denied := 0
		for _, e := range w.audit.entries {
			if e.Action == audit.AccessDenied && e.Outcome == audit.Denied {
				denied++
			}
		}
		if denied != 3 {
			t.Errorf("%d denied reads audited, want 3", denied)
		}
	})
}

func invalidField(field string) func(error) bool {
	return func(err error) bool {
		var v apperr.Invalid
		return errors.As(err, &v) && len(v) == 1 && v[0].Field == field
	}
}

func tooLarge(field string) func(error) bool {
	return func(err error) bool {
		var big *apperr.TooLarge
		return errors.As(err, &big) && big.Field == field
	}
}
