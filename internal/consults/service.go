// Package consults is the application service of remote sessions: it loads
// sessions and clinic slots, lets the domain core (package consult) decide
// every change, and writes the change, its history event, its outbox row and
// its audit row in one transaction, so that none of them exists without the
// others. It resolves what the domain takes as facts: the patient's consents,
// whether the people and departments a request names work at the target
// hospital, and whether a patient is within the caller's reach.
//
// Joining a session's media (who may join, the join token) belongs to
// package rtc, whose room hooks write who was connected when (the presence
// rows); Attendance here merges them.
package consults

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"duikou/consult"
	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/sqldb"
	"duikou/internal/store"
	"duikou/referral"
)

// Store is what the service needs of storage; store.Consults implements it.
type Store interface {
	CreateSession(ctx context.Context, s consult.Session) error
	Session(ctx context.Context, id string) (consult.Session, error)
	SessionForUpdate(ctx context.Context, id string) (consult.Session, error)
	UpdateSession(ctx context.Context, s consult.Session, expectVersion int) error
	ListSessions(ctx context.Context, f store.ConsultFilter) ([]consult.Session, error)
	AppendEvent(ctx context.Context, sessionID string, ev consult.Event) error
	Events(ctx context.Context, sessionID string) ([]consult.Event, error)
	AddAddendum(ctx context.Context, a consult.Addendum) (consult.Addendum, error)
	Addenda(ctx context.Context, sessionID string) ([]consult.Addendum, error)
	SessionEscalations(ctx context.Context, sessionID string) ([]consult.Escalation, error)
	Presence(ctx context.Context, sessionID string) ([]consult.Presence, error)

	CreateSlot(ctx context.Context, s consult.ClinicSlot) error
	Slot(ctx context.Context, id string) (consult.ClinicSlot, error)
	Slots(ctx context.Context, f store.SlotFilter) ([]consult.ClinicSlot, error)
	TakePlace(ctx context.Context, id string, now time.Time) (consult.ClinicSlot, error)
	ReleasePlace(ctx context.Context, id string) (consult.ClinicSlot, error)
	UpdateSlot(ctx context.Context, s consult.ClinicSlot, expectVersion int) error

	EnqueueOutbox(ctx context.Context, topic, key, payload string, at time.Time) error
	PatientHome(ctx context.Context, patientID string) (string, error)
	Clinician(ctx context.Context, userID string) (store.Clinician, error)
	DepartmentHospital(ctx context.Context, departmentID string) (string, error)
}

var _ Store = (*store.Consults)(nil)

// ConsentChecker answers whether a patient has agreed to a use of their data;
// patient.Service implements it.
type ConsentChecker interface {
	HasConsent(ctx context.Context, patientID, purpose, hospitalID string) (bool, error)
}

// Pairings tells which hospitals a hospital is paired with;
// directory.Service implements it.
type Pairings interface {
	Reach(ctx context.Context, hospitalID string) (map[string]bool, error)
}

// ReferralDrafter writes a referral draft; referrals.Service implements it.
type ReferralDrafter interface {
	Create(ctx context.Context, p auth.Principal, in referral.Input) (referral.Referral, error)
}

// The consent purposes a session about a patient needs, as the patient
// register names them (patient.ForRemoteConsultation, patient.ForDataSharing).
const (
	purposeRemoteConsultation = "remote_consultation"
	purposeDataSharing        = "data_sharing"
)

// Audit actions: consult.<action> for every change of a session, and these.
const (
	ActionRequest       = "consult.request"
	ActionRead          = "consult.read"
	ActionList          = "consult.list"
	ActionAddendum      = "consult.addendum"
	ActionDraftReferral = "consult.draft_referral"
	ActionSlotPublish   = "clinic_slot.publish"
	ActionSlotCancel    = "clinic_slot.cancel"
)

// AddendumAction names the history event of a signed addendum: not a move
// of the state machine, but a change the history keeps.
const AddendumAction consult.Action = "addendum"

// TopicChanged is the outbox topic of every change of a session.
const TopicChanged = "consult.changed"

// Service runs remote sessions and clinic slots.
type Service struct {
	db        sqldb.DB
	store     Store
	audit     audit.Recorder
	consent   ConsentChecker
	pairings  Pairings
	referrals ReferralDrafter
	deadlines consult.Deadlines
	now       func() time.Time
	loc       *time.Location
}

