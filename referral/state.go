package referral

import (
	"errors"
	"slices"
	"strings"
	"time"

	"duikou/internal/apperr"
	"duikou/internal/auth"
)

// Status is where a ticket stands.
type Status string

const (
	Draft         Status = "draft"
	Submitted     Status = "submitted"
	Claimed       Status = "claimed"
	Accepted      Status = "accepted"
	Rejected      Status = "rejected"
	InfoRequested Status = "info_requested"
	Redirected    Status = "redirected"
	Scheduled     Status = "scheduled"
	InTransit     Status = "in_transit"
	Arrived       Status = "arrived"
	Completed     Status = "completed"
	Closed        Status = "closed"
	Cancelled     Status = "cancelled"
	NoShow        Status = "no_show"
)

// Statuses lists every status in the order a ticket normally moves.
var Statuses = []Status{Draft, Submitted, Claimed, Accepted, Rejected, InfoRequested, Redirected,
	Scheduled, InTransit, Arrived, Completed, Closed, Cancelled, NoShow}

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return slices.Contains(Statuses, s) }

// Ended reports whether nothing more can happen to a ticket in s.
func (s Status) Ended() bool {
	switch s {
	case Rejected, Redirected, Closed, Cancelled, NoShow:
		return true
	}
	return false
}

// InQueue reports whether a ticket in s waits in (or is held from) the
// receiving desk's queue.
func (s Status) InQueue() bool { return s == Submitted || s == Claimed }

// Action is a move of the state machine.
type Action string

const (
	Submit      Action = "submit"
	Claim       Action = "claim"
	Release     Action = "release"
	Accept      Action = "accept"
	Reject      Action = "reject"
	RequestInfo Action = "request_info"
	Resubmit    Action = "resubmit"
	Redirect    Action = "redirect"
	Book        Action = "schedule" // a bed or appointment (named Book: Schedule is the type)
	Depart      Action = "depart"
	Arrive      Action = "arrive"
	Complete    Action = "complete"
	Close       Action = "close"
	Cancel      Action = "cancel"
	MarkNoShow  Action = "mark_no_show"
)

// Actions lists every action, in a stable order.
var Actions = []Action{Submit, Claim, Release, Accept, Reject, RequestInfo, Resubmit, Redirect,
	Book, Depart, Arrive, Complete, Close, Cancel, MarkNoShow}

// Side is a caller's part in a ticket.
type Side int

const (
	NoSide   Side = iota // not a party: the ticket does not exist for this caller
	Referrer             // acts for the referring hospital
	Receiver             // acts for the receiving hospital
)

// SideOf says for which end of the ticket p acts. A draft is the referrer's
// own business: the receiving hospital does not see it until it is sent.
func SideOf(r Referral, p auth.Principal) Side {
	switch {
	case p.HospitalID == "":
		return NoSide
	case p.HospitalID == r.ReferringHospitalID:
		return Referrer
	case p.HospitalID == r.ReceivingHospitalID && r.Status != Draft:
		return Receiver
	}
	return NoSide
}

// Role sets of the two ends. The referrer side is whoever writes referrals at
// the referring hospital; the receiving side is worked by its referral desk
// (转诊办), and only the completion, which is clinical feedback, is also
// open to the receiving clinicians who treated the patient.
var (
	referrerRoles     = []auth.Role{auth.CountyDoctor, auth.Specialist, auth.ReferralDesk}
	receiverDesk      = []auth.Role{auth.ReferralDesk}
	receiverClinician = []auth.Role{auth.ReferralDesk, auth.CountyDoctor, auth.Specialist, auth.DispatchedDoctor}
)

// Repeat says what asking for the state a ticket is already in means.
type Repeat int

const (
	// RepeatNoop: a retry, answered with the ticket unchanged.
	RepeatNoop Repeat = iota
	// RepeatSameActor: a no-op only for the desk member who holds the claim;
	// anyone else finds the ticket taken.
	RepeatSameActor
	// RepeatSameInput: a no-op when the input is the one already recorded;
	// different input is a new move (reschedule) or refused (redirect elsewhere).
	RepeatSameInput
)

