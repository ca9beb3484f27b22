package consult

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"duikou/internal/apperr"
	"duikou/internal/auth"
)

// Status is where a session stands.
type Status string

const (
	Requested     Status = "requested"
	Accepted      Status = "accepted" // specialist(s) assigned
	Declined      Status = "declined"
	Scheduled     Status = "scheduled"
	Live          Status = "live"
	Ended         Status = "ended"
	OpinionSigned Status = "opinion_signed"
	Acknowledged  Status = "acknowledged" // the requester has read the opinion
	Cancelled     Status = "cancelled"
)

// Statuses lists every status in the order a session normally moves.
var Statuses = []Status{Requested, Accepted, Declined, Scheduled, Live, Ended, OpinionSigned, Acknowledged, Cancelled}

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return slices.Contains(Statuses, s) }

// Final reports whether nothing more can move a session in s. A teaching
// round is over once ended (it has no opinion); see Session.Final.
func (s Status) Final() bool {
	return s == Declined || s == Acknowledged || s == Cancelled
}

// Final reports whether the session will move no further.
func (s Session) Final() bool {
	return s.Status.Final() || (s.Kind == TeachingRound && s.Status == Ended)
}

// Action is a move of the state machine.
type Action string

const (
	Accept      Action = "accept"
	Decline     Action = "decline"
	Schedule    Action = "schedule"
	Start       Action = "start"
	End         Action = "end"
	Sign        Action = "sign_opinion"
	Acknowledge Action = "acknowledge"
	Cancel      Action = "cancel"
)

// Actions lists every action Decide takes, in a stable order.
var Actions = []Action{Accept, Decline, Schedule, Start, End, Sign, Acknowledge, Cancel}

// Actions that create a session or edit the opinion draft: they appear in
// the history but are not moves of Decide.
const (
	RequestAction Action = "request"       // Request: a new session
	BookAction    Action = "book"          // Book: an expert-clinic slot taken
	DraftOpinion  Action = "draft_opinion" // WriteOpinion: the draft changed
)

// Side is a caller's part in a session.
type Side int

const (
	NoSide    Side = iota // not a party: the session does not exist for this caller
	Requester             // acts for the requesting hospital
	Target                // acts for the target hospital
	Attendee              // a hospital invited to a teaching round: sees it, acts on nothing
)

// SideOf says for which end of the session p acts.
func SideOf(s Session, p auth.Principal) Side {
	switch {
	case p.HospitalID == "":
		return NoSide
	case p.HospitalID == s.RequestingHospitalID:
		return Requester
	case p.HospitalID == s.TargetHospitalID:
		return Target
	case s.Kind == TeachingRound && slices.Contains(s.AttendeeHospitalIDs, p.HospitalID):
		return Attendee
	}
	return NoSide
}

// Assigned reports whether user is one of the session's assigned specialists.
func (s Session) Assigned(user string) bool {
	return user != "" && slices.ContainsFunc(s.Specialists, func(a Assignment) bool { return a.SpecialistID == user })
}

// Repeat says what asking for the state a session is already in means.
type Repeat int

const (
	// RepeatNoop: a retry, answered with the session unchanged.
	RepeatNoop Repeat = iota
	// RepeatSameInput: a no-op when the input is the one already recorded;
	// different input is a new move (reschedule) or refused.
	RepeatSameInput
)

// Rule is one row of the state machine.
type Rule struct {
	Action    Action
	Kinds     []Kind // the kinds the row applies to; nil: every kind
	From      []Status
	To        Status
	Requester []auth.Role // roles of the requesting hospital allowed; nil: not this side
	Target    []auth.Role // roles of the target hospital allowed; nil: not this side
	// Assigned: only a specialist assigned to the session may take it. The
	// people who run the session and answer for the opinion are named.
	Assigned bool
	// NeedsConsent: a session about a patient needs the patient's consent
	// to remote consultation and to sharing data with the target hospital.
	NeedsConsent bool
	Repeat       Repeat
}

// withOpinion are the kinds that end in a written opinion; a teaching round
// teaches and records attendance instead.
var withOpinion = []Kind{Consult, MDT, ImagingReview, ExpertClinic}

