package consult

import (
	"errors"
	"time"
)

// Deadlines are the times within which the target side must answer a
// request (accept or decline), per urgency. A breach escalates, as with
// referrals; it never changes the session.
type Deadlines struct {
	Emergency time.Duration
	Urgent    time.Duration
	Routine   time.Duration
}

// DefaultDeadlines: an emergency is answered within 30 minutes, an urgent
// request within 4 hours, a routine one within 2 days.
func DefaultDeadlines() Deadlines {
	return Deadlines{Emergency: 30 * time.Minute, Urgent: 4 * time.Hour, Routine: 48 * time.Hour}
}

// Validate checks a configuration: every limit positive and no urgency given
// less time than a more urgent one.
func (d Deadlines) Validate() error {
	switch {
	case d.Emergency <= 0 || d.Urgent <= 0 || d.Routine <= 0:
		return errors.New("consult deadlines: every limit must be positive")
	case d.Urgent < d.Emergency:
		return errors.New("consult deadlines: urgent must not be due sooner than emergency")
	case d.Routine < d.Urgent:
		return errors.New("consult deadlines: routine must not be due sooner than urgent")
	}
	return nil
}

// For returns the limit of urgency u; an unknown urgency gets the emergency
// one, so a bad row is chased rather than forgotten.
func (d Deadlines) For(u Urgency) time.Duration {
	switch u {
	case Routine:
		return d.Routine
	case Urgent:
		return d.Urgent
	}
	return d.Emergency
}

// Due is when the session must be answered: its limit after the request.
// A booked expert-clinic session is never waiting for an answer (zero time).
func (d Deadlines) Due(s Session) time.Time {
	if s.Kind == ExpertClinic || s.CreatedAt.IsZero() {
		return time.Time{}
	}
	return s.CreatedAt.Add(d.For(s.Urgency))
}

// Stamp writes s's response deadline on it from the limits in force, so the
// deadline a request was given is stored with it and a watcher finds it by
// index; a session waiting for nobody (a booked expert clinic) has none. The
// service stamps at every change, like referral.Deadlines.Stamp.
func (d Deadlines) Stamp(s Session) Session {
	s.RespondBy = nil
	if due := d.Due(s); !due.IsZero() {
		s.RespondBy = &due
	}
	return s
}

// dueOf is the deadline s is judged by: the stamped one when it carries it
// (the limits in force at its last change), else that of d.
func (d Deadlines) dueOf(s Session) time.Time {
	if s.RespondBy != nil {
		return *s.RespondBy
	}
	return d.Due(s)
}

// BreachKind names the deadline that passed. A session has one so far: the
// target side's answer to a request.
type BreachKind string

// RespondBreach: the request was neither accepted nor declined in time.
const RespondBreach BreachKind = "respond"

// Breach is a response deadline that passed with the request unanswered.
// Kind and Due identify it, so an escalation is raised once.
type Breach struct {
	Kind BreachKind    `json:"kind"`
	Due  time.Time     `json:"due"`
	Over time.Duration `json:"over"`
}

// Breaches reports the overrun response deadline of s at now, if any: the
// request is still waiting and its deadline (the stamped one, when s
// carries it) has passed.
func (d Deadlines) Breaches(s Session, now time.Time) []Breach {
	due := d.dueOf(s)
	if s.Status != Requested || due.IsZero() || !now.After(due) {
		return nil
	}
	return []Breach{{Kind: RespondBreach, Due: due, Over: now.Sub(due)}}
}

// Escalation is a raised breach of a session's deadline, kept once per
// (session, kind, due). A breach never changes the session: it is told to
// the target hospital and kept here.
type Escalation struct {
	ID        string     `json:"id"`
	SessionID string     `json:"session_id"`
	Kind      BreachKind `json:"kind"`
	Due       time.Time  `json:"due"`
	RaisedAt  time.Time  `json:"raised_at"`
	// Status is the session's status when the breach was raised.
	Status Status `json:"status"`
}
