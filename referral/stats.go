package referral

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"time"

	"duikou/internal/auth"
)

// Statistics of referral tickets: the pure part. The application service
// picks the tickets (scope, range) and feeds them to a Tally one at a time;
// nothing here reads storage or knows who asks.
//
// Definitions, one each:
//   - Population: tickets first submitted inside the range. A draft never
//     sent is no referral and is not counted. Every ticket falls in the
//     period of its first submission (SubmittedAt), in China's calendar.
//   - Counts per period are ticket counts. A redirected referral is two
//     tickets: the one the desk redirected (status redirected) and its
//     replacement; both are counted there, each under its own status.
//   - Up-referrals per county hospital and top diagnoses count referrals,
//     not tickets: a ticket replaced by a redirect is left out, so one
//     patient's up-referral counts once. A diagnosis is the ticket's first
//     (principal) diagnosis: the reason for referral, not its companions.
//   - Time to claim and time to decision run from QueuedAt, the moment the
//     ticket last entered the receiving desk's queue (the deadlines run from
//     it too), to ClaimedAt and DecidedAt as the ticket stores them. A claim
//     released and taken again counts from the last claim.
//   - Breaches (Overruns): a step done after its deadline, or a step still
//     undone (claim: the ticket waits unclaimed; decision: it waits or is
//     held undecided) whose deadline has passed at the moment the figures
//     are computed. Judged at computation, not at the end of the range, so a
//     ticket sent late on the range's last day and still waiting a week on
//     is a breach, and a breach once counted stays counted. A ticket whose
//     claim was undone by a cancellation or an information request is not
//     judged for its claim: the ticket no longer says when it was claimed.
//   - Bands: green channel, then the clinical priority; timings and breaches
//     are per band, as the deadlines are.
//   - Percentiles are nearest-rank: the value at rank ⌈p/100 · n⌉ of the
//     sorted sample, always a time some ticket actually took.

// Period is the length of one bucket of a statistics series.
type Period string

const (
	Day     Period = "day"
	Week    Period = "week" // ISO 8601: Monday to Sunday, labelled by ISO year and week
	Month   Period = "month"
	Quarter Period = "quarter"
	Year    Period = "year"
)

// Periods lists every period, shortest first.
var Periods = []Period{Day, Week, Month, Quarter, Year}

// Valid reports whether p is a known period.
func (p Period) Valid() bool { return slices.Contains(Periods, p) }

// China is the zone the program's calendar runs in: a day, week or month of
// statistics starts at midnight in China, whatever the server's zone.
var China = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil { // no zone database: China has had no daylight saving since 1991
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}()

