package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"duikou/consult"
	"duikou/internal/apperr"
	"duikou/internal/sqldb"
	"duikou/referral"
)

// Consults keeps remote sessions: the session rows, their append-only
// history, the written opinion (immutable once signed, which the schema
// enforces too), addenda, presence, and remote-clinic slots. Every method
// joins the transaction in ctx, so a service writes a change, its event and
// its audit row at once.
type Consults struct {
	db sqldb.DB
}

// NewConsults returns the remote-session store on db.
func NewConsults(db sqldb.DB) *Consults { return &Consults{db: db} }

// ConsultFilter selects sessions for a list. Empty fields do not filter.
// PartyHospitalID keeps the sessions that hospital takes part in: as the
// requesting or target hospital, or invited to a teaching round.
// HospitalID keeps the sessions requested by or sent to that hospital (the
// other party, as a list's filter). From and To bound the session's day:
// its scheduled start, or when it was requested while it has no time yet.
type ConsultFilter struct {
	PartyHospitalID string
	HospitalID      string
	Kind            consult.Kind
	Status          consult.Status
	Urgency         consult.Urgency
	PatientID       string
	From, To        *time.Time
	After           string
	Limit           int
}

const sessionCols = `id, kind, urgency, requester_id, requesting_hospital_id, requesting_department_id,
	target_hospital_id, target_department_ids, requested_specialist_ids, question, clinical_summary,
	attachments, patient_id, attendee_hospital_ids, slot_id, status, version, created_at, updated_at,
	specialists, accepted_by, accepted_at, declined_by, declined_at, decline_reason,
	schedule_start, schedule_end, scheduled_at, started_at, ended_at, signed_at,
	acknowledged_by, acknowledged_at, cancelled_by, cancelled_at, cancel_reason, respond_by`

// jsonList encodes a list as JSON text, an absent one as [].
func jsonList[T any](v []T) (string, error) {
	if v == nil {
		v = []T{}
	}
	b, err := json.Marshal(v)
	return string(b), err
}

func sessionArgs(s consult.Session) ([]any, error) {
	lists := make([]string, 5)
	var err error
	for i, enc := range []func() (string, error){
		func() (string, error) { return jsonList(s.TargetDepartmentIDs) },
		func() (string, error) { return jsonList(s.RequestedSpecialistIDs) },
		func() (string, error) { return jsonList(s.Attachments) },
		func() (string, error) { return jsonList(s.AttendeeHospitalIDs) },
		func() (string, error) { return jsonList(s.Specialists) },
	} {
		if lists[i], err = enc(); err != nil {
			return nil, err
		}
	}
	var start, end *time.Time
	if s.Schedule != nil {
		a, b := s.Schedule.Start, s.Schedule.End
		start, end = &a, &b
	}
	return []any{
		s.ID, string(s.Kind), string(s.Urgency), s.RequesterID, s.RequestingHospitalID, refNull(s.RequestingDepartmentID),
		s.TargetHospitalID, lists[0], lists[1], s.Question, s.ClinicalSummary,
		lists[2], refNull(s.PatientID), lists[3], refNull(s.SlotID), string(s.Status), s.Version, s.CreatedAt, s.UpdatedAt,
		lists[4], refNull(s.AcceptedBy), s.AcceptedAt, refNull(s.DeclinedBy), s.DeclinedAt, s.DeclineReason,
		start, end, s.ScheduledAt, s.StartedAt, s.EndedAt, s.SignedAt,
		refNull(s.AcknowledgedBy), s.AcknowledgedAt, refNull(s.CancelledBy), s.CancelledAt, s.CancelReason, s.RespondBy,
	}, nil
}

