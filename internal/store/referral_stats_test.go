package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"duikou/internal/directory"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/referral"
)

func TestReferralStatsReadsTheScopeRangeAndColumnsAsked(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		dir := store.NewDirectory(db)
		st := store.NewReferrals(db)
		county := dirTestHospital(t, dir, 1, directory.Secondary, "四川省", "苍溪县")
		tert := dirTestHospital(t, dir, 2, directory.Tertiary, "四川省", "")
		other := dirTestHospital(t, dir, 3, directory.Secondary, "四川省", "旺苍县")
		from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		to := from.AddDate(0, 1, 0)

		add := func(referring, receiving string, dir referral.Direction, submitted time.Time) string {
			r := refTestTicket(referring, receiving, submitted)
			r.Direction = dir
			if dir == referral.Down {
				r.GreenChannel, r.GreenCategory = false, ""
			}
			claimed := submitted.Add(time.Minute)
			r.ClaimedAt, r.ClaimedBy = &claimed, dirTestID()
			if err := st.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
			return r.ID
		}
		add(county.ID, tert.ID, referral.Up, from)                   // first instant: in
		add(tert.ID, county.ID, referral.Down, from.Add(time.Hour))  // down, the county receives: in
		add(other.ID, tert.ID, referral.Up, from.Add(2*time.Hour))   // another county: out of the county's scope
		add(county.ID, tert.ID, referral.Up, to)                     // the end is excluded
		add(county.ID, tert.ID, referral.Up, from.Add(-time.Second)) // before the start

		read := func(q store.ReferralStatsQuery) []store.ReferralStatRow {
			t.Helper()
			var rows []store.ReferralStatRow
			if err := st.ReferralStats(ctx, q, func(r store.ReferralStatRow) error { rows = append(rows, r); return nil }); err != nil {
				t.Fatal(err)
			}
			return rows
		}
		rows := read(store.ReferralStatsQuery{From: from, To: to, PartyHospitalIDs: []string{county.ID}, Limit: 10})
		if len(rows) != 2 {
			t.Fatalf("county scope: %d rows, want 2", len(rows))
		}
		slices.SortFunc(rows, func(a, b store.ReferralStatRow) int { return a.Ticket.SubmittedAt.Compare(*b.Ticket.SubmittedAt) })
		up, down := rows[0], rows[1]
		if up.Ticket.Direction != referral.Up || up.ReferrerName != county.Name || up.ReferrerTier != "secondary" ||
			!up.Ticket.GreenChannel || up.Ticket.Priority != referral.Emergency || up.Ticket.Status != referral.Submitted ||
			up.Ticket.ReferringHospitalID != county.ID || !up.Ticket.SubmittedAt.Equal(from) || !up.Ticket.QueuedAt.Equal(from) ||
			!up.Ticket.ClaimedAt.Equal(from.Add(time.Minute)) || up.Ticket.DecidedAt != nil ||
			len(up.Ticket.Diagnoses) != 1 || up.Ticket.Diagnoses[0].Code != "I21.0" {
			t.Errorf("up row: %+v", up)
		}
		// Diagnoses are read of up-referrals only; nothing else is read.
		if down.Ticket.Direction != referral.Down || down.ReferrerTier != "tertiary" || len(down.Ticket.Diagnoses) != 0 ||
			down.Ticket.PatientID != "" || down.Ticket.ReceivingHospitalID != county.ID || down.Ticket.Reason != "" {
			t.Errorf("down row: %+v", down)
		}

		if n := len(read(store.ReferralStatsQuery{From: from, To: to, PartyHospitalIDs: []string{county.ID, other.ID}, Limit: 10})); n != 3 {
			t.Errorf("two counties: %d rows, want 3", n)
		}
		if n := len(read(store.ReferralStatsQuery{From: from, To: to, Direction: referral.Down, PartyHospitalIDs: []string{tert.ID}, Limit: 10})); n != 1 {
			t.Errorf("down only: %d rows, want 1", n)
		}
		if n := len(read(store.ReferralStatsQuery{From: from, To: to, PartyHospitalIDs: []string{tert.ID}, Limit: 2})); n != 2 {
			t.Errorf("limit 2: %d rows", n)
		}
		// No scope reads nothing, never everything.
		if n := len(read(store.ReferralStatsQuery{From: from, To: to, Limit: 10})); n != 0 {
			t.Errorf("empty scope: %d rows, want none", n)
		}

		stop := errors.New("enough")
		if err := st.ReferralStats(ctx, store.ReferralStatsQuery{From: from, To: to, PartyHospitalIDs: []string{tert.ID}, Limit: 10},
			func(store.ReferralStatRow) error { return stop }); !errors.Is(err, stop) {
			t.Errorf("callback error: %v", err)
		}
		if err := st.ReferralStats(ctx, store.ReferralStatsQuery{From: from, To: to, PartyHospitalIDs: []string{tert.ID}},
			func(store.ReferralStatRow) error { return nil }); err == nil {
			t.Error("a read without a limit was accepted")
		}
	})
}
