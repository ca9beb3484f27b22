package program

import (
	"context"
	"time"
)

// Filter selects rows of pairings: PairingID exactly, HospitalID on either
// side; when Scoped, only rows with Party on either side or with both
// hospitals in Within (none when both are empty). Lists are ordered by id
// and continue after After; stores return up to Limit rows.
type Filter struct {
	PairingID  string
	HospitalID string
	StaffID    string // postings and trainees only
	Scoped     bool
	Party      string
	Within     []string
	After      string
	Limit      int
}

// ClinicFilter selects published clinics of a recipient hospital or a
// posting, from one day to another (both included, "" open).
type ClinicFilter struct {
	HospitalID string
	PostingID  string
	FromDay    string
	ToDay      string
	Limit      int
}

// Store keeps the program's records. Get methods answer apperr.ErrNotFound
// for an unknown id; updates write only over the given version, else
// apperr.ErrStale. Every method joins the transaction in ctx.
type Store interface {
	CreateAgreement(ctx context.Context, a Agreement) error
	Agreement(ctx context.Context, id string) (Agreement, error)
	Agreements(ctx context.Context, f Filter) ([]Agreement, error)
	// AmendAgreement writes a's terms as version expectVersion+1 and keeps
	// the version in the history.
	AmendAgreement(ctx context.Context, a Agreement, expectVersion int) (Agreement, error)
	AgreementVersions(ctx context.Context, agreementID string) ([]AgreementVersion, error)

	CreatePosting(ctx context.Context, p Posting) error
	Posting(ctx context.Context, id string) (Posting, error)
	Postings(ctx context.Context, f Filter) ([]Posting, error)
	// UpdatePosting writes every changeable field of p over expectVersion
	// and returns the posting as stored (version incremented).
	UpdatePosting(ctx context.Context, p Posting, expectVersion int) (Posting, error)
	// TeamTitles lists the titles of the other members of a pairing's team
	// whose postings overlap from..to.
	TeamTitles(ctx context.Context, pairingID, team, from, to, exceptPostingID string) ([]string, error)

	// PutAttendance records a day; a day the recipient has confirmed is a
	// conflict.
	PutAttendance(ctx context.Context, a Attendance) (Attendance, error)
	ConfirmAttendance(ctx context.Context, postingID, day, by string, at time.Time) (Attendance, error)
	AttendanceOf(ctx context.Context, postingID, fromDay, toDay string) ([]Attendance, error)

	// PutEvaluation creates (expectVersion 0) or replaces a month's
	// evaluation.
	PutEvaluation(ctx context.Context, e Evaluation, expectVersion int) (Evaluation, error)
	Evaluations(ctx context.Context, postingID string) ([]Evaluation, error)

	CreateWorkLog(ctx context.Context, w WorkLog) error
	WorkLog(ctx context.Context, id string) (WorkLog, error)
	WorkLogs(ctx context.Context, postingID string) ([]WorkLog, error)
	// ConfirmWorkLog marks an entry confirmed once; a confirmed entry is a
	// conflict.
	ConfirmWorkLog(ctx context.Context, id, by string, at time.Time) (WorkLog, error)
	// UpdateWorkLog rewrites an unconfirmed entry over expectVersion: a
	// confirmed one is apperr.ErrConflict, a moved-on one apperr.ErrStale.
	UpdateWorkLog(ctx context.Context, w WorkLog, expectVersion int) (WorkLog, error)

	CreateClinicSession(ctx context.Context, c ClinicSession) error
	ClinicSessions(ctx context.Context, f ClinicFilter) ([]ClinicSession, error)
	ClinicSession(ctx context.Context, id string) (ClinicSession, error)
	// UpdateClinicSession writes c's day, times, place and cancellation
	// over expectVersion (apperr.ErrStale when it moved on).
	UpdateClinicSession(ctx context.Context, c ClinicSession, expectVersion int) (ClinicSession, error)
	// PublicSchedule is what residents see of a hospital's clinics.
	PublicSchedule(ctx context.Context, hospitalID, fromDay, toDay string) ([]PublicSession, error)

	CreateTrainee(ctx context.Context, t Trainee) error
	Trainees(ctx context.Context, f Filter) ([]Trainee, error)
	Trainee(ctx context.Context, id string) (Trainee, error)
	// UpdateTrainee writes t's host department and period over
	// expectVersion (apperr.ErrStale when it moved on).
	UpdateTrainee(ctx context.Context, t Trainee, expectVersion int) (Trainee, error)
}
