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

// Breach is a response deadline that passed with the request unanswered.
// Due identifies it, so an escalation is raised once.
type Breach struct {
	Due  time.Time     `json:"due"`
	Over time.Duration `json:"over"`
}

// Breaches reports the overrun response deadline of s at now, if any: the
// request is still waiting and its deadline has passed.
func (d Deadlines) Breaches(s Session, now time.Time) []Breach {
	due := d.Due(s)
	if s.Status != Requested || due.IsZero() || !now.After(due) {
		return nil
	}
	return []Breach{{Due: due, Over: now.Sub(due)}}
}
