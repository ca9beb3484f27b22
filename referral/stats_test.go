package referral

import (
	"testing"
	"time"
)

func TestPeriodsRunOnChinasCalendar(t *testing.T) {
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name   string
		period Period
		at     string
		label  string
		start  string // in China
		next   string
	}{
		{"23:30 UTC on the last day of March is April in China", Month, "2026-03-31T23:30:00Z", "2026-04", "2026-04-01", "2026-05-01"},
		{"15:59 UTC on the last day of March is still March", Month, "2026-03-31T15:59:59Z", "2026-03", "2026-03-01", "2026-04-01"},
		{"16:00 UTC is midnight in China: the next day", Day, "2026-02-28T16:00:00Z", "2026-03-01", "2026-03-01", "2026-03-02"},
		{"a Sunday evening in China belongs to the week of the Monday before", Week, "2026-03-08T13:00:00Z", "2026-W10", "2026-03-02", "2026-03-09"},
		{"the same instant an hour later is Monday of the next week", Week, "2026-03-08T16:30:00Z", "2026-W11", "2026-03-09", "2026-03-16"},
		{"ISO week 1 of 2026 starts in December 2025", Week, "2025-12-29T02:00:00Z", "2026-W01", "2025-12-29", "2026-01-05"},
		{"ISO week 53 of 2026 reaches into January 2027", Week, "2027-01-02T02:00:00Z", "2026-W53", "2026-12-28", "2027-01-04"},
		{"the third quarter starts in July", Quarter, "2026-09-30T12:00:00Z", "2026-Q3", "2026-07-01", "2026-10-01"},
		{"New Year's Eve 20:00 UTC is the next year in China", Year, "2026-12-31T20:00:00Z", "2027", "2027-01-01", "2028-01-01"},
		{"quarter four ends with December", Quarter, "2026-12-31T15:00:00Z", "2026-Q4", "2026-10-01", "2027-01-01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.period.Start(utc(tt.at), China)
			if got := tt.period.Label(s); got != tt.label {
				t.Errorf("label %s, want %s", got, tt.label)
			}
			if got := s.Format(time.DateOnly); got != tt.start || s.Hour() != 0 || s.Location() != China {
				t.Errorf("start %s, want midnight of %s in China", s, tt.start)
			}
			if got := tt.period.Next(s).Format(time.DateOnly); got != tt.next {
				t.Errorf("next %s, want %s", got, tt.next)
			}
		})
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	ten := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := []struct {
		sample []int64
		p      float64
		want   int64
		ok     bool
	}{
		{ten, 50, 5, true},  // rank ⌈5⌉ = 5
		{ten, 90, 9, true},  // rank ⌈9⌉ = 9
		{ten, 91, 10, true}, // rank ⌈9.1⌉ = 10
		{ten, 100, 10, true},
		{[]int64{60, 120, 300}, 50, 120, true}, // rank ⌈1.5⌉ = 2
		{[]int64{60, 120, 300}, 90, 300, true}, // rank ⌈2.7⌉ = 3
		{[]int64{42}, 90, 42, true},
		{[]int64{7, 9}, 50, 7, true}, // an observed value, never the mean 8
		{nil, 50, 0, false},
		{ten, 0, 0, false},
	}
	for _, tt := range tests {
		got, ok := Percentile(tt.sample, tt.p)
		if got != tt.want || ok != tt.ok {
			t.Errorf("p%v of %v: %d %v, want %d %v", tt.p, tt.sample, got, ok, tt.want, tt.ok)
		}
	}
}

func TestOverrunsJudgeDoneStepsByTheirTimeAndOpenOnesAtAsOf(t *testing.T) {
	d := DefaultDeadlines() // urgent: claim 1 h, decide 4 h
	q := time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := q.Add(d); return &v }
	asOf := q.Add(10 * time.Hour)
	tests := []struct {
		name          string
		r             Referral
		claim, decide bool
	}{
		{"claimed and decided in time", Referral{Status: Accepted, QueuedAt: at(0), ClaimedAt: at(time.Hour), DecidedAt: at(4 * time.Hour)}, false, false},
		{"claimed a second late, decided in time", Referral{Status: Rejected, QueuedAt: at(0), ClaimedAt: at(time.Hour + time.Second), DecidedAt: at(2 * time.Hour)}, true, false},
		{"decided late", Referral{Status: Redirected, QueuedAt: at(0), ClaimedAt: at(time.Minute), DecidedAt: at(5 * time.Hour)}, false, true},
		{"still waiting unclaimed past both deadlines", Referral{Status: Submitted, QueuedAt: at(0)}, true, true},
		{"claimed in time, held undecided past the decision deadline", Referral{Status: Claimed, QueuedAt: at(0), ClaimedAt: at(time.Minute)}, false, true},
		{"waiting, deadline not yet due at asOf", Referral{Status: Submitted, QueuedAt: at(9*time.Hour + 30*time.Minute)}, false, false},
		{"cancelled unclaimed: the claim is not judged", Referral{Status: Cancelled, QueuedAt: at(0)}, false, false},
		{"never queued: no deadlines", Referral{Status: Draft}, false, false},
	}
	for _, tt := range tests {
		tt.r.Priority = Urgent
		claim, decide := d.Overruns(tt.r, asOf)
		if claim != tt.claim || decide != tt.decide {
			t.Errorf("%s: claim %v decide %v, want %v %v", tt.name, claim, decide, tt.claim, tt.decide)
		}
	}
}