var rules = []Rule{
	// Accepting assigns the specialists; whoever accepts (a department head,
	// say) need not be one of them.
	{Action: Accept, From: []Status{Requested}, To: Accepted, Target: targetRoles, Repeat: RepeatSameInput},
	{Action: Decline, From: []Status{Requested}, To: Declined, Target: targetRoles},
	// A scheduled session may be scheduled again: times move.
	{Action: Schedule, From: []Status{Accepted, Scheduled}, To: Scheduled, Target: targetRoles, NeedsConsent: true, Repeat: RepeatSameInput},
	{Action: Start, From: []Status{Scheduled}, To: Live, Target: targetRoles, Assigned: true, NeedsConsent: true},
	{Action: End, From: []Status{Live}, To: Ended, Target: targetRoles, Assigned: true},
	// An opinion answers what the session found, so it is signed once the
	// session ended …
	{Action: Sign, Kinds: []Kind{Consult, MDT, ExpertClinic}, From: []Status{Ended}, To: OpinionSigned,
		Target: targetRoles, Assigned: true, Repeat: RepeatSameInput},
	// … except an imaging review, which is read and reported like any remote
	// imaging diagnosis: the images travel with the request, and a joint
	// video reading is optional. It may be signed once accepted.
	{Action: Sign, Kinds: []Kind{ImagingReview}, From: []Status{Accepted, Scheduled, Ended}, To: OpinionSigned,
		Target: targetRoles, Assigned: true, Repeat: RepeatSameInput},
	// Acknowledging says the requester has read the opinion.
	{Action: Acknowledge, Kinds: withOpinion, From: []Status{OpinionSigned}, To: Acknowledged, Requester: requesterRoles},
	// A session under way is ended, not cancelled: what was said is recorded.
	{Action: Cancel, From: []Status{Requested, Accepted, Scheduled}, To: Cancelled, Requester: requesterRoles},
}

// Rules returns the state machine table.
func Rules() []Rule {
	out := make([]Rule, len(rules))
	for i, r := range rules {
		r.Kinds = slices.Clone(r.Kinds)
		r.From = slices.Clone(r.From)
		r.Requester = slices.Clone(r.Requester)
		r.Target = slices.Clone(r.Target)
		out[i] = r
	}
	return out
}

// RuleFor returns the row of action a for sessions of kind k.
func RuleFor(a Action, k Kind) (Rule, bool) {
	for _, r := range rules {
		if r.Action == a && (r.Kinds == nil || slices.Contains(r.Kinds, k)) {
			return r, true
		}
	}
	return Rule{}, false
}

// Consent is what the application service found about the patient's
// consents when the action was asked for. It never comes from a request body.
type Consent struct {
	RemoteConsultation bool // purpose remote_consultation
	DataSharing        bool // purpose data_sharing, with the target hospital
}

// ActionInput carries what an action needs. Fields an action does not use
// are ignored.
type ActionInput struct {
	Specialists []Assignment  `json:"specialists"` // accept
	Reason      string        `json:"reason"`      // decline (required), cancel (required)
	Schedule    *Period       `json:"schedule"`    // schedule
	Opinion     *OpinionInput `json:"opinion"`     // sign: the text to sign; nil signs the saved draft

	// Consent is resolved by the service for actions that need it.
	Consent *Consent `json:"-"`
}

// Event is one append-only line of a session's history.
type Event struct {
	Action          Action    `json:"action"`
	From            Status    `json:"from"`
	To              Status    `json:"to"`
	Actor           string    `json:"actor"`
	ActorHospitalID string    `json:"actor_hospital_id"`
	Reason          string    `json:"reason,omitempty"`
	At              time.Time `json:"at"`
}

// Empty reports whether e records nothing (the action was a no-op).
func (e Event) Empty() bool { return e.Action == "" }

// Scheduling limits.
const (
	ScheduleGrace  = 15 * time.Minute // a time agreed by phone a few minutes ago may be recorded
	MinSession     = 10 * time.Minute
	MaxSession     = 8 * time.Hour
	ScheduleWithin = 365 * 24 * time.Hour
)

// errNoConsentFacts is a wiring fault: the service must resolve consent
// before an action that needs it.
var errNoConsentFacts = errors.New("consult: the service did not resolve the patient's consent for this action")

