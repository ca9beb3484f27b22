package program

import (
	"strings"
	"testing"
	"time"
)

func TestPeriodLabelsNameCalendarPeriodsInShanghai(t *testing.T) {
	for _, c := range []struct {
		label    string
		kind     PeriodKind
		from, to string
	}{
		{"2026", YearPeriod, "2026-01-01", "2026-12-31"},
		{"2026-H1", HalfPeriod, "2026-01-01", "2026-06-30"},
		{"2026-H2", HalfPeriod, "2026-07-01", "2026-12-31"},
		{"2026-Q1", QuarterPeriod, "2026-01-01", "2026-03-31"},
		{"2024-Q1", QuarterPeriod, "2024-01-01", "2024-03-31"},
		{"2026-Q4", QuarterPeriod, "2026-10-01", "2026-12-31"},
		{"2024-02", MonthPeriod, "2024-02-01", "2024-02-29"},
	} {
		p, ok := ParsePeriod(c.label)
		if !ok || p.Kind != c.kind || p.From != c.from || p.To != c.to {
			t.Errorf("%s: got %+v %v", c.label, p, ok)
		}
	}
	for _, bad := range []string{"", "26", "2026-H3", "2026-Q0", "2026-13", "2026-1", "2026-03-01", "1999", "abcd"} {
		if _, ok := ParsePeriod(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
	p, _ := ParsePeriod("2026-03")
	if got := p.Start().UTC(); !got.Equal(time.Date(2026, 2, 28, 16, 0, 0, 0, time.UTC)) {
		t.Errorf("start of March in Shanghai is %v", got)
	}
	if got := p.End().UTC(); !got.Equal(time.Date(2026, 3, 31, 16, 0, 0, 0, time.UTC)) {
		t.Errorf("end of March in Shanghai is %v", got)
	}
}

func TestHalfYearReportsAreDueOn20JuneAnd20DecemberWithTwoWeeksReminder(t *testing.T) {
	for _, c := range []struct {
		today, half, due string
		shown            bool
		daysLeft         int
	}{
		{"2026-06-05", "2026-H1", "2026-06-20", false, 0},
		{"2026-06-06", "2026-H1", "2026-06-20", true, 14},
		{"2026-06-20", "2026-H1", "2026-06-20", true, 0},
		{"2026-06-21", "2026-H2", "2026-12-20", false, 0},
		{"2026-12-06", "2026-H2", "2026-12-20", true, 14},
		{"2026-12-19", "2026-H2", "2026-12-20", true, 1},
		{"2026-12-21", "2027-H1", "2027-06-20", false, 0},
	} {
		half, due, _ := HalfYearDue(c.today)
		if half.Label != c.half || due != c.due {
			t.Errorf("%s: due %s %s, want %s %s", c.today, half.Label, due, c.half, c.due)
		}
		r, shown := ReminderOn(c.today)
		if shown != c.shown || (shown && (r.DaysLeft != c.daysLeft || r.Period.Label != c.half)) {
			t.Errorf("%s: reminder %+v shown=%v, want shown=%v with %d days left", c.today, r, shown, c.shown, c.daysLeft)
		}
	}
}

// year2026 is a pairing's 2026 with every minimum met, as of 15 May.
func year2026(today string) ComplianceInput {
	y, _ := ParsePeriod("2026")
	in := ComplianceInput{Year: y, Today: today, PresentDays: 200,
		Agreement: &Agreement{Terms: Terms{Commitments: Commitments{TeamsPerYear: 1, DaysPerYear: 180, TraineesPerYear: 2}}}}
	for _, q := range y.Parts(QuarterPeriod) {
		in.Quarters = append(in.Quarters, PartFigures{Period: q, Activities: 3, Training: 1})
	}
	for _, h := range y.Parts(HalfPeriod) {
		in.Halves = append(in.Halves, PartFigures{Period: h, FreeClinics: 1})
	}
	in.Postings = []Posting{
		{StaffName: "李副主任", Title: "associate_chief_physician", Team: "第一批", StartsOn: "2026-01-01", EndsOn: "2026-06-30"},
		{StaffName: "王主治", Title: "attending_physician", Team: "第一批", StartsOn: "2026-01-01", EndsOn: "2026-06-30"},
	}
	in.Trainees = []Trainee{
		{StaffID: "a", StartsOn: "2026-03-01", EndsOn: "2026-03-31"},
		{StaffID: "b", StartsOn: "2026-04-01", EndsOn: "2026-06-30"},
	}
	return in
}

func TestComplianceChecklistIsGreenAmberOrRedWithTheReason(t *testing.T) {
	for _, c := range []struct {
		name   string
		today  string
		change func(*ComplianceInput)
		code   string
		light  Light
		reason string
	}{
		{"every minimum met", "2026-12-31", func(*ComplianceInput) {}, CheckActivity, Green, "met in 2026-Q1"},
		{"a quarter ended without activity", "2026-05-15", func(in *ComplianceInput) { in.Quarters[0].Activities = 0 }, CheckActivity, Red, "in 2026-Q1"},
		{"the running quarter without activity yet", "2026-05-15", func(in *ComplianceInput) { in.Quarters[1].Activities = 0 }, CheckActivity, Amber, "2026-Q2 still running"},
		{"quarters not begun are not judged", "2026-05-15", func(in *ComplianceInput) { in.Quarters[3].Activities = 0 }, CheckActivity, Green, ""},
		{"no free clinic in the first half, ended", "2026-07-01", func(in *ComplianceInput) { in.Halves[0].FreeClinics = 0 }, CheckFreeClinic, Red, "no free clinic in 2026-H1"},
		{"no free clinic yet, half running", "2026-05-15", func(in *ComplianceInput) { in.Halves[0].FreeClinics = 0 }, CheckFreeClinic, Amber, "2026-H1"},
		{"no training in Q2, ended", "2026-07-02", func(in *ComplianceInput) { in.Quarters[1].Training = 0 }, CheckTraining, Red, "no training in 2026-Q2"},
		{"two staff studied a month", "2026-05-15", func(*ComplianceInput) {}, CheckStudy, Green, "2 staff"},
		{"a stay one day short of a month", "2026-05-15", func(in *ComplianceInput) { in.Trainees[0].EndsOn = "2026-03-30" }, CheckStudy, Amber, "1 staff"},
		{"one staff studied in a year ended", "2027-01-05", func(in *ComplianceInput) { in.Trainees[1].StaffID = "a" }, CheckStudy, Red, "only 1 staff"},
		{"team as the rules ask", "2026-05-15", func(*ComplianceInput) {}, CheckComposition, Green, "2 postings in 1 teams"},
		{"a resident posted without override", "2026-05-15", func(in *ComplianceInput) { in.Postings[1].Title = "resident_physician" }, CheckComposition, Red, "王主治: title"},
		{"a short posting accepted with a reason", "2026-05-15", func(in *ComplianceInput) {
			in.Postings[1].EndsOn = "2026-03-31"
			in.Postings[1].Override = &Override{Reason: "麻醉科缺人"}
		}, CheckComposition, Amber, "accepted: 麻醉科缺人"},
		{"a team without associate chief", "2026-05-15", func(in *ComplianceInput) { in.Postings = in.Postings[1:] }, CheckComposition, Red, "no 副主任医师"},
		{"a team without associate chief, accepted", "2026-05-15", func(in *ComplianceInput) {
			in.Postings = in.Postings[1:]
			in.Postings[0].Override = &Override{Reason: "县里急需"}
		}, CheckComposition, Amber, "accepted by the program office"},
		{"no agreement on file", "2026-05-15", func(in *ComplianceInput) { in.Agreement = nil }, CheckAgreement, Red, "no agreement"},
		{"days of service short, year running", "2026-05-15", func(in *ComplianceInput) { in.PresentDays = 60 }, CheckDays, Amber, "60 days of service so far"},
		{"days of service short, year ended", "2027-01-01", func(in *ComplianceInput) { in.PresentDays = 60 }, CheckDays, Red, "only 60 days"},
		{"teams committed and sent", "2026-05-15", func(*ComplianceInput) {}, CheckTeams, Green, "1 teams"},
		{"trainees committed but one taken", "2027-01-01", func(in *ComplianceInput) { in.Trainees = in.Trainees[:1] }, CheckTrainees, Red, "only 1 trainees"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := year2026(c.today)
			c.change(&in)
			items := Compliance(in)
			for _, it := range items {
				if it.Code != c.code {
					continue
				}
				if it.Light != c.light || !strings.Contains(it.Reason, c.reason) {
					t.Errorf("%s: %s %q, want %s containing %q", c.code, it.Light, it.Reason, c.light, c.reason)
				}
				return
			}
			t.Errorf("no item %s in %+v", c.code, items)
		})
	}
}