func scanSession(row sqldb.Row) (consult.Session, error) {
	var s consult.Session
	var kind, urgency, status string
	var reqDept, patient, slot, acceptedBy, declinedBy, ackBy, cancelledBy *string
	var depts, named, att, attendees, specialists string
	var start, end *time.Time
	err := row.Scan(&s.ID, &kind, &urgency, &s.RequesterID, &s.RequestingHospitalID, &reqDept,
		&s.TargetHospitalID, &depts, &named, &s.Question, &s.ClinicalSummary,
		&att, &patient, &attendees, &slot, &status, &s.Version, &s.CreatedAt, &s.UpdatedAt,
		&specialists, &acceptedBy, &s.AcceptedAt, &declinedBy, &s.DeclinedAt, &s.DeclineReason,
		&start, &end, &s.ScheduledAt, &s.StartedAt, &s.EndedAt, &s.SignedAt,
		&ackBy, &s.AcknowledgedAt, &cancelledBy, &s.CancelledAt, &s.CancelReason, &s.RespondBy)
	if err != nil {
		return consult.Session{}, err
	}
	s.Kind, s.Urgency, s.Status = consult.Kind(kind), consult.Urgency(urgency), consult.Status(status)
	s.RequestingDepartmentID, s.PatientID, s.SlotID = refStr(reqDept), refStr(patient), refStr(slot)
	s.AcceptedBy, s.DeclinedBy, s.AcknowledgedBy, s.CancelledBy = refStr(acceptedBy), refStr(declinedBy), refStr(ackBy), refStr(cancelledBy)
	if start != nil && end != nil {
		s.Schedule = &consult.Period{Start: *start, End: *end}
	}
	for _, f := range []struct {
		name string
		text string
		into any
	}{
		{"target_department_ids", depts, &s.TargetDepartmentIDs},
		{"requested_specialist_ids", named, &s.RequestedSpecialistIDs},
		{"attachments", att, &s.Attachments},
		{"attendee_hospital_ids", attendees, &s.AttendeeHospitalIDs},
		{"specialists", specialists, &s.Specialists},
	} {
		if err := json.Unmarshal([]byte(f.text), f.into); err != nil {
			return consult.Session{}, fmt.Errorf("consult session %s %s: %w", s.ID, f.name, err)
		}
	}
	return s, nil
}

func slotPatientTaken(err error) error {
	if errors.Is(err, sqldb.ErrUniqueViolation) {
		return apperr.Conflict("slot_id: this patient is already booked on this slot")
	}
	return err
}

// CreateSession inserts s as it is (id and version included) with its
// invited hospitals, and its opinion draft if it has one.
func (c *Consults) CreateSession(ctx context.Context, s consult.Session) error {
	args, err := sessionArgs(s)
	if err != nil {
		return err
	}
	return c.db.InTx(ctx, func(ctx context.Context) error {
		if _, err := c.db.Exec(ctx, `INSERT INTO consult_sessions (`+sessionCols+`) VALUES (`+placeholders(len(args))+`)`, args...); err != nil {
			return slotPatientTaken(err)
		}
		for _, h := range s.AttendeeHospitalIDs {
			if _, err := c.db.Exec(ctx, `INSERT INTO consult_attendee_hospitals (session_id, hospital_id) VALUES ($1, $2)`, s.ID, h); err != nil {
				return err
			}
		}
		if s.Opinion != nil {
			return c.putOpinion(ctx, s.ID, *s.Opinion)
		}
		return nil
	})
}

// placeholders is "$1, $2, …, $n".
func placeholders(n int) string {
	m := make([]string, n)
	for i := range m {
		m[i] = fmt.Sprintf("$%d", i+1)
	}
	return strings.Join(m, ", ")
}

// Session returns the session with id and its opinion, or apperr.ErrNotFound.
func (c *Consults) Session(ctx context.Context, id string) (consult.Session, error) {
	return c.session(ctx, id, false)
}

// SessionForUpdate returns the session with id and, on PostgreSQL, locks its
// row until the transaction in ctx ends, so two changes of one session queue
// up. SQLite has a single writer already.
func (c *Consults) SessionForUpdate(ctx context.Context, id string) (consult.Session, error) {
	return c.session(ctx, id, true)
}

func (c *Consults) session(ctx context.Context, id string, lock bool) (consult.Session, error) {
	if !apperr.IsID(id) {
		return consult.Session{}, apperr.ErrNotFound
	}
	q := `SELECT ` + sessionCols + ` FROM consult_sessions WHERE id = $1`
	if lock && c.db.Dialect() == sqldb.Postgres {
		q += ` FOR UPDATE`
	}
	s, err := scanSession(c.db.QueryRow(ctx, q, id))
	if err != nil {
		return consult.Session{}, dirNotFound(err)
	}
	op, err := c.opinion(ctx, id)
	switch {
	case errors.Is(err, apperr.ErrNotFound):
	case err != nil:
		return consult.Session{}, err
	default:
		s.Opinion = &op
	}
	return s, nil
}

