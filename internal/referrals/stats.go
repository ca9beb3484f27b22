package referrals

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"time"

	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/directory"
	"duikou/internal/sqldb"
	"duikou/internal/store"
	"duikou/referral"
)

// StatsStore streams the tickets statistics count; store.Referrals
// implements it.
type StatsStore interface {
	ReferralStats(ctx context.Context, q store.ReferralStatsQuery, fn func(store.ReferralStatRow) error) error
}

var _ StatsStore = (*store.Referrals)(nil)

// Bounds of one statistics request: three years is the program's report
// window (the top diagnoses "over the last three years"); the ticket bound
// keeps one request's work and timing samples to a few megabytes.
const (
	MaxStatsYears   = 3
	MaxStatsTickets = 200_000
	// SmallCell is the least diagnosis count shown to a reader who may not
	// read the tickets behind it: a rare diagnosis at a small county
	// hospital in one month can point to one patient.
	SmallCell = 3
)

// ActionStats is the audit action of a statistics read.
const ActionStats = "referral.stats"

// Stats computes referral statistics for the people who run the program
// and for each hospital's own staff.
type Stats struct {
	store      StatsStore
	audit      audit.Recorder
	now        func() time.Time
	deadlines  referral.Deadlines
	maxTickets int
}

// NewStats builds the statistics service. clock nil means sqldb.Now;
// maxTickets ≤ 0 means MaxStatsTickets.
func NewStats(st StatsStore, rec audit.Recorder, clock func() time.Time, deadlines referral.Deadlines, maxTickets int) *Stats {
	if clock == nil {
		clock = sqldb.Now
	}
	if maxTickets <= 0 {
		maxTickets = MaxStatsTickets
	}
	return &Stats{store: st, audit: rec, now: clock, deadlines: deadlines, maxTickets: maxTickets}
}

// scope is the hospitals whose tickets p may count for hospitalID, or with
// hospitalID empty all it may count: for the program office every hospital
// within its reach (a health authority's office: its province), for
// clinical staff their own hospital. A hospital outside it is not found,
// and the attempt is recorded.
func (s *Stats) scope(ctx context.Context, p auth.Principal, hospitalID string) ([]string, error) {
	office := p.Has(auth.ProgramOffice)
	if hospitalID == "" {
		if office {
			ids := slices.Collect(maps.Keys(p.Reach))
			if p.HospitalID != "" && !p.Reach[p.HospitalID] {
				ids = append(ids, p.HospitalID)
			}
			slices.Sort(ids)
			return ids, nil
		}
		if p.HospitalID == "" {
			return nil, apperr.Forbidden("only staff of a hospital read its referral statistics")
		}
		return []string{p.HospitalID}, nil
	}
	if hospitalID == p.HospitalID || (office && p.CanReach(hospitalID)) {
		return []string{hospitalID}, nil
	}
	src := audit.SourceFrom(ctx)
	if err := s.audit.Record(ctx, audit.Entry{
		At: s.now(), ActorID: p.UserID, ActorHospitalID: p.HospitalID, Action: audit.AccessDenied,
		ResourceType: "referral_stats", ResourceID: hospitalID, Outcome: audit.Denied,
		RequestID: src.RequestID, ClientAddr: src.ClientAddr, Detail: "hospital outside the caller's reach",
	}); err != nil {
		return nil, err
	}
	return nil, apperr.ErrNotFound
}