// NewService builds the remote-session service. deadlines are the response
// limits stamped on every request (zero: consult.DefaultDeadlines); the
// deadline watcher must be given the same. clock nil means sqldb.Now.
func NewService(db sqldb.DB, st Store, rec audit.Recorder, consent ConsentChecker, pairings Pairings,
	referrals ReferralDrafter, deadlines consult.Deadlines, clock func() time.Time) *Service {
	if clock == nil {
		clock = sqldb.Now
	}
	if deadlines == (consult.Deadlines{}) {
		deadlines = consult.DefaultDeadlines()
	}
	return &Service{db: db, store: st, audit: rec, consent: consent, pairings: pairings, referrals: referrals,
		deadlines: deadlines, now: clock, loc: china}
}

// Deadlines are the response limits the service stamps on requests.
func (s *Service) Deadlines() consult.Deadlines { return s.deadlines }

// china is the hospitals' zone: clinic weeks begin on its Mondays.
var china = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}()

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func (s *Service) record(ctx context.Context, p auth.Principal, action, resourceType, resourceID, patientID string, outcome audit.Outcome, detail string) error {
	src := audit.SourceFrom(ctx)
	return s.audit.Record(ctx, audit.Entry{
		At: s.now(), ActorID: p.UserID, ActorHospitalID: p.HospitalID, Action: action,
		ResourceType: resourceType, ResourceID: resourceID, PatientID: patientID, Outcome: outcome,
		RequestID: src.RequestID, ClientAddr: src.ClientAddr, Detail: detail,
	})
}

func (s *Service) recordSession(ctx context.Context, p auth.Principal, action string, x consult.Session, detail string) error {
	return s.record(ctx, p, action, "consult_session", x.ID, x.PatientID, audit.Success, detail)
}

// denied records that p asked for a session or slot it may not know of and
// answers not found, so its existence does not leak. It runs outside any
// failed transaction so the record survives.
func (s *Service) denied(ctx context.Context, p auth.Principal, resourceType, id, patientID string) error {
	if err := s.record(ctx, p, audit.AccessDenied, resourceType, id, patientID, audit.Denied, "not a party"); err != nil {
		return err
	}
	return apperr.ErrNotFound
}

// notParty carries what was refused out of a rolled-back transaction so that
// the denied access can be recorded after it.
type notParty struct{ resourceType, id, patientID string }

func (notParty) Error() string { return "not a party to the remote session" }

func sessionNotParty(x consult.Session) notParty {
	return notParty{"consult_session", x.ID, x.PatientID}
}

// finish turns a transaction's outcome into the answer: a refused party is
// recorded and answered not found.
func (s *Service) finish(ctx context.Context, p auth.Principal, err error) error {
	var np notParty
	if errors.As(err, &np) {
		return s.denied(ctx, p, np.resourceType, np.id, np.patientID)
	}
	return err
}

// Change is the outbox message of a change: what a board or a deadline
// watcher needs without reading the session back. AttendeeHospitalIDs are
// the invited hospitals, which hear of the change too; a message written
// before it carried them has none (nil), and the relay reads them.
type Change struct {
	ID                   string          `json:"id"`
	Kind                 consult.Kind    `json:"kind"`
	Urgency              consult.Urgency `json:"urgency"`
	Status               consult.Status  `json:"status"`
	Action               consult.Action  `json:"action"`
	RequestingHospitalID string          `json:"requesting_hospital_id"`
	TargetHospitalID     string          `json:"target_hospital_id"`
	TargetDepartmentIDs  []string        `json:"target_department_ids"`
	AttendeeHospitalIDs  []string        `json:"attendee_hospital_ids"`
	Schedule             *consult.Period `json:"schedule"`
	RespondBy            *time.Time      `json:"respond_by,omitempty"`
	Version              int             `json:"version"`
}

func (s *Service) enqueue(ctx context.Context, x consult.Session, a consult.Action, at time.Time) error {
	attendees := x.AttendeeHospitalIDs
	if attendees == nil {
		attendees = []string{}
	}
	b, err := json.Marshal(Change{ID: x.ID, Kind: x.Kind, Urgency: x.Urgency, Status: x.Status, Action: a,
		RequestingHospitalID: x.RequestingHospitalID, TargetHospitalID: x.TargetHospitalID,
		TargetDepartmentIDs: x.TargetDepartmentIDs, AttendeeHospitalIDs: attendees, Schedule: x.Schedule,
		RespondBy: x.RespondBy, Version: x.Version})
	if err != nil {
		return err
	}
	return s.store.EnqueueOutbox(ctx, TopicChanged, x.ID, string(b), at)
}