// UpdateSession writes s over the stored session if the stored version is
// expectVersion; otherwise apperr.ErrStale (apperr.ErrNotFound when it does
// not exist). s.Version is stored as given: the domain raised it. The opinion
// is written with it while it is a draft; a signed opinion is never written
// again, and an attempt to store other content over it is a conflict.
func (c *Consults) UpdateSession(ctx context.Context, s consult.Session, expectVersion int) error {
	args, err := sessionArgs(s)
	if err != nil {
		return err
	}
	cols := strings.Split(sessionCols, ",")
	sets := make([]string, 0, len(cols)-1)
	for i, col := range cols[1:] { // the id is never changed
		sets = append(sets, fmt.Sprintf("%s = $%d", strings.TrimSpace(col), i+2))
	}
	args = append(args, expectVersion)
	return c.db.InTx(ctx, func(ctx context.Context) error {
		n, err := c.db.Exec(ctx, `UPDATE consult_sessions SET `+strings.Join(sets, ", ")+
			fmt.Sprintf(` WHERE id = $1 AND version = $%d`, len(args)), args...)
		if err != nil {
			return slotPatientTaken(err)
		}
		if n == 0 {
			return dirStaleOrMissing(ctx, c.db, "consult_sessions", s.ID)
		}
		if s.Opinion != nil {
			return c.putOpinion(ctx, s.ID, *s.Opinion)
		}
		return nil
	})
}

// putOpinion inserts or replaces the draft. The upsert leaves a signed row
// alone (the schema would refuse the change anyway); storing different
// content over it is then reported as a conflict.
func (c *Consults) putOpinion(ctx context.Context, sessionID string, op consult.Opinion) error {
	diagnoses, err := jsonList(op.Diagnoses)
	if err != nil {
		return err
	}
	n, err := c.db.Exec(ctx, `INSERT INTO consult_opinions (session_id, findings, impression, recommendations, diagnoses,
		referral_advised, suggested_department_id, author_id, updated_at, signed_by, signed_at, digest)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		ON CONFLICT (session_id) DO UPDATE SET findings = excluded.findings, impression = excluded.impression,
		recommendations = excluded.recommendations, diagnoses = excluded.diagnoses,
		referral_advised = excluded.referral_advised, suggested_department_id = excluded.suggested_department_id,
		author_id = excluded.author_id, updated_at = excluded.updated_at, signed_by = excluded.signed_by,
		signed_at = excluded.signed_at, digest = excluded.digest
		WHERE consult_opinions.signed_at IS NULL`,
		sessionID, op.Findings, op.Impression, op.Recommendations, diagnoses,
		op.ReferralAdvised, refNull(op.SuggestedDepartmentID), op.AuthorID, op.UpdatedAt,
		refNull(op.SignedBy), op.SignedAt, op.Digest)
	if err != nil || n > 0 {
		return err
	}
	stored, err := c.opinion(ctx, sessionID)
	if err != nil {
		return err
	}
	// The digest covers the content and the signature: an intact opinion with
	// the stored digest is the stored one.
	if !op.Intact(sessionID) || stored.Digest != op.Digest {
		return apperr.Conflict("the opinion is signed and can no longer be changed; add a signed addendum")
	}
	return nil
}

func (c *Consults) opinion(ctx context.Context, sessionID string) (consult.Opinion, error) {
	var op consult.Opinion
	var diagnoses string
	var dept, signedBy *string
	err := c.db.QueryRow(ctx, `SELECT findings, impression, recommendations, diagnoses, referral_advised,
		suggested_department_id, author_id, updated_at, signed_by, signed_at, digest
		FROM consult_opinions WHERE session_id = $1`, sessionID).Scan(
		&op.Findings, &op.Impression, &op.Recommendations, &diagnoses, &op.ReferralAdvised,
		&dept, &op.AuthorID, &op.UpdatedAt, &signedBy, &op.SignedAt, &op.Digest)
	if err != nil {
		return consult.Opinion{}, dirNotFound(err)
	}
	op.SuggestedDepartmentID, op.SignedBy = refStr(dept), refStr(signedBy)
	op.Diagnoses = []referral.Diagnosis{}
	if err := json.Unmarshal([]byte(diagnoses), &op.Diagnoses); err != nil {
		return consult.Opinion{}, fmt.Errorf("consult opinion %s diagnoses: %w", sessionID, err)
	}
	return op, nil
}

