package referrals_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"duikou/internal/auth"
	"duikou/internal/directory"
	"duikou/internal/referrals"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/referral"
)

// BenchmarkReferralStats reads a province's three years at the request
// bound: 200,000 tickets of 20 county hospitals and their tertiary partner,
// monthly, as the health authority's office. Setup (the inserts) is not
// timed.
//
//	DUIKOU_TEST_DATABASE_URL=… go test -run '^$' -bench ReferralStats -benchtime 3x ./internal/referrals
func BenchmarkReferralStats(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		var db sqldb.DB
		if engine == "sqlite" {
			db = sqldbtest.SQLite(b)
		} else {
			db = sqldbtest.Postgres(b)
		}
		office, svc := statsBenchWorld(b, db, referrals.MaxStatsTickets)
		b.Run(engine, func(b *testing.B) {
			b.ReportAllocs()
			q := referral.StatsRequest{From: time.Date(2023, 12, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)}
			for b.Loop() {
				rep, err := svc.Report(context.Background(), office, q)
				if err != nil {
					b.Fatal(err)
				}
				if rep.Tickets != referrals.MaxStatsTickets {
					b.Fatalf("%d tickets read", rep.Tickets)
				}
			}
		})
	}
}

func statsBenchWorld(b *testing.B, db sqldb.DB, n int) (auth.Principal, *referrals.Stats) {
	b.Helper()
	ctx := context.Background()
	dir := store.NewDirectory(db)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	mk := func(i int, tier directory.Tier) string {
		h := directory.Hospital{ID: refID(), Name: fmt.Sprintf("医院%d", i), OrgCode: fmt.Sprintf("12510000MB%08d", i), Tier: tier,
			Province: "青川省", TimeZone: directory.DefaultTimeZone, Version: 1, CreatedAt: now, UpdatedAt: now}
		if err := dir.CreateHospital(ctx, h); err != nil {
			b.Fatal(err)
		}
		return h.ID
	}
	tert := mk(0, directory.Tertiary)
	reach := map[string]bool{tert: true}
	var counties []string
	for i := 1; i <= 20; i++ {
		c := mk(i, directory.Secondary)
		counties = append(counties, c)
		reach[c] = true
	}
	codes := make([]string, 60)
	for i := range codes {
		codes[i] = fmt.Sprintf("%c%02d.%d", 'A'+i%20, i, i%10)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2023, 12, 1, 0, 0, 0, 0, time.UTC)
	end := time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC) // 23:00 on 30 November in China: the range's last hour
	span := int64(end.Sub(start) / time.Second)
	statuses := []referral.Status{referral.Accepted, referral.Completed, referral.Closed, referral.Rejected, referral.Cancelled, referral.Submitted, referral.Claimed}
	st := store.NewReferrals(db)
	err := db.InTx(ctx, func(ctx context.Context) error {
		for i := range n {
			county := counties[rng.IntN(len(counties))]
			sub := start.Add(time.Duration(rng.Int64N(span)) * time.Second)
			r := referral.Referral{ID: refID(), Direction: referral.Up, Priority: referral.Urgent, PatientID: refID(),
				ReferringHospitalID: county, ReceivingHospitalID: tert, Status: statuses[rng.IntN(len(statuses))], Version: 4,
				CreatedBy: refID(), CreatedAt: sub, UpdatedAt: sub, SubmittedAt: &sub, QueuedAt: &sub,
				Diagnoses:   []referral.Diagnosis{{Code: codes[int(rng.ExpFloat64()*8)%len(codes)], Text: "诊断"}, {Code: "I10", Text: "高血压"}},
				Attachments: []referral.AttachmentRef{}}
			switch i % 10 {
			case 0, 1:
				r.Direction, r.ReferringHospitalID, r.ReceivingHospitalID, r.Priority = referral.Down, tert, county, referral.Routine
			case 2:
				r.Priority, r.GreenChannel, r.GreenCategory = referral.Emergency, true, referral.Stroke
			case 3, 4, 5:
				r.Priority = referral.Routine
			}
			if r.Status != referral.Submitted && r.Status != referral.Cancelled {
				c := sub.Add(time.Duration(rng.IntN(7200)) * time.Second)
				r.ClaimedAt, r.ClaimedBy = &c, refID()
				if r.Status != referral.Claimed {
					d := c.Add(time.Duration(rng.IntN(14400)) * time.Second)
					r.DecidedAt, r.DecidedBy = &d, refID()
				}
			}
			if err := st.Create(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	office := auth.Principal{UserID: refID(), HospitalID: tert, Roles: []auth.Role{auth.ProgramOffice}, Reach: reach}
	return office, referrals.NewStats(st, &memAudit{}, func() time.Time { return now }, referral.DefaultDeadlines(), 0)
}
