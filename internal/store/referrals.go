package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"duikou/internal/apperr"
	"duikou/internal/sqldb"
	"duikou/referral"
)

// Referrals keeps referral tickets, their history, the ticket number counter
// and the outbox. Every method joins the transaction in ctx, so a service
// writes a state change, its event, its outbox row and its audit row at once.
type Referrals struct {
	db sqldb.DB
}

// NewReferrals returns the referral store on db.
func NewReferrals(db sqldb.DB) *Referrals { return &Referrals{db: db} }

// ReferralFilter selects tickets for a list. Empty fields do not filter.
// PartyHospitalID keeps the tickets that hospital is a party to: the ones it
// sent, and the ones sent to it once they left the draft stage.
type ReferralFilter struct {
	PartyHospitalID     string
	Direction           referral.Direction
	Status              referral.Status
	Priority            referral.Priority
	GreenChannel        *bool
	ReferringHospitalID string
	ReceivingHospitalID string
	DepartmentID        string // referring or receiving department
	PatientID           string
	SubmittedFrom       *time.Time // inclusive
	SubmittedTo         *time.Time // exclusive
	After               string
	Limit               int
}

// OutboxMessage is one row of the outbox.
type OutboxMessage struct {
	ID          int64
	Topic       string
	Key         string
	Payload     string
	CreatedAt   time.Time
	PublishedAt *time.Time
	// Attempts counts the deliveries tried, for consumers that claim rows
	// (ClaimOutbox) and back off between attempts.
	Attempts int
}

const referralCols = `id, number, direction, priority, green_channel, green_category, transfer_risk,
	patient_id, referring_hospital_id, referring_department_id, referring_doctor_id,
	receiving_hospital_id, receiving_department_id, receiving_doctor_id,
	diagnoses, reason, clinical_summary, treatment_given, transport_mode, transport_escort,
	requested_from, requested_to, attachments, consent_id, based_on_id, redirected_from_id, redirected_to_id,
	status, version, created_by, created_at, updated_at, submitted_at, queued_at, claimed_at, claimed_by,
	decided_at, decided_by, scheduled_at, departed_at, arrived_at, completed_at, completed_by, closed_at, ended_at,
	reject_reason, decision_note, info_question, info_answer, redirect, schedule, end_reason,
	fee_waived, exam_slip_number, bed_reservation_id, outcome, feedback, claim_by, decide_by`

// refNull stores an empty id or number as NULL.
func refNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func refStr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// refJSON encodes a value kept as JSON text; nil pointers stay NULL.
func refJSON(v any) (*string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if string(b) == "null" {
		return nil, nil
	}
	s := string(b)
	return &s, nil
}

// referralArgs lists r's values in the order of referralCols.
func referralArgs(r referral.Referral) ([]any, error) {
	diagnoses := r.Diagnoses
	if diagnoses == nil {
		diagnoses = []referral.Diagnosis{}
	}
	attachments := r.Attachments
	if attachments == nil {
		attachments = []referral.AttachmentRef{}
	}
	diag, err := refJSON(diagnoses)
	if err != nil {
		return nil, err
	}
	att, err := refJSON(attachments)
	if err != nil {
		return nil, err
	}
	redirect, err := refJSON(r.Redirect)
	if err != nil {
		return nil, err
	}
	schedule, err := refJSON(r.Schedule)
	if err != nil {
		return nil, err
	}
	var from, to *time.Time
	if r.RequestedWindow != nil {
		f, t := r.RequestedWindow.From, r.RequestedWindow.To
		from, to = &f, &t
	}
	return []any{
		r.ID, refNull(r.Number), string(r.Direction), string(r.Priority), r.GreenChannel, string(r.GreenCategory), int(r.TransferRisk),
		r.PatientID, r.ReferringHospitalID, refNull(r.ReferringDepartmentID), refNull(r.ReferringDoctorID),
		refNull(r.ReceivingHospitalID), refNull(r.ReceivingDepartmentID), refNull(r.ReceivingDoctorID),
		*diag, r.Reason, r.ClinicalSummary, r.TreatmentGiven, string(r.Transport.Mode), string(r.Transport.Escort),
		from, to, *att, refNull(r.ConsentID), refNull(r.BasedOnID), refNull(r.RedirectedFromID), refNull(r.RedirectedToID),
		string(r.Status), r.Version, r.CreatedBy, r.CreatedAt, r.UpdatedAt, r.SubmittedAt, r.QueuedAt, r.ClaimedAt, refNull(r.ClaimedBy),
		r.DecidedAt, refNull(r.DecidedBy), r.ScheduledAt, r.DepartedAt, r.ArrivedAt, r.CompletedAt, refNull(r.CompletedBy), r.ClosedAt, r.EndedAt,
		string(r.RejectReason), r.DecisionNote, r.InfoQuestion, r.InfoAnswer, redirect, schedule, r.EndReason,
		r.FeeWaived, r.ExamSlipNumber, refNull(r.BedReservationID), string(r.Outcome), r.Feedback, r.ClaimBy, r.DecideBy,
	}, nil
}

