package consult

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"duikou/internal/apperr"
	"duikou/internal/auth"
)

// party may take an action, written out independently of the package's
// table so that a wrong row there makes these tests fail.
type party string

const (
	byRequester party = "requester" // requesting hospital: county doctor, specialist, dispatched doctor
	byTarget    party = "target"    // any specialist of the target hospital
	byAssigned  party = "assigned"  // a specialist of the target hospital assigned to the session
)

type row struct {
	from  []Status
	to    Status
	party party
}

// requirement is the state machine, row by row; fromFor gives the
// rows that differ by kind.
var requirement = map[Action]row{
	Accept:      {[]Status{Requested}, Accepted, byTarget},
	Decline:     {[]Status{Requested}, Declined, byTarget},
	Schedule:    {[]Status{Accepted, Scheduled}, Scheduled, byTarget},
	Start:       {[]Status{Scheduled}, Live, byAssigned},
	End:         {[]Status{Live}, Ended, byAssigned},
	Sign:        {[]Status{Ended}, OpinionSigned, byAssigned},
	Acknowledge: {[]Status{OpinionSigned}, Acknowledged, byRequester},
	Cancel:      {[]Status{Requested, Accepted, Scheduled}, Cancelled, byRequester},
}

// fromFor: a teaching round has no opinion to sign or acknowledge; an
// imaging review may be reported without a live session.
func fromFor(a Action, k Kind) ([]Status, bool) {
	switch {
	case k == TeachingRound && (a == Sign || a == Acknowledge):
		return nil, false
	case k == ImagingReview && a == Sign:
		return []Status{Accepted, Scheduled, Ended}, true
	}
	return requirement[a].from, true
}

type actor struct {
	name string
	p    auth.Principal
}

var actors = []actor{
	{"requesting county doctor", reqDoctor},
	{"requesting dispatched doctor", reqDispatched},
	{"requesting referral desk", reqDesk},
	{"requesting admin", reqAdmin},
	{"assigned specialist", tgtAssigned},
	{"second specialist (assigned in an MDT)", tgtSecond},
	{"unassigned specialist", tgtSpecialist},
	{"target referral desk", tgtDesk},
	{"target auditor", tgtAuditor},
	{"invited hospital's doctor", guestDoctor},
	{"unrelated hospital", outsider},
}

type outcome string

const (
	moved     outcome = "moved"
	noop      outcome = "no-op"
	notFound  outcome = "not found"
	forbidden outcome = "forbidden"
	conflict  outcome = "conflict"
)

// expected derives, from the requirement alone, what a caller gets.
func expected(k Kind, st Status, a Action, c actor) outcome {
	p := c.p
	switch {
	case p.HospitalID == outsiderID:
		return notFound
	case p.HospitalID == guestID && k != TeachingRound:
		return notFound
	}
	from, ok := fromFor(a, k)
	if !ok {
		return conflict
	}
	req := requirement[a]
	requester := p.HospitalID == countyID && p.Has(auth.CountyDoctor, auth.Specialist, auth.DispatchedDoctor)
	target := p.HospitalID == tertiaryID && p.Has(auth.Specialist)
	allowed := map[party]bool{
		byRequester: requester,
		byTarget:    target,
		byAssigned:  target && slices.ContainsFunc(inState(k, st).Specialists, func(x Assignment) bool { return x.SpecialistID == p.UserID }),
	}[req.party]
	switch {
	case !allowed:
		return forbidden
	case st == req.to:
		return noop
	case !slices.Contains(from, st):
		return conflict
	case a == Schedule && k == ExpertClinic:
		return conflict // the slot's time is fixed
	}
	return moved
}

func kindOf(err error) outcome {
	switch {
	case errors.Is(err, apperr.ErrNotFound):
		return notFound
	case errors.Is(err, apperr.ErrForbidden):
		return forbidden
	case errors.Is(err, apperr.ErrConflict):
		return conflict
	}
	return outcome(fmt.Sprintf("unexpected error %v", err))
}

