package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"duikou/internal/apperr"
	"duikou/internal/program"
	"duikou/internal/sqldb"
)

// Program keeps the paired-support program's records (migration 0012) on
// either engine.
type Program struct{ db sqldb.DB }

// NewProgram returns the program store on db.
func NewProgram(db sqldb.DB) *Program { return &Program{db: db} }

var _ program.Store = (*Program)(nil)

// scopeWhere adds a filter's pairing, hospital and scope conditions for a
// table with pairing_id and the two hospital columns a and b.
func scopeWhere(f program.Filter, a, b string) *dirWhere {
	w := &dirWhere{}
	if f.PairingID != "" {
		w.add("pairing_id = ?", f.PairingID)
	}
	if f.HospitalID != "" {
		w.add("("+a+" = ? OR "+b+" = ?)", f.HospitalID, f.HospitalID)
	}
	if f.StaffID != "" {
		w.add("staff_id = ?", f.StaffID)
	}
	if f.Scoped {
		// (a = party OR b = party) OR (a IN within AND b IN within), built
		// as one condition with its own placeholders.
		var or []string
		if f.Party != "" {
			w.args = append(w.args, f.Party)
			n := len(w.args)
			or = append(or, fmt.Sprintf("%s = $%d OR %s = $%d", a, n, b, n))
		}
		if len(f.Within) > 0 {
			marks := make([]string, len(f.Within))
			for i, id := range f.Within {
				w.args = append(w.args, id)
				marks[i] = fmt.Sprintf("$%d", len(w.args))
			}
			in := strings.Join(marks, ", ")
			or = append(or, fmt.Sprintf("(%s IN (%s) AND %s IN (%s))", a, in, b, in))
		}
		if len(or) == 0 {
			or = []string{"1 = 0"}
		}
		w.conds = append(w.conds, "("+strings.Join(or, " OR ")+")")
	}
	return w
}

func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// ---- Agreements ----

const agreementCols = `id, pairing_id, supporting_hospital_id, recipient_hospital_id, terms, version, created_at, updated_at, updated_by`

func scanAgreement(r sqldb.Row) (program.Agreement, error) {
	var a program.Agreement
	var terms string
	if err := r.Scan(&a.ID, &a.PairingID, &a.SupportingHospitalID, &a.RecipientHospitalID, &terms, &a.Version, &a.CreatedAt, &a.UpdatedAt, &a.UpdatedBy); err != nil {
		return a, err
	}
	return a, json.Unmarshal([]byte(terms), &a.Terms)
}

func (s *Program) writeVersion(ctx context.Context, a program.Agreement, terms string) error {
	_, err := s.db.Exec(ctx, `INSERT INTO program_agreement_versions (agreement_id, version, terms, signed_document_id, created_at, created_by)
		VALUES ($1, $2, $3, $4, $5, $6)`, a.ID, a.Version, terms, a.Terms.SignedDocumentID, a.UpdatedAt, a.UpdatedBy)
	return err
}

// CarriesAttachment reports whether a version of an agreement of one of
// hospitalID's pairings names the file as its signed document, so that the
// partner hospital may download what the other uploaded.
func (s *Program) CarriesAttachment(ctx context.Context, attachmentID, hospitalID string) (bool, error) {
	if !apperr.IsID(attachmentID) || !apperr.IsID(hospitalID) {
		return false, nil
	}
	var n int
	err := s.db.QueryRow(ctx, `SELECT count(*) FROM program_agreement_versions v JOIN program_agreements a ON a.id = v.agreement_id
		WHERE v.signed_document_id = $1 AND (a.supporting_hospital_id = $2 OR a.recipient_hospital_id = $2)`, attachmentID, hospitalID).Scan(&n)
	return n > 0, err
}