// Report computes the statistics q asks for, within p's scope. The read is
// audited as an aggregate: no ticket or patient is named.
func (s *Stats) Report(ctx context.Context, p auth.Principal, q referral.StatsRequest) (referral.StatsReport, error) {
	if !p.Has(referral.StatsReaders...) {
		return referral.StatsReport{}, apperr.Forbidden("only the program office and hospital staff read referral statistics")
	}
	q = withDefaults(q)
	if !q.Period.Valid() {
		return referral.StatsReport{}, apperr.Field("period", "must be day, week, month, quarter or year")
	}
	from := time.Date(q.From.Year(), q.From.Month(), q.From.Day(), 0, 0, 0, 0, referral.China)
	last := time.Date(q.To.Year(), q.To.Month(), q.To.Day(), 0, 0, 0, 0, referral.China)
	to := last.AddDate(0, 0, 1)
	switch {
	case last.Before(from):
		return referral.StatsReport{}, apperr.Field("to", "must be on or after from")
	case to.After(from.AddDate(MaxStatsYears, 0, 0)):
		return referral.StatsReport{}, apperr.TooMuch("to", "the range may cover at most "+strconv.Itoa(MaxStatsYears)+
			" years (to at most "+from.AddDate(MaxStatsYears, 0, -1).Format(time.DateOnly)+")")
	}
	ids, err := s.scope(ctx, p, q.HospitalID)
	if err != nil {
		return referral.StatsReport{}, err
	}

	now := s.now()
	// Small cells are hidden unless the caller could list every ticket
	// counted: clinical staff reading their own hospital.
	minCell := SmallCell
	if len(ids) == 1 && ids[0] == p.HospitalID && p.Has(auth.ClinicalRoles...) {
		minCell = 0
	}
	tally := referral.NewTally(referral.StatsOptions{From: from, To: to, Period: q.Period, Loc: referral.China,
		AsOf: now, Deadlines: s.deadlines, Top: q.Top, CountyTop: q.CountyTop, Level: q.Level, MinCell: minCell})
	n := 0
	err = s.store.ReferralStats(ctx, store.ReferralStatsQuery{From: from, To: to, Direction: q.Direction,
		PartyHospitalIDs: ids, Limit: s.maxTickets + 1}, func(row store.ReferralStatRow) error {
		if n++; n > s.maxTickets {
			return errTooMany
		}
		tally.Add(row.Ticket, row.ReferrerName, row.ReferrerTier == string(directory.Secondary))
		return nil
	})
	if errors.Is(err, errTooMany) {
		return referral.StatsReport{}, apperr.TooMuch("to", "the range holds more than "+strconv.Itoa(s.maxTickets)+
			" tickets; choose a shorter range, one hospital or one direction")
	}
	if err != nil {
		return referral.StatsReport{}, err
	}

	rep := referral.StatsReport{From: from.Format(time.DateOnly), To: last.Format(time.DateOnly), Period: q.Period,
		TimeZone: referral.China.String(), HospitalID: q.HospitalID, Hospitals: len(ids), Direction: q.Direction,
		Level: q.Level, AsOf: now, Stats: tally.Result()}
	src := audit.SourceFrom(ctx)
	detail := rep.From + ".." + rep.To + " by " + string(q.Period) + ", " + strconv.Itoa(len(ids)) + " hospitals, " +
		strconv.Itoa(rep.Tickets) + " tickets"
	if q.Direction != "" {
		detail += ", " + string(q.Direction) + " only"
	}
	if err := s.audit.Record(ctx, audit.Entry{
		At: now, ActorID: p.UserID, ActorHospitalID: p.HospitalID, Action: ActionStats,
		ResourceType: "referral_stats", ResourceID: q.HospitalID, Outcome: audit.Success,
		RequestID: src.RequestID, ClientAddr: src.ClientAddr, Detail: detail,
	}); err != nil {
		return referral.StatsReport{}, err
	}
	return rep, nil
}

// withDefaults fills what a request left out: monthly series, the default
// ranking sizes, diagnoses by code as written.
func withDefaults(q referral.StatsRequest) referral.StatsRequest {
	if q.Period == "" {
		q.Period = referral.Month
	}
	if q.Top <= 0 {
		q.Top = referral.DefaultTop
	}
	if q.CountyTop <= 0 {
		q.CountyTop = referral.DefaultCountyTop
	}
	q.Top, q.CountyTop = min(q.Top, referral.MaxTop), min(q.CountyTop, referral.MaxCountyTop)
	if q.Level == "" {
		q.Level = referral.ByCode
	}
	return q
}

var errTooMany = errors.New("referral statistics: too many tickets")