// Rule is one row of the state machine: an action, where it may start, where
// it ends, and which roles of which side may take it.
type Rule struct {
	Action   Action
	From     []Status
	To       Status
	Referrer []auth.Role // roles of the referring hospital allowed; nil: not this side
	Receiver []auth.Role // roles of the receiving hospital allowed; nil: not this side
	// ClaimHolder: only the desk member holding the claim may take the action
	// (a supervisor may also release someone else's claim), so two desk members
	// never decide the same ticket at once.
	ClaimHolder bool
	Repeat      Repeat
}

// open is every state in which a ticket is still on its way and can be
// stopped: before arrival, not yet ended. A draft is open only to its writer.
var open = []Status{Submitted, Claimed, InfoRequested, Accepted, Scheduled, InTransit}

var rules = []Rule{
	{Action: Submit, From: []Status{Draft}, To: Submitted, Referrer: referrerRoles},
	{Action: Claim, From: []Status{Submitted}, To: Claimed, Receiver: receiverDesk, Repeat: RepeatSameActor},
	{Action: Release, From: []Status{Claimed}, To: Submitted, Receiver: receiverDesk, ClaimHolder: true},
	{Action: Accept, From: []Status{Claimed}, To: Accepted, Receiver: receiverDesk, ClaimHolder: true},
	{Action: Reject, From: []Status{Claimed}, To: Rejected, Receiver: receiverDesk, ClaimHolder: true},
	{Action: RequestInfo, From: []Status{Claimed}, To: InfoRequested, Receiver: receiverDesk, ClaimHolder: true},
	{Action: Resubmit, From: []Status{InfoRequested}, To: Submitted, Referrer: referrerRoles},
	{Action: Redirect, From: []Status{Claimed}, To: Redirected, Receiver: receiverDesk, ClaimHolder: true, Repeat: RepeatSameInput},
	// A scheduled ticket may be scheduled again: beds and appointments move.
	{Action: Book, From: []Status{Accepted, Scheduled}, To: Scheduled, Receiver: receiverDesk, Repeat: RepeatSameInput},
	// The patient leaves the referring hospital: that side sees it happen.
	{Action: Depart, From: []Status{Scheduled}, To: InTransit, Referrer: referrerRoles},
	// A patient who came on their own has no recorded departure; the desk
	// still records the arrival.
	{Action: Arrive, From: []Status{Scheduled, InTransit}, To: Arrived, Receiver: receiverDesk},
	{Action: Complete, From: []Status{Arrived}, To: Completed, Receiver: receiverClinician},
	// Closing says the referrer has read the feedback.
	{Action: Close, From: []Status{Completed}, To: Closed, Referrer: referrerRoles},
	{Action: Cancel, From: append([]Status{Draft}, open...), To: Cancelled, Referrer: referrerRoles, Receiver: receiverDesk},
	{Action: MarkNoShow, From: open, To: NoShow, Receiver: receiverDesk},
}

// Rules returns the state machine table, one row per action.
func Rules() []Rule {
	out := make([]Rule, len(rules))
	for i, r := range rules {
		r.From = slices.Clone(r.From)
		r.Referrer = slices.Clone(r.Referrer)
		r.Receiver = slices.Clone(r.Receiver)
		out[i] = r
	}
	return out
}

// RuleFor returns the row of action a.
func RuleFor(a Action) (Rule, bool) {
	for _, r := range rules {
		if r.Action == a {
			return r, true
		}
	}
	return Rule{}, false
}

// RejectReason is the coded reason for refusing a referral, so that the
// reasons can be counted and the pairing improved.
type RejectReason string

const (
	NoCapacity            RejectReason = "no_capacity"
	OutsideScope          RejectReason = "outside_scope"
	IncompleteInformation RejectReason = "incomplete_information"
	NotIndicated          RejectReason = "not_indicated"
	PatientDeclined       RejectReason = "patient_declined"
	OtherReason           RejectReason = "other"
)

// RejectReasons lists every rejection reason, in a stable order.
var RejectReasons = []RejectReason{NoCapacity, OutsideScope, IncompleteInformation, NotIndicated, PatientDeclined, OtherReason}

// Outcome is how the receiving hospital's care ended, told back to the referrer.
type Outcome string