// Decide applies action a by p to session s at now. It returns the session as
// it becomes and the event to append; a repeat of the state the session is
// already in returns s unchanged and an empty event. Errors: ErrNotFound when
// p is no party, ErrForbidden when p's side, role or assignment does not
// allow a, ErrConflict when the state (or kind) does not, apperr.Invalid when
// the input is missing or wrong, or consent is missing.
func Decide(s Session, p auth.Principal, a Action, in ActionInput, now time.Time) (Session, Event, error) {
	if !slices.Contains(Actions, a) {
		return s, Event{}, apperr.Field("action", "must be one of "+joinActions())
	}
	side := SideOf(s, p)
	if side == NoSide {
		return s, Event{}, apperr.ErrNotFound
	}
	rule, ok := RuleFor(a, s.Kind)
	if !ok {
		return s, Event{}, apperr.Conflict("a " + kindName(s.Kind) + " has no written opinion")
	}
	var roles []auth.Role
	switch side {
	case Requester:
		roles = rule.Requester
	case Target:
		roles = rule.Target
	}
	if roles == nil || !p.Has(roles...) {
		return s, Event{}, apperr.Forbidden("only " + who(rule) + " may " + verb(a) + " a session")
	}
	if rule.Assigned && !s.Assigned(p.UserID) {
		return s, Event{}, apperr.Forbidden("only a specialist assigned to this session may " + verb(a) + " it")
	}

	if s.Status == rule.To {
		switch rule.Repeat {
		case RepeatNoop:
			return s, Event{}, nil
		case RepeatSameInput:
			if sameInput(s, a, in) {
				return s, Event{}, nil
			}
		}
	}
	if !slices.Contains(rule.From, s.Status) {
		if a == Sign && (s.Status == OpinionSigned || s.Status == Acknowledged) {
			return s, Event{}, apperr.Conflict("the opinion is signed and can no longer be changed; add a signed addendum")
		}
		return s, Event{}, apperr.Conflict("cannot " + verb(a) + " " + article(s.Status) + " session")
	}
	// Missing consent and faulty input are reported together.
	var faults apperr.Invalid
	if rule.NeedsConsent && s.Kind.HasPatient() {
		if in.Consent == nil {
			return s, Event{}, errNoConsentFacts
		}
		if err := checkConsent(*in.Consent); err != nil && !errors.As(err, &faults) {
			return s, Event{}, err
		}
	}

	next := s
	ev := Event{Action: a, From: s.Status, To: rule.To, Actor: p.UserID, ActorHospitalID: p.HospitalID, At: now}
	if err := effect(&next, &ev, p, a, in, now); err != nil {
		var inv apperr.Invalid
		if !errors.As(err, &inv) {
			return s, Event{}, err
		}
		faults = append(faults, inv...)
	}
	if err := faults.Err(); err != nil {
		return s, Event{}, err
	}
	next.Status = rule.To
	next.Version++
	next.UpdatedAt = now
	return next, ev, nil
}

// checkConsent reports each missing consent under the one field "consent".
func checkConsent(c Consent) error {
	var v apperr.Invalid
	if !c.RemoteConsultation {
		v.Add("consent", "the patient has no active consent to remote consultation; record it first")
	}
	if !c.DataSharing {
		v.Add("consent", "the patient has no active consent to share data with the invited hospital; record it first")
	}
	return v.Err()
}

func effect(s *Session, ev *Event, p auth.Principal, a Action, in ActionInput, now time.Time) error {
	var v apperr.Invalid
	at := func() *time.Time { t := now; return &t }
	switch a {
	case Accept:
		s.Specialists = checkAssignments(&v, *s, in.Specialists)
		s.AcceptedBy, s.AcceptedAt = p.UserID, at()
		ev.Reason = v.Text("reason", in.Reason, false, apperr.MaxText)
	case Decline:
		ev.Reason = v.Text("reason", in.Reason, true, apperr.MaxText)
		s.DeclinedBy, s.DeclinedAt, s.DeclineReason = p.UserID, at(), ev.Reason
	case Schedule:
		if s.Kind == ExpertClinic {
			// The time is the slot's: moving it would leave the slot booked
			// for a session that no longer uses it.
			return apperr.Conflict("an expert-clinic session keeps its slot's time; cancel it and book another slot")
		}
		per := checkPeriod(&v, "schedule", in.Schedule, now)
		s.Schedule, s.ScheduledAt = per, at()
		if per != nil {
			ev.Reason = per.Start.UTC().Format(time.RFC3339) + " – " + per.End.UTC().Format(time.RFC3339)
		}
	case Start:
		s.StartedAt = at()
	case End:
		s.EndedAt = at()
	case Sign:
		op, err := signOpinion(*s, p, in.Opinion, now)
		if err != nil {
			return err
		}
		signed := *op.SignedAt
		s.Opinion, s.SignedAt = &op, &signed
	case Acknowledge:
		s.AcknowledgedBy, s.AcknowledgedAt = p.UserID, at()
	case Cancel:
		ev.Reason = v.Text("reason", in.Reason, true, apperr.MaxText)
		s.CancelledBy, s.CancelledAt, s.CancelReason = p.UserID, at(), ev.Reason
	}
	return v.Err()
}

