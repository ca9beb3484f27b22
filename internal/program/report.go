package program

// Report periods, the compliance checklist and the half-year report's
// deadlines. The figures themselves are gathered by the service (package
// programs); what is judged here needs no store.

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"duikou/internal/directory"
)

func titleOf(p Posting) directory.Title { return directory.Title(p.Title) }

// PeriodKind is how long a report's period is.
type PeriodKind string

const (
	MonthPeriod   PeriodKind = "month"   // 2026-03
	QuarterPeriod PeriodKind = "quarter" // 2026-Q1
	HalfPeriod    PeriodKind = "half"    // 2026-H1
	YearPeriod    PeriodKind = "year"    // 2026
)

// Period is a calendar month, quarter, half year or year in Zone; From and
// To are its first and last day. A label names it: 2026-03, 2026-Q1,
// 2026-H2, 2026. Nothing longer than a year is reported at once.
type Period struct {
	Kind  PeriodKind `json:"kind"`
	Label string     `json:"label"`
	From  string     `json:"from"`
	To    string     `json:"to"`
}

// ParsePeriod reads a period label.
func ParsePeriod(label string) (Period, bool) {
	year, rest, _ := strings.Cut(label, "-")
	y, err := strconv.Atoi(year)
	if err != nil || len(year) != 4 || y < 2000 || y > 2100 {
		return Period{}, false
	}
	mk := func(kind PeriodKind, month, months int) (Period, bool) {
		start := time.Date(y, time.Month(month), 1, 0, 0, 0, 0, Zone)
		end := start.AddDate(0, months, -1)
		return Period{Kind: kind, Label: label, From: start.Format(DayLayout), To: end.Format(DayLayout)}, true
	}
	switch {
	case rest == "" && !strings.Contains(label, "-"):
		return mk(YearPeriod, 1, 12)
	case rest == "H1" || rest == "H2":
		return mk(HalfPeriod, 1+6*int(rest[1]-'1'), 6)
	case len(rest) == 2 && rest[0] == 'Q' && rest[1] >= '1' && rest[1] <= '4':
		return mk(QuarterPeriod, 1+3*int(rest[1]-'1'), 3)
	case len(rest) == 2:
		m, err := strconv.Atoi(rest)
		if err != nil || m < 1 || m > 12 {
			return Period{}, false
		}
		return mk(MonthPeriod, m, 1)
	}
	return Period{}, false
}

// Start is the period's first instant; End the instant after its last day.
func (p Period) Start() time.Time { t, _ := ParseDay(p.From); return t }
func (p Period) End() time.Time   { t, _ := ParseDay(p.To); return t.AddDate(0, 0, 1) }

// Months lists the months (YYYY-MM) of the period.
func (p Period) Months() []string { return MonthsOf(p.From, p.To) }

// Contains reports whether day is within the period.
func (p Period) Contains(day string) bool { return day >= p.From && day <= p.To }

// Overlaps reports whether from..to (days, both included) meets the period.
func (p Period) Overlaps(from, to string) bool { return from <= p.To && to >= p.From }

// Year is the calendar year the period lies in.
func (p Period) Year() Period { y, _ := ParsePeriod(p.From[:4]); return y }

// Parts splits a year into its quarters (kind quarter) or halves (half).
func (p Period) Parts(kind PeriodKind) []Period {
	var out []Period
	y := p.From[:4]
	switch kind {
	case QuarterPeriod:
		for q := 1; q <= 4; q++ {
			x, _ := ParsePeriod(fmt.Sprintf("%s-Q%d", y, q))
			out = append(out, x)
		}
	case HalfPeriod:
		for h := 1; h <= 2; h++ {
			x, _ := ParsePeriod(fmt.Sprintf("%s-H%d", y, h))
			out = append(out, x)
		}
	}
	return out
}

// Light is a compliance item's colour.
type Light string

// Green: met. Amber: not met yet while the period in which it must be met
// is still running, or met only because the program office accepted a
// breach with a reason (an override). Red: a period ended without it, or a
// breach nobody accepted.
const (
	Green Light = "green"
	Amber Light = "amber"
	Red   Light = "red"
)

// CheckItem is one line of the compliance checklist.
type CheckItem struct {
	Code   string `json:"code"`
	Label  string `json:"label"`
	Light  Light  `json:"light"`
	Reason string `json:"reason"`
}

// Compliance item codes.
const (
	CheckActivity    = "activity_each_quarter"
	CheckFreeClinic  = "free_clinic_each_half_year"
	CheckTraining    = "training_each_quarter"
	CheckStudy       = "two_staff_in_study_a_year"
	CheckComposition = "team_composition"
	CheckAgreement   = "agreement"
	CheckTeams       = "teams_per_year"
	CheckDays        = "days_of_service_per_year"
	CheckTrainees    = "trainees_per_year"
)