// persist writes a decided change of an existing session, with its response
// deadline stamped afresh, its event, outbox row and audit row, and returns
// the session as written.
func (s *Service) persist(ctx context.Context, p auth.Principal, was int, x consult.Session, ev consult.Event) (consult.Session, error) {
	x = s.deadlines.Stamp(x)
	if err := s.store.UpdateSession(ctx, x, was); err != nil {
		return consult.Session{}, err
	}
	return x, s.written(ctx, p, x, ev, string(ev.From)+" → "+string(ev.To))
}

// written appends the event, the outbox row and the audit row of a change.
func (s *Service) written(ctx context.Context, p auth.Principal, x consult.Session, ev consult.Event, detail string) error {
	if err := s.store.AppendEvent(ctx, x.ID, ev); err != nil {
		return err
	}
	if err := s.enqueue(ctx, x, ev.Action, ev.At); err != nil {
		return err
	}
	return s.recordSession(ctx, p, "consult."+string(ev.Action), x, detail)
}

// ---- Requests ----

// Request writes a new session request for the caller's hospital. The
// target must be a hospital the caller is paired with, the patient one the
// caller can reach, the departments the target's, named specialists its
// specialists, and invited hospitals paired with the requesting or target
// hospital. Every fault is reported at once, by field.
func (s *Service) Request(ctx context.Context, p auth.Principal, in consult.Input) (consult.Session, error) {
	now := s.now()
	x, ev, err := consult.Request(p, in, now)
	var faults apperr.Invalid
	if err != nil {
		if !errors.As(err, &faults) {
			return consult.Session{}, err
		}
		// The stored things are checked as given too, so the requester
		// learns every fault at once.
		x = asGiven(p, in)
	}
	if err := s.checkRequest(ctx, p, x); err != nil {
		var more apperr.Invalid
		if !errors.As(err, &more) {
			return consult.Session{}, err
		}
		for _, f := range more {
			if !slices.ContainsFunc(faults, func(g apperr.FieldError) bool { return g.Field == f.Field }) {
				faults = append(faults, f)
			}
		}
	}
	if err := faults.Err(); err != nil {
		return consult.Session{}, err
	}
	x.ID = newID()
	x = s.deadlines.Stamp(x)
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateSession(ctx, x); err != nil {
			return err
		}
		return s.written(ctx, p, x, ev, string(x.Kind)+" "+string(x.Urgency))
	})
	if err != nil {
		return consult.Session{}, err
	}
	return x, nil
}

// asGiven is what a request names, trimmed, for checking against storage
// when the domain already refused it.
func asGiven(p auth.Principal, in consult.Input) consult.Session {
	trim := func(xs []string) []string {
		out := make([]string, len(xs))
		for i, x := range xs {
			out[i] = strings.TrimSpace(x)
		}
		return out
	}
	return consult.Session{
		RequestingHospitalID:   p.HospitalID,
		RequestingDepartmentID: strings.TrimSpace(in.RequestingDepartmentID),
		TargetHospitalID:       strings.TrimSpace(in.TargetHospitalID),
		TargetDepartmentIDs:    trim(in.TargetDepartmentIDs),
		RequestedSpecialistIDs: trim(in.RequestedSpecialistIDs),
		AttendeeHospitalIDs:    trim(in.AttendeeHospitalIDs),
		PatientID:              strings.TrimSpace(in.PatientID),
	}
}

// checkRequest checks the parts of a request that name stored things.
func (s *Service) checkRequest(ctx context.Context, p auth.Principal, x consult.Session) error {
	var v apperr.Invalid
	if apperr.IsID(x.PatientID) {
		if err := s.checkPatient(ctx, p, x.PatientID, &v); err != nil {
			return err
		}
	}
	if x.RequestingDepartmentID != "" {
		if err := s.checkDepartment(ctx, x.RequestingDepartmentID, x.RequestingHospitalID, "requesting_department_id", "must be a department of your hospital", &v); err != nil {
			return err
		}
	}
	if !apperr.IsID(x.TargetHospitalID) {
		// Nothing can be of a target that is not named.
		return v.Err()
	}
	for i, d := range x.TargetDepartmentIDs {
		if err := s.checkDepartment(ctx, d, x.TargetHospitalID, indexed("target_department_ids", i), "must be a department of the target hospital", &v); err != nil {
			return err
		}
	}
	for i, u := range x.RequestedSpecialistIDs {
		c, err := s.store.Clinician(ctx, u)
		switch {
		case errors.Is(err, apperr.ErrNotFound) || (err == nil && (c.HospitalID != x.TargetHospitalID || c.Disabled || !slices.Contains(c.Roles, auth.Specialist))):
			v.Add(indexed("requested_specialist_ids", i), "must be a specialist of the target hospital")
		case err != nil:
			return err
		}
	}
	if len(x.AttendeeHospitalIDs) > 0 {
		targetReach, err := s.pairings.Reach(ctx, x.TargetHospitalID)
		if err != nil && !errors.Is(err, apperr.ErrNotFound) {
			return err
		}
		for i, h := range x.AttendeeHospitalIDs {
			if !p.CanReach(h) && !targetReach[h] {
				v.Add(indexed("attendee_hospital_ids", i), "must be a hospital paired with yours or with the target hospital")
			}
		}
	}
	return v.Err()
}