// checkAssignments checks the specialists an acceptance assigns: ids, each
// for one of the requested departments, none twice; an MDT covers every
// requested department, any other kind has exactly one specialist (for a
// teaching round, the presenter). The service checks that each specialist
// works in the department named.
func checkAssignments(v *apperr.Invalid, s Session, in []Assignment) []Assignment {
	n := len(*v)
	switch {
	case len(in) == 0:
		v.Add("specialists", "is required: the specialist(s) who will answer")
		return nil
	case len(in) > MaxSpecialists:
		v.Add("specialists", "must hold at most 12 specialists")
		return nil
	case s.Kind != MDT && len(in) != 1:
		v.Add("specialists", "must name exactly one specialist (an MDT assigns several)")
	}
	out := make([]Assignment, len(in))
	for i, x := range in {
		x.SpecialistID, x.DepartmentID = strings.TrimSpace(x.SpecialistID), strings.TrimSpace(x.DepartmentID)
		at := "specialists[" + strconv.Itoa(i) + "]"
		switch {
		case !apperr.IsID(x.SpecialistID):
			v.Add(at+".specialist_id", "must be an id")
		case slices.ContainsFunc(out[:i], func(o Assignment) bool { return o.SpecialistID == x.SpecialistID }):
			v.Add(at+".specialist_id", "is assigned twice")
		}
		if !slices.Contains(s.TargetDepartmentIDs, x.DepartmentID) {
			v.Add(at+".department_id", "must be one of the departments the request was sent to")
		}
		out[i] = x
	}
	if s.Kind == MDT {
		for _, d := range s.TargetDepartmentIDs {
			if !slices.ContainsFunc(out, func(o Assignment) bool { return o.DepartmentID == d }) {
				v.Add("specialists", "must assign a specialist for every requested department (missing "+d+")")
			}
		}
	}
	if len(*v) > n {
		return nil
	}
	return out
}

// checkPeriod checks a session's or slot's time: both ends, a sensible
// length, not past, within a year.
func checkPeriod(v *apperr.Invalid, field string, in *Period, now time.Time) *Period {
	if in == nil {
		v.Add(field, "is required: start and end")
		return nil
	}
	n := len(*v)
	switch {
	case in.Start.IsZero() || in.End.IsZero():
		v.Add(field, "needs both start and end")
	case !in.End.After(in.Start):
		v.Add(field+".end", "must be after start")
	case in.End.Sub(in.Start) < MinSession:
		v.Add(field+".end", "must be at least 10 minutes after start")
	case in.End.Sub(in.Start) > MaxSession:
		v.Add(field+".end", "must be at most 8 hours after start")
	}
	switch {
	case in.Start.IsZero():
	case in.Start.Before(now.Add(-ScheduleGrace)):
		v.Add(field+".start", "must not be in the past")
	case in.Start.After(now.Add(ScheduleWithin)):
		v.Add(field+".start", "must be within a year")
	}
	if len(*v) > n {
		return nil
	}
	c := *in
	return &c
}

// sameInput says whether a repeat of the current state asks for exactly
// what is already recorded.
func sameInput(s Session, a Action, in ActionInput) bool {
	switch a {
	case Accept:
		if len(in.Specialists) != len(s.Specialists) {
			return false
		}
		for i, x := range in.Specialists {
			if strings.TrimSpace(x.SpecialistID) != s.Specialists[i].SpecialistID ||
				strings.TrimSpace(x.DepartmentID) != s.Specialists[i].DepartmentID {
				return false
			}
		}
		return true
	case Schedule:
		return in.Schedule != nil && s.Schedule != nil &&
			in.Schedule.Start.Equal(s.Schedule.Start) && in.Schedule.End.Equal(s.Schedule.End)
	case Sign:
		// Signing again without new text is a retry; new text is an edit,
		// which a signed opinion refuses.
		return s.Opinion != nil && (in.Opinion == nil || in.Opinion.sameAs(*s.Opinion))
	}
	return false
}

// who names, for an error message, the callers a rule admits.
func who(r Rule) string {
	var parts []string
	if r.Requester != nil {
		parts = append(parts, "the requesting hospital's "+roleList(r.Requester))
	}
	if r.Target != nil {
		parts = append(parts, "the target hospital's "+roleList(r.Target))
	}
	return strings.Join(parts, " or ")
}

func roleList(roles []auth.Role) string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = strings.ReplaceAll(string(r), "_", " ") + "s"
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

func verb(a Action) string {
	switch a {
	case Sign:
		return "sign the opinion of"
	case Acknowledge:
		return "acknowledge the opinion of"
	}
	return string(a)
}

// article is "a requested", "an ended", "an opinion signed" …
func article(s Status) string {
	words := strings.ReplaceAll(string(s), "_", " ")
	if words != "" && strings.ContainsRune("aeiou", rune(words[0])) {
		return "an " + words
	}
	return "a " + words
}

func kindName(k Kind) string { return strings.ReplaceAll(string(k), "_", " ") }

func joinActions() string {
	names := make([]string, len(Actions))
	for i, a := range Actions {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}
