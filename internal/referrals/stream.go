package referrals

import (
	"context"

	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/queue"
)

// Audited opening of a live stream. Each stream is recorded once, when it
// opens: what it then carries is either the desk's queue (ticket ids,
// numbers, departments, no patient data) or change notices.
const (
	ActionQueueWatch   = "referral_queue.watch"
	ActionChangesWatch = "referral.watch"
)

// Watch opens the live stream of hospitalID's desk queue for p: the desk and
// supervisors of that hospital only, like Queue; another hospital's queue is
// not found. The events end when stop is called or ctx ends.
func (d *Desks) Watch(ctx context.Context, p auth.Principal, hospitalID string) (<-chan queue.Event, func(), error) {
	if err := d.deskOf(ctx, p, hospitalID, "", true); err != nil {
		return nil, nil, err
	}
	if err := d.svc.recordWatch(ctx, p, ActionQueueWatch, resourceQueue, hospitalID); err != nil {
		return nil, nil, err
	}
	return d.q.Subscribe(ctx, hospitalID)
}

// Changes streams the change notices of the tickets a caller's hospital is a
// party to, on either side.
type Changes struct {
	svc *Service
	q   *queue.Referrals
}

// NewChanges builds the change stream on the referral service (for its audit
// log and clock) and the queues' pub/sub.
func NewChanges(svc *Service, q *queue.Referrals) *Changes { return &Changes{svc: svc, q: q} }

// Watch opens the stream of p's hospital. Only hospital staff in clinical
// roles watch tickets; the notices name no patient, but they tell a
// hospital's referral traffic.
func (c *Changes) Watch(ctx context.Context, p auth.Principal) (<-chan queue.Notice, func(), error) {
	if p.HospitalID == "" || !p.Has(auth.ClinicalRoles...) {
		return nil, nil, apperr.Forbidden("only clinical staff of a hospital watch its referrals")
	}
	if err := c.svc.recordWatch(ctx, p, ActionChangesWatch, "referral_stream", p.HospitalID); err != nil {
		return nil, nil, err
	}
	return c.q.SubscribeChanges(ctx, p.HospitalID)
}

func (s *Service) recordWatch(ctx context.Context, p auth.Principal, action, resourceType, resourceID string) error {
	src := audit.SourceFrom(ctx)
	return s.audit.Record(ctx, audit.Entry{
		At: s.now(), ActorID: p.UserID, ActorHospitalID: p.HospitalID, Action: action,
		ResourceType: resourceType, ResourceID: resourceID, Outcome: audit.Success,
		RequestID: src.RequestID, ClientAddr: src.ClientAddr, Detail: "live stream opened",
	})
}