// checkPatient adds a field error when the patient is not registered at a
// hospital the caller can reach: a body never widens the caller's scope.
func (s *Service) checkPatient(ctx context.Context, p auth.Principal, patientID string, v *apperr.Invalid) error {
	home, err := s.store.PatientHome(ctx, patientID)
	if errors.Is(err, apperr.ErrNotFound) || (err == nil && !p.CanReach(home)) {
		v.Add("patient_id", "must be a registered patient of your hospital or one paired with it")
		return nil
	}
	return err
}

func (s *Service) checkDepartment(ctx context.Context, id, hospital, field, msg string, v *apperr.Invalid) error {
	h, err := s.store.DepartmentHospital(ctx, id)
	if errors.Is(err, apperr.ErrNotFound) || (err == nil && h != hospital) {
		v.Add(field, msg)
		return nil
	}
	return err
}

func indexed(field string, i int) string { return field + "[" + strconv.Itoa(i) + "]" }

// ---- Reading ----

// Detail is a session as its parties read it: with the opinion and its
// signed addenda.
type Detail struct {
	consult.Session
	Addenda []consult.Addendum `json:"addenda"`
}

// visible loads a session p's hospital takes part in; any other is not
// found, and the attempt is recorded.
func (s *Service) visible(ctx context.Context, p auth.Principal, id string) (consult.Session, error) {
	x, err := s.store.Session(ctx, id)
	if err != nil {
		return consult.Session{}, err
	}
	if consult.SideOf(x, p) == consult.NoSide {
		return consult.Session{}, s.denied(ctx, p, "consult_session", x.ID, x.PatientID)
	}
	return x, nil
}

// Get returns a session the caller's hospital takes part in, with its
// addenda. The read is audited: a session carries the patient's clinical data.
func (s *Service) Get(ctx context.Context, p auth.Principal, id string) (Detail, error) {
	x, err := s.visible(ctx, p, id)
	if err != nil {
		return Detail{}, err
	}
	adds, err := s.store.Addenda(ctx, x.ID)
	if err != nil {
		return Detail{}, err
	}
	if adds == nil {
		adds = []consult.Addendum{}
	}
	if err := s.recordSession(ctx, p, ActionRead, x, ""); err != nil {
		return Detail{}, err
	}
	return Detail{Session: x, Addenda: adds}, nil
}

// Escalations returns the breached deadlines raised for a session the
// caller's hospital takes part in, in the order raised.
func (s *Service) Escalations(ctx context.Context, p auth.Principal, id string) ([]consult.Escalation, error) {
	x, err := s.visible(ctx, p, id)
	if err != nil {
		return nil, err
	}
	es, err := s.store.SessionEscalations(ctx, x.ID)
	if err != nil {
		return nil, err
	}
	if es == nil {
		es = []consult.Escalation{}
	}
	if err := s.recordSession(ctx, p, ActionRead, x, "escalations"); err != nil {
		return nil, err
	}
	return es, nil
}

// Events returns the history of a session the caller's hospital takes part in.
func (s *Service) Events(ctx context.Context, p auth.Principal, id string) ([]consult.Event, error) {
	x, err := s.visible(ctx, p, id)
	if err != nil {
		return nil, err
	}
	evs, err := s.store.Events(ctx, x.ID)
	if err != nil {
		return nil, err
	}
	if err := s.recordSession(ctx, p, ActionRead, x, "events"); err != nil {
		return nil, err
	}
	return evs, nil
}