// ListSessions returns up to f.Limit sessions matching f, ordered by id
// after f.After, without their opinions.
func (c *Consults) ListSessions(ctx context.Context, f ConsultFilter) ([]consult.Session, error) {
	var w dirWhere
	if f.PartyHospitalID != "" {
		w.add(`(requesting_hospital_id = ? OR target_hospital_id = ? OR
			id IN (SELECT session_id FROM consult_attendee_hospitals WHERE hospital_id = ?))`,
			f.PartyHospitalID, f.PartyHospitalID, f.PartyHospitalID)
	}
	if f.Kind != "" {
		w.add("kind = ?", string(f.Kind))
	}
	if f.Status != "" {
		w.add("status = ?", string(f.Status))
	}
	if f.Urgency != "" {
		w.add("urgency = ?", string(f.Urgency))
	}
	if f.HospitalID != "" {
		w.add("(requesting_hospital_id = ? OR target_hospital_id = ?)", f.HospitalID, f.HospitalID)
	}
	if f.PatientID != "" {
		w.add("patient_id = ?", f.PatientID)
	}
	if f.From != nil {
		w.add("COALESCE(schedule_start, created_at) >= ?", *f.From)
	}
	if f.To != nil {
		w.add("COALESCE(schedule_start, created_at) < ?", *f.To)
	}
	q := `SELECT ` + sessionCols + ` FROM consult_sessions` + w.page(f.After, f.Limit)
	return dirQueryAll(ctx, c.db, q, w.args, func(r sqldb.Rows) (consult.Session, error) { return scanSession(r) })
}

// AppendEvent adds ev to the end of the session's history. Call it in the
// transaction that changed the session: the session's row lock orders the
// sequence numbers.
func (c *Consults) AppendEvent(ctx context.Context, sessionID string, ev consult.Event) error {
	_, err := c.db.Exec(ctx, `INSERT INTO consult_events
		(id, session_id, seq, action, from_status, to_status, actor, actor_hospital_id, reason, at)
		VALUES ($1, $2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM consult_events WHERE session_id = $2),
		$3, $4, $5, $6, $7, $8, $9)`,
		uuid.Must(uuid.NewV7()).String(), sessionID, string(ev.Action), string(ev.From), string(ev.To),
		refNull(ev.Actor), refNull(ev.ActorHospitalID), ev.Reason, ev.At)
	return err
}

// Events returns the session's history, oldest first.
func (c *Consults) Events(ctx context.Context, sessionID string) ([]consult.Event, error) {
	return dirQueryAll(ctx, c.db, `SELECT action, from_status, to_status, actor, actor_hospital_id, reason, at
		FROM consult_events WHERE session_id = $1 ORDER BY seq`, []any{sessionID},
		func(r sqldb.Rows) (consult.Event, error) {
			var ev consult.Event
			var action, from, to string
			var actor, hospital *string
			err := r.Scan(&action, &from, &to, &actor, &hospital, &ev.Reason, &ev.At)
			ev.Action, ev.From, ev.To = consult.Action(action), consult.Status(from), consult.Status(to)
			ev.Actor, ev.ActorHospitalID = refStr(actor), refStr(hospital)
			return ev, err
		})
}

// AddAddendum appends a to the session's addenda and returns it with its id
// and sequence number. Call it in a transaction that holds the session's row
// lock (SessionForUpdate), which orders the numbers.
func (c *Consults) AddAddendum(ctx context.Context, a consult.Addendum) (consult.Addendum, error) {
	a.ID = uuid.Must(uuid.NewV7()).String()
	err := c.db.QueryRow(ctx, `INSERT INTO consult_addenda (id, session_id, seq, text, signed_by, signed_at, digest)
		VALUES ($1, $2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM consult_addenda WHERE session_id = $2), $3, $4, $5, $6)
		RETURNING seq`, a.ID, a.SessionID, a.Text, a.SignedBy, a.SignedAt, a.Digest).Scan(&a.Seq)
	if err != nil {
		return consult.Addendum{}, err
	}
	return a, nil
}

