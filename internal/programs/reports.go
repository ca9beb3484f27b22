package programs

// Reports of the program's records per pairing, hospital, county or
// province for a month, quarter, half year or year; the compliance
// checklist; half-year report reminders.
//
// Counting rules:
//   - Workload sums confirmed work-log entries only: an entry counts once the
//     recipient has vouched for it. Entries still unconfirmed are shown as a
//     number of their own (unconfirmed_entries) and not summed.
//   - Consultations and teaching rounds held in Duikou are never entered:
//     the work log's consultations and teaching_rounds fields are the ones
//     held outside Duikou (in person, by phone), and the report adds every
//     Duikou session of kind consult or mdt (consultations) or
//     teaching_round that was held (ended, opinion signed or acknowledged),
//     for the posting's recipient hospital, on a day of the posting, that
//     the posted doctor requested or was assigned to. A session counts once
//     per posting however many ways the doctor took part, and once in the
//     sessions held however many of the scope's hospitals took part.
//     Referrals are counted from the referral tickets only: the work log has
//     no referral field.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"duikou/consult"
	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/directory"
	"duikou/internal/program"
	"duikou/internal/referrals"
	"duikou/internal/sqldb"
	"duikou/internal/store"
	"duikou/referral"
)

var (
	_ ReportDirectory = (*store.Directory)(nil)
	_ Sessions        = (*store.Consults)(nil)
)

// ReportDirectory is what reports read of the directory.
type ReportDirectory interface {
	Directory
	Hospitals(ctx context.Context, f directory.HospitalFilter) ([]directory.Hospital, error)
	PairingsOf(ctx context.Context, hospitalID string) ([]directory.Pairing, error)
	Pairings(ctx context.Context, f directory.PairingFilter) ([]directory.Pairing, error)
}

// Sessions lists remote sessions; store.Consults implements it.
type Sessions interface {
	ListSessions(ctx context.Context, f store.ConsultFilter) ([]consult.Session, error)
}

// Bounds of one report: a province has a few hundred hospitals; beyond
// these a request is refused (422) rather than left to run.
const (
	MaxReportHospitals = 500
	MaxReportPairings  = 500
	MaxReportPostings  = 2000
	MaxReportTrainees  = 5000
	MaxReportSessions  = 50_000
	// MaxCompliance is how many pairings a hospital's report checks.
	MaxCompliance = 50
	// TopUpDiagnoses per county hospital, over ReferralYears years.
	TopUpDiagnoses = 4
	ReferralYears  = 3
)

// Audit actions of report reads.
const (
	ActionReport     = "program.report.read"
	ActionCompliance = "program.compliance.read"
	ActionReminders  = "program.reminders.read"
)

// Reports computes the program's reports.
type Reports struct {
	st       program.Store
	dir      ReportDirectory
	users    Users
	sessions Sessions
	refs     referrals.StatsStore
	audit    audit.Recorder
	cfg      program.Config
	now      func() time.Time
}

// NewReports builds the report service; clock nil means sqldb.Now, a zero
// cfg the program's defaults.
func NewReports(st program.Store, dir ReportDirectory, users Users, sessions Sessions, refs referrals.StatsStore,
	rec audit.Recorder, cfg program.Config, clock func() time.Time) *Reports {
	if clock == nil {
		clock = sqldb.Now
	}
	if cfg.Criteria == nil {
		cfg = program.DefaultConfig()
	}
	return &Reports{st: st, dir: dir, users: users, sessions: sessions, refs: refs, audit: rec, cfg: cfg, now: clock}
}

// ReportQuery names a report: one scope (a pairing, a hospital, a county
// of a province, or a province) and a period label (2026-03, 2026-Q1,
// 2026-H1, 2026).
type ReportQuery struct {
	PairingID, HospitalID, Province, County string
	Period                                  string
}

// Scope is what a report covers.
type Scope struct {
	Kind       string `json:"kind"` // pairing, hospital, county, province
	PairingID  string `json:"pairing_id,omitempty"`
	HospitalID string `json:"hospital_id,omitempty"`
	Province   string `json:"province,omitempty"`
	County     string `json:"county,omitempty"`
	Name       string `json:"name"`
}