// TestEveryKindStateActionAndCaller walks the whole cross product: every
// kind × status × action × caller, against the requirement.
func TestEveryKindStateActionAndCaller(t *testing.T) {
	if len(Statuses) != 9 || len(Actions) != 8 || len(Kinds) != 5 {
		t.Fatalf("%d statuses, %d actions, %d kinds; the requirement has 9, 8 and 5", len(Statuses), len(Actions), len(Kinds))
	}
	counts := map[outcome]int{}
	for _, k := range Kinds {
		for _, st := range Statuses {
			for _, a := range Actions {
				for _, c := range actors {
					s, before := inState(k, st), inState(k, st)
					got, ev, err := Decide(s, c.p, a, inputFor(a, k), now)
					want := expected(k, st, a, c)
					counts[want]++
					name := fmt.Sprintf("%s %s: %s by %s", k, st, a, c.name)
					switch want {
					case moved:
						if err != nil {
							t.Errorf("%s: refused (%v), want it done", name, err)
							continue
						}
						to := requirement[a].to
						if got.Status != to || got.Version != s.Version+1 || !got.UpdatedAt.Equal(now) {
							t.Errorf("%s: status %s version %d, want %s version %d", name, got.Status, got.Version, to, s.Version+1)
						}
						if ev.Action != a || ev.From != st || ev.To != to || ev.Actor != c.p.UserID ||
							ev.ActorHospitalID != c.p.HospitalID || !ev.At.Equal(now) {
							t.Errorf("%s: event %+v", name, ev)
						}
					case noop:
						if err != nil || !ev.Empty() || !reflect.DeepEqual(got, before) {
							t.Errorf("%s: got error %v, event %+v; want an unchanged session", name, err, ev)
						}
					default:
						if k := kindOf(err); k != want {
							t.Errorf("%s: got %s (%v), want %s", name, k, err, want)
						}
						if !ev.Empty() || !reflect.DeepEqual(got, before) {
							t.Errorf("%s: refused but returned a changed session or an event", name)
						}
					}
					if !reflect.DeepEqual(s, before) {
						t.Errorf("%s: Decide changed the session it was given", name)
					}
				}
			}
		}
	}
	for _, o := range []outcome{moved, noop, notFound, forbidden, conflict} {
		if counts[o] == 0 {
			t.Errorf("the cross product never expects %s; the test would not notice that case breaking", o)
		}
	}
}

// TestTableMatchesRequirement: the package's table is the requirement, row
// for row, including the roles of each side.
func TestTableMatchesRequirement(t *testing.T) {
	requester := []auth.Role{auth.CountyDoctor, auth.Specialist, auth.DispatchedDoctor}
	target := []auth.Role{auth.Specialist}
	for _, k := range Kinds {
		for _, a := range Actions {
			r, ok := RuleFor(a, k)
			from, want := fromFor(a, k)
			if ok != want {
				t.Errorf("%s %s: rule present %v, want %v", k, a, ok, want)
				continue
			}
			if !ok {
				continue
			}
			req := requirement[a]
			wantReq, wantTgt := []auth.Role(nil), []auth.Role(nil)
			if req.party == byRequester {
				wantReq = requester
			} else {
				wantTgt = target
			}
			sameSet := func(a, b []Status) bool {
				return len(a) == len(b) && !slices.ContainsFunc(a, func(s Status) bool { return !slices.Contains(b, s) })
			}
			if !sameSet(r.From, from) || r.To != req.to || !slices.Equal(r.Requester, wantReq) ||
				!slices.Equal(r.Target, wantTgt) || r.Assigned != (req.party == byAssigned) {
				t.Errorf("%s %s: rule %+v, want from %v to %s by %s", k, a, r, from, req.to, req.party)
			}
			if r.NeedsConsent != (a == Schedule || a == Start) {
				t.Errorf("%s %s: needs consent %v", k, a, r.NeedsConsent)
			}
		}
	}
}

