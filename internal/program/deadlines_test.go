package program_test

import (
	"slices"
	"testing"
	"time"

	"duikou/internal/program"
)

func TestArrivalIsDueWithinConfiguredDays(t *testing.T) {
	c := program.DefaultConfig()
	if got := c.ArrivalDue("2026-01-28"); got != "2026-02-04" {
		t.Errorf("due: %s, want 2026-02-04 (7 days)", got)
	}
	c.ArrivalDays = 3
	if got := c.ArrivalDue("2026-12-30"); got != "2027-01-02" {
		t.Errorf("due: %s, want 2027-01-02", got)
	}
	for _, tc := range []struct {
		arrived, today string
		want           program.ArrivalStatus
	}{
		{"", "2026-02-04", program.ArrivalPending}, // the due day itself is still on time
		{"", "2026-02-05", program.ArrivalMissing},
		{"2026-02-04", "2026-03-01", program.ArrivalOnTime},
		{"2026-01-28", "2026-01-28", program.ArrivalOnTime},
		{"2026-02-05", "2026-02-05", program.ArrivalLate},
	} {
		if got := program.ArrivalStatusOn("2026-02-04", tc.arrived, tc.today); got != tc.want {
			t.Errorf("arrived %q, today %s: %s, want %s", tc.arrived, tc.today, got, tc.want)
		}
	}
}

func TestTodayIsCountedInShanghai(t *testing.T) {
	// 16:30 UTC on 31 January is 00:30 on 1 February in Shanghai.
	if got := program.Today(time.Date(2026, 1, 31, 16, 30, 0, 0, time.UTC)); got != "2026-02-01" {
		t.Errorf("today: %s", got)
	}
	if got := program.Today(time.Date(2026, 1, 31, 15, 59, 0, 0, time.UTC)); got != "2026-01-31" {
		t.Errorf("today: %s", got)
	}
}

func TestMonthlyEvaluationsAreDueByTheConfiguredDayOfTheNextMonth(t *testing.T) {
	c := program.DefaultConfig()
	for month, want := range map[string]string{"2026-01": "2026-02-10", "2026-12": "2027-01-10"} {
		if got := c.EvaluationDue(month); got != want {
			t.Errorf("%s: due %s, want %s", month, got, want)
		}
	}
	c.EvaluationDueDay = 5
	if got := c.EvaluationDue("2026-02"); got != "2026-03-05" {
		t.Errorf("due day 5: %s", got)
	}

	p := program.Posting{ID: "p1", StartsOn: "2026-01-15", EndsOn: "2026-04-14"}
	if got := program.MonthsOf(p.StartsOn, p.EndsOn); !slices.Equal(got, []string{"2026-01", "2026-02", "2026-03", "2026-04"}) {
		t.Errorf("months: %v", got)
	}
	c = program.DefaultConfig()
	for _, tc := range []struct {
		today string
		filed []string
		want  []string
	}{
		{"2026-02-10", nil, nil},                 // January's is due today: not yet overdue
		{"2026-02-11", nil, []string{"2026-01"}}, // one day late
		{"2026-02-11", []string{"2026-01"}, nil}, // filed
		{"2026-04-11", []string{"2026-02"}, []string{"2026-01", "2026-03"}},
		{"2026-06-01", []string{"2026-01", "2026-02", "2026-03"}, []string{"2026-04"}},
	} {
		filed := map[string]bool{}
		for _, m := range tc.filed {
			filed[m] = true
		}
		var got []string
		for _, o := range c.OverdueEvaluations(p, filed, tc.today) {
			got = append(got, o.Month)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("today %s, filed %v: overdue %v, want %v", tc.today, tc.filed, got, tc.want)
		}
	}
}

func TestAttendanceRatePerPostingAndMonth(t *testing.T) {
	p := program.Posting{ID: "p1", StartsOn: "2026-03-10", EndsOn: "2026-09-09"}
	by := "office"
	days := []program.Attendance{
		{Day: "2026-03-10", Status: program.Present, ConfirmedBy: &by},
		{Day: "2026-03-11", Status: program.Present},
		{Day: "2026-03-12", Status: program.Leave, Reason: "病假"},
		{Day: "2026-03-09", Status: program.Present}, // before the posting: not counted
	}
	// Up to 13 March: four days of posting, two present, one leave, one unrecorded.
	r := program.RateOf(p, "2026-03", days, "2026-03-13")
	if r.WorkDays != 4 || r.Present != 2 || r.Confirmed != 1 || r.Leave != 1 || r.Absent != 1 || r.Rate != 0.5 {
		t.Errorf("rate: %+v", r)
	}
	// The whole of March: 22 days from the 10th.
	r = program.RateOf(p, "2026-03", days, "2026-12-31")
	if r.WorkDays != 22 || r.Present != 2 {
		t.Errorf("whole month: %+v", r)
	}
	if r := program.RateOf(p, "2026-02", days, "2026-12-31"); r.WorkDays != 0 || r.Rate != 0 {
		t.Errorf("a month before the posting: %+v", r)
	}
}

func TestScheduleIsPublishedAWeekAhead(t *testing.T) {
	if got := program.DefaultConfig().ScheduleOpensOn("2026-12-01"); got != "2026-12-08" {
		t.Errorf("opens on %s", got)
	}
}