// Report is the figures of a scope and period.
type Report struct {
	Scope       Scope               `json:"scope"`
	Period      program.Period      `json:"period"`
	AsOf        time.Time           `json:"as_of"`
	Pairings    int                 `json:"pairings"`
	Postings    int                 `json:"postings"` // postings meeting the period
	Workload    Workload            `json:"workload"`
	Attendance  AttendanceTotals    `json:"attendance"`
	Evaluations EvaluationTotals    `json:"evaluations"`
	Arrivals    ArrivalTotals       `json:"arrivals"`
	Trainees    TraineeTotals       `json:"trainees"`
	Sessions    SessionTotals       `json:"sessions"`
	Referrals   ReferralFigures     `json:"referrals"`
	Compliance  []PairingCompliance `json:"compliance"` // pairing and hospital reports: each pairing's year
}

// Workload is the work of the period's postings.
type Workload struct {
	Logged      program.WorkCounts `json:"logged"` // confirmed work-log entries
	Unconfirmed int                `json:"unconfirmed_entries"`
	// Duikou's own sessions led or requested by the posted doctors.
	DuikouConsultations  int                `json:"duikou_consultations"`
	DuikouTeachingRounds int                `json:"duikou_teaching_rounds"`
	Total                program.WorkCounts `json:"total"` // logged plus Duikou's
}

// AttendanceTotals sum program.RateOf over the period's postings and months.
type AttendanceTotals struct {
	WorkDays  int     `json:"work_days"`
	Present   int     `json:"present"`
	Confirmed int     `json:"confirmed"`
	Leave     int     `json:"leave"`
	Absent    int     `json:"absent"`
	Rate      float64 `json:"rate"`
}

// EvaluationTotals are the monthly evaluations of the period's months.
type EvaluationTotals struct {
	Filed        int                `json:"filed"`
	AverageTotal float64            `json:"average_total"`
	Average      map[string]float64 `json:"average_by_criterion"`
	Late         int                `json:"late"`
	Overdue      int                `json:"overdue"` // due, not filed
}

// ArrivalTotals judge the postings starting in the period.
type ArrivalTotals struct {
	Due     int `json:"due"`
	OnTime  int `json:"on_time"`
	Late    int `json:"late"`
	Missing int `json:"missing"`
	Pending int `json:"pending"`
}

// TraineeTotals are the stays meeting the period.
type TraineeTotals struct {
	Stays    int `json:"stays"`
	Staff    int `json:"staff"`
	Started  int `json:"started"`        // stays starting in the period
	MonthUp  int `json:"month_or_more"`  // stays of a month or more
	InPeriod int `json:"days_in_period"` // trainee-days within the period
}

// SessionTotals are Duikou's sessions held in the period, by kind.
type SessionTotals struct {
	ByKind map[string]int `json:"by_kind"`
	Total  int            `json:"total"`
}

// ReferralFigures are the referral tickets of the scope: up and down in the
// period, and each county hospital's top up-referral diagnoses over the
// three years ending with the period (small counts hidden, as in the
// referral statistics).
type ReferralFigures struct {
	Up            int                        `json:"up"`
	Down          int                        `json:"down"`
	DiagnosesFrom string                     `json:"diagnoses_from"`
	DiagnosesTo   string                     `json:"diagnoses_to"`
	TopByCounty   []referral.CountyDiagnoses `json:"top_diagnoses_by_county"`
}

// PairingCompliance is one pairing's checklist for a year.
type PairingCompliance struct {
	PairingID      string              `json:"pairing_id"`
	SupportingName string              `json:"supporting_name"`
	RecipientName  string              `json:"recipient_name"`
	Year           string              `json:"year"`
	AsOf           string              `json:"as_of"`
	Items          []program.CheckItem `json:"items"`
}

// ---- Scope ----

type scopeSet struct {
	scope     Scope
	pairings  []directory.Pairing
	hospitals map[string]bool // the scope's hospitals
	names     map[string]string
}

func (s *Reports) denied(ctx context.Context, p auth.Principal, resType, id string) error {
	src := audit.SourceFrom(ctx)
	if err := s.audit.Record(ctx, audit.Entry{
		At: s.now(), ActorID: p.UserID, ActorHospitalID: p.HospitalID, Action: audit.AccessDenied,
		ResourceType: resType, ResourceID: id, Outcome: audit.Denied,
		RequestID: src.RequestID, ClientAddr: src.ClientAddr, Detail: "outside the caller's reach",
	}); err != nil {
		return err
	}
	return apperr.ErrNotFound
}

