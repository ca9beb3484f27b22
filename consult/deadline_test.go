package consult

import (
	"testing"
	"time"
)

func TestDefaultDeadlines(t *testing.T) {
	d := DefaultDeadlines()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	for u, want := range map[Urgency]time.Duration{Emergency: 30 * time.Minute, Urgent: 4 * time.Hour, Routine: 48 * time.Hour} {
		if got := d.For(u); got != want {
			t.Errorf("%s: answered within %v, want %v", u, got, want)
		}
	}
}

func TestDeadlinesValidate(t *testing.T) {
	for name, d := range map[string]Deadlines{
		"zero emergency":             {Emergency: 0, Urgent: time.Hour, Routine: 2 * time.Hour},
		"negative routine":           {Emergency: time.Minute, Urgent: time.Hour, Routine: -time.Hour},
		"urgent sooner than emerg.":  {Emergency: time.Hour, Urgent: time.Minute, Routine: 2 * time.Hour},
		"routine sooner than urgent": {Emergency: time.Minute, Urgent: 2 * time.Hour, Routine: time.Hour},
	} {
		if d.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestBreaches(t *testing.T) {
	d := DefaultDeadlines()
	at := func(k Kind, u Urgency, st Status) Session {
		s := inState(k, st)
		s.Urgency = u
		return s
	}
	cases := []struct {
		name  string
		s     Session
		after time.Duration // since the request
		over  time.Duration // 0: no breach
	}{
		{"emergency answered in time", at(Consult, Emergency, Requested), 30 * time.Minute, 0},
		{"emergency waiting 31 minutes", at(Consult, Emergency, Requested), 31 * time.Minute, time.Minute},
		{"urgent waiting 5 hours", at(MDT, Urgent, Requested), 5 * time.Hour, time.Hour},
		{"urgent within 4 hours", at(MDT, Urgent, Requested), 4 * time.Hour, 0},
		{"routine waiting 3 days", at(TeachingRound, Routine, Requested), 72 * time.Hour, 24 * time.Hour},
		{"routine on day 2", at(ImagingReview, Routine, Requested), 47 * time.Hour, 0},
		{"accepted late is no longer waiting", at(Consult, Emergency, Accepted), 10 * time.Hour, 0},
		{"declined is answered", at(Consult, Emergency, Declined), 10 * time.Hour, 0},
		{"cancelled is not waiting", at(Consult, Emergency, Cancelled), 10 * time.Hour, 0},
		{"a booked clinic waits for nobody", at(ExpertClinic, Routine, Requested), 100 * time.Hour, 0},
	}
	for _, c := range cases {
		got := d.Breaches(c.s, c.s.CreatedAt.Add(c.after))
		switch {
		case c.over == 0 && len(got) != 0:
			t.Errorf("%s: breaches %+v, want none", c.name, got)
		case c.over != 0 && (len(got) != 1 || got[0].Over != c.over || !got[0].Due.Equal(c.s.CreatedAt.Add(c.after-c.over))):
			t.Errorf("%s: breaches %+v, want one over by %v", c.name, got, c.over)
		}
	}
	custom := Deadlines{Emergency: 10 * time.Minute, Urgent: time.Hour, Routine: 24 * time.Hour}
	if got := custom.Breaches(at(Consult, Emergency, Requested), t0.Add(11*time.Minute)); len(got) != 1 {
		t.Errorf("a configured 10-minute limit is not applied: %+v", got)
	}
}

// A request keeps the deadline it was given: once stamped, a later change of
// the limits does not move it, and a booked clinic is stamped with none.
func TestStampedDeadlineIsTheOneJudged(t *testing.T) {
	s := inState(Consult, Requested)
	s.Urgency = Emergency
	s = DefaultDeadlines().Stamp(s)
	if s.RespondBy == nil || !s.RespondBy.Equal(s.CreatedAt.Add(30*time.Minute)) {
		t.Fatalf("stamped %v, want 30 minutes after the request", s.RespondBy)
	}
	longer := Deadlines{Emergency: time.Hour, Urgent: 4 * time.Hour, Routine: 48 * time.Hour}
	got := longer.Breaches(s, s.CreatedAt.Add(31*time.Minute))
	if len(got) != 1 || got[0].Kind != RespondBreach || !got[0].Due.Equal(*s.RespondBy) {
		t.Errorf("judged by the limits in force rather than the stamp: %+v", got)
	}
	if c := DefaultDeadlines().Stamp(inState(ExpertClinic, Requested)); c.RespondBy != nil {
		t.Errorf("a booked clinic stamped with %v", c.RespondBy)
	}
}