// TestCriticalCases spells out the moves that matter most, with the message
// the caller reads.
func TestCriticalCases(t *testing.T) {
	cases := []struct {
		name   string
		kind   Kind
		status Status
		action Action
		by     auth.Principal
		want   outcome
		msg    string
	}{
		{"a specialist of the target accepts", Consult, Requested, Accept, tgtSpecialist, moved, ""},
		{"the target's desk cannot accept", Consult, Requested, Accept, tgtDesk, forbidden, "only the target hospital's specialists may accept a session"},
		{"the requester cannot accept its own request", Consult, Requested, Accept, reqDoctor, forbidden, ""},
		{"an unrelated hospital does not see the session", MDT, Requested, Accept, outsider, notFound, ""},
		{"an invited hospital sees a teaching round but acts on nothing", TeachingRound, Scheduled, Cancel, guestDoctor, forbidden, ""},
		{"an invited hospital of a teaching round is no party to a consult", Consult, Scheduled, Cancel, guestDoctor, notFound, ""},
		{"only an assigned specialist starts", Consult, Scheduled, Start, tgtSpecialist, forbidden, "only a specialist assigned to this session may start it"},
		{"either assigned specialist of an MDT starts", MDT, Scheduled, Start, tgtSecond, moved, ""},
		{"a consult opinion waits for the session's end", Consult, Live, Sign, tgtAssigned, conflict, "cannot sign the opinion of a live session"},
		{"an imaging review is reported without a live session", ImagingReview, Accepted, Sign, tgtAssigned, moved, ""},
		{"a teaching round has no opinion", TeachingRound, Ended, Sign, tgtAssigned, conflict, "a teaching round has no written opinion"},
		{"signing twice is a retry", Consult, OpinionSigned, Sign, tgtAssigned, noop, ""},
		{"an acknowledged opinion stays signed", Consult, Acknowledged, Sign, tgtAssigned, conflict, "add a signed addendum"},
		{"the requester acknowledges", Consult, OpinionSigned, Acknowledge, reqDoctor, moved, ""},
		{"the specialist cannot acknowledge for the requester", Consult, OpinionSigned, Acknowledge, tgtAssigned, forbidden, ""},
		{"a live session cannot be cancelled", Consult, Live, Cancel, reqDoctor, conflict, "cannot cancel a live session"},
		{"the referral desk does not request or cancel consults", Consult, Requested, Cancel, reqDesk, forbidden, ""},
		{"an expert clinic keeps its slot's time", ExpertClinic, Scheduled, Schedule, tgtSpecialist,
			conflict, "keeps its slot's time"},
		{"a declined session stays declined", Consult, Declined, Accept, tgtSpecialist, conflict, "cannot accept a declined session"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := inputFor(c.action, c.kind)
			if c.kind == ExpertClinic && c.action == Schedule {
				later := Period{Start: theSchedule.Start.Add(24 * 3600e9), End: theSchedule.End.Add(24 * 3600e9)}
				in.Schedule = &later
			}
			got, ev, err := Decide(inState(c.kind, c.status), c.by, c.action, in, now)
			switch c.want {
			case moved:
				if err != nil || ev.Empty() || got.Status != requirement[c.action].to {
					t.Fatalf("got %s, %v; want moved to %s", got.Status, err, requirement[c.action].to)
				}
			case noop:
				if err != nil || !ev.Empty() {
					t.Fatalf("got %v, event %+v; want a no-op", err, ev)
				}
			default:
				if k := kindOf(err); k != c.want {
					t.Fatalf("got %s (%v), want %s", k, err, c.want)
				}
				if c.msg != "" && !strings.Contains(err.Error(), c.msg) {
					t.Fatalf("message %q, want it to say %q", err, c.msg)
				}
			}
		})
	}
}