// visible: a pairing of the caller's own hospital, or one whose two
// hospitals a program office reaches (as for the records themselves).
func visible(p auth.Principal, pr directory.Pairing) bool {
	return sideOf(p, pr.SupportingHospitalID, pr.RecipientHospitalID) != noSide
}

func (s *Reports) resolve(ctx context.Context, p auth.Principal, q ReportQuery) (scopeSet, error) {
	set := scopeSet{hospitals: map[string]bool{}, names: map[string]string{}}
	n := 0
	for _, v := range []string{q.PairingID, q.HospitalID, q.Province} {
		if v != "" {
			n++
		}
	}
	switch {
	case n != 1:
		return set, apperr.Field("scope", "give exactly one of pairing_id, hospital_id or province (with county)")
	case q.County != "" && q.Province == "":
		return set, apperr.Field("county", "a county is named with its province")
	case q.PairingID != "" && !apperr.IsID(q.PairingID):
		return set, apperr.Field("pairing_id", "must be a pairing id")
	case q.HospitalID != "" && !apperr.IsID(q.HospitalID):
		return set, apperr.Field("hospital_id", "must be a hospital id")
	}
	switch {
	case q.PairingID != "":
		pr, err := s.dir.Pairing(ctx, q.PairingID)
		if errors.Is(err, apperr.ErrNotFound) {
			return set, err
		}
		if err != nil {
			return set, err
		}
		if !visible(p, pr) {
			return set, s.denied(ctx, p, "pairing", q.PairingID)
		}
		set.scope = Scope{Kind: "pairing", PairingID: pr.ID}
		set.pairings = []directory.Pairing{pr}
		set.hospitals[pr.SupportingHospitalID], set.hospitals[pr.RecipientHospitalID] = true, true
	case q.HospitalID != "":
		if q.HospitalID != p.HospitalID && !(p.Has(auth.ProgramOffice) && p.CanReach(q.HospitalID)) {
			return set, s.denied(ctx, p, "hospital", q.HospitalID)
		}
		set.scope = Scope{Kind: "hospital", HospitalID: q.HospitalID}
		set.hospitals[q.HospitalID] = true
	default:
		if !p.Has(auth.ProgramOffice) {
			return set, apperr.Forbidden("only the program office reads county and province reports")
		}
		hs, err := s.dir.Hospitals(ctx, directory.HospitalFilter{Province: q.Province, County: q.County, Limit: MaxReportHospitals + 1})
		if err != nil {
			return set, err
		}
		if len(hs) > MaxReportHospitals {
			return set, apperr.TooMuch("province", "more than "+strconv.Itoa(MaxReportHospitals)+" hospitals; report a county")
		}
		for _, h := range hs {
			if p.CanReach(h.ID) {
				set.hospitals[h.ID] = true
				set.names[h.ID] = h.Name
			}
		}
		if len(set.hospitals) == 0 {
			return set, s.denied(ctx, p, "region", q.Province+"/"+q.County)
		}
		set.scope = Scope{Kind: "province", Province: q.Province, Name: q.Province}
		if q.County != "" {
			set.scope = Scope{Kind: "county", Province: q.Province, County: q.County, Name: q.Province + q.County}
		}
	}
	if set.scope.Kind != "pairing" {
		seen := map[string]bool{}
		for _, h := range slices.Sorted(maps.Keys(set.hospitals)) {
			prs, err := s.dir.PairingsOf(ctx, h)
			if err != nil {
				return set, err
			}
			for _, pr := range prs {
				if !seen[pr.ID] && visible(p, pr) {
					seen[pr.ID] = true
					set.pairings = append(set.pairings, pr)
				}
			}
			if len(set.pairings) > MaxReportPairings {
				return set, apperr.TooMuch("scope", "more than "+strconv.Itoa(MaxReportPairings)+" pairings; choose a smaller scope")
			}
		}
	}
	for _, pr := range set.pairings {
		for _, h := range []string{pr.SupportingHospitalID, pr.RecipientHospitalID} {
			if _, ok := set.names[h]; !ok {
				x, err := s.dir.Hospital(ctx, h)
				if err != nil {
					return set, err
				}
				set.names[h] = x.Name
			}
		}
	}
	if set.scope.Kind == "hospital" {
		if _, ok := set.names[q.HospitalID]; !ok {
			x, err := s.dir.Hospital(ctx, q.HospitalID)
			if errors.Is(err, apperr.ErrNotFound) {
				return set, s.denied(ctx, p, "hospital", q.HospitalID)
			}
			if err != nil {
				return set, err
			}
			set.names[q.HospitalID] = x.Name
		}
		set.scope.Name = set.names[q.HospitalID]
	}
	if set.scope.Kind == "pairing" {
		pr := set.pairings[0]
		set.scope.Name = set.names[pr.SupportingHospitalID] + " → " + set.names[pr.RecipientHospitalID]
	}
	return set, nil
}

