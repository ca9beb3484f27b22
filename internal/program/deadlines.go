package program

import (
	"errors"
	"fmt"
	"time"
)

// Config is the program's configurable terms.
type Config struct {
	// ArrivalDays: a doctor reports for duty within this many days after
	// the posting starts (the start day itself is day 0).
	ArrivalDays int
	// EvaluationDueDay: a month's evaluation is due by this day of the next
	// month, in Zone.
	EvaluationDueDay int
	// ScheduleLeadDays: a clinic is published at least this many days
	// before it is held (提前一周公示).
	ScheduleLeadDays int
	// Criteria are what the monthly evaluation scores.
	Criteria []Criterion
}

// Criterion is one line of the monthly evaluation, scored 0..Max.
type Criterion struct {
	Code  string `json:"code"`
	Label string `json:"label"`
	Max   int    `json:"max"`
}

// DefaultConfig is what the program documents ask for.
func DefaultConfig() Config {
	return Config{
		ArrivalDays:      7,
		EvaluationDueDay: 10,
		ScheduleLeadDays: 7,
		Criteria: []Criterion{
			{"discipline", "劳动纪律", 20},
			{"ethics", "医德医风", 20},
			{"clinical", "医疗工作", 30},
			{"teaching", "带教培训", 30},
		},
	}
}

// Validate checks c.
func (c Config) Validate() error {
	switch {
	case c.ArrivalDays < 0 || c.ArrivalDays > 60:
		return errors.New("program: arrival days must be 0–60")
	case c.EvaluationDueDay < 1 || c.EvaluationDueDay > 28:
		return errors.New("program: evaluation due day must be 1–28")
	case c.ScheduleLeadDays < 0 || c.ScheduleLeadDays > 60:
		return errors.New("program: schedule lead days must be 0–60")
	case len(c.Criteria) == 0:
		return errors.New("program: at least one evaluation criterion")
	}
	seen := map[string]bool{}
	for _, cr := range c.Criteria {
		if cr.Code == "" || cr.Max <= 0 || seen[cr.Code] {
			return fmt.Errorf("program: criterion %q needs a unique code and a positive maximum", cr.Code)
		}
		seen[cr.Code] = true
	}
	return nil
}

// ArrivalStatus is how a posting's arrival stands on a day.
type ArrivalStatus string

const (
	ArrivalPending ArrivalStatus = "pending" // not yet due
	ArrivalOnTime  ArrivalStatus = "on_time"
	ArrivalLate    ArrivalStatus = "late"    // confirmed, after the due day
	ArrivalMissing ArrivalStatus = "missing" // due day passed, none confirmed
)

// ArrivalDue is the last day a posting starting on startsOn may report.
func (c Config) ArrivalDue(startsOn string) string { return AddDays(startsOn, c.ArrivalDays) }

// ArrivalStatusOn judges an arrival due on dueOn as of today: arrivedOn ""
// means none confirmed yet.
func ArrivalStatusOn(dueOn, arrivedOn, today string) ArrivalStatus {
	switch {
	case arrivedOn != "" && arrivedOn <= dueOn:
		return ArrivalOnTime
	case arrivedOn != "":
		return ArrivalLate
	case today > dueOn:
		return ArrivalMissing
	}
	return ArrivalPending
}

// EvaluationDue is the day the evaluation of month (YYYY-MM) is due: the
// configured day of the next month.
func (c Config) EvaluationDue(month string) string {
	m, ok := ParseMonth(month)
	if !ok {
		return ""
	}
	return m.AddDate(0, 1, c.EvaluationDueDay-1).Format(DayLayout)
}

// MonthsOf lists the months a posting from startsOn to endsOn touches.
func MonthsOf(startsOn, endsOn string) []string {
	start, ok1 := ParseDay(startsOn)
	end, ok2 := ParseDay(endsOn)
	if !ok1 || !ok2 || end.Before(start) {
		return nil
	}
	var out []string
	for m := time.Date(start.Year(), start.Month(), 1, 0, 0, 0, 0, Zone); !m.After(end); m = m.AddDate(0, 1, 0) {
		out = append(out, m.Format(MonthLayout))
	}
	return out
}

// OverdueEvaluation is a month whose evaluation is past due and not filed.
type OverdueEvaluation struct {
	PostingID string `json:"posting_id"`
	Month     string `json:"month"`
	DueOn     string `json:"due_on"`
}

// OverdueEvaluations lists, as of today, the months of a posting whose
// evaluation was due before today and is not among filed.
func (c Config) OverdueEvaluations(p Posting, filed map[string]bool, today string) []OverdueEvaluation {
	var out []OverdueEvaluation
	for _, m := range MonthsOf(p.StartsOn, p.EndsOn) {
		due := c.EvaluationDue(m)
		if !filed[m] && today > due {
			out = append(out, OverdueEvaluation{PostingID: p.ID, Month: m, DueOn: due})
		}
	}
	return out
}

// ScheduleOpensOn is the first day a clinic may be held when published on
// day publishedOn.
func (c Config) ScheduleOpensOn(publishedOn string) string {
	return AddDays(publishedOn, c.ScheduleLeadDays)
}

// AttendanceRate is one posting's attendance in one month.
type AttendanceRate struct {
	PostingID string  `json:"posting_id"`
	Month     string  `json:"month"`
	WorkDays  int     `json:"work_days"` // days of the posting in the month up to today
	Present   int     `json:"present"`
	Confirmed int     `json:"confirmed"` // present days the recipient confirmed
	Leave     int     `json:"leave"`
	Absent    int     `json:"absent"` // recorded absent or nothing recorded
	Rate      float64 `json:"rate"`   // present ÷ work days, 0 when none
}

// RateOf computes the attendance of a posting in month (YYYY-MM) from its
// recorded days, counting days of the posting up to today. Every calendar
// day counts: dispatched doctors work the recipient's roster, weekends
// included, and a day off is recorded as leave.
func RateOf(p Posting, month string, days []Attendance, today string) AttendanceRate {
	r := AttendanceRate{PostingID: p.ID, Month: month}
	m, ok := ParseMonth(month)
	if !ok {
		return r
	}
	byDay := map[string]Attendance{}
	for _, a := range days {
		byDay[a.Day] = a
	}
	for d := m; d.Month() == m.Month(); d = d.AddDate(0, 0, 1) {
		day := d.Format(DayLayout)
		if day < p.StartsOn || day > p.EndsOn || day > today {
			continue
		}
		r.WorkDays++
		a, ok := byDay[day]
		switch {
		case ok && a.Status == Present:
			r.Present++
			if a.ConfirmedBy != nil {
				r.Confirmed++
			}
		case ok && a.Status == Leave:
			r.Leave++
		default:
			r.Absent++
		}
	}
	if r.WorkDays > 0 {
		r.Rate = float64(r.Present) / float64(r.WorkDays)
	}
	return r
}