const (
	TreatedOutpatient    Outcome = "treated_outpatient"
	Discharged           Outcome = "discharged"            // admitted, treated, sent home
	ReferredBack         Outcome = "referred_back"         // a down-referral follows
	TransferredElsewhere Outcome = "transferred_elsewhere" // moved on to another hospital
	LeftAgainstAdvice    Outcome = "left_against_advice"   // 自动出院
	Died                 Outcome = "died"
)

// Outcomes lists every outcome, in a stable order.
var Outcomes = []Outcome{TreatedOutpatient, Discharged, ReferredBack, TransferredElsewhere, LeftAgainstAdvice, Died}

// ActionInput carries what an action needs. Fields an action does not use
// are ignored.
type ActionInput struct {
	ReasonCode RejectReason `json:"reason_code"` // reject
	// Reason is free text: required to cancel and to reject for "other";
	// optional with reject, redirect, release, accept and mark_no_show.
	Reason   string    `json:"reason"`
	Question string    `json:"question"` // request_info
	Answer   string    `json:"answer"`   // resubmit
	Target   *Target   `json:"target"`   // redirect
	Schedule *Schedule `json:"schedule"` // schedule
	Outcome  Outcome   `json:"outcome"`  // complete
	Feedback string    `json:"feedback"` // complete

	// BedReservationID is set by the store, never by a request body: the
	// store reserves the bed in the same transaction and hands its id over.
	BedReservationID string `json:"-"`
	// LeaseLapsed is set by the desk service, never by a request body: the
	// queue handed a claimed ticket out again because its holder's lease ran
	// out (they left the desk without deciding it), so another desk member
	// may take the claim over instead of finding it taken.
	LeaseLapsed bool `json:"-"`
}

// Event is one append-only line of a ticket's history.
type Event struct {
	Action          Action       `json:"action"`
	From            Status       `json:"from"`
	To              Status       `json:"to"`
	Actor           string       `json:"actor"`
	ActorHospitalID string       `json:"actor_hospital_id"`
	ReasonCode      RejectReason `json:"reason_code,omitempty"`
	Reason          string       `json:"reason,omitempty"`
	At              time.Time    `json:"at"`
}

// Empty reports whether e records nothing (the action was a no-op).
func (e Event) Empty() bool { return e.Action == "" }

// ScheduleGrace is how far in the past a bed or appointment time may lie:
// a desk often records a slot it arranged by phone a few minutes before.
const ScheduleGrace = 15 * time.Minute

// errNeedsBed is a wiring fault, not a user error: the store must reserve a
// bed before a green-channel ticket is accepted.
var errNeedsBed = errors.New("referral: accepting a green-channel referral needs a bed reservation from the store")

// Decide applies action a by principal p to ticket r at now. It returns the
// ticket as it becomes and the event to append; a repeat of the state the
// ticket is already in returns r unchanged and an empty event. Errors:
// ErrNotFound when p is no party to the ticket, ErrForbidden when p's side or
// role may not take a, ErrConflict when the ticket's state does not allow it,
// and apperr.Invalid when the input is missing or wrong. The version is
// raised by one; the store compares the old one with If-Match.
func Decide(r Referral, p auth.Principal, a Action, in ActionInput, now time.Time) (Referral, Event, error) {
	rule, ok := RuleFor(a)
	if !ok {
		return r, Event{}, apperr.Field("action", "must be one of "+joinActions())
	}
	side := SideOf(r, p)
	if side == NoSide {
		return r, Event{}, apperr.ErrNotFound
	}
	roles := rule.Referrer
	if side == Receiver {
		roles = rule.Receiver
	}
	if roles == nil || !p.Has(roles...) {
		return r, Event{}, apperr.Forbidden("only " + who(rule) + " may " + verb(a) + " a referral")
	}

	if r.Status == rule.To {
		switch rule.Repeat {
		case RepeatNoop:
			return r, Event{}, nil
		case RepeatSameActor:
			if r.ClaimedBy == p.UserID {
				return r, Event{}, nil
			}
			if !in.LeaseLapsed {
				return r, Event{}, apperr.Conflict("this referral is already claimed by another desk member")
			}
		case RepeatSameInput:
			if a == Redirect && in.Target != nil && r.Redirect != nil && sameTarget(*in.Target, *r.Redirect) {
				return r, Event{}, nil
			}
			if a == Book && in.Schedule != nil && r.Schedule != nil && sameSchedule(*in.Schedule, *r.Schedule) {
				return r, Event{}, nil
			}
		}
	}
	takeOver := a == Claim && r.Status == Claimed && in.LeaseLapsed
	if !slices.Contains(rule.From, r.Status) && !takeOver {
		return r, Event{}, apperr.Conflict("cannot " + verb(a) + " " + article(r.Status) + " referral")
	}
	if rule.ClaimHolder && r.ClaimedBy != p.UserID && !(a == Release && p.Supervisor) {
		return r, Event{}, apperr.Conflict("this referral is claimed by another desk member")
	}

	next := r
	ev := Event{Action: a, From: r.Status, To: rule.To, Actor: p.UserID, ActorHospitalID: p.HospitalID, At: now}
	if err := effect(&next, &ev, p, a, in, now); err != nil {
		return r, Event{}, err
	}
	next.Status = rule.To
	next.Version++
	next.UpdatedAt = now
	return next, ev, nil
}