// List returns sessions the caller's hospital takes part in, matching f,
// ordered by id after f.After. It returns up to f.Limit+1 sessions: the last
// one only tells that another page follows and is not audited as seen.
// Whatever f names, the caller's own hospital scopes the list. Opinions are
// not part of a list; a session is read whole with Get.
func (s *Service) List(ctx context.Context, p auth.Principal, f store.ConsultFilter) ([]consult.Session, error) {
	if p.HospitalID == "" {
		return nil, apperr.Forbidden("only staff of a hospital may list remote sessions")
	}
	if f.After != "" && !apperr.IsID(f.After) {
		return nil, apperr.Field("cursor", "is not a cursor this server gave out")
	}
	if f.Limit <= 0 {
		return nil, errors.New("consults: list without a page size")
	}
	f.PartyHospitalID = p.HospitalID
	page := f.Limit
	f.Limit++
	list, err := s.store.ListSessions(ctx, f)
	if err != nil {
		return nil, err
	}
	shown := list[:min(page, len(list))]
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		for _, x := range shown {
			if err := s.recordSession(ctx, p, ActionList, x, ""); err != nil {
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

// ---- Moves of the state machine ----

// Act applies action a to session id for p, who last saw it at version.
// Everything the change writes commits in one transaction.
//
// A repeat of the state the session is already in is answered with the
// session and writes nothing, whatever version the caller holds, so a client
// may retry after a lost answer; any other action on a version the caller
// has not seen is apperr.ErrStale.
func (s *Service) Act(ctx context.Context, p auth.Principal, id string, version int, a consult.Action, in consult.ActionInput) (consult.Session, error) {
	var out consult.Session
	err := s.db.InTx(ctx, func(ctx context.Context) error {
		cur, err := s.store.SessionForUpdate(ctx, id)
		if err != nil {
			return err
		}
		if consult.SideOf(cur, p) == consult.NoSide {
			return sessionNotParty(cur)
		}
		now := s.now()
		// Consent is a fact found here, never taken from the body.
		in.Consent = nil
		if rule, ok := consult.RuleFor(a, cur.Kind); ok && rule.NeedsConsent && cur.Kind.HasPatient() {
			c, err := s.consentOf(ctx, cur)
			if err != nil {
				return err
			}
			in.Consent = &c
		}
		next, ev, decideErr := consult.Decide(cur, p, a, in, now)
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
		if a == consult.Accept {
			if err := s.checkAssignments(ctx, next); err != nil {
				return err
			}
		}
		if next, err = s.persist(ctx, p, cur.Version, next, ev); err != nil {
			return err
		}
		// A cancelled booking gives its place back, so another patient can
		// take it while the slot has not begun.
		if a == consult.Cancel && next.Kind == consult.ExpertClinic && next.SlotID != "" {
			if _, err := s.store.ReleasePlace(ctx, next.SlotID); err != nil {
				return err
			}
		}
		out = next
		return nil
	})
	if err := s.finish(ctx, p, err); err != nil {
		return consult.Session{}, err
	}
	return out, nil
}

// consentOf finds the patient's active consents to remote consultation and
// to sharing data with the session's target hospital.
func (s *Service) consentOf(ctx context.Context, x consult.Session) (consult.Consent, error) {
	var c consult.Consent
	var err error
	if c.RemoteConsultation, err = s.consent.HasConsent(ctx, x.PatientID, purposeRemoteConsultation, x.TargetHospitalID); err != nil {
		return c, err
	}
	if c.DataSharing, err = s.consent.HasConsent(ctx, x.PatientID, purposeDataSharing, x.TargetHospitalID); err != nil {
		return c, err
	}
	return c, nil
}

// checkAssignments: each assigned specialist is an active specialist of the
// target hospital, and when the staff roster places them in a department,
// it is the department they are assigned for.
func (s *Service) checkAssignments(ctx context.Context, x consult.Session) error {
	var v apperr.Invalid
	for i, a := range x.Specialists {
		at := indexed("specialists", i)
		c, err := s.store.Clinician(ctx, a.SpecialistID)
		switch {
		case errors.Is(err, apperr.ErrNotFound) || (err == nil && (c.HospitalID != x.TargetHospitalID || c.Disabled || !slices.Contains(c.Roles, auth.Specialist))):
			v.Add(at+".specialist_id", "must be an active specialist of the target hospital")
		case err != nil:
			return err
		case c.DepartmentID != "" && c.DepartmentID != a.DepartmentID:
			v.Add(at+".department_id", "is not the department this specialist works in")
		}
	}
	return v.Err()
}

// ---- The written opinion ----

// WriteOpinion saves the opinion draft of session id for p, who last saw it
// at version. A signed opinion is never changed: that is a conflict.
func (s *Service) WriteOpinion(ctx context.Context, p auth.Principal, id string, version int, in consult.OpinionInput) (consult.Session, error) {
	var out consult.Session
	err := s.db.InTx(ctx, func(ctx context.Context) error {
		cur, err := s.store.SessionForUpdate(ctx, id)
		if err != nil {
			return err
		}
		if consult.SideOf(cur, p) == consult.NoSide {
			return sessionNotParty(cur)
		}
		next, ev, err := consult.WriteOpinion(cur, p, in, s.now())
		if err != nil {
			return err
		}
		if cur.Version != version {
			return apperr.ErrStale
		}
		if next, err = s.persist(ctx, p, cur.Version, next, ev); err != nil {
			return err
		}
		out = next
		return nil
	})
	if err := s.finish(ctx, p, err); err != nil {
		return consult.Session{}, err
	}
	return out, nil
}

// AddAddendum appends a signed addendum to the signed opinion of session id.
// Addenda are only appended, so no version is asked for.
func (s *Service) AddAddendum(ctx context.Context, p auth.Principal, id, text string) (consult.Addendum, error) {
	var out consult.Addendum
	err := s.db.InTx(ctx, func(ctx context.Context) error {
		cur, err := s.store.SessionForUpdate(ctx, id)
		if err != nil {
			return err
		}
		if consult.SideOf(cur, p) == consult.NoSide {
			return sessionNotParty(cur)
		}
		now := s.now()
		add, err := consult.AddAddendum(cur, p, text, now)
		if err != nil {
			return err
		}
		if out, err = s.store.AddAddendum(ctx, add); err != nil {
			return err
		}
		ev := consult.Event{Action: AddendumAction, From: cur.Status, To: cur.Status, Actor: p.UserID,
			ActorHospitalID: p.HospitalID, Reason: "addendum " + strconv.Itoa(out.Seq), At: now}
		if err := s.store.AppendEvent(ctx, cur.ID, ev); err != nil {
			return err
		}
		if err := s.enqueue(ctx, cur, ev.Action, now); err != nil {
			return err
		}
		return s.recordSession(ctx, p, ActionAddendum, cur, "addendum "+strconv.Itoa(out.Seq))
	})
	if err := s.finish(ctx, p, err); err != nil {
		return consult.Addendum{}, err
	}
	return out, nil
}

// DraftReferral writes the up-referral draft a signed opinion advises, for
// a doctor of the requesting hospital (the referral goes from there), and
// returns the draft; the doctor completes and sends it like any referral.
// The draft and both audit rows commit together.
func (s *Service) DraftReferral(ctx context.Context, p auth.Principal, id string) (referral.Referral, error) {
	var out referral.Referral
	err := s.db.InTx(ctx, func(ctx context.Context) error {
		x, err := s.store.Session(ctx, id)
		if err != nil {
			return err
		}
		switch consult.SideOf(x, p) {
		case consult.NoSide:
			return sessionNotParty(x)
		case consult.Requester:
		default:
			return apperr.Forbidden("the up-referral is drafted by the requesting hospital, which sends the patient")
		}
		if x.Opinion == nil {
			return apperr.Conflict("a referral is drafted from a signed opinion only")
		}
		in, err := consult.DraftReferral(*x.Opinion, x)
		if err != nil {
			return err
		}
		if out, err = s.referrals.Create(ctx, p, in); err != nil {
			return err
		}
		return s.recordSession(ctx, p, ActionDraftReferral, x, "referral "+out.ID)
	})
	if err := s.finish(ctx, p, err); err != nil {
		return referral.Referral{}, err
	}
	return out, nil
}

// ---- Presence and attendance ----

// Attendance returns who attended session id while it was live, one line per
// person, merged from their connections (reconnects bridged); empty before
// the session starts.
func (s *Service) Attendance(ctx context.Context, p auth.Principal, id string) ([]consult.Attendance, error) {
	x, err := s.visible(ctx, p, id)
	if err != nil {
		return nil, err
	}
	out := []consult.Attendance{}
	if x.StartedAt != nil {
		ps, err := s.store.Presence(ctx, x.ID)
		if err != nil {
			return nil, err
		}
		until := s.now()
		if x.EndedAt != nil {
			until = *x.EndedAt
		}
		out = consult.MergeAttendance(ps, *x.StartedAt, until, consult.ReconnectGrace)
	}
	if err := s.recordSession(ctx, p, ActionRead, x, "attendance"); err != nil {
		return nil, err
	}
	return out, nil
}
