package referral

import (
	"errors"
	"time"
)

// Band is a ticket's place in the desk's queue; lower bands are served
// first, so a critical patient never waits behind a routine one.
type Band int

const (
	BandGreen Band = iota
	BandEmergency
	BandUrgent
	BandRoutine
)

// String names the band.
func (b Band) String() string {
	switch b {
	case BandGreen:
		return "green"
	case BandEmergency:
		return "emergency"
	case BandUrgent:
		return "urgent"
	case BandRoutine:
		return "routine"
	}
	return "unknown"
}

// BandOf is the band a ticket's own priority gives it, before any aging.
func BandOf(r Referral) Band {
	switch {
	case r.GreenChannel:
		return BandGreen
	case r.Priority == Emergency:
		return BandEmergency
	case r.Priority == Urgent:
		return BandUrgent
	}
	return BandRoutine
}

// waitingSince is the moment the patient started waiting: the first
// submission, which a release, an information request or a redirect do not
// reset.
func waitingSince(r Referral) time.Time {
	switch {
	case r.SubmittedAt != nil:
		return *r.SubmittedAt
	case r.QueuedAt != nil:
		return *r.QueuedAt
	}
	return r.CreatedAt
}

// AgesAt is when a routine ticket moves up to the urgent band, or the zero
// time when it never does (not routine, or aging switched off with
// agingAfter ≤ 0). The queue re-scores the ticket at that moment.
func AgesAt(r Referral, agingAfter time.Duration) time.Time {
	if BandOf(r) != BandRoutine || agingAfter <= 0 {
		return time.Time{}
	}
	return waitingSince(r).Add(agingAfter)
}

// QueueBand is the band the ticket is served in at now: its own, except that
// a routine ticket that has waited agingAfter or longer is served with the
// urgent ones, so a steady flow of urgent work cannot starve it. Aging lifts
// one band only: it never turns a ticket into an emergency.
func QueueBand(r Referral, now time.Time, agingAfter time.Duration) Band {
	if at := AgesAt(r, agingAfter); !at.IsZero() && !now.Before(at) {
		return BandUrgent
	}
	return BandOf(r)
}

// bandSpan separates the bands in a score: wider than any Unix millisecond
// timestamp this service will see (year 2286), so bands never overlap.
const bandSpan = 1e13

// QueueScore orders the queue: lower is served first. It is the band times a
// span wider than any timestamp plus the millisecond the patient started
// waiting, so tickets are first-come inside a band and an aged routine ticket
// slots in among the urgent ones by its own submission time. Scores stay
// below 2⁵³, so a Redis sorted set (float64 scores) holds them exactly; ties
// inside a millisecond fall to the member name, a time-ordered id.
func QueueScore(r Referral, now time.Time, agingAfter time.Duration) int64 {
	return int64(QueueBand(r, now, agingAfter))*bandSpan + waitingSince(r).UnixMilli()
}

// Limits are the two deadlines of one band: to be claimed by a desk member,
// and to be decided (accepted, rejected or redirected).
type Limits struct {
	Claim  time.Duration `json:"claim"`
	Decide time.Duration `json:"decide"`
}

// Deadlines are the limits per band. Aging moves a routine ticket up the
// queue but not to urgent deadlines: the clinical priority is unchanged.
type Deadlines struct {
	Green     Limits
	Emergency Limits
	Urgent    Limits
	Routine   Limits
}

// DefaultDeadlines are the limits the program starts with: a green-channel
// patient is claimed within 5 minutes and decided within 10.
func DefaultDeadlines() Deadlines {
	return Deadlines{
		Green:     Limits{Claim: 5 * time.Minute, Decide: 10 * time.Minute},
		Emergency: Limits{Claim: 15 * time.Minute, Decide: 30 * time.Minute},
		Urgent:    Limits{Claim: time.Hour, Decide: 4 * time.Hour},
		Routine:   Limits{Claim: 24 * time.Hour, Decide: 72 * time.Hour},
	}
}

