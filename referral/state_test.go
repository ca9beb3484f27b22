package referral

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"duikou/internal/apperr"
	"duikou/internal/auth"
)

// party may take an action, written out independently of the package's table
// so that a wrong row there makes these tests fail.
type party string

const (
	byReferrer  party = "referrer"  // referring hospital: county doctor, specialist, referral desk
	byDesk      party = "desk"      // receiving hospital's referral desk
	byClaimer   party = "claimer"   // the receiving desk member holding the claim
	byClinician party = "clinician" // receiving desk or receiving clinicians
	byEither    party = "either"    // referrer side or receiving desk
)

var openStates = []Status{Submitted, Claimed, InfoRequested, Accepted, Scheduled, InTransit}

// requirement is the state machine, row by row.
var requirement = map[Action]struct {
	from  []Status
	to    Status
	party party
}{
	Submit:      {[]Status{Draft}, Submitted, byReferrer},
	Claim:       {[]Status{Submitted}, Claimed, byDesk},
	Release:     {[]Status{Claimed}, Submitted, byClaimer},
	Accept:      {[]Status{Claimed}, Accepted, byClaimer},
	Reject:      {[]Status{Claimed}, Rejected, byClaimer},
	RequestInfo: {[]Status{Claimed}, InfoRequested, byClaimer},
	Resubmit:    {[]Status{InfoRequested}, Submitted, byReferrer},
	Redirect:    {[]Status{Claimed}, Redirected, byClaimer},
	Book:        {[]Status{Accepted, Scheduled}, Scheduled, byDesk},
	Depart:      {[]Status{Scheduled}, InTransit, byReferrer},
	Arrive:      {[]Status{Scheduled, InTransit}, Arrived, byDesk},
	Complete:    {[]Status{Arrived}, Completed, byClinician},
	Close:       {[]Status{Completed}, Closed, byReferrer},
	Cancel:      {append([]Status{Draft}, openStates...), Cancelled, byEither},
	MarkNoShow:  {openStates, NoShow, byDesk},
}

type actor struct {
	name string
	p    auth.Principal
}