// Addenda returns the session's addenda in the order written.
func (c *Consults) Addenda(ctx context.Context, sessionID string) ([]consult.Addendum, error) {
	return dirQueryAll(ctx, c.db, `SELECT id, session_id, seq, text, signed_by, signed_at, digest
		FROM consult_addenda WHERE session_id = $1 ORDER BY seq`, []any{sessionID},
		func(r sqldb.Rows) (consult.Addendum, error) {
			var a consult.Addendum
			err := r.Scan(&a.ID, &a.SessionID, &a.Seq, &a.Text, &a.SignedBy, &a.SignedAt, &a.Digest)
			return a, err
		})
}

// ErrNoInstance: a connection was recorded without the instance holding it.
var ErrNoInstance = errors.New("store: a connection is recorded under the instance holding it")

// RecordJoin stores a new connection and returns its id. instance is the
// server instance holding it, which confirms it from then on (ConfirmPresence);
// its last confirmation is its joining. An instance is required
// (ErrNoInstance): SweepPresence closes an open connection nobody confirms,
// so a connection no instance held would be closed while still live.
func (c *Consults) RecordJoin(ctx context.Context, p consult.Presence, instance string) (string, error) {
	if instance == "" {
		return "", ErrNoInstance
	}
	id := uuid.Must(uuid.NewV7()).String()
	_, err := c.db.Exec(ctx, `INSERT INTO consult_presence (id, session_id, user_id, hospital_id, joined_at, left_at, instance_id, seen_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $5)`, id, p.SessionID, p.UserID, p.HospitalID, p.JoinedAt, p.LeftAt, instance)
	return id, err
}

// RecordLeave closes connection id at at (never before it was joined);
// closing a closed one keeps the first time: a retried leave changes
// nothing, and neither does a late one after SweepPresence closed it.
func (c *Consults) RecordLeave(ctx context.Context, id string, at time.Time) error {
	if !apperr.IsID(id) {
		return apperr.ErrNotFound
	}
	if _, err := c.db.Exec(ctx, `UPDATE consult_presence SET left_at = CASE WHEN joined_at > $2 THEN joined_at ELSE $2 END
		WHERE id = $1 AND left_at IS NULL`, id, at); err != nil {
		return err
	}
	var n int
	if err := c.db.QueryRow(ctx, `SELECT count(*) FROM consult_presence WHERE id = $1`, id).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return apperr.ErrNotFound
	}
	return nil
}

// ConfirmPresence records that instance still held, at at, every connection
// of its that is open, in one statement, and returns their ids: a connection
// the instance believes open but missing here was closed under it. A
// confirmation never moves back.
func (c *Consults) ConfirmPresence(ctx context.Context, instance string, at time.Time) ([]string, error) {
	if instance == "" {
		return nil, nil
	}
	return dirQueryAll(ctx, c.db, `UPDATE consult_presence SET seen_at = CASE WHEN seen_at > $2 THEN seen_at ELSE $2 END
		WHERE instance_id = $1 AND left_at IS NULL RETURNING id`, []any{instance, at},
		func(r sqldb.Rows) (string, error) {
			var id string
			err := r.Scan(&id)
			return id, err
		})
}

// SweptPresence is a connection SweepPresence closed.
type SweptPresence struct {
	ID         string
	SessionID  string
	UserID     string
	HospitalID string
	// Instance held the connection; "" for one recorded before connections
	// were held (migration 0014), whose last confirmation is its joining.
	Instance string
	JoinedAt time.Time
	LeftAt   time.Time // its last confirmation
}