// Validate checks a configuration: every limit positive, a claim due no later
// than the decision, and no band given more time than a less urgent one.
func (d Deadlines) Validate() error {
	bands := []Limits{d.Green, d.Emergency, d.Urgent, d.Routine}
	for i, l := range bands {
		if l.Claim <= 0 || l.Decide <= 0 {
			return errors.New("referral deadlines: every claim and decide limit must be positive (" + Band(i).String() + ")")
		}
		if l.Claim > l.Decide {
			return errors.New("referral deadlines: the claim limit must not exceed the decide limit (" + Band(i).String() + ")")
		}
		if i > 0 && (l.Claim < bands[i-1].Claim || l.Decide < bands[i-1].Decide) {
			return errors.New("referral deadlines: " + Band(i).String() + " must not be due sooner than " + Band(i-1).String())
		}
	}
	return nil
}

// For returns the limits of the ticket's own band.
func (d Deadlines) For(r Referral) Limits {
	switch BandOf(r) {
	case BandGreen:
		return d.Green
	case BandEmergency:
		return d.Emergency
	case BandUrgent:
		return d.Urgent
	}
	return d.Routine
}

// Due returns when the ticket must be claimed and decided. Both run from the
// moment it entered the current desk's queue; a ticket never queued has
// neither (zero times).
func (d Deadlines) Due(r Referral) (claimBy, decideBy time.Time) {
	if r.QueuedAt == nil {
		return time.Time{}, time.Time{}
	}
	l := d.For(r)
	return r.QueuedAt.Add(l.Claim), r.QueuedAt.Add(l.Decide)
}

// Stamp returns r with its deadlines written on it (ClaimBy, DecideBy), from
// these limits: the service stamps every change, so a ticket carries the
// deadlines it is judged by and the watcher can find due tickets by them.
func (d Deadlines) Stamp(r Referral) Referral {
	r.ClaimBy, r.DecideBy = nil, nil
	if claimBy, decideBy := d.Due(r); !claimBy.IsZero() {
		r.ClaimBy, r.DecideBy = &claimBy, &decideBy
	}
	return r
}

// dueOf is the deadlines r is judged by: the stamped ones when it carries
// them (the limits in force at its last change), else those of d.
func (d Deadlines) dueOf(r Referral) (claimBy, decideBy time.Time) {
	if r.ClaimBy != nil && r.DecideBy != nil {
		return *r.ClaimBy, *r.DecideBy
	}
	return d.Due(r)
}

// BreachKind names the deadline that passed.
type BreachKind string

const (
	ClaimBreach  BreachKind = "claim"
	DecideBreach BreachKind = "decide"
)

// Breach is a deadline that has passed while its step is still undone.
// Kind with Due identifies it, so an escalation is raised once per breach
// even when a ticket re-enters the queue and its deadlines run again.
type Breach struct {
	Kind BreachKind    `json:"kind"`
	Due  time.Time     `json:"due"`
	Over time.Duration `json:"over"`
}

// Breaches lists the deadlines r has overrun at now. A claim is outstanding
// while the ticket waits unclaimed; a decision while it waits or is held
// undecided. Asking the referrer for information stops the clock until the
// answer comes back. A breach only reports: it never changes the ticket.
// A ticket that carries stamped deadlines is judged by them.
func (d Deadlines) Breaches(r Referral, now time.Time) []Breach {
	claimBy, decideBy := d.dueOf(r)
	if claimBy.IsZero() {
		return nil
	}
	var out []Breach
	if r.Status == Submitted && now.After(claimBy) {
		out = append(out, Breach{Kind: ClaimBreach, Due: claimBy, Over: now.Sub(claimBy)})
	}
	if r.Status.InQueue() && now.After(decideBy) {
		out = append(out, Breach{Kind: DecideBreach, Due: decideBy, Over: now.Sub(decideBy)})
	}
	return out
}

// Escalation is a breach raised for the people who must act on it: the
// receiving desk and the supervisors. It is raised once per deadline (ticket,
// kind, due) and never changes the ticket.
type Escalation struct {
	ID         string     `json:"id"`
	ReferralID string     `json:"referral_id"`
	Kind       BreachKind `json:"kind"`
	Due        time.Time  `json:"due"`
	RaisedAt   time.Time  `json:"raised_at"`
	// Status is the ticket's status when the breach was raised.
	Status Status `json:"status"`
}