// PartFigures are the counts of one quarter or half year that the minimums
// ask for: activities (outpatient clinics, ward rounds, operations,
// surgical demonstrations, teaching rounds), training (lectures, teaching
// rounds, people trained) and free clinics (义诊).
type PartFigures struct {
	Period      Period `json:"period"`
	Activities  int    `json:"activities"`
	Training    int    `json:"training"`
	FreeClinics int    `json:"free_clinics"`
}

// ComplianceInput is what a pairing did in a year, as known on Today.
type ComplianceInput struct {
	Year        Period
	Today       string
	Quarters    []PartFigures // the year's four quarters
	Halves      []PartFigures // its two halves
	Postings    []Posting     // postings meeting the year
	Trainees    []Trainee     // stays meeting the year
	PresentDays int           // days of service: present days of the year's postings
	Agreement   *Agreement    // nil: none on file
}

// MinStudyStaff is how many recipient staff a year study at the supporting
// hospital for at least StudyMonths.
const (
	MinStudyStaff = 2
	StudyMonths   = 1
)

// Compliance judges a pairing's year against the program's minimums and
// its agreement's commitments.
func Compliance(in ComplianceInput) []CheckItem {
	yearOver := in.Today > in.Year.To
	shortfall := func(code, label string, have, want int, what string) CheckItem {
		it := CheckItem{Code: code, Label: label}
		switch {
		case have >= want:
			it.Light, it.Reason = Green, fmt.Sprintf("%d %s (at least %d)", have, what, want)
		case yearOver:
			it.Light, it.Reason = Red, fmt.Sprintf("only %d %s in %s; at least %d required", have, what, in.Year.Label, want)
		default:
			it.Light, it.Reason = Amber, fmt.Sprintf("%d %s so far; %d required by %s", have, what, want, in.Year.To)
		}
		return it
	}
	out := []CheckItem{
		parts(CheckActivity, "每季度至少开展一次门诊、查房、教学或手术", in.Quarters, in.Today, func(f PartFigures) int { return f.Activities }, "no clinic, ward round, teaching or operation"),
		parts(CheckFreeClinic, "每半年至少一次义诊", in.Halves, in.Today, func(f PartFigures) int { return f.FreeClinics }, "no free clinic"),
		parts(CheckTraining, "每季度至少一次培训", in.Quarters, in.Today, func(f PartFigures) int { return f.Training }, "no training"),
	}

	// Study: distinct recipient staff whose stay, meeting the year, lasts a
	// month or more.
	studied := map[string]bool{}
	for _, t := range in.Trainees {
		start, ok1 := ParseDay(t.StartsOn)
		end, ok2 := ParseDay(t.EndsOn)
		if ok1 && ok2 && in.Year.Overlaps(t.StartsOn, t.EndsOn) && !end.Before(addMonths(start, StudyMonths).AddDate(0, 0, -1)) {
			studied[t.StaffID] = true
		}
	}
	out = append(out, shortfall(CheckStudy, "每年至少2名受援医院人员进修一个月以上", len(studied), MinStudyStaff, "staff studied a month or more"))
	out = append(out, composition(in))

	if in.Agreement == nil {
		return append(out, CheckItem{Code: CheckAgreement, Label: "对口支援协议", Light: Red, Reason: "no agreement on file"})
	}
	c := in.Agreement.Terms.Commitments
	teams := map[string]bool{}
	for _, p := range in.Postings {
		teams[p.Team] = true
	}
	trainees := map[string]bool{}
	for _, t := range in.Trainees {
		if in.Year.Contains(t.StartsOn) {
			trainees[t.StaffID] = true
		}
	}
	return append(out,
		shortfall(CheckTeams, "协议承诺：每年派出医疗队", len(teams), c.TeamsPerYear, "teams"),
		shortfall(CheckDays, "协议承诺：每年驻点服务天数", in.PresentDays, c.DaysPerYear, "days of service"),
		shortfall(CheckTrainees, "协议承诺：每年接收进修人员", len(trainees), c.TraineesPerYear, "trainees"))
}