// CreateAgreement inserts a at its version (1) and records that version.
func (s *Program) CreateAgreement(ctx context.Context, a program.Agreement) error {
	terms, err := jsonText(a.Terms)
	if err != nil {
		return err
	}
	return s.db.InTx(ctx, func(ctx context.Context) error {
		c := a.Terms.Commitments
		if _, err := s.db.Exec(ctx, `INSERT INTO program_agreements (id, pairing_id, supporting_hospital_id, recipient_hospital_id,
			starts_on, ends_on, teams_per_year, days_per_year, trainees_per_year, terms, signed_document_id, version, created_at, updated_at, updated_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
			a.ID, a.PairingID, a.SupportingHospitalID, a.RecipientHospitalID, a.Terms.StartsOn, a.Terms.EndsOn,
			c.TeamsPerYear, c.DaysPerYear, c.TraineesPerYear, terms, a.Terms.SignedDocumentID, a.Version, a.CreatedAt, a.UpdatedAt, a.UpdatedBy); err != nil {
			return err
		}
		return s.writeVersion(ctx, a, terms)
	})
}

// Agreement returns the agreement's current version.
func (s *Program) Agreement(ctx context.Context, id string) (program.Agreement, error) {
	if !apperr.IsID(id) {
		return program.Agreement{}, apperr.ErrNotFound
	}
	a, err := scanAgreement(s.db.QueryRow(ctx, `SELECT `+agreementCols+` FROM program_agreements WHERE id = $1`, id))
	return a, dirNotFound(err)
}

// Agreements lists agreements by f.
func (s *Program) Agreements(ctx context.Context, f program.Filter) ([]program.Agreement, error) {
	w := scopeWhere(f, "supporting_hospital_id", "recipient_hospital_id")
	q := `SELECT ` + agreementCols + ` FROM program_agreements` + w.page(f.After, f.Limit)
	return dirQueryAll(ctx, s.db, q, w.args, func(r sqldb.Rows) (program.Agreement, error) { return scanAgreement(r) })
}

// AmendAgreement writes a's terms over expectVersion as the next version.
func (s *Program) AmendAgreement(ctx context.Context, a program.Agreement, expectVersion int) (program.Agreement, error) {
	terms, err := jsonText(a.Terms)
	if err != nil {
		return program.Agreement{}, err
	}
	var out program.Agreement
	err = s.db.InTx(ctx, func(ctx context.Context) error {
		c := a.Terms.Commitments
		out, err = scanAgreement(s.db.QueryRow(ctx, `UPDATE program_agreements SET starts_on = $2, ends_on = $3,
			teams_per_year = $4, days_per_year = $5, trainees_per_year = $6, terms = $7, signed_document_id = $8,
			version = version + 1, updated_at = $9, updated_by = $10
			WHERE id = $1 AND version = $11 RETURNING `+agreementCols,
			a.ID, a.Terms.StartsOn, a.Terms.EndsOn, c.TeamsPerYear, c.DaysPerYear, c.TraineesPerYear, terms,
			a.Terms.SignedDocumentID, a.UpdatedAt, a.UpdatedBy, expectVersion))
		if errors.Is(err, sqldb.ErrNoRows) {
			return dirStaleOrMissing(ctx, s.db, "program_agreements", a.ID)
		}
		if err != nil {
			return err
		}
		return s.writeVersion(ctx, out, terms)
	})
	return out, err
}

// AgreementVersions lists every version of an agreement, oldest first.
func (s *Program) AgreementVersions(ctx context.Context, agreementID string) ([]program.AgreementVersion, error) {
	return dirQueryAll(ctx, s.db, `SELECT agreement_id, version, terms, created_at, created_by FROM program_agreement_versions
		WHERE agreement_id = $1 ORDER BY version`, []any{agreementID}, func(r sqldb.Rows) (program.AgreementVersion, error) {
		var v program.AgreementVersion
		var terms string
		if err := r.Scan(&v.AgreementID, &v.Version, &terms, &v.CreatedAt, &v.CreatedBy); err != nil {
			return v, err
		}
		return v, json.Unmarshal([]byte(terms), &v.Terms)
	})
}

// ---- Postings ----

const postingCols = `id, pairing_id, staff_id, staff_name, title, home_hospital_id, home_department_id, recipient_hospital_id,
	recipient_department_id, starts_on, ends_on, team, team_leader, specialty, warnings, override_reason, override_by, override_at,
	arrival_due_on, arrived_on, arrival_confirmed_by, arrival_confirmed_at, arrival_note,
	appraisal_grade, appraisal_comment, appraised_by, appraised_at, version, created_at, created_by, updated_at`

func scanPosting(r sqldb.Row) (program.Posting, error) {
	var p program.Posting
	var warnings string
	var oReason, oBy, arrived, aBy, grade, apBy *string
	var oAt, aAt, apAt *time.Time
	var aNote, apComment string
	err := r.Scan(&p.ID, &p.PairingID, &p.StaffID, &p.StaffName, &p.Title, &p.HomeHospitalID, &p.HomeDepartmentID, &p.RecipientHospitalID,
		&p.RecipientDepartmentID, &p.StartsOn, &p.EndsOn, &p.Team, &p.TeamLeader, &p.Specialty, &warnings, &oReason, &oBy, &oAt,
		&p.ArrivalDueOn, &arrived, &aBy, &aAt, &aNote, &grade, &apComment, &apBy, &apAt, &p.Version, &p.CreatedAt, &p.CreatedBy, &p.UpdatedAt)
	if err != nil {
		return p, err
	}
	if oReason != nil && oAt != nil {
		p.Override = &program.Override{Reason: *oReason, By: refStr(oBy), At: *oAt}
	}
	if arrived != nil && aAt != nil {
		p.Arrival = &program.Arrival{ArrivedOn: *arrived, ConfirmedBy: refStr(aBy), ConfirmedAt: *aAt, Note: aNote}
	}
	if grade != nil && apAt != nil {
		p.Appraisal = &program.Appraisal{Grade: program.Grade(*grade), Comment: apComment, AppraisedBy: refStr(apBy), AppraisedAt: *apAt}
	}
	return p, json.Unmarshal([]byte(warnings), &p.Warnings)
}

// postingVars are the changeable columns of p, in postingSet's order.
func postingVars(p program.Posting) ([]any, error) {
	if p.Warnings == nil {
		p.Warnings = []program.Warning{}
	}
	warnings, err := jsonText(p.Warnings)
	if err != nil {
		return nil, err
	}
	var oReason, oBy, arrived, aBy, grade, apBy any
	var oAt, aAt, apAt any
	aNote, apComment := "", ""
	if o := p.Override; o != nil {
		oReason, oBy, oAt = o.Reason, o.By, o.At
	}
	if a := p.Arrival; a != nil {
		arrived, aBy, aAt, aNote = a.ArrivedOn, a.ConfirmedBy, a.ConfirmedAt, a.Note
	}
	if a := p.Appraisal; a != nil {
		grade, apComment, apBy, apAt = string(a.Grade), a.Comment, a.AppraisedBy, a.AppraisedAt
	}
	return []any{p.RecipientDepartmentID, p.StartsOn, p.EndsOn, p.Team, p.TeamLeader, p.Specialty, warnings,
		oReason, oBy, oAt, p.ArrivalDueOn, arrived, aBy, aAt, aNote, grade, apComment, apBy, apAt, p.UpdatedAt}, nil
}

// CreatePosting inserts p.
func (s *Program) CreatePosting(ctx context.Context, p program.Posting) error {
	vars, err := postingVars(p)
	if err != nil {
		return err
	}
	args := append([]any{p.ID, p.PairingID, p.StaffID, p.StaffName, p.Title, p.HomeHospitalID, p.HomeDepartmentID,
		p.RecipientHospitalID, p.Version, p.CreatedAt, p.CreatedBy}, vars...)
	_, err = s.db.Exec(ctx, `INSERT INTO program_postings (id, pairing_id, staff_id, staff_name, title, home_hospital_id,
		home_department_id, recipient_hospital_id, version, created_at, created_by,
		recipient_department_id, starts_on, ends_on, team, team_leader, specialty, warnings,
		override_reason, override_by, override_at, arrival_due_on, arrived_on, arrival_confirmed_by, arrival_confirmed_at, arrival_note,
		appraisal_grade, appraisal_comment, appraised_by, appraised_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24,
		$25, $26, $27, $28, $29, $30, $31)`, args...)
	return err
}

// Posting returns the posting with id.
func (s *Program) Posting(ctx context.Context, id string) (program.Posting, error) {
	if !apperr.IsID(id) {
		return program.Posting{}, apperr.ErrNotFound
	}
	p, err := scanPosting(s.db.QueryRow(ctx, `SELECT `+postingCols+` FROM program_postings WHERE id = $1`, id))
	return p, dirNotFound(err)
}

// Postings lists postings by f (hospital: home or recipient).
func (s *Program) Postings(ctx context.Context, f program.Filter) ([]program.Posting, error) {
	w := scopeWhere(f, "home_hospital_id", "recipient_hospital_id")
	q := `SELECT ` + postingCols + ` FROM program_postings` + w.page(f.After, f.Limit)
	return dirQueryAll(ctx, s.db, q, w.args, func(r sqldb.Rows) (program.Posting, error) { return scanPosting(r) })
}

// UpdatePosting writes p over expectVersion.
func (s *Program) UpdatePosting(ctx context.Context, p program.Posting, expectVersion int) (program.Posting, error) {
	vars, err := postingVars(p)
	if err != nil {
		return program.Posting{}, err
	}
	args := append(vars, p.ID, expectVersion)
	out, err := scanPosting(s.db.QueryRow(ctx, `UPDATE program_postings SET recipient_department_id = $1, starts_on = $2,
		ends_on = $3, team = $4, team_leader = $5, specialty = $6, warnings = $7, override_reason = $8, override_by = $9,
		override_at = $10, arrival_due_on = $11, arrived_on = $12, arrival_confirmed_by = $13, arrival_confirmed_at = $14,
		arrival_note = $15, appraisal_grade = $16, appraisal_comment = $17, appraised_by = $18, appraised_at = $19,
		updated_at = $20, version = version + 1
		WHERE id = $21 AND version = $22 RETURNING `+postingCols, args...))
	if errors.Is(err, sqldb.ErrNoRows) {
		return program.Posting{}, dirStaleOrMissing(ctx, s.db, "program_postings", p.ID)
	}
	return out, err
}

// TeamTitles lists the titles of a team's other members overlapping from..to.
func (s *Program) TeamTitles(ctx context.Context, pairingID, team, from, to, exceptPostingID string) ([]string, error) {
	return dirQueryAll(ctx, s.db, `SELECT title FROM program_postings
		WHERE pairing_id = $1 AND team = $2 AND starts_on <= $4 AND ends_on >= $3 AND CAST(id AS TEXT) <> $5 ORDER BY id`,
		[]any{pairingID, team, from, to, exceptPostingID}, func(r sqldb.Rows) (string, error) {
			var t string
			return t, r.Scan(&t)
		})
}

// ---- Attendance ----

const attendanceCols = `posting_id, day, status, reason, recorded_by, recorded_at, confirmed_by, confirmed_at`

func scanAttendance(r sqldb.Row) (program.Attendance, error) {
	var a program.Attendance
	var status string
	err := r.Scan(&a.PostingID, &a.Day, &status, &a.Reason, &a.RecordedBy, &a.RecordedAt, &a.ConfirmedBy, &a.ConfirmedAt)
	a.Status = program.AttendanceStatus(status)
	return a, err
}

// PutAttendance records a day, replacing an unconfirmed record of it.
func (s *Program) PutAttendance(ctx context.Context, a program.Attendance) (program.Attendance, error) {
	out, err := scanAttendance(s.db.QueryRow(ctx, `INSERT INTO program_attendance (posting_id, day, status, reason, recorded_by, recorded_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (posting_id, day) DO UPDATE SET status = excluded.status, reason = excluded.reason,
			recorded_by = excluded.recorded_by, recorded_at = excluded.recorded_at
		WHERE program_attendance.confirmed_at IS NULL
		RETURNING `+attendanceCols, a.PostingID, a.Day, string(a.Status), a.Reason, a.RecordedBy, a.RecordedAt))
	if errors.Is(err, sqldb.ErrNoRows) {
		return program.Attendance{}, apperr.Conflict("day: the recipient has confirmed this day already")
	}
	return out, err
}

// ConfirmAttendance confirms a recorded day; confirming twice is a no-op.
func (s *Program) ConfirmAttendance(ctx context.Context, postingID, day, by string, at time.Time) (program.Attendance, error) {
	out, err := scanAttendance(s.db.QueryRow(ctx, `UPDATE program_attendance SET confirmed_by = $3, confirmed_at = $4
		WHERE posting_id = $1 AND day = $2 AND confirmed_at IS NULL RETURNING `+attendanceCols, postingID, day, by, at))
	if !errors.Is(err, sqldb.ErrNoRows) {
		return out, err
	}
	out, err = scanAttendance(s.db.QueryRow(ctx, `SELECT `+attendanceCols+` FROM program_attendance WHERE posting_id = $1 AND day = $2`, postingID, day))
	return out, dirNotFound(err)
}

// AttendanceOf lists a posting's recorded days from..to, in order.
func (s *Program) AttendanceOf(ctx context.Context, postingID, fromDay, toDay string) ([]program.Attendance, error) {
	return dirQueryAll(ctx, s.db, `SELECT `+attendanceCols+` FROM program_attendance
		WHERE posting_id = $1 AND day >= $2 AND day <= $3 ORDER BY day`, []any{postingID, fromDay, toDay},
		func(r sqldb.Rows) (program.Attendance, error) { return scanAttendance(r) })
}

// ---- Evaluations ----

const evaluationCols = `posting_id, month, scores, total, comment, evaluated_by, evaluated_at, due_on, late, version`

func scanEvaluation(r sqldb.Row) (program.Evaluation, error) {
	var e program.Evaluation
	var scores string
	if err := r.Scan(&e.PostingID, &e.Month, &scores, &e.Total, &e.Comment, &e.EvaluatedBy, &e.EvaluatedAt, &e.DueOn, &e.Late, &e.Version); err != nil {
		return e, err
	}
	return e, json.Unmarshal([]byte(scores), &e.Scores)
}

// PutEvaluation creates a month's evaluation (expectVersion 0; stale when
// one exists) or replaces it over expectVersion.
func (s *Program) PutEvaluation(ctx context.Context, e program.Evaluation, expectVersion int) (program.Evaluation, error) {
	scores, err := jsonText(e.Scores)
	if err != nil {
		return program.Evaluation{}, err
	}
	if expectVersion == 0 {
		n, err := s.db.Exec(ctx, `INSERT INTO program_evaluations (posting_id, month, scores, total, comment, evaluated_by, evaluated_at, due_on, late, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1) ON CONFLICT (posting_id, month) DO NOTHING`,
			e.PostingID, e.Month, scores, e.Total, e.Comment, e.EvaluatedBy, e.EvaluatedAt, e.DueOn, e.Late)
		if err != nil {
			return program.Evaluation{}, err
		}
		if n == 0 {
			return program.Evaluation{}, apperr.ErrStale
		}
	} else {
		n, err := s.db.Exec(ctx, `UPDATE program_evaluations SET scores = $3, total = $4, comment = $5, evaluated_by = $6,
			evaluated_at = $7, version = version + 1 WHERE posting_id = $1 AND month = $2 AND version = $8`,
			e.PostingID, e.Month, scores, e.Total, e.Comment, e.EvaluatedBy, e.EvaluatedAt, expectVersion)
		if err != nil {
			return program.Evaluation{}, err
		}
		if n == 0 {
			return program.Evaluation{}, apperr.ErrStale
		}
	}
	out, err := scanEvaluation(s.db.QueryRow(ctx, `SELECT `+evaluationCols+` FROM program_evaluations WHERE posting_id = $1 AND month = $2`, e.PostingID, e.Month))
	return out, dirNotFound(err)
}

// Evaluations lists a posting's evaluations by month.
func (s *Program) Evaluations(ctx context.Context, postingID string) ([]program.Evaluation, error) {
	return dirQueryAll(ctx, s.db, `SELECT `+evaluationCols+` FROM program_evaluations WHERE posting_id = $1 ORDER BY month`,
		[]any{postingID}, func(r sqldb.Rows) (program.Evaluation, error) { return scanEvaluation(r) })
}

// ---- Work logs ----

const workLogCols = `id, posting_id, day, outpatients, ward_rounds, operations, surgical_demonstrations, teaching_rounds, lectures,
	case_discussions, consultations, people_trained, free_clinics, free_clinic_people, new_techniques, technique_names, note,
	entered_by, entered_at, confirmed_by, confirmed_at, version`

func scanWorkLog(r sqldb.Row) (program.WorkLog, error) {
	var w program.WorkLog
	c := &w.Counts
	var names string
	if err := r.Scan(&w.ID, &w.PostingID, &w.Day, &c.Outpatients, &c.WardRounds, &c.Operations, &c.SurgicalDemos, &c.TeachingRounds,
		&c.Lectures, &c.CaseDiscussions, &c.Consultations, &c.PeopleTrained, &c.FreeClinics, &c.FreeClinicPeople, &c.NewTechniques,
		&names, &w.Note, &w.EnteredBy, &w.EnteredAt, &w.ConfirmedBy, &w.ConfirmedAt, &w.Version); err != nil {
		return w, err
	}
	return w, json.Unmarshal([]byte(names), &w.TechniqueNames)
}

// CreateWorkLog inserts w.
func (s *Program) CreateWorkLog(ctx context.Context, w program.WorkLog) error {
	if w.TechniqueNames == nil {
		w.TechniqueNames = []string{}
	}
	names, err := jsonText(w.TechniqueNames)
	if err != nil {
		return err
	}
	c := w.Counts
	_, err = s.db.Exec(ctx, `INSERT INTO program_work_logs (id, posting_id, day, outpatients, ward_rounds, operations,
		surgical_demonstrations, teaching_rounds, lectures, case_discussions, consultations, people_trained, free_clinics,
		free_clinic_people, new_techniques, technique_names, note, entered_by, entered_at, version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, 1)`,
		w.ID, w.PostingID, w.Day, c.Outpatients, c.WardRounds, c.Operations, c.SurgicalDemos, c.TeachingRounds, c.Lectures,
		c.CaseDiscussions, c.Consultations, c.PeopleTrained, c.FreeClinics, c.FreeClinicPeople, c.NewTechniques, names, w.Note,
		w.EnteredBy, w.EnteredAt)
	return err
}

// WorkLog returns the entry with id.
func (s *Program) WorkLog(ctx context.Context, id string) (program.WorkLog, error) {
	if !apperr.IsID(id) {
		return program.WorkLog{}, apperr.ErrNotFound
	}
	w, err := scanWorkLog(s.db.QueryRow(ctx, `SELECT `+workLogCols+` FROM program_work_logs WHERE id = $1`, id))
	return w, dirNotFound(err)
}

// WorkLogs lists a posting's entries by day.
func (s *Program) WorkLogs(ctx context.Context, postingID string) ([]program.WorkLog, error) {
	return dirQueryAll(ctx, s.db, `SELECT `+workLogCols+` FROM program_work_logs WHERE posting_id = $1 ORDER BY day, id`,
		[]any{postingID}, func(r sqldb.Rows) (program.WorkLog, error) { return scanWorkLog(r) })
}

// ConfirmWorkLog confirms an unconfirmed entry.
func (s *Program) ConfirmWorkLog(ctx context.Context, id, by string, at time.Time) (program.WorkLog, error) {
	// The version moves on, so a correction read before the confirmation
	// does not slip in after it.
	w, err := scanWorkLog(s.db.QueryRow(ctx, `UPDATE program_work_logs SET confirmed_by = $2, confirmed_at = $3, version = version + 1
		WHERE id = $1 AND confirmed_at IS NULL RETURNING `+workLogCols, id, by, at))
	if !errors.Is(err, sqldb.ErrNoRows) {
		return w, err
	}
	if _, err := s.WorkLog(ctx, id); err != nil {
		return program.WorkLog{}, err
	}
	return program.WorkLog{}, apperr.Conflict("this work log entry is confirmed already")
}

// UpdateWorkLog rewrites an unconfirmed entry over expectVersion.
func (s *Program) UpdateWorkLog(ctx context.Context, w program.WorkLog, expectVersion int) (program.WorkLog, error) {
	if w.TechniqueNames == nil {
		w.TechniqueNames = []string{}
	}
	names, err := jsonText(w.TechniqueNames)
	if err != nil {
		return program.WorkLog{}, err
	}
	c := w.Counts
	out, err := scanWorkLog(s.db.QueryRow(ctx, `UPDATE program_work_logs SET day = $1, outpatients = $2, ward_rounds = $3, operations = $4,
		surgical_demonstrations = $5, teaching_rounds = $6, lectures = $7, case_discussions = $8, consultations = $9, people_trained = $10,
		free_clinics = $11, free_clinic_people = $12, new_techniques = $13, technique_names = $14, note = $15, version = version + 1
		WHERE id = $16 AND version = $17 AND confirmed_at IS NULL RETURNING `+workLogCols,
		w.Day, c.Outpatients, c.WardRounds, c.Operations, c.SurgicalDemos, c.TeachingRounds, c.Lectures, c.CaseDiscussions,
		c.Consultations, c.PeopleTrained, c.FreeClinics, c.FreeClinicPeople, c.NewTechniques, names, w.Note, w.ID, expectVersion))
	if !errors.Is(err, sqldb.ErrNoRows) {
		return out, err
	}
	cur, err := s.WorkLog(ctx, w.ID)
	if err != nil {
		return program.WorkLog{}, err
	}
	if cur.ConfirmedAt != nil {
		return program.WorkLog{}, apperr.Conflict("this work log entry is confirmed: it is no longer corrected")
	}
	return program.WorkLog{}, apperr.ErrStale
}

// ---- Clinic schedule ----

const clinicCols = `id, posting_id, recipient_hospital_id, day, starts_at, ends_at, place, published_by, published_at,
	cancelled_at, cancelled_by, cancel_reason, version`

func scanClinic(r sqldb.Row) (program.ClinicSession, error) {
	var c program.ClinicSession
	var cAt *time.Time
	var cBy *string
	var reason string
	err := r.Scan(&c.ID, &c.PostingID, &c.RecipientHospitalID, &c.Day, &c.StartsAt, &c.EndsAt, &c.Place, &c.PublishedBy, &c.PublishedAt,
		&cAt, &cBy, &reason, &c.Version)
	if err == nil && cAt != nil {
		c.Cancelled = &program.Cancellation{Reason: reason, By: refStr(cBy), At: *cAt}
	}
	return c, err
}

// CreateClinicSession inserts c at version 1.
func (s *Program) CreateClinicSession(ctx context.Context, c program.ClinicSession) error {
	_, err := s.db.Exec(ctx, `INSERT INTO program_clinic_sessions (id, posting_id, recipient_hospital_id, day, starts_at, ends_at,
		place, published_by, published_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1)`,
		c.ID, c.PostingID, c.RecipientHospitalID, c.Day, c.StartsAt, c.EndsAt, c.Place, c.PublishedBy, c.PublishedAt)
	return err
}

// ClinicSession returns the clinic with id.
func (s *Program) ClinicSession(ctx context.Context, id string) (program.ClinicSession, error) {
	if !apperr.IsID(id) {
		return program.ClinicSession{}, apperr.ErrNotFound
	}
	c, err := scanClinic(s.db.QueryRow(ctx, `SELECT `+clinicCols+` FROM program_clinic_sessions WHERE id = $1`, id))
	return c, dirNotFound(err)
}

// UpdateClinicSession writes c over expectVersion.
func (s *Program) UpdateClinicSession(ctx context.Context, c program.ClinicSession, expectVersion int) (program.ClinicSession, error) {
	var cAt *time.Time
	var cBy *string
	reason := ""
	if c.Cancelled != nil {
		cAt, cBy, reason = &c.Cancelled.At, &c.Cancelled.By, c.Cancelled.Reason
	}
	out, err := scanClinic(s.db.QueryRow(ctx, `UPDATE program_clinic_sessions SET day = $1, starts_at = $2, ends_at = $3, place = $4,
		cancelled_at = $5, cancelled_by = $6, cancel_reason = $7, version = version + 1
		WHERE id = $8 AND version = $9 RETURNING `+clinicCols, c.Day, c.StartsAt, c.EndsAt, c.Place, cAt, cBy, reason, c.ID, expectVersion))
	if errors.Is(err, sqldb.ErrNoRows) {
		return program.ClinicSession{}, dirStaleOrMissing(ctx, s.db, "program_clinic_sessions", c.ID)
	}
	return out, err
}

func clinicWhere(f program.ClinicFilter, prefix string) *dirWhere {
	w := &dirWhere{}
	if f.HospitalID != "" {
		w.add(prefix+"recipient_hospital_id = ?", f.HospitalID)
	}
	if f.PostingID != "" {
		w.add(prefix+"posting_id = ?", f.PostingID)
	}
	if f.FromDay != "" {
		w.add(prefix+"day >= ?", f.FromDay)
	}
	if f.ToDay != "" {
		w.add(prefix+"day <= ?", f.ToDay)
	}
	return w
}

func (w *dirWhere) orderLimit(order string, limit int) string {
	q := ""
	if len(w.conds) > 0 {
		q = " WHERE " + strings.Join(w.conds, " AND ")
	}
	q += " ORDER BY " + order
	if limit > 0 {
		w.args = append(w.args, limit)
		q += " LIMIT $" + strconv.Itoa(len(w.args))
	}
	return q
}

// ClinicSessions lists clinics by day and time.
func (s *Program) ClinicSessions(ctx context.Context, f program.ClinicFilter) ([]program.ClinicSession, error) {
	w := clinicWhere(f, "")
	q := `SELECT ` + clinicCols + ` FROM program_clinic_sessions` + w.orderLimit("day, starts_at, id", f.Limit)
	return dirQueryAll(ctx, s.db, q, w.args, func(r sqldb.Rows) (program.ClinicSession, error) { return scanClinic(r) })
}

// PublicSchedule joins a hospital's clinics with their doctors: name,
// title, home hospital and specialty, nothing else of them.
func (s *Program) PublicSchedule(ctx context.Context, hospitalID, fromDay, toDay string) ([]program.PublicSession, error) {
	if !apperr.IsID(hospitalID) {
		return nil, nil
	}
	return dirQueryAll(ctx, s.db, `SELECT c.day, c.starts_at, c.ends_at, c.place, p.staff_name, p.title, h.name, p.specialty
		FROM program_clinic_sessions c JOIN program_postings p ON p.id = c.posting_id JOIN hospitals h ON h.id = p.home_hospital_id
		WHERE c.recipient_hospital_id = $1 AND c.day >= $2 AND c.day <= $3 AND c.cancelled_at IS NULL
		ORDER BY c.day, c.starts_at, p.staff_name, c.id`, []any{hospitalID, fromDay, toDay},
		func(r sqldb.Rows) (program.PublicSession, error) {
			var x program.PublicSession
			err := r.Scan(&x.Day, &x.StartsAt, &x.EndsAt, &x.Place, &x.DoctorName, &x.TitleLabel, &x.HomeHospital, &x.Specialty)
			return x, err
		})
}

// ---- Trainees ----

const traineeCols = `id, pairing_id, supporting_hospital_id, recipient_hospital_id, staff_id, staff_name, department_id,
	host_department, starts_on, ends_on, created_by, created_at, version`

func scanTrainee(r sqldb.Row) (program.Trainee, error) {
	var t program.Trainee
	err := r.Scan(&t.ID, &t.PairingID, &t.SupportingHospitalID, &t.RecipientHospitalID, &t.StaffID, &t.StaffName, &t.DepartmentID,
		&t.HostDepartment, &t.StartsOn, &t.EndsOn, &t.CreatedBy, &t.CreatedAt, &t.Version)
	return t, err
}

// CreateTrainee inserts t at version 1.
func (s *Program) CreateTrainee(ctx context.Context, t program.Trainee) error {
	_, err := s.db.Exec(ctx, `INSERT INTO program_trainees (`+traineeCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1)`,
		t.ID, t.PairingID, t.SupportingHospitalID, t.RecipientHospitalID, t.StaffID, t.StaffName, t.DepartmentID,
		t.HostDepartment, t.StartsOn, t.EndsOn, t.CreatedBy, t.CreatedAt)
	return err
}

// Trainees lists trainees by f.
func (s *Program) Trainees(ctx context.Context, f program.Filter) ([]program.Trainee, error) {
	w := scopeWhere(f, "supporting_hospital_id", "recipient_hospital_id")
	q := `SELECT ` + traineeCols + ` FROM program_trainees` + w.page(f.After, f.Limit)
	return dirQueryAll(ctx, s.db, q, w.args, func(r sqldb.Rows) (program.Trainee, error) { return scanTrainee(r) })
}

// Trainee returns the trainee record with id.
func (s *Program) Trainee(ctx context.Context, id string) (program.Trainee, error) {
	if !apperr.IsID(id) {
		return program.Trainee{}, apperr.ErrNotFound
	}
	t, err := scanTrainee(s.db.QueryRow(ctx, `SELECT `+traineeCols+` FROM program_trainees WHERE id = $1`, id))
	return t, dirNotFound(err)
}

// UpdateTrainee writes t over expectVersion.
func (s *Program) UpdateTrainee(ctx context.Context, t program.Trainee, expectVersion int) (program.Trainee, error) {
	out, err := scanTrainee(s.db.QueryRow(ctx, `UPDATE program_trainees SET host_department = $1, starts_on = $2, ends_on = $3,
		version = version + 1 WHERE id = $4 AND version = $5 RETURNING `+traineeCols, t.HostDepartment, t.StartsOn, t.EndsOn, t.ID, expectVersion))
	if errors.Is(err, sqldb.ErrNoRows) {
		return program.Trainee{}, dirStaleOrMissing(ctx, s.db, "program_trainees", t.ID)
	}
	return out, err
}