// ---- Gathering ----

// gathered is what the records hold of a set of pairings over a period.
type gathered struct {
	period     program.Period
	postings   []program.Posting
	logs       map[string][]program.WorkLog
	attendance map[string][]program.Attendance
	evals      map[string][]program.Evaluation
	trainees   []program.Trainee
	sessions   []consult.Session // held sessions of the hospitals involved, once each
	staffOf    map[string]string // user id → staff id
}

var heldStatuses = []consult.Status{consult.Ended, consult.OpinionSigned, consult.Acknowledged}

func (s *Reports) gather(ctx context.Context, set scopeSet, per program.Period) (*gathered, error) {
	g := &gathered{period: per, logs: map[string][]program.WorkLog{}, attendance: map[string][]program.Attendance{},
		evals: map[string][]program.Evaluation{}, staffOf: map[string]string{}}
	involved := maps.Clone(set.hospitals)
	for _, pr := range set.pairings {
		involved[pr.SupportingHospitalID], involved[pr.RecipientHospitalID] = true, true
		after := ""
		for {
			xs, err := s.st.Postings(ctx, program.Filter{PairingID: pr.ID, After: after, Limit: 500})
			if err != nil {
				return nil, err
			}
			for _, x := range xs {
				if per.Overlaps(x.StartsOn, x.EndsOn) {
					g.postings = append(g.postings, x)
				}
			}
			if len(g.postings) > MaxReportPostings {
				return nil, apperr.TooMuch("scope", "more than "+strconv.Itoa(MaxReportPostings)+" postings; choose a smaller scope or period")
			}
			if len(xs) < 500 {
				break
			}
			after = xs[len(xs)-1].ID
		}
		after = ""
		for {
			ts, err := s.st.Trainees(ctx, program.Filter{PairingID: pr.ID, After: after, Limit: 500})
			if err != nil {
				return nil, err
			}
			for _, t := range ts {
				if per.Overlaps(t.StartsOn, t.EndsOn) {
					g.trainees = append(g.trainees, t)
				}
			}
			if len(g.trainees) > MaxReportTrainees {
				return nil, apperr.TooMuch("scope", "more than "+strconv.Itoa(MaxReportTrainees)+" trainees; choose a smaller scope or period")
			}
			if len(ts) < 500 {
				break
			}
			after = ts[len(ts)-1].ID
		}
	}
	for _, x := range g.postings {
		var err error
		if g.logs[x.ID], err = s.st.WorkLogs(ctx, x.ID); err != nil {
			return nil, err
		}
		if g.attendance[x.ID], err = s.st.AttendanceOf(ctx, x.ID, per.From, per.To); err != nil {
			return nil, err
		}
		if g.evals[x.ID], err = s.st.Evaluations(ctx, x.ID); err != nil {
			return nil, err
		}
	}
	from, to := per.Start(), per.End()
	seen := map[string]bool{}
	for _, h := range slices.Sorted(maps.Keys(involved)) {
		after := ""
		for {
			ss, err := s.sessions.ListSessions(ctx, store.ConsultFilter{PartyHospitalID: h, From: &from, To: &to, After: after, Limit: 1000})
			if err != nil {
				return nil, err
			}
			for _, x := range ss {
				if !seen[x.ID] && slices.Contains(heldStatuses, x.Status) {
					seen[x.ID] = true
					g.sessions = append(g.sessions, x)
				}
			}
			if len(g.sessions) > MaxReportSessions {
				return nil, apperr.TooMuch("scope", "more than "+strconv.Itoa(MaxReportSessions)+" sessions; choose a smaller scope or period")
			}
			if len(ss) < 1000 {
				break
			}
			after = ss[len(ss)-1].ID
		}
	}
	return g, nil
}