// parts judges a minimum that each quarter (or half) must meet: red when a
// part ended without it, amber when the running part has none yet, parts
// not begun are not judged.
func parts(code, label string, ps []PartFigures, today string, count func(PartFigures) int, none string) CheckItem {
	it := CheckItem{Code: code, Label: label, Light: Green}
	var red, amber, met []string
	for _, p := range ps {
		switch {
		case p.Period.From > today:
		case count(p) > 0:
			met = append(met, p.Period.Label)
		case p.Period.To < today:
			red = append(red, p.Period.Label)
		default:
			amber = append(amber, p.Period.Label)
		}
	}
	switch {
	case len(red) > 0:
		it.Light, it.Reason = Red, none+" in "+strings.Join(red, ", ")
	case len(amber) > 0:
		it.Light, it.Reason = Amber, strings.Join(amber, ", ")+" still running with "+none+" yet"
	case len(met) == 0:
		it.Light, it.Reason = Amber, "the year has not begun"
	default:
		it.Reason = "met in " + strings.Join(met, ", ")
	}
	return it
}

// composition re-runs the posting rules over the year's postings as they
// stand now (a team's associate chief may have left since a posting was
// made): a breach the office accepted with a reason is amber, one nobody
// accepted red.
func composition(in ComplianceInput) CheckItem {
	it := CheckItem{Code: CheckComposition, Label: "医疗队组成：每队至少1名副主任医师，队员主治医师以上，派驻至少6个月", Light: Green}
	if len(in.Postings) == 0 {
		it.Light, it.Reason = Amber, "no posting in "+in.Year.Label+" yet"
		if in.Today > in.Year.To {
			it.Light = Red
		}
		return it
	}
	var red, amber []string
	note := func(p Posting, w []Warning) {
		for _, x := range w {
			msg := p.StaffName + ": " + x.Message
			if p.Override != nil {
				amber = append(amber, msg+" (accepted: "+p.Override.Reason+")")
			} else {
				red = append(red, msg)
			}
		}
	}
	teams := map[string][]Posting{}
	var order []string
	for _, p := range in.Postings {
		note(p, CheckTitle(titleOf(p)))
		note(p, CheckDuration(p.StartsOn, p.EndsOn))
		if _, ok := teams[p.Team]; !ok {
			order = append(order, p.Team)
		}
		teams[p.Team] = append(teams[p.Team], p)
	}
	for _, team := range order {
		ps := teams[team]
		titles := make([]directory.Title, 0, len(ps))
		accepted := true
		for _, p := range ps {
			titles = append(titles, titleOf(p))
			accepted = accepted && p.Override != nil
		}
		for _, w := range CheckTeam(team, titles) {
			if accepted {
				amber = append(amber, w.Message+" (accepted by the program office)")
			} else {
				red = append(red, w.Message)
			}
		}
	}
	switch {
	case len(red) > 0:
		it.Light, it.Reason = Red, strings.Join(red, "; ")
	case len(amber) > 0:
		it.Light, it.Reason = Amber, strings.Join(amber, "; ")
	default:
		it.Reason = fmt.Sprintf("%d postings in %d teams meet the rules", len(in.Postings), len(teams))
	}
	return it
}

// Half-year reports (半年报) are due on 20 June and 20 December; program
// offices see a reminder from ReminderLeadDays before until the due day.
const (
	HalfYearDueDay   = 20
	ReminderLeadDays = 14
)

// HalfYearDue is the half year whose report is due next on or after today:
// its period, due day and the first day its reminder shows.
func HalfYearDue(today string) (half Period, dueOn, remindFrom string) {
	t, ok := ParseDay(today)
	if !ok {
		return Period{}, "", ""
	}
	y := t.Year()
	for _, c := range []struct {
		year  int
		month time.Month
		label string
	}{{y, time.June, "H1"}, {y, time.December, "H2"}, {y + 1, time.June, "H1"}} {
		due := time.Date(c.year, c.month, HalfYearDueDay, 0, 0, 0, 0, Zone).Format(DayLayout)
		if due >= today {
			half, _ = ParsePeriod(fmt.Sprintf("%d-%s", c.year, c.label))
			return half, due, AddDays(due, -ReminderLeadDays)
		}
	}
	return Period{}, "", ""
}

// Reminder is a half-year report a program office should file.
type Reminder struct {
	PairingID            string `json:"pairing_id"`
	SupportingHospitalID string `json:"supporting_hospital_id"`
	RecipientHospitalID  string `json:"recipient_hospital_id"`
	Period               Period `json:"period"`
	DueOn                string `json:"due_on"`
	RemindFrom           string `json:"remind_from"`
	DaysLeft             int    `json:"days_left"`
}

// ReminderOn is the reminder of a pairing's half-year report shown on
// today, if one is shown.
func ReminderOn(today string) (Reminder, bool) {
	half, due, from := HalfYearDue(today)
	if due == "" || today < from {
		return Reminder{}, false
	}
	t, _ := ParseDay(today)
	d, _ := ParseDay(due)
	return Reminder{Period: half, DueOn: due, RemindFrom: from, DaysLeft: int(d.Sub(t).Hours()+12) / 24}, true
}