// SweepPresence closes up to limit open connections not confirmed since
// before, each at its last confirmation (the last moment it is known to
// have been open), and returns them. Those are the connections of an
// instance that went silent, and those left open before migration 0014 by
// no instance, which nobody confirms or closes (every connection recorded
// since is held, RecordJoin). The conditions are checked again on each row
// as it is updated, so a confirmation or a leave committed meanwhile wins,
// and a connection is closed, and returned, by one sweep only.
func (c *Consults) SweepPresence(ctx context.Context, before time.Time, limit int) ([]SweptPresence, error) {
	const stale = `left_at IS NULL AND seen_at < $1`
	return dirQueryAll(ctx, c.db, `UPDATE consult_presence SET left_at = CASE WHEN joined_at > seen_at THEN joined_at ELSE seen_at END
		WHERE id IN (SELECT id FROM consult_presence WHERE `+stale+` ORDER BY seen_at LIMIT $2) AND `+stale+`
		RETURNING id, session_id, user_id, hospital_id, COALESCE(instance_id, ''), joined_at, left_at`, []any{before, limit},
		func(r sqldb.Rows) (SweptPresence, error) {
			var p SweptPresence
			err := r.Scan(&p.ID, &p.SessionID, &p.UserID, &p.HospitalID, &p.Instance, &p.JoinedAt, &p.LeftAt)
			return p, err
		})
}

// Presence returns every connection to the session, in the order joined;
// consult.MergeAttendance turns them into attendance.
func (c *Consults) Presence(ctx context.Context, sessionID string) ([]consult.Presence, error) {
	return dirQueryAll(ctx, c.db, `SELECT session_id, user_id, hospital_id, joined_at, left_at
		FROM consult_presence WHERE session_id = $1 ORDER BY joined_at, id`, []any{sessionID},
		func(r sqldb.Rows) (consult.Presence, error) {
			var p consult.Presence
			err := r.Scan(&p.SessionID, &p.UserID, &p.HospitalID, &p.JoinedAt, &p.LeftAt)
			return p, err
		})
}

// ---- Clinic slots ----

const slotCols = `id, specialist_id, hospital_id, department_id, start_at, end_at, capacity, booked, status,
	published_at, cancelled_at, cancel_reason, version`

func scanSlot(r sqldb.Row) (consult.ClinicSlot, error) {
	var s consult.ClinicSlot
	var status string
	err := r.Scan(&s.ID, &s.SpecialistID, &s.HospitalID, &s.DepartmentID, &s.Start, &s.End, &s.Capacity, &s.Booked,
		&status, &s.PublishedAt, &s.CancelledAt, &s.CancelReason, &s.Version)
	s.Status = consult.SlotStatus(status)
	return s, err
}

// CreateSlot inserts a published slot.
func (c *Consults) CreateSlot(ctx context.Context, s consult.ClinicSlot) error {
	_, err := c.db.Exec(ctx, `INSERT INTO clinic_slots (`+slotCols+`) VALUES (`+placeholders(13)+`)`,
		s.ID, s.SpecialistID, s.HospitalID, s.DepartmentID, s.Start, s.End, s.Capacity, s.Booked,
		string(s.Status), s.PublishedAt, s.CancelledAt, s.CancelReason, s.Version)
	return err
}

// Slot returns the slot with id, or apperr.ErrNotFound.
func (c *Consults) Slot(ctx context.Context, id string) (consult.ClinicSlot, error) {
	if !apperr.IsID(id) {
		return consult.ClinicSlot{}, apperr.ErrNotFound
	}
	s, err := scanSlot(c.db.QueryRow(ctx, `SELECT `+slotCols+` FROM clinic_slots WHERE id = $1`, id))
	return s, dirNotFound(err)
}

// SlotFilter selects slots starting in [From, To) of the given hospitals
// (the specialist's hospital and those in the caller's reach; the service
// passes them), optionally of one specialist or department.
type SlotFilter struct {
	HospitalIDs      []string
	SpecialistID     string
	DepartmentID     string
	From, To         time.Time
	IncludeCancelled bool
	Limit            int
}

// Slots returns up to f.Limit slots matching f, by start time.
func (c *Consults) Slots(ctx context.Context, f SlotFilter) ([]consult.ClinicSlot, error) {
	if len(f.HospitalIDs) == 0 {
		return nil, nil
	}
	var w dirWhere
	w.in("hospital_id", f.HospitalIDs)
	w.add("start_at >= ?", f.From)
	w.add("start_at < ?", f.To)
	if f.SpecialistID != "" {
		w.add("specialist_id = ?", f.SpecialistID)
	}
	if f.DepartmentID != "" {
		w.add("department_id = ?", f.DepartmentID)
	}
	if !f.IncludeCancelled {
		w.add("status <> ?", string(consult.SlotCancelled))
	}
	q := `SELECT ` + slotCols + ` FROM clinic_slots WHERE ` + strings.Join(w.conds, " AND ") + ` ORDER BY start_at, id`
	if f.Limit > 0 {
		w.args = append(w.args, f.Limit)
		q += fmt.Sprintf(" LIMIT $%d", len(w.args))
	}
	return dirQueryAll(ctx, c.db, q, w.args, func(r sqldb.Rows) (consult.ClinicSlot, error) { return scanSlot(r) })
}