// staff is the staff member behind a user, "" for none.
func (s *Reports) staff(ctx context.Context, g *gathered, userID string) (string, error) {
	if id, ok := g.staffOf[userID]; ok {
		return id, nil
	}
	u, err := s.users.User(ctx, userID)
	if err != nil && !errors.Is(err, apperr.ErrNotFound) {
		return "", err
	}
	g.staffOf[userID] = u.StaffID
	return u.StaffID, nil
}

// sessionDay is the day a session counts on: its scheduled start, or when
// it was requested (as the session store filters).
func sessionDay(x consult.Session) string {
	if x.Schedule != nil {
		return program.Today(x.Schedule.Start)
	}
	return program.Today(x.CreatedAt)
}

// duikouWork counts the sessions a posting's doctor held in Duikou within
// per (see the counting rules at the top of the file).
func (s *Reports) duikouWork(ctx context.Context, g *gathered, x program.Posting, per program.Period) (consults, rounds int, err error) {
	for _, ss := range g.sessions {
		day := sessionDay(ss)
		if !per.Contains(day) || day < x.StartsOn || day > x.EndsOn ||
			(ss.RequestingHospitalID != x.RecipientHospitalID && ss.TargetHospitalID != x.RecipientHospitalID) {
			continue
		}
		if ss.Kind != consult.Consult && ss.Kind != consult.MDT && ss.Kind != consult.TeachingRound {
			continue
		}
		users := []string{ss.RequesterID}
		for _, a := range ss.Specialists {
			users = append(users, a.SpecialistID)
		}
		took := false
		for _, u := range users {
			id, err := s.staff(ctx, g, u)
			if err != nil {
				return 0, 0, err
			}
			took = took || (id != "" && id == x.StaffID)
		}
		switch {
		case !took:
		case ss.Kind == consult.TeachingRound:
			rounds++
		default:
			consults++
		}
	}
	return consults, rounds, nil
}

func addCounts(a *program.WorkCounts, b program.WorkCounts) {
	a.Outpatients += b.Outpatients
	a.WardRounds += b.WardRounds
	a.Operations += b.Operations
	a.SurgicalDemos += b.SurgicalDemos
	a.TeachingRounds += b.TeachingRounds
	a.Lectures += b.Lectures
	a.CaseDiscussions += b.CaseDiscussions
	a.Consultations += b.Consultations
	a.PeopleTrained += b.PeopleTrained
	a.FreeClinics += b.FreeClinics
	a.FreeClinicPeople += b.FreeClinicPeople
	a.NewTechniques += b.NewTechniques
}

func (s *Reports) workload(ctx context.Context, g *gathered, postings []program.Posting, per program.Period) (Workload, error) {
	var w Workload
	for _, x := range postings {
		for _, l := range g.logs[x.ID] {
			if !per.Contains(l.Day) {
				continue
			}
			if l.ConfirmedBy == nil {
				w.Unconfirmed++
				continue
			}
			addCounts(&w.Logged, l.Counts)
		}
		c, r, err := s.duikouWork(ctx, g, x, per)
		if err != nil {
			return w, err
		}
		w.DuikouConsultations += c
		w.DuikouTeachingRounds += r
	}
	w.Total = w.Logged
	w.Total.Consultations += w.DuikouConsultations
	w.Total.TeachingRounds += w.DuikouTeachingRounds
	return w, nil
}

// ---- The report ----

