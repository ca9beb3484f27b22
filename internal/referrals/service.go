// Package referrals is the application service of two-way referral: it loads
// tickets, lets the domain core (package referral) decide every change, and
// writes the change, its history event, its outbox row and its audit row in
// one transaction, so that none of them can exist without the others.
package referrals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"duikou/attachment"
	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/sqldb"
	"duikou/internal/store"
	"duikou/referral"
)

// Store is what the service needs of storage; store.Referrals implements it.
type Store interface {
	Create(ctx context.Context, r referral.Referral) error
	Get(ctx context.Context, id string) (referral.Referral, error)
	GetForUpdate(ctx context.Context, id string) (referral.Referral, error)
	// GetForAction is GetForUpdate with what a change needs to know of the
	// ticket's patient (home hospital, consent of consentPurpose), read in
	// the same statement.
	GetForAction(ctx context.Context, id, consentPurpose string) (referral.Referral, store.ActionFacts, error)
	// Update writes r over was, the ticket as read in this transaction.
	Update(ctx context.Context, r, was referral.Referral) error
	AppendEvent(ctx context.Context, referralID string, ev referral.Event) error
	Events(ctx context.Context, referralID string) ([]referral.Event, error)
	NextNumbers(ctx context.Context, day string, n int64) (int64, error)
	List(ctx context.Context, f store.ReferralFilter) ([]referral.Referral, error)
	EnqueueOutbox(ctx context.Context, topic, key, payload string, at time.Time) error
	PatientHome(ctx context.Context, patientID string) (string, error)
	// ReserveBed and ReleaseBed move a green-channel bed; they run in the
	// transaction of the ticket's state change.
	ReserveBed(ctx context.Context, res referral.BedReservation) (referral.BedPool, bool, error)
	ReleaseBed(ctx context.Context, referralID, by, reason string, at time.Time) (referral.BedReservation, bool, error)
	// AttachmentsByID returns the uploaded files among ids, by id.
	AttachmentsByID(ctx context.Context, ids []string) (map[string]attachment.Attachment, error)
	Escalations(ctx context.Context, referralID string) ([]referral.Escalation, error)
}

var _ Store = (*store.Referrals)(nil)

// Audit actions of referral tickets: referral.<action> for every change.
const (
	ActionCreate = "referral.create"
	ActionRead   = "referral.read"
	ActionList   = "referral.list"
)

// TopicChanged is the outbox topic of every state change; the queue relay
// reads it.
const TopicChanged = "referral.changed"

// consentPurpose is the consent a patient gives to be referred.
const consentPurpose = "referral"

// Service runs referral tickets.
type Service struct {
	db        sqldb.DB
	store     Store
	audit     audit.Recorder
	routes    referral.Pairings
	now       func() time.Time
	deadlines referral.Deadlines
	// numbers hands out ticket numbers on PostgreSQL (see number).
	numbers *numberBlocks
	// changed is told, after the transaction commits, that the outbox
	// holds a new change (the relay wakes instead of waiting for its poll).
	changed func()
}

// OnChange sets what to call once a change and its outbox row have
// committed: the instance's relay, so a ticket reaches the desk queue at
// once. Call it while wiring, before the service is used.
func (s *Service) OnChange(fn func()) { s.changed = fn }

// NewService builds the referral service. clock nil means sqldb.Now.
func NewService(db sqldb.DB, st Store, rec audit.Recorder, routes referral.Pairings,
	clock func() time.Time, deadlines referral.Deadlines) *Service {
	if clock == nil {
		clock = sqldb.Now
	}
	numbers := &numberBlocks{take: func(ctx context.Context, day string, n int64) (int64, error) {
		return st.NextNumbers(sqldb.Detached(ctx), day, n)
	}}
	return &Service{db: db, store: st, audit: rec, routes: routes, now: clock, deadlines: deadlines,
		numbers: numbers}
}

