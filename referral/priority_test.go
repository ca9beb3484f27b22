package referral

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// waiting is a submitted ticket of the given kind that joined the queue
// minutesAgo before now.
func waiting(id string, prio Priority, green bool, minutesAgo int) Referral {
	at := now.Add(-time.Duration(minutesAgo) * time.Minute)
	r := Referral{ID: id, Priority: prio, GreenChannel: green, Status: Submitted, SubmittedAt: &at, QueuedAt: &at}
	if green {
		r.GreenCategory = Stroke
	}
	return r
}

// served sorts tickets by queue score, as the desk's queue serves them.
func served(now time.Time, agingAfter time.Duration, tickets ...Referral) []string {
	slices.SortStableFunc(tickets, func(a, b Referral) int {
		sa, sb := QueueScore(a, now, agingAfter), QueueScore(b, now, agingAfter)
		switch {
		case sa < sb:
			return -1
		case sa > sb:
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	ids := make([]string, len(tickets))
	for i, r := range tickets {
		ids[i] = r.ID
	}
	return ids
}

func TestQueueOrder(t *testing.T) {
	const noAging = 0
	cases := []struct {
		name    string
		aging   time.Duration
		tickets []Referral
		want    []string
	}{
		{"green channel first, then emergency, urgent, routine — whatever the waiting time", noAging, []Referral{
			waiting("routine", Routine, false, 600),
			waiting("urgent", Urgent, false, 300),
			waiting("emergency", Emergency, false, 60),
			waiting("green", Urgent, true, 0),
		}, []string{"green", "emergency", "urgent", "routine"}},
		{"first come first served inside a band", noAging, []Referral{
			waiting("u-new", Urgent, false, 1),
			waiting("u-old", Urgent, false, 50),
			waiting("u-mid", Urgent, false, 20),
		}, []string{"u-old", "u-mid", "u-new"}},
		{"green channel is one band whatever the stated priority", noAging, []Referral{
			waiting("green-emergency-late", Emergency, true, 1),
			waiting("green-urgent-early", Urgent, true, 5),
		}, []string{"green-urgent-early", "green-emergency-late"}},
		{"a routine ticket past the limit joins the urgent band by its own submission time", 24 * time.Hour, []Referral{
			waiting("urgent-older", Urgent, false, 25*60+30),
			waiting("urgent-fresh", Urgent, false, 5),
			waiting("routine-stale", Routine, false, 25*60),
			waiting("routine-fresh", Routine, false, 10),
			waiting("emergency", Emergency, false, 1),
		}, []string{"emergency", "urgent-older", "routine-stale", "urgent-fresh", "routine-fresh"}},
		{"aging never lifts a routine ticket above an emergency", time.Minute, []Referral{
			waiting("emergency", Emergency, false, 0),
			waiting("routine-ancient", Routine, false, 100000),
		}, []string{"emergency", "routine-ancient"}},
		{"with aging switched off a routine ticket stays routine", noAging, []Referral{
			waiting("routine-ancient", Routine, false, 100000),
			waiting("urgent-fresh", Urgent, false, 0),
		}, []string{"urgent-fresh", "routine-ancient"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := served(now, c.aging, c.tickets...); !slices.Equal(got, c.want) {
				t.Errorf("served %v, want %v", got, c.want)
			}
		})
	}
}

func TestAgingMoment(t *testing.T) {
	r := waiting("r", Routine, false, 0)
	at := AgesAt(r, time.Hour)
	if !at.Equal(now.Add(time.Hour)) {
		t.Fatalf("ages at %v", at)
	}
	if QueueBand(r, at.Add(-time.Millisecond), time.Hour) != BandRoutine || QueueBand(r, at, time.Hour) != BandUrgent {
		t.Errorf("band does not change exactly at the aging moment")
	}
	if !AgesAt(waiting("u", Urgent, false, 0), time.Hour).IsZero() || !AgesAt(r, 0).IsZero() {
		t.Errorf("only routine tickets age, and only with a positive limit")
	}
}

// TestReleaseKeepsThePlace: a ticket handed back to the queue is served by
// its first submission, not pushed behind those who came later.
func TestReleaseKeepsThePlace(t *testing.T) {
	claimed, _, err := Decide(inState(Submitted), rcvDesk, Claim, ActionInput{}, now)
	if err != nil {
		t.Fatal(err)
	}
	back, _, err := Decide(claimed, rcvDesk, Release, ActionInput{}, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if QueueScore(back, now, 0) != QueueScore(inState(Submitted), now, 0) {
		t.Errorf("release moved the ticket in the queue")
	}
}

func TestScoresFitAFloat(t *testing.T) {
	far := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	r := Referral{Priority: Routine, SubmittedAt: &far}
	s := QueueScore(r, far, 0)
	if s >= 1<<53 || int64(float64(s)) != s {
		t.Errorf("score %d is not exact as a Redis float", s)
	}
}

func TestDefaultDeadlines(t *testing.T) {
	d := DefaultDeadlines()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name          string
		r             Referral
		claim, decide time.Duration
	}{
		{"green channel", waiting("g", Emergency, true, 0), 5 * time.Minute, 10 * time.Minute},
		{"emergency", waiting("e", Emergency, false, 0), 15 * time.Minute, 30 * time.Minute},
		{"urgent", waiting("u", Urgent, false, 0), time.Hour, 4 * time.Hour},
		{"routine", waiting("r", Routine, false, 0), 24 * time.Hour, 72 * time.Hour},
	}
	for _, c := range cases {
		claimBy, decideBy := d.Due(c.r)
		if claimBy.Sub(now) != c.claim || decideBy.Sub(now) != c.decide {
			t.Errorf("%s: claim in %v, decide in %v; want %v and %v", c.name, claimBy.Sub(now), decideBy.Sub(now), c.claim, c.decide)
		}
	}
	if c, dd := d.Due(inState(Draft)); !c.IsZero() || !dd.IsZero() {
		t.Errorf("a draft has deadlines")
	}
}

func TestDeadlinesConfigMustMakeSense(t *testing.T) {
	for name, change := range map[string]func(*Deadlines){
		"zero claim":                      func(d *Deadlines) { d.Urgent.Claim = 0 },
		"claim later than decision":       func(d *Deadlines) { d.Emergency.Claim = time.Hour },
		"routine due before urgent":       func(d *Deadlines) { d.Routine = Limits{Claim: time.Minute, Decide: time.Minute} },
		"green given more than emergency": func(d *Deadlines) { d.Green.Decide = time.Hour },
	} {
		d := DefaultDeadlines()
		change(&d)
		if d.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestBreaches(t *testing.T) {
	d := DefaultDeadlines()
	queued := now
	green := waiting("g", Urgent, true, 0) // queued at now: claim by +5m, decide by +10m
	claimedGreen := green
	claimedGreen.Status, claimedGreen.ClaimedBy = Claimed, claimerID
	type b struct {
		kind BreachKind
		over time.Duration
	}
	cases := []struct {
		name string
		r    Referral
		at   time.Duration // after queued
		want []b
	}{
		{"within the claim limit", green, 5 * time.Minute, nil},
		{"unclaimed past the claim limit", green, 7 * time.Minute, []b{{ClaimBreach, 2 * time.Minute}}},
		{"unclaimed past both", green, 12 * time.Minute, []b{{ClaimBreach, 7 * time.Minute}, {DecideBreach, 2 * time.Minute}}},
		{"claimed in time, undecided past the limit", claimedGreen, 11 * time.Minute, []b{{DecideBreach, time.Minute}}},
		{"claimed, within the decision limit", claimedGreen, 9 * time.Minute, nil},
	}
	for _, status := range []Status{Accepted, Rejected, Redirected, InfoRequested, Cancelled} {
		decided := green
		decided.Status = status
		cases = append(cases, struct {
			name string
			r    Referral
			at   time.Duration
			want []b
		}{"no breach once " + string(status), decided, time.Hour, nil})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := c.r
			got := d.Breaches(c.r, queued.Add(c.at))
			if len(got) != len(c.want) {
				t.Fatalf("breaches %+v, want %+v", got, c.want)
			}
			due := map[BreachKind]time.Time{ClaimBreach: queued.Add(5 * time.Minute), DecideBreach: queued.Add(10 * time.Minute)}
			for i, w := range c.want {
				if got[i].Kind != w.kind || got[i].Over != w.over || !got[i].Due.Equal(due[w.kind]) {
					t.Errorf("breach %d = %+v, want %+v", i, got[i], w)
				}
			}
			if before.Status != c.r.Status {
				t.Errorf("a breach changed the ticket")
			}
		})
	}
}

// TestResubmissionRestartsTheDeadlines: after an answer the desk has its full
// time again, and a new breach has a new due time so it is escalated anew.
func TestResubmissionRestartsTheDeadlines(t *testing.T) {
	d := DefaultDeadlines()
	r := inState(InfoRequested) // queued at t0; emergency green: claim by t0+5m
	later := t0.Add(time.Hour)
	back, _, err := Decide(r, refDoctor, Resubmit, inputFor(Resubmit), later)
	if err != nil {
		t.Fatal(err)
	}
	claimBy, _ := d.Due(back)
	if !claimBy.Equal(later.Add(5 * time.Minute)) {
		t.Errorf("claim due %v after resubmission at %v", claimBy, later)
	}
	if got := d.Breaches(back, later.Add(time.Minute)); got != nil {
		t.Errorf("fresh resubmission already breached: %+v", got)
	}
}

// TestStampedDeadlinesAreTheOnesJudged: a ticket carries the deadlines of
// the limits in force at its last change; a later change of the limits does
// not move them until the ticket changes again.
func TestStampedDeadlinesAreTheOnesJudged(t *testing.T) {
	before := DefaultDeadlines()
	r := before.Stamp(waiting("u", Urgent, false, 0)) // claim by +1h, decide by +4h
	if r.ClaimBy == nil || !r.ClaimBy.Equal(now.Add(time.Hour)) || !r.DecideBy.Equal(now.Add(4*time.Hour)) {
		t.Fatalf("stamped %v %v", r.ClaimBy, r.DecideBy)
	}
	after := before
	after.Urgent = Limits{Claim: 30 * time.Minute, Decide: 2 * time.Hour}
	if got := after.Breaches(r, now.Add(45*time.Minute)); got != nil {
		t.Errorf("judged by the new limits: %+v", got)
	}
	if got := after.Breaches(after.Stamp(r), now.Add(45*time.Minute)); len(got) != 1 || got[0].Kind != ClaimBreach {
		t.Errorf("restamped and judged: %+v, want the new claim deadline passed", got)
	}
	if draft := before.Stamp(Referral{Status: Draft, ClaimBy: r.ClaimBy}); draft.ClaimBy != nil || draft.DecideBy != nil {
		t.Errorf("a ticket never queued keeps deadlines %v %v", draft.ClaimBy, draft.DecideBy)
	}
}