// effect validates the input of a and records what a changes besides the
// status. It works on a copy; on error the caller discards it.
func effect(r *Referral, ev *Event, p auth.Principal, a Action, in ActionInput, now time.Time) error {
	var v apperr.Invalid
	at := func() *time.Time { t := now; return &t }
	switch a {
	case Submit:
		r.cloneSlices()
		if err := r.validateSubmission(now); err != nil {
			return err
		}
		if r.SubmittedAt == nil {
			r.SubmittedAt = at()
		}
		r.QueuedAt = at()
	case Claim:
		if r.Status == Claimed {
			ev.Reason = "the claim of the previous desk member lapsed"
		}
		r.ClaimedBy, r.ClaimedAt = p.UserID, at()
	case Release:
		ev.Reason = v.Text("reason", in.Reason, false, apperr.MaxText)
		r.ClaimedBy, r.ClaimedAt = "", nil
	case Accept:
		ev.Reason = v.Text("reason", in.Reason, false, apperr.MaxText)
		if err := v.Err(); err != nil {
			return err
		}
		if r.GreenChannel && !apperr.IsID(in.BedReservationID) {
			return errNeedsBed
		}
		if r.Direction == Up {
			slip, err := ExamSlipNumber(r.Number)
			if err != nil {
				return errors.New("referral: accepting a ticket without a valid number: " + err.Error())
			}
			r.FeeWaived, r.ExamSlipNumber = true, slip
		}
		if apperr.IsID(in.BedReservationID) {
			r.BedReservationID = in.BedReservationID
		}
		r.DecidedBy, r.DecidedAt, r.DecisionNote = p.UserID, at(), ev.Reason
	case Reject:
		code := RejectReason(strings.TrimSpace(string(in.ReasonCode)))
		switch {
		case code == "":
			v.Add("reason_code", "is required ("+joinReasons()+")")
		case !slices.Contains(RejectReasons, code):
			v.Add("reason_code", "must be one of "+joinReasons())
		}
		ev.ReasonCode = code
		// "other" says nothing by itself; the referrer must learn why.
		ev.Reason = v.Text("reason", in.Reason, code == OtherReason, apperr.MaxText)
		r.RejectReason, r.DecisionNote = code, ev.Reason
		r.DecidedBy, r.DecidedAt = p.UserID, at()
	case RequestInfo:
		ev.Reason = v.Text("question", in.Question, true, apperr.MaxText)
		r.InfoQuestion, r.InfoAnswer = ev.Reason, ""
		// The ticket leaves the desk until the referrer answers; whoever is
		// free then claims it again.
		r.ClaimedBy, r.ClaimedAt = "", nil
	case Resubmit:
		ev.Reason = v.Text("answer", in.Answer, true, apperr.MaxText)
		if err := v.Err(); err != nil {
			return err
		}
		r.cloneSlices()
		if err := r.validateSubmission(now); err != nil {
			return err
		}
		r.InfoAnswer = ev.Reason
		r.QueuedAt = at()
	case Redirect:
		t := checkTarget(&v, in.Target)
		if t != nil {
			if t.HospitalID == r.ReferringHospitalID {
				v.Add("target.hospital_id", "must not be the referring hospital")
			}
			if t.HospitalID == r.ReceivingHospitalID && t.DepartmentID == r.ReceivingDepartmentID {
				v.Add("target.department_id", "must differ from the department the referral was sent to")
			}
		}
		ev.Reason = v.Text("reason", in.Reason, false, apperr.MaxText)
		r.Redirect, r.DecisionNote = t, ev.Reason
		r.DecidedBy, r.DecidedAt = p.UserID, at()
	case Book:
		s := checkSchedule(&v, in.Schedule, now)
		r.Schedule, r.ScheduledAt = s, at()
		if s != nil {
			ev.Reason = string(s.Kind) + ": " + s.Slot + " at " + s.At.UTC().Format(time.RFC3339)
		}
	case Depart:
		r.DepartedAt = at()
	case Arrive:
		r.ArrivedAt = at()
	case Complete:
		o := Outcome(strings.TrimSpace(string(in.Outcome)))
		switch {
		case o == "":
			v.Add("outcome", "is required ("+joinOutcomes()+")")
		case !slices.Contains(Outcomes, o):
			v.Add("outcome", "must be one of "+joinOutcomes())
		}
		r.Outcome = o
		r.Feedback = v.Text("feedback", in.Feedback, true, apperr.MaxText)
		r.CompletedBy, r.CompletedAt = p.UserID, at()
		ev.Reason = string(o)
	case Close:
		r.ClosedAt = at()
	case Cancel:
		ev.Reason = v.Text("reason", in.Reason, true, apperr.MaxText)
		r.EndReason, r.EndedAt = ev.Reason, at()
		r.ClaimedBy, r.ClaimedAt = "", nil
	case MarkNoShow:
		ev.Reason = v.Text("reason", in.Reason, false, apperr.MaxText)
		r.EndReason, r.EndedAt = ev.Reason, at()
		r.ClaimedBy, r.ClaimedAt = "", nil
	}
	return v.Err()
}