// Report computes the report q names, within p's reach, and records the
// read.
func (s *Reports) Report(ctx context.Context, p auth.Principal, q ReportQuery) (Report, error) {
	if err := mayRead(p); err != nil {
		return Report{}, err
	}
	per, ok := program.ParsePeriod(q.Period)
	if !ok {
		return Report{}, apperr.Field("period", "must be a month (2026-03), quarter (2026-Q1), half year (2026-H1) or year (2026)")
	}
	set, err := s.resolve(ctx, p, q)
	if err != nil {
		return Report{}, err
	}
	now := s.now()
	today := program.Today(now)
	g, err := s.gather(ctx, set, per)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Scope: set.scope, Period: per, AsOf: now, Pairings: len(set.pairings), Postings: len(g.postings),
		Evaluations: EvaluationTotals{Average: map[string]float64{}}, Sessions: SessionTotals{ByKind: map[string]int{}},
		Compliance: []PairingCompliance{}}
	if rep.Workload, err = s.workload(ctx, g, g.postings, per); err != nil {
		return Report{}, err
	}
	// Attendance is counted up to today, or the period's end.
	upTo := min(today, per.To)
	sums := map[string]int{}
	for _, x := range g.postings {
		for _, m := range per.Months() {
			r := program.RateOf(x, m, g.attendance[x.ID], upTo)
			a := &rep.Attendance
			a.WorkDays, a.Present, a.Confirmed, a.Leave, a.Absent = a.WorkDays+r.WorkDays, a.Present+r.Present,
				a.Confirmed+r.Confirmed, a.Leave+r.Leave, a.Absent+r.Absent
		}
		filed := map[string]bool{}
		for _, e := range g.evals[x.ID] {
			filed[e.Month] = true
			if !slices.Contains(per.Months(), e.Month) {
				continue
			}
			ev := &rep.Evaluations
			ev.Filed++
			ev.AverageTotal += float64(e.Total)
			if e.Late {
				ev.Late++
			}
			for k, v := range e.Scores {
				ev.Average[k] += float64(v)
				sums[k]++
			}
		}
		for _, o := range s.cfg.OverdueEvaluations(x, filed, today) {
			if slices.Contains(per.Months(), o.Month) {
				rep.Evaluations.Overdue++
			}
		}
		if per.Contains(x.StartsOn) {
			arrived := ""
			if x.Arrival != nil {
				arrived = x.Arrival.ArrivedOn
			}
			ar := &rep.Arrivals
			ar.Due++
			switch program.ArrivalStatusOn(x.ArrivalDueOn, arrived, today) {
			case program.ArrivalOnTime:
				ar.OnTime++
			case program.ArrivalLate:
				ar.Late++
			case program.ArrivalMissing:
				ar.Missing++
			default:
				ar.Pending++
			}
		}
	}
	if rep.Attendance.WorkDays > 0 {
		rep.Attendance.Rate = float64(rep.Attendance.Present) / float64(rep.Attendance.WorkDays)
	}
	if n := rep.Evaluations.Filed; n > 0 {
		rep.Evaluations.AverageTotal /= float64(n)
		for k := range rep.Evaluations.Average {
			rep.Evaluations.Average[k] /= float64(sums[k])
		}
	}
	rep.Trainees = traineeTotals(g.trainees, per)

	for _, k := range []consult.Kind{consult.Consult, consult.MDT, consult.TeachingRound, consult.ImagingReview, consult.ExpertClinic} {
		rep.Sessions.ByKind[string(k)] = 0
	}
	for _, x := range g.sessions {
		if inScope(set, x) && per.Contains(sessionDay(x)) {
			rep.Sessions.ByKind[string(x.Kind)]++
			rep.Sessions.Total++
		}
	}
	if rep.Referrals, err = s.referralFigures(ctx, set, per); err != nil {
		return Report{}, err
	}
	if set.scope.Kind == "pairing" || set.scope.Kind == "hospital" {
		for i, pr := range set.pairings {
			if i == MaxCompliance {
				break
			}
			c, err := s.compliance(ctx, set, pr, per.Year(), today)
			if err != nil {
				return Report{}, err
			}
			rep.Compliance = append(rep.Compliance, c)
		}
	}
	if err := s.record(ctx, p, ActionReport, set.scope, per.Label+", "+strconv.Itoa(rep.Postings)+" postings"); err != nil {
		return Report{}, err
	}
	return rep, nil
}

// inScope: a pairing's sessions are those between its two hospitals; a
// hospital's, county's or province's those any of its hospitals took part
// in.
func inScope(set scopeSet, x consult.Session) bool {
	parties := append([]string{x.RequestingHospitalID, x.TargetHospitalID}, x.AttendeeHospitalIDs...)
	if set.scope.Kind == "pairing" {
		return set.hospitals[x.RequestingHospitalID] && set.hospitals[x.TargetHospitalID]
	}
	return slices.ContainsFunc(parties, func(h string) bool { return set.hospitals[h] })
}