func scanReferral(row sqldb.Row) (referral.Referral, error) {
	var r referral.Referral
	var number, refDept, refDoc, rcvHosp, rcvDept, rcvDoc, consent, basedOn, redirFrom, redirTo *string
	var claimedBy, decidedBy, completedBy, redirect, schedule, bed *string
	var direction, priority, category, mode, escort, status, rejectReason, outcome string
	var risk int
	var diag, att string
	var from, to *time.Time
	err := row.Scan(&r.ID, &number, &direction, &priority, &r.GreenChannel, &category, &risk,
		&r.PatientID, &r.ReferringHospitalID, &refDept, &refDoc,
		&rcvHosp, &rcvDept, &rcvDoc,
		&diag, &r.Reason, &r.ClinicalSummary, &r.TreatmentGiven, &mode, &escort,
		&from, &to, &att, &consent, &basedOn, &redirFrom, &redirTo,
		&status, &r.Version, &r.CreatedBy, &r.CreatedAt, &r.UpdatedAt, &r.SubmittedAt, &r.QueuedAt, &r.ClaimedAt, &claimedBy,
		&r.DecidedAt, &decidedBy, &r.ScheduledAt, &r.DepartedAt, &r.ArrivedAt, &r.CompletedAt, &completedBy, &r.ClosedAt, &r.EndedAt,
		&rejectReason, &r.DecisionNote, &r.InfoQuestion, &r.InfoAnswer, &redirect, &schedule, &r.EndReason,
		&r.FeeWaived, &r.ExamSlipNumber, &bed, &outcome, &r.Feedback, &r.ClaimBy, &r.DecideBy)
	if err != nil {
		return referral.Referral{}, err
	}
	r.Number = refStr(number)
	r.Direction, r.Priority, r.GreenCategory = referral.Direction(direction), referral.Priority(priority), referral.Category(category)
	r.TransferRisk = referral.TransferRisk(risk)
	r.ReferringDepartmentID, r.ReferringDoctorID = refStr(refDept), refStr(refDoc)
	r.ReceivingHospitalID, r.ReceivingDepartmentID, r.ReceivingDoctorID = refStr(rcvHosp), refStr(rcvDept), refStr(rcvDoc)
	r.Transport = referral.Transport{Mode: referral.TransportMode(mode), Escort: referral.Escort(escort)}
	if from != nil && to != nil {
		r.RequestedWindow = &referral.Window{From: *from, To: *to}
	}
	r.ConsentID, r.BasedOnID = refStr(consent), refStr(basedOn)
	r.RedirectedFromID, r.RedirectedToID = refStr(redirFrom), refStr(redirTo)
	r.Status = referral.Status(status)
	r.ClaimedBy, r.DecidedBy, r.CompletedBy = refStr(claimedBy), refStr(decidedBy), refStr(completedBy)
	r.RejectReason, r.Outcome = referral.RejectReason(rejectReason), referral.Outcome(outcome)
	r.BedReservationID = refStr(bed)
	if err := json.Unmarshal([]byte(diag), &r.Diagnoses); err != nil {
		return referral.Referral{}, fmt.Errorf("referral %s diagnoses: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(att), &r.Attachments); err != nil {
		return referral.Referral{}, fmt.Errorf("referral %s attachments: %w", r.ID, err)
	}
	if redirect != nil {
		r.Redirect = new(referral.Target)
		if err := json.Unmarshal([]byte(*redirect), r.Redirect); err != nil {
			return referral.Referral{}, fmt.Errorf("referral %s redirect: %w", r.ID, err)
		}
	}
	if schedule != nil {
		r.Schedule = new(referral.Schedule)
		if err := json.Unmarshal([]byte(*schedule), r.Schedule); err != nil {
			return referral.Referral{}, fmt.Errorf("referral %s schedule: %w", r.ID, err)
		}
	}
	return r, nil
}

func referralNumberTaken(err error) error {
	if errors.Is(err, sqldb.ErrUniqueViolation) {
		return apperr.Conflict("number: a referral with this number already exists")
	}
	return err
}

// Create inserts r as it is (id and version included).
func (s *Referrals) Create(ctx context.Context, r referral.Referral) error {
	args, err := referralArgs(r)
	if err != nil {
		return err
	}
	marks := make([]string, len(args))
	for i := range args {
		marks[i] = fmt.Sprintf("$%d", i+1)
	}
	_, err = s.db.Exec(ctx, `INSERT INTO referrals (`+referralCols+`) VALUES (`+strings.Join(marks, ", ")+`)`, args...)
	if err != nil {
		return referralNumberTaken(err)
	}
	return s.linkAttachments(ctx, r, true)
}

// Get returns the ticket with id, or apperr.ErrNotFound.
func (s *Referrals) Get(ctx context.Context, id string) (referral.Referral, error) {
	if !apperr.IsID(id) {
		return referral.Referral{}, apperr.ErrNotFound
	}
	r, err := scanReferral(s.db.QueryRow(ctx, `SELECT `+referralCols+` FROM referrals WHERE id = $1`, id))
	return r, dirNotFound(err)
}

// GetForUpdate returns the ticket with id and, on PostgreSQL, locks its row
// until the transaction in ctx ends, so two changes of one ticket queue up
// instead of one failing late. SQLite has a single writer already.
func (s *Referrals) GetForUpdate(ctx context.Context, id string) (referral.Referral, error) {
	if !apperr.IsID(id) {
		return referral.Referral{}, apperr.ErrNotFound
	}
	q := `SELECT ` + referralCols + ` FROM referrals WHERE id = $1`
	if s.db.Dialect() == sqldb.Postgres {
		q += ` FOR UPDATE`
	}
	r, err := scanReferral(s.db.QueryRow(ctx, q, id))
	return r, dirNotFound(err)
}

// ActionFacts is what a state change of a ticket needs to know besides the
// ticket itself, read in the same statement: the route checks of a
// submission or a redirection need the patient's home, and a submission the
// patient's consent to be referred.
type ActionFacts struct {
	// PatientHome is the home hospital of the ticket's patient ("" when the
	// patient is unknown).
	PatientHome string
	// ConsentSince is when the earliest of the patient's consents of the
	// asked purpose that are not withdrawn was granted; nil when there is
	// none, or no purpose was asked.
	ConsentSince *time.Time
}

// GetForAction is GetForUpdate with the ActionFacts, read in the same
// statement: this is the busiest write path, and each read apart would be
// one more round trip. consentPurpose names the consent to look up ("" for
// none).
func (s *Referrals) GetForAction(ctx context.Context, id, consentPurpose string) (referral.Referral, ActionFacts, error) {
	if !apperr.IsID(id) {
		return referral.Referral{}, ActionFacts{}, apperr.ErrNotFound
	}
	q := `SELECT ` + referralCols + `, (SELECT home_hospital_id FROM patients WHERE patients.id = referrals.patient_id),
		CASE WHEN $2 <> '' THEN (SELECT min(granted_at) FROM consents
			WHERE consents.patient_id = referrals.patient_id AND purpose = $2 AND withdrawn_at IS NULL) END
		FROM referrals WHERE id = $1`
	if s.db.Dialect() == sqldb.Postgres {
		q += ` FOR UPDATE OF referrals`
	}
	var home *string
	var f ActionFacts
	r, err := scanReferral(extraColumns{s.db.QueryRow(ctx, q, id, consentPurpose), []any{&home, &f.ConsentSince}})
	f.PatientHome = refStr(home)
	return r, f, dirNotFound(err)
}

// extraColumns scans a row that carries columns after the ones its scanner
// knows into extra.
type extraColumns struct {
	row   sqldb.Row
	extra []any
}

func (e extraColumns) Scan(dest ...any) error { return e.row.Scan(append(dest, e.extra...)...) }

// updateReferral writes every column but the id ($1) from referralArgs,
// where the stored version is the last argument; updateReferralGuarded is
// the same with the database's guard on the count (see Update). Both are
// built once: Update runs on every state change.
var updateReferral, updateReferralGuarded = func() (string, string) {
	cols := strings.Split(referralCols, ",")
	sets := make([]string, 0, len(cols)-1)
	for i, c := range cols[1:] { // the id is never changed
		sets = append(sets, fmt.Sprintf("%s = $%d", strings.TrimSpace(c), i+2))
	}
	update := `UPDATE referrals SET ` + strings.Join(sets, ", ") + fmt.Sprintf(` WHERE id = $1 AND version = $%d`, len(cols)+1)
	return update, `WITH updated AS (` + update + ` RETURNING 1) SELECT expect_one(count(*)) FROM updated`
}()

// Update writes r over was, the ticket as the caller read it, if the stored
// version is still was.Version; otherwise apperr.ErrStale
// (apperr.ErrNotFound when the ticket does not exist). Inside a transaction
// on PostgreSQL the write is held back and that verdict comes from the
// commit, as sqldb.ErrRowChanged. r.Version is stored as
// given: the domain raised it. The ticket's rows in referral_attachments are
// rewritten only when r carries other files than was: at the same version
// they are what was carries, so most changes (a submission, a claim) leave
// them alone.
func (s *Referrals) Update(ctx context.Context, r, was referral.Referral) error {
	args, err := referralArgs(r)
	if err != nil {
		return err
	}
	args = append(args, was.Version)
	if s.db.Dialect() == sqldb.Postgres && sqldb.InTransaction(ctx) {
		// The row goes with the transaction's next statement or its commit.
		// The service has read it FOR UPDATE and checked its version, so
		// the guard is a safety net, and it is the database's: expect_one
		// fails the transaction unless exactly the one row changed, and the commit
		// reports sqldb.ErrRowChanged. A check made here would have to see
		// the count before COMMIT is sent, one more round trip per change.
		err = s.db.ExecLater(ctx, nil, updateReferralGuarded, args...)
	} else {
		err = s.db.ExecLater(ctx, func(n int64) error {
			if n == 0 {
				return apperr.ErrStale
			}
			return nil
		}, updateReferral, args...)
	}
	if errors.Is(err, apperr.ErrStale) {
		return dirStaleOrMissing(ctx, s.db, "referrals", r.ID)
	}
	if err != nil {
		return referralNumberTaken(err)
	}
	if slices.Equal(linkableIDs(r.Attachments), linkableIDs(was.Attachments)) {
		return nil
	}
	return s.linkAttachments(ctx, r, false)
}

// AppendEvent adds ev to the end of the ticket's history. Call it in the
// transaction that changed the ticket: the ticket's row lock orders the
// sequence numbers.
func (s *Referrals) AppendEvent(ctx context.Context, referralID string, ev referral.Event) error {
	// Sent with the transaction's next statement: nobody waits for it.
	return s.db.ExecLater(ctx, nil, `INSERT INTO referral_events
		(id, referral_id, seq, action, from_status, to_status, actor, actor_hospital_id, reason_code, reason, at)
		VALUES ($1, $2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM referral_events WHERE referral_id = $2),
		$3, $4, $5, $6, $7, $8, $9, $10)`,
		uuid.Must(uuid.NewV7()).String(), referralID, string(ev.Action), string(ev.From), string(ev.To),
		refNull(ev.Actor), refNull(ev.ActorHospitalID), string(ev.ReasonCode), ev.Reason, ev.At)
}

// Events returns the ticket's history, oldest first.
func (s *Referrals) Events(ctx context.Context, referralID string) ([]referral.Event, error) {
	return dirQueryAll(ctx, s.db, `SELECT action, from_status, to_status, actor, actor_hospital_id, reason_code, reason, at
		FROM referral_events WHERE referral_id = $1 ORDER BY seq`, []any{referralID},
		func(r sqldb.Rows) (referral.Event, error) {
			var ev referral.Event
			var action, from, to, code string
			var actor, hospital *string
			err := r.Scan(&action, &from, &to, &actor, &hospital, &code, &ev.Reason, &ev.At)
			ev.Action, ev.From, ev.To, ev.ReasonCode = referral.Action(action), referral.Status(from), referral.Status(to), referral.RejectReason(code)
			ev.Actor, ev.ActorHospitalID = refStr(actor), refStr(hospital)
			return ev, err
		})
}

// NextNumbers counts n more tickets on day (YYYYMMDD or any day key) and
// returns the sequence number of the last of them: the caller owns the n
// numbers up to and including it. The upsert is one statement, so concurrent
// callers get disjoint runs of numbers.
func (s *Referrals) NextNumbers(ctx context.Context, day string, n int64) (int64, error) {
	if n < 1 {
		return 0, fmt.Errorf("referral numbers: a run of %d", n)
	}
	var last int64
	err := s.db.QueryRow(ctx, `INSERT INTO referral_numbers (day, last) VALUES ($1, $2)
		ON CONFLICT (day) DO UPDATE SET last = referral_numbers.last + $2 RETURNING last`, day, n).Scan(&last)
	return last, err
}

// List returns up to f.Limit tickets matching f, ordered by id after f.After.
func (s *Referrals) List(ctx context.Context, f ReferralFilter) ([]referral.Referral, error) {
	var w dirWhere
	if f.PartyHospitalID != "" {
		w.add("(referring_hospital_id = ? OR (receiving_hospital_id = ? AND status <> 'draft'))", f.PartyHospitalID, f.PartyHospitalID)
	}
	if f.Direction != "" {
		w.add("direction = ?", string(f.Direction))
	}
	if f.Status != "" {
		w.add("status = ?", string(f.Status))
	}
	if f.Priority != "" {
		w.add("priority = ?", string(f.Priority))
	}
	if f.GreenChannel != nil {
		w.add("green_channel = ?", *f.GreenChannel)
	}
	if f.ReferringHospitalID != "" {
		w.add("referring_hospital_id = ?", f.ReferringHospitalID)
	}
	if f.ReceivingHospitalID != "" {
		w.add("receiving_hospital_id = ?", f.ReceivingHospitalID)
	}
	if f.DepartmentID != "" {
		w.add("(referring_department_id = ? OR receiving_department_id = ?)", f.DepartmentID, f.DepartmentID)
	}
	if f.PatientID != "" {
		w.add("patient_id = ?", f.PatientID)
	}
	if f.SubmittedFrom != nil {
		w.add("submitted_at >= ?", *f.SubmittedFrom)
	}
	if f.SubmittedTo != nil {
		w.add("submitted_at < ?", *f.SubmittedTo)
	}
	q := `SELECT ` + referralCols + ` FROM referrals` + w.page(f.After, f.Limit)
	return dirQueryAll(ctx, s.db, q, w.args, func(r sqldb.Rows) (referral.Referral, error) { return scanReferral(r) })
}

// PatientHome returns the home hospital of a patient, which a down-referral
// must go back to.
func (s *Referrals) PatientHome(ctx context.Context, patientID string) (string, error) {
	if !apperr.IsID(patientID) {
		return "", apperr.ErrNotFound
	}
	var home string
	err := s.db.QueryRow(ctx, `SELECT home_hospital_id FROM patients WHERE id = $1`, patientID).Scan(&home)
	return home, dirNotFound(err)
}

// EnqueueOutbox adds a message to publish after the transaction in ctx
// commits.
func (s *Referrals) EnqueueOutbox(ctx context.Context, topic, key, payload string, at time.Time) error {
	// Sent with the transaction's next statement: nobody waits for it.
	return s.db.ExecLater(ctx, nil, `INSERT INTO outbox (topic, key, payload, created_at) VALUES ($1, $2, $3, $4)`,
		topic, key, payload, at)
}

// Outbox returns up to limit pending messages (neither published nor
// given up) in the order written.
func (s *Referrals) Outbox(ctx context.Context, limit int) ([]OutboxMessage, error) {
	return dirQueryAll(ctx, s.db, `SELECT id, topic, key, payload, created_at, published_at
		FROM outbox WHERE `+outboxPending+` ORDER BY id LIMIT $1`, []any{limit},
		func(r sqldb.Rows) (OutboxMessage, error) {
			var m OutboxMessage
			err := r.Scan(&m.ID, &m.Topic, &m.Key, &m.Payload, &m.CreatedAt, &m.PublishedAt)
			return m, err
		})
}