// cloneSlices lets validation normalise a copy without writing through to
// the caller's backing arrays.
func (r *Referral) cloneSlices() {
	r.Diagnoses = slices.Clone(r.Diagnoses)
	r.Attachments = slices.Clone(r.Attachments)
	if r.RequestedWindow != nil {
		w := *r.RequestedWindow
		r.RequestedWindow = &w
	}
}

func checkTarget(v *apperr.Invalid, t *Target) *Target {
	if t == nil {
		v.Add("target", "is required: the hospital and department to send the patient to instead")
		return nil
	}
	c := Target{
		HospitalID:   strings.TrimSpace(t.HospitalID),
		DepartmentID: strings.TrimSpace(t.DepartmentID),
		DoctorID:     strings.TrimSpace(t.DoctorID),
	}
	n := len(*v)
	if !apperr.IsID(c.HospitalID) {
		v.Add("target.hospital_id", "must be the id of a hospital")
	}
	if !apperr.IsID(c.DepartmentID) {
		v.Add("target.department_id", "must be the id of a department")
	}
	if c.DoctorID != "" && !apperr.IsID(c.DoctorID) {
		v.Add("target.doctor_id", "must be an id")
	}
	if len(*v) > n {
		return nil
	}
	return &c
}

func checkSchedule(v *apperr.Invalid, s *Schedule, now time.Time) *Schedule {
	if s == nil {
		v.Add("schedule", "is required: a bed or an appointment")
		return nil
	}
	c := *s
	n := len(*v)
	switch c.Kind = ScheduleKind(strings.TrimSpace(string(c.Kind))); c.Kind {
	case Bed, Appointment:
	case "":
		v.Add("schedule.kind", "is required (bed or appointment)")
	default:
		v.Add("schedule.kind", "must be bed or appointment")
	}
	c.Slot = v.Text("schedule.slot", c.Slot, true, apperr.MaxName)
	switch {
	case c.At.IsZero():
		v.Add("schedule.at", "is required")
	case c.At.Before(now.Add(-ScheduleGrace)):
		v.Add("schedule.at", "must not be in the past")
	case c.At.After(now.AddDate(1, 0, 0)):
		v.Add("schedule.at", "must be within a year")
	}
	if len(*v) > n {
		return nil
	}
	return &c
}