var actors = []actor{
	{"referring county doctor", refDoctor},
	{"referring desk", refDesk},
	{"referring admin", refAdmin},
	{"receiving desk holding the claim", rcvClaimer},
	{"receiving desk, other member", rcvDesk},
	{"receiving specialist", rcvSpecialist},
	{"receiving auditor", rcvAuditor},
	{"third hospital", outsider},
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
func expected(s Status, a Action, caller actor) outcome {
	req := requirement[a]
	p := caller.p
	switch {
	case p.HospitalID == outsiderID:
		return notFound
	case p.HospitalID == tertiaryID && s == Draft:
		return notFound // a draft is not yet sent: the receiver does not see it
	}
	referrer := p.HospitalID == countyID && p.Has(auth.CountyDoctor, auth.Specialist, auth.ReferralDesk)
	desk := p.HospitalID == tertiaryID && p.Has(auth.ReferralDesk)
	clinician := p.HospitalID == tertiaryID && p.Has(auth.ReferralDesk, auth.Specialist, auth.CountyDoctor, auth.DispatchedDoctor)
	allowed := map[party]bool{
		byReferrer: referrer, byDesk: desk, byClaimer: desk, byClinician: clinician, byEither: referrer || desk,
	}[req.party]
	if !allowed {
		return forbidden
	}
	if s == req.to {
		if a == Claim && p.UserID != claimerID {
			return conflict
		}
		return noop // inState holds the same schedule and target inputFor sends
	}
	if !slices.Contains(req.from, s) {
		return conflict
	}
	if req.party == byClaimer && p.UserID != claimerID {
		return conflict
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

// TestEveryStateActionAndCaller walks the whole cross product: every status
// × every action × a caller of every kind, and compares with the requirement.
func TestEveryStateActionAndCaller(t *testing.T) {
	if len(Statuses) != 14 || len(Actions) != 15 {
		t.Fatalf("%d statuses, %d actions; the requirement has 14 and 15", len(Statuses), len(Actions))
	}
	counts := map[outcome]int{}
	for _, s := range Statuses {
		for _, a := range Actions {
			for _, caller := range actors {
				r := inState(s)
				before := inState(s)
				got, ev, err := Decide(r, caller.p, a, inputFor(a), now)
				want := expected(s, a, caller)
				counts[want]++
				name := fmt.Sprintf("%s: %s by %s", s, a, caller.name)
				switch want {
				case moved:
					if err != nil {
						t.Errorf("%s: refused (%v), want it done", name, err)
						continue
					}
					to := requirement[a].to
					if got.Status != to || got.Version != r.Version+1 || !got.UpdatedAt.Equal(now) {
						t.Errorf("%s: status %s version %d, want %s version %d", name, got.Status, got.Version, to, r.Version+1)
					}
					if ev.Action != a || ev.From != s || ev.To != to || ev.Actor != caller.p.UserID ||
						ev.ActorHospitalID != caller.p.HospitalID || !ev.At.Equal(now) {
						t.Errorf("%s: event %+v", name, ev)
					}
				case noop:
					if err != nil || !ev.Empty() || !reflect.DeepEqual(got, before) {
						t.Errorf("%s: got error %v, event %+v, changed %v; want an unchanged ticket", name, err, ev, !reflect.DeepEqual(got, before))
					}
				default:
					if k := kindOf(err); k != want {
						t.Errorf("%s: got %s (%v), want %s", name, k, err, want)
					}
					if !ev.Empty() || !reflect.DeepEqual(got, before) {
						t.Errorf("%s: refused but returned a changed ticket or an event", name)
					}
				}
				if !reflect.DeepEqual(r, before) {
					t.Errorf("%s: Decide changed the ticket it was given", name)
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

// TestTableMatchesRequirement: the package's table is the requirement,
// row for row, including the roles of each side.
func TestTableMatchesRequirement(t *testing.T) {
	referrer := []auth.Role{auth.CountyDoctor, auth.Specialist, auth.ReferralDesk}
	desk := []auth.Role{auth.ReferralDesk}
	clinician := []auth.Role{auth.ReferralDesk, auth.CountyDoctor, auth.Specialist, auth.DispatchedDoctor}
	rules := Rules()
	if len(rules) != len(requirement) {
		t.Fatalf("%d rules, want %d", len(rules), len(requirement))
	}
	for _, r := range rules {
		req, ok := requirement[r.Action]
		if !ok {
			t.Errorf("rule for unknown action %s", r.Action)
			continue
		}
		wantRef, wantRcv := []auth.Role(nil), []auth.Role(nil)
		switch req.party {
		case byReferrer:
			wantRef = referrer
		case byDesk, byClaimer:
			wantRcv = desk
		case byClinician:
			wantRcv = clinician
		case byEither:
			wantRef, wantRcv = referrer, desk
		}
		sameSet := func(a, b []Status) bool {
			return len(a) == len(b) && !slices.ContainsFunc(a, func(s Status) bool { return !slices.Contains(b, s) })
		}
		if !sameSet(r.From, req.from) || r.To != req.to || !slices.Equal(r.Referrer, wantRef) ||
			!slices.Equal(r.Receiver, wantRcv) || r.ClaimHolder != (req.party == byClaimer) {
			t.Errorf("rule %s = %+v, want from %v to %s by %s", r.Action, r, req.from, req.to, req.party)
		}
	}
}

// TestCriticalCases spells out the moves that matter most, with the message
// the caller reads.
func TestCriticalCases(t *testing.T) {
	supervisor := rcvDesk
	supervisor.Supervisor = true
	cases := []struct {
		name   string
		status Status
		action Action
		by     auth.Principal
		want   outcome
		msg    string
	}{
		{"the referrer sends a draft", Draft, Submit, refDoctor, moved, ""},
		{"the receiving desk cannot see a draft", Draft, Claim, rcvDesk, notFound, ""},
		{"a hospital paired with both is still no party", Submitted, Claim, outsider, notFound, ""},
		{"the referrer cannot claim its own ticket", Submitted, Claim, refDesk, forbidden, "only the receiving hospital's referral desk may claim a referral"},
		{"an admin cannot send a referral", Draft, Submit, refAdmin, forbidden, ""},
		{"a specialist cannot claim", Submitted, Claim, rcvSpecialist, forbidden, ""},
		{"a desk member claims", Submitted, Claim, rcvDesk, moved, ""},
		{"claiming again by the holder is a no-op", Claimed, Claim, rcvClaimer, noop, ""},
		{"claiming a taken ticket is refused", Claimed, Claim, rcvDesk, conflict, "already claimed by another desk member"},
		{"only the holder accepts", Claimed, Accept, rcvDesk, conflict, "claimed by another desk member"},
		{"accept needs a claim first", Submitted, Accept, rcvClaimer, conflict, "cannot accept a submitted referral"},
		{"accepting an accepted ticket is a no-op", Accepted, Accept, rcvDesk, noop, ""},
		{"a supervisor frees someone else's claim", Claimed, Release, supervisor, moved, ""},
		{"a patient party came alone still arrives", Scheduled, Arrive, rcvDesk, moved, ""},
		{"the treating specialist completes", Arrived, Complete, rcvSpecialist, moved, ""},
		{"the referrer cannot complete", Arrived, Complete, refDoctor, forbidden, ""},
		{"the referrer closes after reading the feedback", Completed, Close, refDoctor, moved, ""},
		{"the receiver cannot close", Completed, Close, rcvDesk, forbidden, ""},
		{"a closed ticket cannot be cancelled", Closed, Cancel, refDoctor, conflict, "cannot cancel a closed referral"},
		{"an arrived patient cannot be cancelled", Arrived, Cancel, rcvDesk, conflict, "cannot cancel an arrived referral"},
		{"the receiver cancels an accepted ticket", Accepted, Cancel, rcvDesk, moved, ""},
		{"the referrer cancels while in transit", InTransit, Cancel, refDesk, moved, ""},
		{"the receiver marks a no-show in transit", InTransit, MarkNoShow, rcvDesk, moved, ""},
		{"the referrer cannot mark a no-show", Scheduled, MarkNoShow, refDesk, forbidden, ""},
		{"a rejected ticket stays rejected", Rejected, Accept, rcvClaimer, conflict, "cannot accept a rejected referral"},
		{"the referrer answers a question", InfoRequested, Resubmit, refDoctor, moved, ""},
		{"the desk cannot resubmit for the referrer", InfoRequested, Resubmit, rcvDesk, forbidden, ""},
		{"departure before scheduling is refused", Accepted, Depart, refDesk, conflict, "cannot record the departure of an accepted referral"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ev, err := Decide(inState(c.status), c.by, c.action, inputFor(c.action), now)
			switch c.want {
			case moved:
				if err != nil || ev.Empty() || got.Status != requirement[c.action].to {
					t.Fatalf("got %s, %v; want moved to %s", got.Status, err, requirement[c.action].to)
				}
			case noop:
				if err != nil || !ev.Empty() || got.Version != inState(c.status).Version {
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
	_, _, err := Decide(inState(Submitted), rcvDesk, "approve", ActionInput{}, now)
	assertFields(t, err, "action")
}

// TestRequiredInputs: each action that needs a reason, a question, an answer,
// a target, a slot or an outcome refuses to move without it, and changes
// nothing.
func TestRequiredInputs(t *testing.T) {
	long := strings.Repeat("长", apperr.MaxText+1)
	past := theSchedule
	past.At = now.Add(-ScheduleGrace - 1)
	badKind := theSchedule
	badKind.Kind = "ward"
	noSlot := theSchedule
	noSlot.Slot = " "
	cases := []struct {
		name   string
		status Status
		action Action
		by     auth.Principal
		in     ActionInput
		fields []string
	}{
		{"reject without a reason code", Claimed, Reject, rcvClaimer, ActionInput{}, []string{"reason_code"}},
		{"reject with an unknown code", Claimed, Reject, rcvClaimer, ActionInput{ReasonCode: "busy"}, []string{"reason_code"}},
		{"reject for other needs the text", Claimed, Reject, rcvClaimer, ActionInput{ReasonCode: OtherReason}, []string{"reason"}},
		{"reject with over-long text", Claimed, Reject, rcvClaimer, ActionInput{ReasonCode: NoCapacity, Reason: long}, []string{"reason"}},
		{"cancel without a reason", Submitted, Cancel, refDoctor, ActionInput{Reason: "  "}, []string{"reason"}},
		{"request info without a question", Claimed, RequestInfo, rcvClaimer, ActionInput{}, []string{"question"}},
		{"resubmit without an answer", InfoRequested, Resubmit, refDoctor, ActionInput{}, []string{"answer"}},
		{"redirect without a target", Claimed, Redirect, rcvClaimer, ActionInput{}, []string{"target"}},
		{"redirect to bad ids", Claimed, Redirect, rcvClaimer, ActionInput{Target: &Target{HospitalID: "x", DepartmentID: "", DoctorID: "y"}},
			[]string{"target.hospital_id", "target.department_id", "target.doctor_id"}},
		{"redirect to the same department", Claimed, Redirect, rcvClaimer, ActionInput{Target: &Target{HospitalID: tertiaryID, DepartmentID: cardioDept}}, []string{"target.department_id"}},
		{"redirect back to the referrer", Claimed, Redirect, rcvClaimer, ActionInput{Target: &Target{HospitalID: countyID, DepartmentID: countyDept}}, []string{"target.hospital_id"}},
		{"schedule without a slot", Accepted, Book, rcvDesk, ActionInput{}, []string{"schedule"}},
		{"schedule in the past", Accepted, Book, rcvDesk, ActionInput{Schedule: &past}, []string{"schedule.at"}},
		{"schedule of an unknown kind and no slot text", Accepted, Book, rcvDesk, ActionInput{Schedule: &badKind}, []string{"schedule.kind"}},
		{"schedule with a blank slot", Accepted, Book, rcvDesk, ActionInput{Schedule: &noSlot}, []string{"schedule.slot"}},
		{"complete without outcome and feedback", Arrived, Complete, rcvSpecialist, ActionInput{}, []string{"outcome", "feedback"}},
		{"complete with an unknown outcome", Arrived, Complete, rcvSpecialist, ActionInput{Outcome: "fine", Feedback: "ok"}, []string{"outcome"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := inState(c.status)
			got, ev, err := Decide(r, c.by, c.action, c.in, now)
			assertFields(t, err, c.fields...)
			if !ev.Empty() || !reflect.DeepEqual(got, inState(c.status)) {
				t.Errorf("bad input changed the ticket or produced an event")
			}
		})
	}
}

func TestSubmitChecksTheWholeTicket(t *testing.T) {
	r := complete()
	r.Reason, r.Diagnoses, r.ConsentID = "", nil, ""
	_, _, err := Decide(r, refDoctor, Submit, ActionInput{}, now)
	assertFields(t, err, "reason", "diagnoses", "consent_id")

	late := complete()
	late.RequestedWindow = &Window{From: t0.Add(-48 * time.Hour), To: t0}
	_, _, err = Decide(late, refDoctor, Submit, ActionInput{}, now)
	assertFields(t, err, "requested_window.to")
}

func TestSubmitNormalisesACopy(t *testing.T) {
	r := complete()
	r.Diagnoses = []Diagnosis{{Code: " i21.0 ", Text: " 急性心梗 "}}
	got, ev, err := Decide(r, refDoctor, Submit, ActionInput{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if got.Diagnoses[0].Code != "I21.0" || got.Diagnoses[0].Text != "急性心梗" {
		t.Errorf("submitted diagnosis %+v, want it normalised", got.Diagnoses[0])
	}
	if r.Diagnoses[0].Code != " i21.0 " {
		t.Errorf("Decide wrote through to the caller's diagnoses: %+v", r.Diagnoses[0])
	}
	if !got.SubmittedAt.Equal(now) || !got.QueuedAt.Equal(now) || ev.To != Submitted {
		t.Errorf("submitted at %v queued at %v", got.SubmittedAt, got.QueuedAt)
	}
}

// TestResubmitKeepsThePlaceInLine: the answer restarts the desk's deadlines
// (QueuedAt) but the patient keeps the first submission time.
func TestResubmitKeepsThePlaceInLine(t *testing.T) {
	r := inState(InfoRequested)
	r.InfoQuestion = "请补充肌钙蛋白结果"
	got, ev, err := Decide(r, refDoctor, Resubmit, inputFor(Resubmit), now)
	if err != nil {
		t.Fatal(err)
	}
	if !got.SubmittedAt.Equal(t0) || !got.QueuedAt.Equal(now) || got.InfoAnswer != "肌钙蛋白I 5.2 ng/mL" || ev.Reason != got.InfoAnswer {
		t.Errorf("resubmitted: submitted %v queued %v answer %q", got.SubmittedAt, got.QueuedAt, got.InfoAnswer)
	}
}

func TestRequestInfoAndReleaseGiveUpTheClaim(t *testing.T) {
	for _, a := range []Action{RequestInfo, Release} {
		got, _, err := Decide(inState(Claimed), rcvClaimer, a, inputFor(a), now)
		if err != nil {
			t.Fatal(err)
		}
		if got.ClaimedBy != "" || got.ClaimedAt != nil {
			t.Errorf("%s kept the claim of %s", a, got.ClaimedBy)
		}
	}
}

// TestALapsedClaimCanBeTakenOver: a desk member who walked away holds a
// ticket only as long as their lease; after it lapses the queue hands the
// ticket to a colleague, who takes the claim over. Without a lapsed lease
// the ticket stays taken, and the holder's own retry is still a no-op.
func TestALapsedClaimCanBeTakenOver(t *testing.T) {
	held := inState(Claimed)
	if _, _, err := Decide(held, rcvDesk, Claim, ActionInput{}, now); !errors.Is(err, apperr.ErrConflict) {
		t.Fatalf("claiming a held ticket: %v, want a conflict", err)
	}
	got, ev, err := Decide(held, rcvDesk, Claim, ActionInput{LeaseLapsed: true}, now)
	if err != nil {
		t.Fatal(err)
	}
	if got.ClaimedBy != otherDeskID || got.Status != Claimed || got.Version != held.Version+1 {
		t.Errorf("take-over: claimed by %s, %s, version %d", got.ClaimedBy, got.Status, got.Version)
	}
	if ev.From != Claimed || ev.To != Claimed || ev.Reason == "" {
		t.Errorf("the take-over must be on record with its reason: %+v", ev)
	}
	if _, ev, err := Decide(held, rcvClaimer, Claim, ActionInput{LeaseLapsed: true}, now); err != nil || !ev.Empty() {
		t.Errorf("the holder claiming again is a no-op: %+v %v", ev, err)
	}
	if _, _, err := Decide(inState(Accepted), rcvDesk, Claim, ActionInput{LeaseLapsed: true}, now); !errors.Is(err, apperr.ErrConflict) {
		t.Errorf("a decided ticket cannot be claimed: %v", err)
	}
}

func TestAcceptGrantsTheGreenChannelTerms(t *testing.T) {
	got, _, err := Decide(inState(Claimed), rcvClaimer, Accept, ActionInput{BedReservationID: bedID}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !got.FeeWaived || got.ExamSlipNumber != "JC-20261122-000123" || got.BedReservationID != bedID ||
		got.DecidedBy != claimerID || !got.DecidedAt.Equal(now) {
		t.Errorf("accepted up-referral: %+v", got)
	}

	_, _, err = Decide(inState(Claimed), rcvClaimer, Accept, ActionInput{}, now)
	if err == nil || errors.As(err, new(apperr.Invalid)) || errors.Is(err, apperr.ErrConflict) {
		t.Errorf("green channel accepted without a reserved bed: %v; want a wiring error", err)
	}

	down := inState(Claimed)
	down.Direction, down.GreenChannel, down.GreenCategory, down.Priority = Down, false, "", Routine
	got, _, err = Decide(down, rcvClaimer, Accept, ActionInput{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if got.FeeWaived || got.ExamSlipNumber != "" || got.BedReservationID != "" {
		t.Errorf("a down-referral got up-referral terms: %+v", got)
	}
}

func TestRejectRecordsTheCode(t *testing.T) {
	got, ev, err := Decide(inState(Claimed), rcvClaimer, Reject, ActionInput{ReasonCode: OtherReason, Reason: "设备检修"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if got.RejectReason != OtherReason || got.DecisionNote != "设备检修" || ev.ReasonCode != OtherReason || ev.Reason != "设备检修" {
		t.Errorf("rejection %+v event %+v", got, ev)
	}
}

func TestRescheduleIsAChangeButTheSameSlotIsNot(t *testing.T) {
	r := inState(Scheduled)
	moved := theSchedule
	moved.Slot = "心内科5病区3床"
	got, ev, err := Decide(r, rcvDesk, Book, ActionInput{Schedule: &moved}, now)
	if err != nil || ev.Empty() || got.Schedule.Slot != moved.Slot || got.Version != r.Version+1 {
		t.Fatalf("reschedule: %v %+v", err, ev)
	}
	same := theSchedule
	same.Slot = " " + same.Slot + " "
	got, ev, err = Decide(r, rcvDesk, Book, ActionInput{Schedule: &same}, now)
	if err != nil || !ev.Empty() || got.Version != r.Version {
		t.Fatalf("same slot again: %v %+v; want a no-op", err, ev)
	}
}

func TestRedirectElsewhereAfterRedirectIsRefused(t *testing.T) {
	other := Target{HospitalID: outsiderID, DepartmentID: cardioDept}
	_, _, err := Decide(inState(Redirected), rcvClaimer, Redirect, ActionInput{Target: &other}, now)
	if !errors.Is(err, apperr.ErrConflict) {
		t.Errorf("second redirect elsewhere: %v, want conflict", err)
	}
}

func TestRedirectedTicket(t *testing.T) {
	old, _, err := Decide(inState(Claimed), rcvClaimer, Redirect, inputFor(Redirect), now)
	if err != nil {
		t.Fatal(err)
	}
	later := now.Add(time.Second)
	n, ev, err := RedirectedTicket(old, later)
	if err != nil {
		t.Fatal(err)
	}
	if n.ID != "" || n.Number != "" || n.RedirectedFromID != old.ID || n.Status != Submitted || n.Version != 1 ||
		n.ReceivingHospitalID != tertiaryID || n.ReceivingDepartmentID != neuroDept ||
		!n.SubmittedAt.Equal(t0) || !n.QueuedAt.Equal(later) || n.ClaimedBy != "" || n.Redirect != nil ||
		n.PatientID != old.PatientID || n.ReferringHospitalID != countyID || n.CreatedBy != claimerID {
		t.Errorf("follow-up ticket %+v", n)
	}
	if ev.To != Submitted || ev.Action != Redirect || !strings.Contains(ev.Reason, old.Number) {
		t.Errorf("follow-up event %+v", ev)
	}
	if err := n.Validate(); err != nil {
		t.Errorf("follow-up ticket is not complete: %v", err)
	}
	if _, _, err := RedirectedTicket(inState(Claimed), later); !errors.Is(err, apperr.ErrConflict) {
		t.Errorf("follow-up of a ticket never redirected: %v", err)
	}
}

func TestConflictMessagesReadAsEnglish(t *testing.T) {
	for s, want := range map[Status]string{
		InTransit: "cannot close an in transit referral",
		Draft:     "cannot close a draft referral",
		NoShow:    "cannot close a no show referral",
	} {
		_, _, err := Decide(inState(s), refDoctor, Close, ActionInput{}, now)
		if err == nil || err.Error() != want {
			t.Errorf("close %s: %v, want %q", s, err, want)
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