func TestUnknownActionIsInvalid(t *testing.T) {
	_, _, err := Decide(inState(Consult, Requested), tgtAssigned, "approve", ActionInput{}, now)
	assertFields(t, err, "action")
}

// TestNoConsentNoScheduleNoStart: a session about a patient is neither
// scheduled nor started without both consents; a teaching round needs none.
func TestNoConsentNoScheduleNoStart(t *testing.T) {
	for _, k := range []Kind{Consult, MDT, ImagingReview} {
		for _, c := range []struct {
			action Action
			status Status
			by     auth.Principal
		}{{Schedule, Accepted, tgtSpecialist}, {Start, Scheduled, tgtAssigned}} {
			for _, consent := range []Consent{{}, {RemoteConsultation: true}, {DataSharing: true}} {
				name := fmt.Sprintf("%s %s with %+v", k, c.action, consent)
				in := inputFor(c.action, k)
				in.Consent = &consent
				s := inState(k, c.status)
				got, ev, err := Decide(s, c.by, c.action, in, now)
				assertFields(t, err, "consent")
				var inv apperr.Invalid
				errors.As(err, &inv)
				missing := 0
				if !consent.RemoteConsultation {
					missing++
				}
				if !consent.DataSharing {
					missing++
				}
				if len(inv) != missing {
					t.Errorf("%s: %d faults %v, want one per missing consent", name, len(inv), inv)
				}
				if !ev.Empty() || !reflect.DeepEqual(got, s) {
					t.Errorf("%s: moved without consent", name)
				}
			}
			// The service must always say what it found.
			in := inputFor(c.action, k)
			in.Consent = nil
			_, _, err := Decide(inState(k, c.status), c.by, c.action, in, now)
			if err == nil || errors.As(err, new(apperr.Invalid)) || errors.Is(err, apperr.ErrConflict) {
				t.Errorf("%s %s without consent facts: %v; want a wiring error", k, c.action, err)
			}
		}
	}
	for _, c := range []struct {
		action Action
		status Status
		by     auth.Principal
	}{{Schedule, Accepted, tgtSpecialist}, {Start, Scheduled, tgtAssigned}} {
		in := inputFor(c.action, TeachingRound)
		in.Consent = nil
		if _, _, err := Decide(inState(TeachingRound, c.status), c.by, c.action, in, now); err != nil {
			t.Errorf("teaching round %s: %v; a round without a patient needs no consent", c.action, err)
		}
	}
}