// Start is the first instant of the period holding t, in loc.
func (p Period) Start(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	y, m, d := t.Date()
	switch p {
	case Week:
		back := (int(t.Weekday()) + 6) % 7 // days since Monday
		return time.Date(y, m, d-back, 0, 0, 0, 0, loc)
	case Month:
		return time.Date(y, m, 1, 0, 0, 0, 0, loc)
	case Quarter:
		return time.Date(y, m-(m-1)%3, 1, 0, 0, 0, 0, loc)
	case Year:
		return time.Date(y, 1, 1, 0, 0, 0, 0, loc)
	}
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

// Next is the start of the period after the one starting at start.
func (p Period) Next(start time.Time) time.Time {
	switch p {
	case Week:
		return start.AddDate(0, 0, 7)
	case Month:
		return start.AddDate(0, 1, 0)
	case Quarter:
		return start.AddDate(0, 3, 0)
	case Year:
		return start.AddDate(1, 0, 0)
	}
	return start.AddDate(0, 0, 1)
}

// Label names the period starting at start the way reports write it:
// 2026-03-04, 2026-W10, 2026-03, 2026-Q1, 2026.
func (p Period) Label(start time.Time) string {
	switch p {
	case Week:
		y, w := start.ISOWeek()
		return strconv.Itoa(y) + "-W" + twoDigits(w)
	case Month:
		return start.Format("2006-01")
	case Quarter:
		return strconv.Itoa(start.Year()) + "-Q" + strconv.Itoa(int(start.Month()-1)/3+1)
	case Year:
		return strconv.Itoa(start.Year())
	}
	return start.Format(time.DateOnly)
}

func twoDigits(n int) string {
	if n < 10 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

// Percentile is the nearest-rank p-th percentile (0 < p ≤ 100) of sorted,
// an ascending sample; ok is false for an empty sample.
func Percentile(sorted []int64, p float64) (v int64, ok bool) {
	if len(sorted) == 0 || p <= 0 || p > 100 {
		return 0, false
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[max(rank, 1)-1], true
}

// Overruns reports which of r's deadlines were overrun, judged at asOf: the
// claim when the ticket was claimed after its claim-by time or still waits
// unclaimed past it; the decision when it was decided after its decide-by
// time or still waits (or is held) undecided past it. A ticket never queued
// has no deadlines.
func (d Deadlines) Overruns(r Referral, asOf time.Time) (claim, decide bool) {
	claimBy, decideBy := d.dueOf(r)
	if claimBy.IsZero() {
		return false, false
	}
	switch {
	case r.ClaimedAt != nil:
		claim = r.ClaimedAt.After(claimBy)
	case r.Status == Submitted:
		claim = asOf.After(claimBy)
	}
	switch {
	case r.DecidedAt != nil:
		decide = r.DecidedAt.After(decideBy)
	case r.Status.InQueue():
		decide = asOf.After(decideBy)
	}
	return claim, decide
}

// DiagnosisLevel is how finely top diagnoses are grouped.
type DiagnosisLevel string

const (
	// ByCode groups by the ICD-10 code as written (I21.0 and I21.1 apart).
	ByCode DiagnosisLevel = "code"
	// ByCategory groups by the three-character category (I21), so that one
	// disease written at different precision counts as one.
	ByCategory DiagnosisLevel = "category"
)

// StatsOptions shape one computation.
type StatsOptions struct {
	// From and To bound the range, [From, To), on period boundaries of days
	// in Loc.
	From, To  time.Time
	Period    Period
	Loc       *time.Location
	AsOf      time.Time // when still-undone steps are judged
	Deadlines Deadlines
	// Top is how many diagnoses the overall list keeps; CountyTop how many
	// each county hospital's list keeps.
	Top, CountyTop int
	Level          DiagnosisLevel
	// MinCell hides diagnosis counts below it (small-cell rule); 0 or 1
	// shows every count.
	MinCell int
}

// Stats is the answer, shaped for charts: every series carries every
// period, band and status, zeros included, in a stable order.
type Stats struct {
	Periods []PeriodCounts `json:"periods"`
	// Timings and Breaches have one entry per band: green, emergency,
	// urgent, routine.
	Timings  []BandTimings  `json:"timings"`
	Breaches []BandBreaches `json:"breaches"`
	// UpByCounty: up-referrals of each referring county (secondary-tier)
	// hospital per month; Months labels the columns of every Counts.
	UpByCounty CountySeries `json:"up_referrals_by_county"`
	// TopDiagnoses over every up-referral counted; TopByCounty per referring
	// county hospital, the same hospitals in the same order as UpByCounty.
	TopDiagnoses DiagnosisList     `json:"top_diagnoses"`
	TopByCounty  []CountyDiagnoses `json:"top_diagnoses_by_county"`
	Tickets      int               `json:"tickets"` // tickets read
}

// PeriodCounts are the ticket counts of one period.
type PeriodCounts struct {
	Label string `json:"label"`
	// Start and End are the first and last calendar day counted: the
	// period's own, clipped to the range.
	Start       string         `json:"start"`
	End         string         `json:"end"`
	Total       int            `json:"total"`
	ByDirection map[string]int `json:"by_direction"`
	ByStatus    map[string]int `json:"by_status"`
	ByPriority  map[string]int `json:"by_priority"`
	Green       int            `json:"green_channel"`
	Breaches    BreachCounts   `json:"breaches"`
}

// BreachCounts count tickets whose claim, and whose decision, overran.
type BreachCounts struct {
	Claim    int `json:"claim"`
	Decision int `json:"decision"`
}

// Spread is a sample of durations in seconds: its size and its median and
// 90th percentile (nil when the sample is empty).
type Spread struct {
	N   int    `json:"n"`
	P50 *int64 `json:"p50_seconds"`
	P90 *int64 `json:"p90_seconds"`
}

// BandTimings are the times to claim and to decision of one band.
type BandTimings struct {
	Band     string `json:"band"`
	Claim    Spread `json:"to_claim"`
	Decision Spread `json:"to_decision"`
}

// BandBreaches are the overrun deadlines of one band, out of Queued
// tickets that had deadlines.
type BandBreaches struct {
	Band   string `json:"band"`
	Queued int    `json:"queued"`
	BreachCounts
}

// CountySeries is a table: one row per county hospital, one column per month.
type CountySeries struct {
	Months    []string      `json:"months"`
	Hospitals []CountyCount `json:"hospitals"`
}

// CountyCount is one county hospital's row.
type CountyCount struct {
	HospitalID string `json:"hospital_id"`
	Name       string `json:"name"`
	Counts     []int  `json:"counts"`
	Total      int    `json:"total"`
}

// DiagnosisList is a ranked list of principal diagnoses of up-referrals.
type DiagnosisList struct {
	Items []DiagnosisCount `json:"items"`
	// Hidden counts the diagnoses left out because their count was below
	// the small-cell threshold MinCount (1 when nothing is hidden).
	Hidden   int `json:"hidden"`
	MinCount int `json:"min_count"`
}

// DiagnosisCount is one diagnosis (or category) and how many up-referrals
// gave it first; Text is the wording doctors used most often for it.
type DiagnosisCount struct {
	Code  string `json:"code"`
	Text  string `json:"text"`
	Count int    `json:"count"`
}

// CountyDiagnoses is the top of one county hospital.
type CountyDiagnoses struct {
	HospitalID string `json:"hospital_id"`
	Name       string `json:"name"`
	DiagnosisList
}

// bands in report order.
var bands = []Band{BandGreen, BandEmergency, BandUrgent, BandRoutine}

// Tally accumulates tickets into Stats. It keeps counters and the timing
// samples only, never the tickets, so a range of many tickets streams
// through it.
type Tally struct {
	o       StatsOptions
	periods []PeriodCounts
	starts  []time.Time // start instant of each period, ascending
	months  []time.Time

	claim, decide [4][]int64
	breach        [4]BandBreaches
	county        map[string]*countyTally
	diag          diagTally
	tickets       int
}

type countyTally struct {
	name   string
	counts []int
	total  int
	diag   diagTally
}

// diagTally counts diagnoses and, per diagnosis, each wording.
type diagTally map[string]*diagEntry

type diagEntry struct {
	count int
	texts map[string]int
}

// NewTally prepares the empty series of o's range.
func NewTally(o StatsOptions) *Tally {
	if o.Loc == nil {
		o.Loc = China
	}
	t := &Tally{o: o, county: map[string]*countyTally{}, diag: diagTally{}}
	last := o.To.Add(-time.Nanosecond)
	for s := o.Period.Start(o.From, o.Loc); s.Before(o.To); s = o.Period.Next(s) {
		start, end := maxTime(s, o.From), minTime(o.Period.Next(s).Add(-time.Nanosecond), last)
		t.starts = append(t.starts, s)
		t.periods = append(t.periods, PeriodCounts{
			Label: o.Period.Label(s), Start: start.In(o.Loc).Format(time.DateOnly), End: end.In(o.Loc).Format(time.DateOnly),
			ByDirection: zeros(string(Up), string(Down)),
			ByStatus:    zeros(statusNames()...),
			ByPriority:  zeros(string(Routine), string(Urgent), string(Emergency)),
		})
	}
	for m := Month.Start(o.From, o.Loc); m.Before(o.To); m = Month.Next(m) {
		t.months = append(t.months, m)
	}
	for i, b := range bands {
		t.breach[i].Band = b.String()
	}
	return t
}

func zeros(keys ...string) map[string]int {
	m := make(map[string]int, len(keys))
	for _, k := range keys {
		m[k] = 0
	}
	return m
}

func statusNames() []string {
	out := make([]string, len(Statuses))
	for i, s := range Statuses {
		out[i] = string(s)
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// bucket is the index of the last start at or before at, or -1.
func bucket(starts []time.Time, at time.Time) int {
	i, found := slices.BinarySearchFunc(starts, at, func(s, t time.Time) int { return s.Compare(t) })
	if found {
		return i
	}
	return i - 1
}

// Add counts one ticket. referrerName names its referring hospital and
// county says whether that hospital is a county (secondary-tier) one. A
// ticket not submitted inside the range is ignored.
func (t *Tally) Add(r Referral, referrerName string, county bool) {
	if r.SubmittedAt == nil || r.SubmittedAt.Before(t.o.From) || !r.SubmittedAt.Before(t.o.To) {
		return
	}
	t.tickets++
	p := &t.periods[bucket(t.starts, *r.SubmittedAt)]
	p.Total++
	p.ByDirection[string(r.Direction)]++
	p.ByStatus[string(r.Status)]++
	p.ByPriority[string(r.Priority)]++
	if r.GreenChannel {
		p.Green++
	}

	band := BandOf(r)
	if r.QueuedAt != nil {
		if r.ClaimedAt != nil && !r.ClaimedAt.Before(*r.QueuedAt) {
			t.claim[band] = append(t.claim[band], seconds(r.ClaimedAt.Sub(*r.QueuedAt)))
		}
		if r.DecidedAt != nil && !r.DecidedAt.Before(*r.QueuedAt) {
			t.decide[band] = append(t.decide[band], seconds(r.DecidedAt.Sub(*r.QueuedAt)))
		}
		claim, decide := t.o.Deadlines.Overruns(r, t.o.AsOf)
		b := &t.breach[band]
		b.Queued++
		if claim {
			b.Claim++
			p.Breaches.Claim++
		}
		if decide {
			b.Decision++
			p.Breaches.Decision++
		}
	}

	if r.Direction != Up || r.Status == Redirected {
		return
	}
	d, hasDiag := t.principal(r)
	if hasDiag {
		t.diag.add(d)
	}
	if !county {
		return
	}
	c := t.county[r.ReferringHospitalID]
	if c == nil {
		c = &countyTally{name: referrerName, counts: make([]int, len(t.months)), diag: diagTally{}}
		t.county[r.ReferringHospitalID] = c
	}
	if m := bucket(t.months, *r.SubmittedAt); m >= 0 {
		c.counts[m]++
	}
	c.total++
	if hasDiag {
		c.diag.add(d)
	}
}

// seconds rounds a duration down to whole seconds.
func seconds(d time.Duration) int64 { return int64(d / time.Second) }

// principal is the first diagnosis of r at the tally's level.
func (t *Tally) principal(r Referral) (Diagnosis, bool) {
	if len(r.Diagnoses) == 0 || r.Diagnoses[0].Code == "" {
		return Diagnosis{}, false
	}
	d := r.Diagnoses[0]
	if t.o.Level == ByCategory && len(d.Code) > 3 {
		d.Code = d.Code[:3]
	}
	return d, true
}

func (dt diagTally) add(d Diagnosis) {
	e := dt[d.Code]
	if e == nil {
		e = &diagEntry{texts: map[string]int{}}
		dt[d.Code] = e
	}
	e.count++
	e.texts[d.Text]++
}

// top ranks the diagnoses by count (then code), hides those below minCell
// and keeps n.
func (dt diagTally) top(n, minCell int) DiagnosisList {
	l := DiagnosisList{Items: []DiagnosisCount{}, MinCount: max(minCell, 1)}
	for code, e := range dt {
		if e.count < l.MinCount {
			l.Hidden++
			continue
		}
		l.Items = append(l.Items, DiagnosisCount{Code: code, Text: commonest(e.texts), Count: e.count})
	}
	slices.SortFunc(l.Items, func(a, b DiagnosisCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Code, b.Code))
	})
	if len(l.Items) > n {
		l.Items = l.Items[:n]
	}
	return l
}

// commonest is the most frequent wording; a tie goes to the first in text
// order, so the answer does not depend on map order.
func commonest(texts map[string]int) string {
	best, bestN := "", 0
	for s, n := range texts {
		if n > bestN || (n == bestN && s < best) {
			best, bestN = s, n
		}
	}
	return best
}

func spread(sample []int64) Spread {
	slices.Sort(sample)
	s := Spread{N: len(sample)}
	if v, ok := Percentile(sample, 50); ok {
		s.P50 = &v
	}
	if v, ok := Percentile(sample, 90); ok {
		s.P90 = &v
	}
	return s
}

// Result returns the figures counted so far.
func (t *Tally) Result() Stats {
	out := Stats{Periods: t.periods, Tickets: t.tickets}
	for i, b := range bands {
		out.Timings = append(out.Timings, BandTimings{Band: b.String(), Claim: spread(t.claim[i]), Decision: spread(t.decide[i])})
		out.Breaches = append(out.Breaches, t.breach[i])
	}
	out.UpByCounty.Months = make([]string, len(t.months))
	for i, m := range t.months {
		out.UpByCounty.Months[i] = Month.Label(m)
	}
	ids := make([]string, 0, len(t.county))
	for id := range t.county {
		ids = append(ids, id)
	}
	// Most up-referrals first: the chart's legend reads as a ranking.
	slices.SortFunc(ids, func(a, b string) int {
		ca, cb := t.county[a], t.county[b]
		return cmp.Or(cmp.Compare(cb.total, ca.total), cmp.Compare(ca.name, cb.name), cmp.Compare(a, b))
	})
	out.UpByCounty.Hospitals = []CountyCount{}
	out.TopByCounty = []CountyDiagnoses{}
	for _, id := range ids {
		c := t.county[id]
		out.UpByCounty.Hospitals = append(out.UpByCounty.Hospitals, CountyCount{HospitalID: id, Name: c.name, Counts: c.counts, Total: c.total})
		out.TopByCounty = append(out.TopByCounty, CountyDiagnoses{HospitalID: id, Name: c.name, DiagnosisList: c.diag.top(t.o.CountyTop, t.o.MinCell)})
	}
	out.TopDiagnoses = t.diag.top(t.o.Top, t.o.MinCell)
	return out
}

// Ranking sizes: the top ten diagnoses overall by default and at most 50;
// four per county hospital by default (the program's report asks for its
// top four) and at most 10.
const (
	DefaultTop       = 10
	MaxTop           = 50
	DefaultCountyTop = 4
	MaxCountyTop     = 10
)

// StatsReaders may read referral statistics: the program office, for the
// hospitals within its reach, and clinical staff, for their own hospital
// (whose tickets they may list anyway). Administrators and auditors run and
// inspect the installation and are given no clinical figures.
var StatsReaders = append([]auth.Role{auth.ProgramOffice}, auth.ClinicalRoles...)

// StatsRequest asks for the statistics of a range of calendar days.
type StatsRequest struct {
	// From and To are calendar days (only the date counts), To included.
	From, To time.Time
	Period   Period
	// HospitalID narrows to the tickets that hospital is a party to; empty
	// means every hospital within the caller's scope.
	HospitalID string
	Direction  Direction // empty: both
	Top        int
	CountyTop  int
	Level      DiagnosisLevel
}

// StatsReport is the answer with the question it answers.
type StatsReport struct {
	From       string         `json:"from"`
	To         string         `json:"to"`
	Period     Period         `json:"period"`
	TimeZone   string         `json:"time_zone"`
	HospitalID string         `json:"hospital_id,omitempty"`
	Hospitals  int            `json:"hospitals"` // hospitals whose tickets were read
	Direction  Direction      `json:"direction,omitempty"`
	Level      DiagnosisLevel `json:"diagnosis_level"`
	AsOf       time.Time      `json:"as_of"` // when open steps were judged for breaches
	Stats
}