func traineeTotals(ts []program.Trainee, per program.Period) TraineeTotals {
	var out TraineeTotals
	staff := map[string]bool{}
	for _, t := range ts {
		start, ok1 := program.ParseDay(t.StartsOn)
		end, ok2 := program.ParseDay(t.EndsOn)
		if !ok1 || !ok2 || !per.Overlaps(t.StartsOn, t.EndsOn) {
			continue
		}
		out.Stays++
		staff[t.StaffID] = true
		if per.Contains(t.StartsOn) {
			out.Started++
		}
		if !end.Before(start.AddDate(0, 1, -1)) {
			out.MonthUp++
		}
		from, to := max(t.StartsOn, per.From), min(t.EndsOn, per.To)
		f, _ := program.ParseDay(from)
		l, _ := program.ParseDay(to)
		out.InPeriod += int(l.Sub(f).Hours()+12)/24 + 1
	}
	out.Staff = len(staff)
	return out
}

// referralFigures reads the scope's tickets of the three years ending with
// the period once, through the referral statistics' own tally: the
// period's tickets into one tally (up and down), the up-referrals of the
// three years into another (top diagnoses per county hospital).
func (s *Reports) referralFigures(ctx context.Context, set scopeSet, per program.Period) (ReferralFigures, error) {
	from, to := per.Start(), per.End()
	winFrom := to.AddDate(-ReferralYears, 0, 0)
	inPeriod := referral.NewTally(referral.StatsOptions{From: from, To: to, Period: referral.Year, Loc: program.Zone, AsOf: s.now()})
	window := referral.NewTally(referral.StatsOptions{From: winFrom, To: to, Period: referral.Year, Loc: program.Zone, AsOf: s.now(),
		Top: TopUpDiagnoses, CountyTop: TopUpDiagnoses, Level: referral.ByCode, MinCell: referrals.SmallCell})
	n := 0
	errTooMany := errors.New("too many tickets")
	err := s.refs.ReferralStats(ctx, store.ReferralStatsQuery{From: winFrom, To: to, PartyHospitalIDs: slices.Sorted(maps.Keys(set.hospitals)),
		Limit: referrals.MaxStatsTickets + 1}, func(row store.ReferralStatRow) error {
		if n++; n > referrals.MaxStatsTickets {
			return errTooMany
		}
		t := row.Ticket
		if set.scope.Kind == "pairing" && !(set.hospitals[t.ReferringHospitalID] && set.hospitals[t.ReceivingHospitalID]) {
			return nil // a pairing counts the tickets between its two hospitals
		}
		county := row.ReferrerTier == string(directory.Secondary)
		if !t.SubmittedAt.Before(from) {
			inPeriod.Add(t, row.ReferrerName, county)
		}
		if t.Direction == referral.Up {
			window.Add(t, row.ReferrerName, county)
		}
		return nil
	})
	if errors.Is(err, errTooMany) {
		return ReferralFigures{}, apperr.TooMuch("scope", "more than "+strconv.Itoa(referrals.MaxStatsTickets)+" referrals in three years; choose a smaller scope")
	}
	if err != nil {
		return ReferralFigures{}, err
	}
	out := ReferralFigures{DiagnosesFrom: winFrom.In(program.Zone).Format(program.DayLayout), DiagnosesTo: per.To,
		TopByCounty: window.Result().TopByCounty}
	for _, pc := range inPeriod.Result().Periods {
		out.Up += pc.ByDirection[string(referral.Up)]
		out.Down += pc.ByDirection[string(referral.Down)]
	}
	return out, nil
}

// ---- Compliance ----