// TestRequiredInputs: actions that need a reason, a time or specialists
// refuse without them and change nothing.
func TestRequiredInputs(t *testing.T) {
	long := strings.Repeat("长", apperr.MaxText+1)
	period := func(startIn, length string) *Period {
		s := now.Add(mustDur(startIn))
		return &Period{Start: s, End: s.Add(mustDur(length))}
	}
	c := bothConsent
	cases := []struct {
		name   string
		kind   Kind
		status Status
		action Action
		by     auth.Principal
		in     ActionInput
		fields []string
	}{
		{"decline without a reason", Consult, Requested, Decline, tgtSpecialist, ActionInput{Reason: " "}, []string{"reason"}},
		{"decline with an over-long reason", Consult, Requested, Decline, tgtSpecialist, ActionInput{Reason: long}, []string{"reason"}},
		{"cancel without a reason", Consult, Scheduled, Cancel, reqDoctor, ActionInput{}, []string{"reason"}},
		{"accept without specialists", Consult, Requested, Accept, tgtSpecialist, ActionInput{}, []string{"specialists"}},
		{"accept two for a consult", Consult, Requested, Accept, tgtSpecialist,
			ActionInput{Specialists: assignments(MDT)}, []string{"specialists", "specialists[1].department_id"}},
		{"accept a bad id for a department not asked", Consult, Requested, Accept, tgtSpecialist,
			ActionInput{Specialists: []Assignment{{"王医生", neuroDept}}}, []string{"specialists[0].specialist_id", "specialists[0].department_id"}},
		{"an MDT leaves a department without a specialist", MDT, Requested, Accept, tgtSpecialist,
			ActionInput{Specialists: []Assignment{{assignedID, cardioDept}, {secondID, cardioDept}}}, []string{"specialists"}},
		{"an MDT assigns one specialist twice", MDT, Requested, Accept, tgtSpecialist,
			ActionInput{Specialists: []Assignment{{assignedID, cardioDept}, {assignedID, neuroDept}}}, []string{"specialists[1].specialist_id"}},
		{"a teaching round has one presenter", TeachingRound, Requested, Accept, tgtSpecialist,
			ActionInput{Specialists: []Assignment{{assignedID, cardioDept}, {secondID, cardioDept}}}, []string{"specialists"}},
		{"schedule without a time", Consult, Accepted, Schedule, tgtSpecialist, ActionInput{Consent: &c}, []string{"schedule"}},
		{"schedule ending before it starts", Consult, Accepted, Schedule, tgtSpecialist, ActionInput{Consent: &c, Schedule: period("1h", "-10m")}, []string{"schedule.end"}},
		{"schedule of five minutes", Consult, Accepted, Schedule, tgtSpecialist, ActionInput{Consent: &c, Schedule: period("1h", "5m")}, []string{"schedule.end"}},
		{"schedule of nine hours", Consult, Accepted, Schedule, tgtSpecialist, ActionInput{Consent: &c, Schedule: period("1h", "9h")}, []string{"schedule.end"}},
		{"schedule in the past", Consult, Accepted, Schedule, tgtSpecialist, ActionInput{Consent: &c, Schedule: period("-16m", "30m")}, []string{"schedule.start"}},
		{"schedule beyond a year", Consult, Accepted, Schedule, tgtSpecialist, ActionInput{Consent: &c, Schedule: period("8761h", "30m")}, []string{"schedule.start"}},
		{"schedule without a time and without consent", Consult, Accepted, Schedule, tgtSpecialist, ActionInput{Consent: &Consent{}}, []string{"schedule", "consent"}},
		{"schedule with only a start", Consult, Accepted, Schedule, tgtSpecialist, ActionInput{Consent: &c, Schedule: &Period{Start: now.Add(mustDur("1h"))}}, []string{"schedule"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := inState(c.kind, c.status)
			got, ev, err := Decide(s, c.by, c.action, c.in, now)
			assertFields(t, err, c.fields...)
			if !ev.Empty() || !reflect.DeepEqual(got, inState(c.kind, c.status)) {
				t.Errorf("bad input changed the session or produced an event")
			}
		})
	}
}

func TestRecordsWhatEachStepDid(t *testing.T) {
	got, ev, err := Decide(inState(MDT, Requested), tgtSpecialist, Accept, inputFor(Accept, MDT), now)
	if err != nil || !slices.Equal(got.Specialists, assignments(MDT)) || got.AcceptedBy != unassignedID || !got.AcceptedAt.Equal(now) {
		t.Errorf("accept: %v %+v", err, got)
	}
	got, ev, err = Decide(inState(Consult, Requested), tgtSpecialist, Decline, inputFor(Decline, Consult), now)
	if err != nil || got.DeclineReason != "本院该专业专家本周外出" || ev.Reason != got.DeclineReason || got.DeclinedBy != unassignedID {
		t.Errorf("decline: %v %+v", err, got)
	}
	got, _, err = Decide(inState(Consult, OpinionSigned), reqDoctor, Acknowledge, ActionInput{}, now)
	if err != nil || got.AcknowledgedBy != reqDoctorID || !got.AcknowledgedAt.Equal(now) {
		t.Errorf("acknowledge: %v %+v", err, got)
	}
	got, ev, err = Decide(inState(Consult, Scheduled), reqDoctor, Cancel, inputFor(Cancel, Consult), now)
	if err != nil || got.CancelReason == "" || got.CancelledBy != reqDoctorID || ev.Reason != got.CancelReason {
		t.Errorf("cancel: %v %+v", err, got)
	}
	got, _, err = Decide(inState(Consult, Scheduled), tgtAssigned, Start, inputFor(Start, Consult), now)
	if err != nil || !got.StartedAt.Equal(now) {
		t.Errorf("start: %v %+v", err, got)
	}
	got, _, err = Decide(inState(Consult, Live), tgtAssigned, End, ActionInput{}, now)
	if err != nil || !got.EndedAt.Equal(now) {
		t.Errorf("end: %v %+v", err, got)
	}
}

