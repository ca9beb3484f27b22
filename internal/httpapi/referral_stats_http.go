package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"duikou/internal/apperr"
	"duikou/internal/auth"
	"duikou/referral"
)

// ReferralStatsService is what the API needs of referral statistics.
type ReferralStatsService interface {
	Report(ctx context.Context, p auth.Principal, q referral.StatsRequest) (referral.StatsReport, error)
}

func (a *API) refStats(w http.ResponseWriter, r *http.Request) {
	q, err := statsRequest(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	rep, err := a.ReferralStats.Report(r.Context(), auth.FromContext(r.Context()), q)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// statsRequest reads the query, reporting every bad parameter at once by
// its name. Whether the range is too long or holds too many tickets is the
// service's to say.
func statsRequest(r *http.Request) (referral.StatsRequest, error) {
	q := r.URL.Query()
	var v apperr.Invalid
	date := func(name string) time.Time {
		s := strings.TrimSpace(q.Get(name))
		if s == "" {
			v.Add(name, "is required: a calendar day like 2026-03-01")
			return time.Time{}
		}
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			v.Add(name, "must be a calendar day like 2026-03-01")
		}
		return t
	}
	oneOf := func(name string, allowed ...string) string {
		s := strings.TrimSpace(q.Get(name))
		if s != "" && !slices.Contains(allowed, s) {
			v.Add(name, "must be one of "+strings.Join(allowed, ", "))
			return ""
		}
		return s
	}
	count := func(name string, def, most int) int {
		s := strings.TrimSpace(q.Get(name))
		if s == "" {
			return def
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > most {
			v.Add(name, "must be a whole number from 1 to "+strconv.Itoa(most))
			return def
		}
		return n
	}
	periods := make([]string, len(referral.Periods))
	for i, p := range referral.Periods {
		periods[i] = string(p)
	}
	out := referral.StatsRequest{
		From:      date("from"),
		To:        date("to"),
		Period:    referral.Period(oneOf("period", periods...)),
		Direction: referral.Direction(oneOf("direction", string(referral.Up), string(referral.Down))),
		Top:       count("top", referral.DefaultTop, referral.MaxTop),
		CountyTop: count("county_top", referral.DefaultCountyTop, referral.MaxCountyTop),
		Level:     referral.DiagnosisLevel(oneOf("diagnosis_level", string(referral.ByCode), string(referral.ByCategory))),
	}
	if out.Period == "" {
		out.Period = referral.Month
	}
	if out.HospitalID = strings.TrimSpace(q.Get("hospital_id")); out.HospitalID != "" && !apperr.IsID(out.HospitalID) {
		v.Add("hospital_id", "must be an id")
	}
	return out, v.Err()
}