// compliance gathers a pairing's year and judges it.
func (s *Reports) compliance(ctx context.Context, set scopeSet, pr directory.Pairing, year program.Period, today string) (PairingCompliance, error) {
	one := scopeSet{scope: Scope{Kind: "pairing", PairingID: pr.ID}, pairings: []directory.Pairing{pr},
		hospitals: map[string]bool{pr.SupportingHospitalID: true, pr.RecipientHospitalID: true}}
	g, err := s.gather(ctx, one, year)
	if err != nil {
		return PairingCompliance{}, err
	}
	in := program.ComplianceInput{Year: year, Today: today, Postings: g.postings, Trainees: g.trainees}
	for _, kind := range []program.PeriodKind{program.QuarterPeriod, program.HalfPeriod} {
		for _, part := range year.Parts(kind) {
			w, err := s.workload(ctx, g, g.postings, part)
			if err != nil {
				return PairingCompliance{}, err
			}
			t := w.Total
			f := program.PartFigures{Period: part, Activities: t.Outpatients + t.WardRounds + t.Operations + t.SurgicalDemos + t.TeachingRounds,
				Training: t.Lectures + t.TeachingRounds + t.PeopleTrained, FreeClinics: t.FreeClinics}
			if kind == program.QuarterPeriod {
				in.Quarters = append(in.Quarters, f)
			} else {
				in.Halves = append(in.Halves, f)
			}
		}
	}
	for _, x := range g.postings {
		for _, a := range g.attendance[x.ID] {
			if a.Status == program.Present && year.Contains(a.Day) {
				in.PresentDays++
			}
		}
	}
	ags, err := s.st.Agreements(ctx, program.Filter{PairingID: pr.ID, Limit: 50})
	if err != nil {
		return PairingCompliance{}, err
	}
	// The agreement in force during the year: the latest starting by its end.
	slices.SortFunc(ags, func(a, b program.Agreement) int { return cmp.Compare(b.Terms.StartsOn, a.Terms.StartsOn) })
	for i := range ags {
		if year.Overlaps(ags[i].Terms.StartsOn, ags[i].Terms.EndsOn) {
			in.Agreement = &ags[i]
			break
		}
	}
	return PairingCompliance{PairingID: pr.ID, SupportingName: set.names[pr.SupportingHospitalID], RecipientName: set.names[pr.RecipientHospitalID],
		Year: year.Label, AsOf: today, Items: program.Compliance(in)}, nil
}

// Compliance is one pairing's checklist for a year (2026).
func (s *Reports) Compliance(ctx context.Context, p auth.Principal, pairingID, year string) (PairingCompliance, error) {
	if err := mayRead(p); err != nil {
		return PairingCompliance{}, err
	}
	y, ok := program.ParsePeriod(year)
	if !ok || y.Kind != program.YearPeriod {
		return PairingCompliance{}, apperr.Field("year", "must be a year such as 2026")
	}
	set, err := s.resolve(ctx, p, ReportQuery{PairingID: pairingID})
	if err != nil {
		return PairingCompliance{}, err
	}
	c, err := s.compliance(ctx, set, set.pairings[0], y, program.Today(s.now()))
	if err != nil {
		return PairingCompliance{}, err
	}
	return c, s.record(ctx, p, ActionCompliance, set.scope, y.Label)
}

// Reminders lists the half-year reports a program office should file
// now: one per active pairing it sees, from two weeks before the due day.
func (s *Reports) Reminders(ctx context.Context, p auth.Principal) ([]program.Reminder, error) {
	if err := officeOnly(p); err != nil {
		return nil, err
	}
	out := []program.Reminder{}
	r, shown := program.ReminderOn(program.Today(s.now()))
	if shown {
		within := []string{p.HospitalID}
		for h, ok := range p.Reach {
			if ok && h != p.HospitalID {
				within = append(within, h)
			}
		}
		prs, err := s.dir.Pairings(ctx, directory.PairingFilter{Status: directory.PairingActive, Scoped: true, Within: within, Limit: MaxReportPairings})
		if err != nil {
			return nil, err
		}
		own, err := s.dir.PairingsOf(ctx, p.HospitalID)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, pr := range append(prs, own...) {
			if seen[pr.ID] || pr.Status != directory.PairingActive || !visible(p, pr) {
				continue
			}
			seen[pr.ID] = true
			x := r
			x.PairingID, x.SupportingHospitalID, x.RecipientHospitalID = pr.ID, pr.SupportingHospitalID, pr.RecipientHospitalID
			out = append(out, x)
		}
		slices.SortFunc(out, func(a, b program.Reminder) int { return cmp.Compare(a.PairingID, b.PairingID) })
	}
	return out, s.record(ctx, p, ActionReminders, Scope{Kind: "reminders"}, fmt.Sprintf("%d due", len(out)))
}

func (s *Reports) record(ctx context.Context, p auth.Principal, action string, sc Scope, detail string) error {
	src := audit.SourceFrom(ctx)
	id := cmp.Or(sc.PairingID, sc.HospitalID)
	if sc.Province != "" {
		detail = sc.Province + sc.County + ", " + detail
	}
	return s.audit.Record(ctx, audit.Entry{
		At: s.now(), ActorID: p.UserID, ActorHospitalID: p.HospitalID, Action: action,
		ResourceType: "program_report_" + sc.Kind, ResourceID: id, Outcome: audit.Success,
		RequestID: src.RequestID, ClientAddr: src.ClientAddr, Detail: detail,
	})
}