func TestRescheduleIsAChangeButTheSameTimeIsNot(t *testing.T) {
	s := inState(Consult, Scheduled)
	in := inputFor(Schedule, Consult)
	later := Period{Start: theSchedule.Start.Add(mustDur("1h")), End: theSchedule.End.Add(mustDur("1h"))}
	in.Schedule = &later
	got, ev, err := Decide(s, tgtSpecialist, Schedule, in, now)
	if err != nil || ev.Empty() || !got.Schedule.Start.Equal(later.Start) || got.Version != s.Version+1 {
		t.Fatalf("reschedule: %v %+v", err, ev)
	}
	got, ev, err = Decide(s, tgtSpecialist, Schedule, inputFor(Schedule, Consult), now)
	if err != nil || !ev.Empty() || got.Version != s.Version {
		t.Fatalf("same time again: %v %+v; want a no-op", err, ev)
	}
}

func TestAcceptAgainWithOtherSpecialistsIsRefused(t *testing.T) {
	in := ActionInput{Specialists: []Assignment{{unassignedID, cardioDept}}}
	_, _, err := Decide(inState(Consult, Accepted), tgtSpecialist, Accept, in, now)
	if !errors.Is(err, apperr.ErrConflict) {
		t.Errorf("second acceptance with another specialist: %v, want conflict", err)
	}
}

func TestConflictMessagesReadAsEnglish(t *testing.T) {
	for s, want := range map[Status]string{
		Ended:     "cannot cancel an ended session",
		Requested: "",
		Live:      "cannot cancel a live session",
	} {
		_, _, err := Decide(inState(Consult, s), reqDoctor, Cancel, inputFor(Cancel, Consult), now)
		if want == "" {
			if err != nil {
				t.Errorf("cancel %s: %v", s, err)
			}
			continue
		}
		if err == nil || err.Error() != want {
			t.Errorf("cancel %s: %v, want %q", s, err, want)
		}
	}
}

// assertFields checks that err is a validation error naming exactly fields.
func assertFields(t *testing.T, err error, fields ...string) {
	t.Helper()
	var inv apperr.Invalid
	if !errors.As(err, &inv) {
		t.Fatalf("got %v, want invalid %v", err, fields)
	}
	var got []string
	for _, f := range inv {
		if !slices.Contains(got, f.Field) {
			got = append(got, f.Field)
		}
	}
	slices.Sort(got)
	want := slices.Clone(fields)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("faults on %v (%v), want %v", got, err, want)
	}
}

// TestFinal: declined, acknowledged and cancelled sessions are over; a
// teaching round is over once ended, since it has no opinion to follow.
func TestFinal(t *testing.T) {
	for _, k := range Kinds {
		for _, st := range Statuses {
			want := st == Declined || st == Acknowledged || st == Cancelled || (k == TeachingRound && st == Ended)
			if got := inState(k, st).Final(); got != want {
				t.Errorf("%s %s: final %v, want %v", k, st, got, want)
			}
			// Final means no action of the table moves it any more.
			if want {
				for _, r := range Rules() {
					if (r.Kinds == nil || slices.Contains(r.Kinds, k)) && slices.Contains(r.From, st) {
						t.Errorf("%s %s is final but %s starts from it", k, st, r.Action)
					}
				}
			}
		}
	}
}
