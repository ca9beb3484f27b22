package referrals_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"duikou/internal/apperr"
	"duikou/internal/auth"
	"duikou/internal/directory"
	"duikou/internal/referrals"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/referral"
)

func TestReferralRoutesFollowPairingsInForce(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newRefWorld(t, db, nil)
		ctx := context.Background()
		dir := store.NewDirectory(db)
		day := func(d int) string { return w.now.AddDate(0, 0, d).Format(time.DateOnly) }
		ended := day(-2)
		for _, pr := range []directory.Pairing{
			{SupportingHospitalID: w.tertiary, RecipientHospitalID: w.otherCounty, StartsOn: day(-30), Status: directory.PairingSuspended},
			{SupportingHospitalID: w.tertiary, RecipientHospitalID: w.otherCounty, StartsOn: day(-60), EndsOn: &ended, Status: directory.PairingActive},
			{SupportingHospitalID: w.tertiary, RecipientHospitalID: w.otherCounty, StartsOn: day(2), Status: directory.PairingActive},
		} {
			pr.ID, pr.Version, pr.CreatedAt, pr.UpdatedAt = refID(), 1, w.now, w.now
			if err := dir.CreatePairing(ctx, pr); err != nil {
				t.Fatal(err)
			}
		}
		routes := referrals.NewDirectoryRoutes(dir, func() time.Time { return w.now })
		if got, err := routes.Partners(ctx, w.tertiary); err != nil || !slices.Equal(got, []string{w.county}) {
			t.Fatalf("partners of the tertiary hospital: %v %v, want only the county in force today", got, err)
		}
		if got, err := routes.Partners(ctx, w.otherCounty); err != nil || len(got) != 0 {
			t.Fatalf("partners of the unpaired county: %v %v", got, err)
		}
		if tier, err := routes.Tier(ctx, w.county); err != nil || tier != referral.TierSecondary {
			t.Fatalf("tier: %q %v", tier, err)
		}
		for _, id := range []string{refID(), "not-an-id"} {
			if _, err := routes.Tier(ctx, id); !errors.Is(err, apperr.ErrNotFound) {
				t.Fatalf("tier of %q: %v, want not found", id, err)
			}
		}
	})
}

func TestReferralServiceCreateKeepsToTheCallersReach(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newRefWorld(t, db, nil)
		ctx := context.Background()
		for name, patientID := range map[string]string{"unknown patient": refID(), "patient of a hospital out of reach": w.patient} {
			p := w.outside
			if name == "unknown patient" {
				p = w.doctor
			}
			if _, err := w.svc.Create(ctx, p, w.input(patientID)); err == nil {
				t.Fatalf("%s: created", name)
			} else {
				wantFieldError(t, err, "patient_id")
			}
		}
		if _, err := w.svc.Create(ctx, auth.Principal{UserID: refID(), HospitalID: w.tertiary, Roles: []auth.Role{auth.Auditor},
			Reach: map[string]bool{w.tertiary: true, w.county: true}}, w.input(w.patient)); !errors.Is(err, apperr.ErrForbidden) {
			t.Fatalf("auditor writing a referral: %v, want forbidden", err)
		}
		if list, err := w.st.List(ctx, store.ReferralFilter{}); err != nil || len(list) != 0 {
			t.Fatalf("refused creates stored %v %v", list, err)
		}
	})
}

func TestReferralServiceRedirectOpensALinkedTicket(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newRefWorld(t, db, nil)
		ctx := context.Background()
		r := w.act(t, w.doctor, w.draft(t, w.input(w.patient)), referral.Submit, referral.ActionInput{})
		r = w.act(t, w.desk, r, referral.Claim, referral.ActionInput{})

		// Sending it on to a hospital off the pairings is refused and changes nothing.
		_, err := w.svc.Act(ctx, w.desk, r.ID, r.Version, referral.Redirect,
			referral.ActionInput{Target: &referral.Target{HospitalID: w.otherCounty, DepartmentID: refID()}})
		wantFieldError(t, err, "target.hospital_id")
		if got := w.written(t, r.ID); len(got.events) != 2 {
			t.Fatalf("refused redirect wrote %+v", got)
		}

		old := w.act(t, w.desk, r, referral.Redirect, referral.ActionInput{
			Target: &referral.Target{HospitalID: w.tertiary, DepartmentID: w.neuro}, Reason: "神经内科更合适"})
		if old.Status != referral.Redirected || old.RedirectedToID == "" {
			t.Fatalf("old ticket: %+v", old)
		}
		n, err := w.svc.Get(ctx, w.desk, old.RedirectedToID)
		if err != nil {
			t.Fatal(err)
		}
		if n.Status != referral.Submitted || n.RedirectedFromID != old.ID || n.ReceivingDepartmentID != w.neuro ||
			n.Number == "" || n.Number == old.Number || n.PatientID != w.patient {
			t.Fatalf("new ticket: %+v", n)
		}
		if got := w.written(t, n.ID); !slices.Equal(got.events, []string{"redirect:→submitted"}) || len(got.outbox) != 1 {
			t.Fatalf("new ticket wrote %+v", got)
		}
		if got := w.written(t, old.ID); len(got.events) != 3 || len(got.outbox) != 3 {
			t.Fatalf("old ticket wrote %+v", got)
		}
	})
}