func sameTarget(a, b Target) bool {
	return strings.TrimSpace(a.HospitalID) == b.HospitalID &&
		strings.TrimSpace(a.DepartmentID) == b.DepartmentID &&
		strings.TrimSpace(a.DoctorID) == b.DoctorID
}

func sameSchedule(a, b Schedule) bool {
	return ScheduleKind(strings.TrimSpace(string(a.Kind))) == b.Kind &&
		strings.TrimSpace(a.Slot) == b.Slot && a.At.Equal(b.At)
}

// RedirectedTicket builds the ticket that replaces a redirected one: the same
// patient, referrer and clinical content, sent to the redirect target and
// straight into its desk's queue. It keeps the first submission time, so the
// patient does not lose their place for having been sent on, while the new
// desk's deadlines start now. The store assigns ID and Number, checks the
// route when the hospital changed, links old.RedirectedToID and appends the
// returned event.
func RedirectedTicket(old Referral, now time.Time) (Referral, Event, error) {
	if old.Status != Redirected || old.Redirect == nil {
		return Referral{}, Event{}, apperr.Conflict("only a redirected referral has a follow-up ticket")
	}
	n := old
	n.cloneSlices()
	n.ID, n.Number = "", ""
	n.RedirectedFromID, n.RedirectedToID = old.ID, ""
	n.ReceivingHospitalID = old.Redirect.HospitalID
	n.ReceivingDepartmentID = old.Redirect.DepartmentID
	n.ReceivingDoctorID = old.Redirect.DoctorID
	n.Status, n.Version = Submitted, 1
	n.CreatedBy, n.CreatedAt, n.UpdatedAt = old.DecidedBy, now, now
	q := now
	n.QueuedAt = &q
	n.ClaimedAt, n.ClaimedBy, n.DecidedAt, n.DecidedBy = nil, "", nil, ""
	n.ScheduledAt, n.DepartedAt, n.ArrivedAt, n.CompletedAt, n.CompletedBy, n.ClosedAt, n.EndedAt = nil, nil, nil, nil, "", nil, nil
	n.RejectReason, n.DecisionNote, n.InfoQuestion, n.InfoAnswer = "", "", "", ""
	n.Redirect, n.Schedule, n.EndReason = nil, nil, ""
	n.FeeWaived, n.ExamSlipNumber, n.BedReservationID = false, "", ""
	n.Outcome, n.Feedback = "", ""
	ev := Event{
		Action: Redirect, From: "", To: Submitted,
		Actor: old.DecidedBy, ActorHospitalID: old.ReceivingHospitalID,
		Reason: "redirected from " + old.Number, At: now,
	}
	return n, ev, nil
}

// who names, for an error message, the callers a rule admits.
func who(r Rule) string {
	var parts []string
	if r.Referrer != nil {
		parts = append(parts, "the referring hospital's "+roleList(r.Referrer))
	}
	if r.Receiver != nil {
		parts = append(parts, "the receiving hospital's "+roleList(r.Receiver))
	}
	return strings.Join(parts, " or ")
}

func roleList(roles []auth.Role) string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = strings.ReplaceAll(string(r), "_", " ")
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// verb is the action as it reads in "cannot … a … referral".
func verb(a Action) string {
	switch a {
	case RequestInfo:
		return "request information on"
	case Depart:
		return "record the departure of"
	case Arrive:
		return "record the arrival of"
	case MarkNoShow:
		return "mark as no-show"
	}
	return string(a)
}

// article is "a draft", "an accepted", "an in transit" …
func article(s Status) string {
	words := strings.ReplaceAll(string(s), "_", " ")
	if words != "" && strings.ContainsRune("aeiou", rune(words[0])) {
		return "an " + words
	}
	return "a " + words
}

func joinActions() string {
	names := make([]string, len(Actions))
	for i, a := range Actions {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

func joinReasons() string {
	names := make([]string, len(RejectReasons))
	for i, a := range RejectReasons {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

func joinOutcomes() string {
	names := make([]string, len(Outcomes))
	for i, a := range Outcomes {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}