// china is where ticket numbers count their days.
var china = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}()

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func (s *Service) record(ctx context.Context, p auth.Principal, action string, r referral.Referral, outcome audit.Outcome, detail string) error {
	src := audit.SourceFrom(ctx)
	return s.audit.Record(ctx, audit.Entry{
		At: s.now(), ActorID: p.UserID, ActorHospitalID: p.HospitalID, Action: action,
		ResourceType: "referral", ResourceID: r.ID, PatientID: r.PatientID, Outcome: outcome,
		RequestID: src.RequestID, ClientAddr: src.ClientAddr, Detail: detail,
	})
}

// denied records that p asked for a ticket it is no party to and answers
// not found, so the ticket's existence does not leak. It runs outside any
// failed transaction so the record survives.
func (s *Service) denied(ctx context.Context, p auth.Principal, r referral.Referral) error {
	if err := s.record(ctx, p, audit.AccessDenied, r, audit.Denied, "not a party to the referral"); err != nil {
		return err
	}
	return apperr.ErrNotFound
}

// notParty carries a ticket out of a rolled-back transaction so that the
// denied access can be recorded after it.
type notParty struct{ r referral.Referral }

func (notParty) Error() string { return "not a party to the referral" }

// Create writes a draft for the caller's hospital. The patient must be one the
// caller can reach: a body never widens the caller's scope.
func (s *Service) Create(ctx context.Context, p auth.Principal, in referral.Input) (referral.Referral, error) {
	now := s.now()
	var bad apperr.Invalid
	var err error
	in.Attachments, bad, err = s.resolveAttachments(ctx, p, in.PatientID, in.Attachments)
	if err != nil {
		return referral.Referral{}, err
	}
	r, err := referral.New(p, in, now)
	if err = withAttachmentFaults(err, bad); err != nil {
		return referral.Referral{}, err
	}
	home, err := s.store.PatientHome(ctx, r.PatientID)
	if errors.Is(err, apperr.ErrNotFound) || (err == nil && !p.CanReach(home)) {
		return referral.Referral{}, apperr.Field("patient_id", "must be a registered patient of your hospital or one paired with it")
	}
	if err != nil {
		return referral.Referral{}, err
	}
	r.ID = newID()
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.Create(ctx, r); err != nil {
			return err
		}
		return s.record(ctx, p, ActionCreate, r, audit.Success, "draft "+string(r.Direction))
	})
	if err != nil {
		return referral.Referral{}, err
	}
	return r, nil
}

// ActionEdit is the audit action of rewriting a ticket's content.
const ActionEdit = "referral.edit"

// Edit replaces what the referrer wrote on a ticket still in their hands (a
// draft, or one the receiving desk asked about), for p who last saw it at
// version. The edit is recorded in the ticket's history as an edit event, so
// the receiving desk can see that the content changed after its question.
func (s *Service) Edit(ctx context.Context, p auth.Principal, id string, version int, in referral.Input) (referral.Referral, error) {
	var out referral.Referral
	err := s.db.InTx(ctx, func(ctx context.Context) error {
		cur, err := s.store.GetForUpdate(ctx, id)
		if err != nil {
			return err
		}
		if referral.SideOf(cur, p) == referral.NoSide {
			return notParty{cur}
		}
		if cur.Version != version {
			return apperr.ErrStale
		}
		now := s.now()
		var bad apperr.Invalid
		if in.Attachments, bad, err = s.resolveAttachments(ctx, p, in.PatientID, in.Attachments); err != nil {
			return err
		}
		next, err := referral.Edit(cur, p, in, now)
		if err = withAttachmentFaults(err, bad); err != nil {
			return err
		}
		if next.PatientID != cur.PatientID {
			home, err := s.store.PatientHome(ctx, next.PatientID)
			if errors.Is(err, apperr.ErrNotFound) || (err == nil && !p.CanReach(home)) {
				return apperr.Field("patient_id", "must be a registered patient of your hospital or one paired with it")
			}
			if err != nil {
				return err
			}
		}
		ev := referral.Event{Action: referral.EditContent, From: cur.Status, To: cur.Status, Actor: p.UserID,
			ActorHospitalID: p.HospitalID, At: now}
		if err := s.persist(ctx, p, cur, next, ev); err != nil {
			return err
		}
		out = next
		return nil
	})
	if err := s.changeErr(ctx, p, err); err != nil {
		return referral.Referral{}, err
	}
	return out, nil
}