// TakePlace books one place of slot id at now, first come: one conditional
// update that only succeeds while the slot is published, has a free place
// and has not begun, so concurrent bookings of the last place cannot both
// succeed whatever versions the callers read. It returns the slot as stored
// after the booking; a full, cancelled or begun slot is apperr.ErrConflict.
func (c *Consults) TakePlace(ctx context.Context, id string, now time.Time) (consult.ClinicSlot, error) {
	if !apperr.IsID(id) {
		return consult.ClinicSlot{}, apperr.ErrNotFound
	}
	n, err := c.db.Exec(ctx, `UPDATE clinic_slots SET booked = booked + 1,
		status = CASE WHEN booked + 1 >= capacity THEN 'booked' ELSE 'published' END, version = version + 1
		WHERE id = $1 AND status = 'published' AND booked < capacity AND start_at > $2`, id, now)
	if err != nil {
		return consult.ClinicSlot{}, err
	}
	s, err := c.Slot(ctx, id)
	if err != nil {
		return consult.ClinicSlot{}, err
	}
	if n == 0 {
		return s, apperr.Conflict("this slot is no longer open: fully booked, cancelled or begun")
	}
	return s, nil
}

// ReleasePlace gives back one place of slot id (its booked session was
// cancelled) and returns the slot as stored.
func (c *Consults) ReleasePlace(ctx context.Context, id string) (consult.ClinicSlot, error) {
	if !apperr.IsID(id) {
		return consult.ClinicSlot{}, apperr.ErrNotFound
	}
	if _, err := c.db.Exec(ctx, `UPDATE clinic_slots SET booked = booked - 1,
		status = CASE WHEN status = 'booked' THEN 'published' ELSE status END, version = version + 1
		WHERE id = $1 AND booked > 0 AND status <> 'cancelled'`, id); err != nil {
		return consult.ClinicSlot{}, err
	}
	return c.Slot(ctx, id)
}

// UpdateSlot writes s (a cancellation) if the stored version is
// expectVersion; otherwise apperr.ErrStale. A booking in between raised the
// version, so a slot is never cancelled over a patient booked meanwhile.
func (c *Consults) UpdateSlot(ctx context.Context, s consult.ClinicSlot, expectVersion int) error {
	n, err := c.db.Exec(ctx, `UPDATE clinic_slots SET status = $2, cancelled_at = $3, cancel_reason = $4, version = $5
		WHERE id = $1 AND version = $6`, s.ID, string(s.Status), s.CancelledAt, s.CancelReason, s.Version, expectVersion)
	if err != nil {
		return err
	}
	if n == 0 {
		return dirStaleOrMissing(ctx, c.db, "clinic_slots", s.ID)
	}
	return nil
}

// CarriesAttachment reports whether a session that hospitalID takes part in
// (asking, asked, or invited to a teaching round) carries the attachment, so
// the specialist reads the files the county doctor sent with a request and
// every party's imaging viewer shows the same images. The session keeps its
// attachments as JSON text (written by jsonList, so each entry begins with
// its "id"); the hospital's own sessions are found through their indexes
// first and only those are searched for the id.
func (c *Consults) CarriesAttachment(ctx context.Context, attachmentID, hospitalID string) (bool, error) {
	if !apperr.IsID(attachmentID) || !apperr.IsID(hospitalID) {
		return false, nil
	}
	var n int
	err := c.db.QueryRow(ctx, `SELECT count(*) FROM consult_sessions s
		WHERE (s.requesting_hospital_id = $2 OR s.target_hospital_id = $2
			OR s.id IN (SELECT session_id FROM consult_attendee_hospitals WHERE hospital_id = $2))
		AND s.attachments LIKE $1`,
		`%{"id":"`+attachmentID+`",%`, hospitalID).Scan(&n)
	return n > 0, err
}