// resolveAttachments replaces what the client wrote about each file by what
// was stored when it was uploaded, so a ticket cannot misname a file's type
// or size. Every file must have been uploaded by the caller's hospital (a
// ticket cannot pass on another hospital's file) and, if the upload named a
// patient, be about the ticket's patient. Faults are returned, not raised,
// so they are reported together with the rest of the ticket's.
func (s *Service) resolveAttachments(ctx context.Context, p auth.Principal, patientID string, refs []referral.AttachmentRef) ([]referral.AttachmentRef, apperr.Invalid, error) {
	if len(refs) == 0 || len(refs) > referral.MaxAttachments {
		return refs, nil, nil // nothing to look up, or the domain refuses the list whole
	}
	ids := make([]string, len(refs))
	for i, a := range refs {
		ids[i] = strings.TrimSpace(a.ID)
	}
	stored, err := s.store.AttachmentsByID(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	out := make([]referral.AttachmentRef, len(refs))
	var v apperr.Invalid
	seen := map[string]bool{}
	for i, id := range ids {
		at := fmt.Sprintf("attachments[%d].id", i)
		a, ok := stored[id]
		switch {
		case !ok || a.HospitalID != p.HospitalID:
			v.Add(at, "must be the id of a file uploaded by your hospital")
		case seen[id]:
			v.Add(at, "is listed twice")
		case a.PatientID != "" && a.PatientID != strings.TrimSpace(patientID):
			v.Add(at, "is a file about another patient")
		default:
			seen[id] = true
			out[i] = referral.AttachmentRef{ID: a.ID, Name: a.Name, ContentType: a.ContentType, Size: a.Size}
			continue
		}
		out[i] = refs[i]
	}
	return out, v, nil
}

// withAttachmentFaults joins the faults of attachment ids to the domain's
// verdict on the ticket. What the domain says about an entry whose id was
// refused (its name, type or size as the client wrote them) is dropped: the
// id is the fault, and the rest is never taken from the client anyway.
func withAttachmentFaults(err error, bad apperr.Invalid) error {
	if len(bad) == 0 {
		return err
	}
	var v apperr.Invalid
	if err != nil && !errors.As(err, &v) {
		return err // forbidden and the like come first
	}
	out := append(apperr.Invalid(nil), bad...)
	for _, f := range v {
		refused := false
		for _, b := range bad {
			if entry := strings.TrimSuffix(b.Field, "id"); strings.HasPrefix(f.Field, entry) {
				refused = true
			}
		}
		if !refused {
			out = append(out, f)
		}
	}
	return out.Err()
}

// Act applies action a to ticket id for p, who last saw the ticket at
// version. Everything the change writes commits in one transaction.
//
// A repeat of the state the ticket is already in is answered with the ticket
// and writes nothing, whatever version the caller holds, so a client may
// retry after a lost answer; any other action on a version the caller has not
// seen is apperr.ErrStale.
func (s *Service) Act(ctx context.Context, p auth.Principal, id string, version int, a referral.Action, in referral.ActionInput) (referral.Referral, error) {
	var out referral.Referral
	err := s.db.InTx(ctx, func(ctx context.Context) error {
		// What the checks need to know of the patient (home, consent to be
		// referred) comes with the locked ticket: a separate read would be
		// one more round trip on the busiest path.
		purpose := ""
		if a == referral.Submit || a == referral.Resubmit {
			purpose = consentPurpose
		}
		cur, facts, err := s.store.GetForAction(ctx, id, purpose)
		if err != nil {
			return err
		}
		if referral.SideOf(cur, p) == referral.NoSide {
			return notParty{cur}
		}
		now := s.now()

		// A request never names a bed: the service reserves it. The
		// reservation's id is chosen first so that Decide records it on the
		// ticket; the bed itself is taken below, once role, state, version
		// and input have passed, in this same transaction.
		in.BedReservationID = ""
		needsBed := a == referral.Accept && cur.GreenChannel
		if needsBed {
			in.BedReservationID = newID()
		}
		next, ev, decideErr := referral.Decide(cur, p, a, in, now)
		if decideErr == nil && ev.Empty() {
			out = cur
			return nil
		}
		if cur.Version != version {
			return apperr.ErrStale
		}
		if decideErr != nil {
			return decideErr
		}
		next = s.deadlines.Stamp(next)
		if needsBed {
			if err := s.reserveBed(ctx, p, next, now); err != nil {
				return err
			}
		}

		if a == referral.Submit || a == referral.Resubmit {
			if err := s.checkSending(ctx, next, a == referral.Submit, facts, now); err != nil {
				return err
			}
		}
		if next.Number == "" && next.Status != referral.Draft {
			if next.Number, err = s.number(ctx, now); err != nil {
				return err
			}
		}
		if a == referral.Redirect {
			if next, err = s.redirect(ctx, p, next, now, facts.PatientHome); err != nil {
				return err
			}
		}
		// Beds move before persist writes the ticket's audit row: every
		// transaction then takes its locks in one order (ticket row, pool
		// row, audit chain head), so an acceptance and a cancellation that
		// share a pool and an audit chain cannot deadlock.
		if next.BedReservationID != "" && next.Status != cur.Status && referral.ReleasesBed(next.Status) {
			if err := s.releaseBed(ctx, p, next, ev, now); err != nil {
				return err
			}
		}
		if err := s.persist(ctx, p, cur, next, ev); err != nil {
			return err
		}
		out = next
		return nil
	})
	if err := s.changeErr(ctx, p, err); err != nil {
		return referral.Referral{}, err
	}
	return out, nil
}

// changeErr turns what a change's transaction returned into the caller's
// answer: a caller who is no party is refused (and the attempt recorded),
// and the database's own guard on the ticket's version (store
// Referrals.Update), reported by the commit, is a stale version.
func (s *Service) changeErr(ctx context.Context, p auth.Principal, err error) error {
	var np notParty
	switch {
	case errors.As(err, &np):
		return s.denied(ctx, p, np.r)
	case errors.Is(err, sqldb.ErrRowChanged):
		return apperr.ErrStale
	}
	return err
}

// checkSending checks what sending a ticket to the receiving hospital needs
// beyond its content: the patient's consent to be referred, and (on first
// submission) a route along the pairings. Both faults are reported together.
//
// A consent counts once granted and until withdrawn, as
// patient.Service.HasConsent counts it; a consent to be referred names no
// hospital, so only its grant time matters, and facts carries the earliest.
func (s *Service) checkSending(ctx context.Context, r referral.Referral, route bool, facts store.ActionFacts, now time.Time) error {
	var v apperr.Invalid
	if facts.ConsentSince == nil || facts.ConsentSince.After(now) {
		v.Add("consent", "the patient has no active consent to be referred; record it before sending the referral")
	}
	if route {
		if err := referral.CheckRoute(ctx, s.routes, r.Direction, r.ReferringHospitalID, r.ReceivingHospitalID, facts.PatientHome); err != nil {
			var fields apperr.Invalid
			if !errors.As(err, &fields) {
				return err
			}
			v = append(v, fields...)
		}
	}
	return v.Err()
}

// number assigns the next 转诊单号 of the day in China. Numbers are unique,
// not gapless: a ticket whose transaction fails leaves a gap.
//
// The day's counter is one row that every submission would update, and
// taken in the ticket's transaction its lock would be held until that
// commits. On PostgreSQL the instance therefore takes a block of numbers in
// a statement of its own and hands them out from memory (numberBlocks):
// instances sharing the database number by blocks, so across instances the
// numbers do not follow the order of submission. SQLite has one writer,
// which the ticket's transaction already holds (a detached write would wait
// for it), so there the counter moves by one in the ticket's transaction and
// is undone with it; a block taken there would be undone too while the
// instance went on handing out its numbers again.
func (s *Service) number(ctx context.Context, now time.Time) (string, error) {
	day := now.In(china)
	key := day.Format("20060102")
	var seq int64
	var err error
	if s.db.Dialect() == sqldb.Postgres {
		seq, err = s.numbers.number(ctx, key)
	} else {
		seq, err = s.store.NextNumbers(ctx, key, 1)
	}
	if err != nil {
		return "", err
	}
	return referral.FormatNumber(day, seq), nil
}

// redirect writes the ticket that replaces a redirected one and links the
// old ticket to it.
func (s *Service) redirect(ctx context.Context, p auth.Principal, old referral.Referral, now time.Time, home string) (referral.Referral, error) {
	n, ev, err := referral.RedirectedTicket(old, now)
	if err != nil {
		return old, err
	}
	if n.ReceivingHospitalID != old.ReceivingHospitalID {
		if err := referral.CheckRoute(ctx, s.routes, n.Direction, n.ReferringHospitalID, n.ReceivingHospitalID, home); err != nil {
			var fields apperr.Invalid
			if errors.As(err, &fields) {
				return old, apperr.Field("target.hospital_id", "is not a hospital this referral may go to along the pairings")
			}
			return old, err
		}
	}
	n.ID = newID()
	n = s.deadlines.Stamp(n)
	if n.Number, err = s.number(ctx, now); err != nil {
		return old, err
	}
	if err := s.store.Create(ctx, n); err != nil {
		return old, err
	}
	if err := s.store.AppendEvent(ctx, n.ID, ev); err != nil {
		return old, err
	}
	if err := s.enqueue(ctx, n, now); err != nil {
		return old, err
	}
	if err := s.record(ctx, p, "referral."+string(referral.Redirect), n, audit.Success, "redirected from "+old.Number); err != nil {
		return old, err
	}
	old.RedirectedToID = n.ID
	return old, nil
}

// persist writes a decided change of was, the ticket as read in this
// transaction, with its event, outbox row and audit row.
func (s *Service) persist(ctx context.Context, p auth.Principal, was, r referral.Referral, ev referral.Event) error {
	if err := s.store.Update(ctx, r, was); err != nil {
		return err
	}
	if err := s.store.AppendEvent(ctx, r.ID, ev); err != nil {
		return err
	}
	if err := s.enqueue(ctx, r, ev.At); err != nil {
		return err
	}
	return s.record(ctx, p, "referral."+string(ev.Action), r, audit.Success, string(ev.From)+" → "+string(ev.To))
}

// Change is the outbox message of a state change: what a queue needs to
// place, move or drop the ticket without reading it back.
type Change struct {
	ID                    string            `json:"id"`
	Number                string            `json:"number"`
	Status                referral.Status   `json:"status"`
	ReferringHospitalID   string            `json:"referring_hospital_id,omitempty"`
	ReceivingHospitalID   string            `json:"receiving_hospital_id"`
	ReceivingDepartmentID string            `json:"receiving_department_id"`
	Priority              referral.Priority `json:"priority"`
	GreenChannel          bool              `json:"green_channel"`
	GreenCategory         referral.Category `json:"green_category,omitempty"`
	SubmittedAt           *time.Time        `json:"submitted_at"`
	QueuedAt              *time.Time        `json:"queued_at"`
	ClaimBy               *time.Time        `json:"claim_by"`
	DecideBy              *time.Time        `json:"decide_by"`
	ClaimedBy             string            `json:"claimed_by,omitempty"`
	Version               int               `json:"version"`
}

func (s *Service) enqueue(ctx context.Context, r referral.Referral, at time.Time) error {
	c := Change{
		ID: r.ID, Number: r.Number, Status: r.Status, ReferringHospitalID: r.ReferringHospitalID, ReceivingHospitalID: r.ReceivingHospitalID,
		ReceivingDepartmentID: r.ReceivingDepartmentID, Priority: r.Priority, GreenChannel: r.GreenChannel,
		GreenCategory: r.GreenCategory, SubmittedAt: r.SubmittedAt, QueuedAt: r.QueuedAt, ClaimBy: r.ClaimBy, DecideBy: r.DecideBy,
		ClaimedBy: r.ClaimedBy, Version: r.Version,
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := s.store.EnqueueOutbox(ctx, TopicChanged, r.ID, string(b), at); err != nil {
		return err
	}
	if s.changed != nil {
		sqldb.AfterCommit(ctx, s.changed)
	}
	return nil
}

// visible loads a ticket p is a party to; any other is not found, and the
// attempt is recorded.
func (s *Service) visible(ctx context.Context, p auth.Principal, id string) (referral.Referral, error) {
	r, err := s.store.Get(ctx, id)
	if err != nil {
		return referral.Referral{}, err
	}
	if referral.SideOf(r, p) == referral.NoSide {
		return referral.Referral{}, s.denied(ctx, p, r)
	}
	return r, nil
}

// Get returns a ticket the caller's hospital is a party to. The read is
// audited: a ticket carries the patient's clinical data.
func (s *Service) Get(ctx context.Context, p auth.Principal, id string) (referral.Referral, error) {
	r, err := s.visible(ctx, p, id)
	if err != nil {
		return referral.Referral{}, err
	}
	if err := s.record(ctx, p, ActionRead, r, audit.Success, ""); err != nil {
		return referral.Referral{}, err
	}
	return r, nil
}

// Events returns the history of a ticket the caller's hospital is a party to.
func (s *Service) Events(ctx context.Context, p auth.Principal, id string) ([]referral.Event, error) {
	r, err := s.visible(ctx, p, id)
	if err != nil {
		return nil, err
	}
	evs, err := s.store.Events(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	if err := s.record(ctx, p, ActionRead, r, audit.Success, "events"); err != nil {
		return nil, err
	}
	return evs, nil
}

// Escalations returns the breached deadlines of a ticket the caller's
// hospital is a party to, in the order they were raised.
func (s *Service) Escalations(ctx context.Context, p auth.Principal, id string) ([]referral.Escalation, error) {
	r, err := s.visible(ctx, p, id)
	if err != nil {
		return nil, err
	}
	es, err := s.store.Escalations(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	if err := s.record(ctx, p, ActionRead, r, audit.Success, "escalations"); err != nil {
		return nil, err
	}
	return es, nil
}

// List returns tickets the caller's hospital is a party to, matching f,
// ordered by id after f.After. It returns up to f.Limit+1 tickets: the last
// one only tells that another page follows and is not audited as seen.
// Whatever f names, the caller's own hospital scopes the list.
func (s *Service) List(ctx context.Context, p auth.Principal, f store.ReferralFilter) ([]referral.Referral, error) {
	if p.HospitalID == "" {
		return nil, apperr.Forbidden("only staff of a hospital may list referrals")
	}
	if f.After != "" && !apperr.IsID(f.After) {
		return nil, apperr.Field("cursor", "is not a cursor this server gave out")
	}
	if f.Limit <= 0 {
		return nil, errors.New("referrals: list without a page size")
	}
	f.PartyHospitalID = p.HospitalID
	page := f.Limit
	f.Limit++
	list, err := s.store.List(ctx, f)
	if err != nil {
		return nil, err
	}
	shown := list[:min(page, len(list))]
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		for _, r := range shown {
			if err := s.record(ctx, p, ActionList, r, audit.Success, ""); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return list, nil
}
