package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"duikou/internal/apperr"
	"duikou/internal/directory"
	"duikou/internal/patient"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/referral"
)

// refTestTicket is a fully filled submitted up-referral from one hospital to
// another, so that every column round-trips.
func refTestTicket(referring, receiving string, at time.Time) referral.Referral {
	t := at.Add(-time.Minute)
	return referral.Referral{
		ID: dirTestID(), Number: "", Direction: referral.Up, Priority: referral.Emergency,
		GreenChannel: true, GreenCategory: referral.ChestPain, TransferRisk: referral.RiskI,
		PatientID: dirTestID(), ReferringHospitalID: referring, ReferringDepartmentID: dirTestID(), ReferringDoctorID: dirTestID(),
		ReceivingHospitalID: receiving, ReceivingDepartmentID: dirTestID(),
		Diagnoses: []referral.Diagnosis{{Code: "I21.0", Text: "急性前壁心肌梗死"}},
		Reason:    "需急诊PCI", ClinicalSummary: "胸痛2小时", TreatmentGiven: "阿司匹林300mg",
		Transport:       referral.Transport{Mode: referral.ByAmbulance, Escort: referral.EscortDoctor},
		RequestedWindow: &referral.Window{From: at, To: at.Add(6 * time.Hour)},
		Attachments:     []referral.AttachmentRef{{ID: dirTestID(), Name: "ecg.pdf", ContentType: "application/pdf", Size: 1200}},
		ConsentID:       dirTestID(),
		Status:          referral.Submitted, Version: 2, CreatedBy: dirTestID(), CreatedAt: t, UpdatedAt: at,
		SubmittedAt: &at, QueuedAt: &at,
	}
}

func TestReferralStoreCreateGetUpdate(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewReferrals(db)
		now := sqldb.Now()
		r := refTestTicket(dirTestID(), dirTestID(), now)
		r.Number = "ZZ-20261122-000001"
		if err := st.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		got, err := st.Get(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
		}

		// Every later field survives an update, including the JSON ones.
		next := got
		claimed := now.Add(time.Minute)
		next.Status, next.Version, next.ClaimedBy, next.ClaimedAt = referral.Accepted, 3, dirTestID(), &claimed
		next.DecidedBy, next.DecidedAt, next.FeeWaived, next.ExamSlipNumber = dirTestID(), &claimed, true, "JC-20261122-000001"
		next.BedReservationID = dirTestID()
		next.Schedule = &referral.Schedule{Kind: referral.Bed, Slot: "心内科3病区12床", At: now.Add(time.Hour)}
		next.Redirect = &referral.Target{HospitalID: dirTestID(), DepartmentID: dirTestID()}
		if err := st.Update(ctx, next, got); err != nil {
			t.Fatal(err)
		}
		got, err = st.GetForUpdate(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, next) {
			t.Fatalf("after update:\n got %+v\nwant %+v", got, next)
		}

		// A draft with nothing but the required parts round-trips too.
		draft := referral.Referral{ID: dirTestID(), Direction: referral.Down, PatientID: dirTestID(),
			ReferringHospitalID: dirTestID(), Status: referral.Draft, Version: 1, CreatedBy: dirTestID(),
			CreatedAt: now, UpdatedAt: now, Diagnoses: []referral.Diagnosis{}, Attachments: []referral.AttachmentRef{}}
		if err := st.Create(ctx, draft); err != nil {
			t.Fatal(err)
		}
		if got, err := st.Get(ctx, draft.ID); err != nil || !reflect.DeepEqual(got, draft) {
			t.Fatalf("draft: %v\n got %+v\nwant %+v", err, got, draft)
		}

		dup := refTestTicket(dirTestID(), dirTestID(), now)
		dup.Number = r.Number
		if err := st.Create(ctx, dup); !errors.Is(err, apperr.ErrConflict) {
			t.Fatalf("duplicate number: %v, want conflict", err)
		}
		if _, err := st.Get(ctx, dirTestID()); !errors.Is(err, apperr.ErrNotFound) {
			t.Fatalf("unknown id: %v", err)
		}
		if _, err := st.Get(ctx, "not-an-id"); !errors.Is(err, apperr.ErrNotFound) {
			t.Fatalf("malformed id: %v", err)
		}
	})
}

func TestReferralStoreUpdateChecksVersion(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewReferrals(db)
		r := refTestTicket(dirTestID(), dirTestID(), sqldb.Now())
		if err := st.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		changed, older := r, r
		changed.Status, changed.Version, changed.Reason = referral.Claimed, 3, "changed"
		older.Version = 1
		if err := st.Update(ctx, changed, older); !errors.Is(err, apperr.ErrStale) {
			t.Fatalf("update at old version: %v, want stale", err)
		}
		if got, _ := st.Get(ctx, r.ID); got.Reason != r.Reason || got.Version != 2 {
			t.Fatalf("stale update wrote: %+v", got)
		}
		missing := changed
		missing.ID = dirTestID()
		if err := st.Update(ctx, missing, r); !errors.Is(err, apperr.ErrNotFound) {
			t.Fatalf("update of unknown ticket: %v, want not found", err)
		}

		// Inside a transaction the stale write fails the whole transaction:
		// at once where the write runs at once (SQLite), at the commit where
		// it is held back to go with it (PostgreSQL), and either way nothing
		// the transaction wrote stays.
		err := db.InTx(ctx, func(ctx context.Context) error {
			if err := st.AppendEvent(ctx, r.ID, referral.Event{Action: referral.EditContent, From: r.Status, To: r.Status,
				At: sqldb.Now()}); err != nil {
				return err
			}
			return st.Update(ctx, changed, older)
		})
		if !errors.Is(err, apperr.ErrStale) && !errors.Is(err, sqldb.ErrRowChanged) {
			t.Fatalf("stale update in a transaction: %v, want stale or row changed", err)
		}
		if got, _ := st.Get(ctx, r.ID); got.Reason != r.Reason || got.Version != 2 {
			t.Fatalf("stale update in a transaction wrote: %+v", got)
		}
		if evs, err := st.Events(ctx, r.ID); err != nil || len(evs) != 0 {
			t.Fatalf("events after the failed transaction = %v, %v; want none", evs, err)
		}
		// At the version it holds, the same transaction commits.
		if err := db.InTx(ctx, func(ctx context.Context) error { return st.Update(ctx, changed, r) }); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.Get(ctx, r.ID); got.Version != 3 || got.Reason != "changed" {
			t.Fatalf("update at the current version: %+v", got)
		}
	})
}

func TestReferralStoreNumbersAreDistinctAndConsecutive(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewReferrals(db)
		// Concurrent callers take runs of one and of several numbers; the
		// runs are disjoint and together count the day from one.
		const n = 20
		runs := []int64{1, 3}
		got := make([][]int64, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				size := runs[i%len(runs)]
				last, err := st.NextNumbers(ctx, "20261122", size)
				for v := last - size + 1; v <= last; v++ {
					got[i] = append(got[i], v)
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		all := slices.Concat(got...)
		slices.Sort(all)
		for i, v := range all {
			if v != int64(i+1) {
				t.Fatalf("numbers %v, want 1..%d", all, len(all))
			}
		}
		// Another day starts again at one.
		if v, err := st.NextNumbers(ctx, "20261123", 1); err != nil || v != 1 {
			t.Fatalf("next day: %d, %v", v, err)
		}
		if v, err := st.NextNumbers(ctx, "20261124", 50); err != nil || v != 50 {
			t.Fatalf("a first run of 50 on a new day: ends at %d, %v", v, err)
		}
		if _, err := st.NextNumbers(ctx, "20261122", 0); err == nil {
			t.Fatal("a run of no numbers was taken")
		}
	})
}

func TestReferralStoreEventsInOrder(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewReferrals(db)
		now := sqldb.Now()
		r := refTestTicket(dirTestID(), dirTestID(), now)
		if err := st.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		desk := dirTestID()
		want := []referral.Event{
			{Action: referral.Submit, From: referral.Draft, To: referral.Submitted, Actor: r.CreatedBy, ActorHospitalID: r.ReferringHospitalID, At: now},
			{Action: referral.Claim, From: referral.Submitted, To: referral.Claimed, Actor: desk, ActorHospitalID: r.ReceivingHospitalID, At: now.Add(time.Minute)},
			{Action: referral.Reject, From: referral.Claimed, To: referral.Rejected, Actor: desk, ActorHospitalID: r.ReceivingHospitalID,
				ReasonCode: referral.NoCapacity, Reason: "无空床", At: now.Add(2 * time.Minute)},
		}
		for _, ev := range want {
			if err := st.AppendEvent(ctx, r.ID, ev); err != nil {
				t.Fatal(err)
			}
		}
		got, err := st.Events(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("events:\n got %+v\nwant %+v", got, want)
		}
		if other, err := st.Events(ctx, dirTestID()); err != nil || len(other) != 0 {
			t.Fatalf("events of another ticket: %v %v", other, err)
		}
	})
}

func TestReferralStoreOutbox(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewReferrals(db)
		now := sqldb.Now()
		for i := range 3 {
			if err := st.EnqueueOutbox(ctx, "referral.changed", fmt.Sprint("k", i), fmt.Sprintf(`{"n":%d}`, i), now); err != nil {
				t.Fatal(err)
			}
		}
		msgs, err := st.Outbox(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 3 || msgs[0].Key != "k0" || msgs[2].Payload != `{"n":2}` || msgs[0].ID >= msgs[1].ID ||
			!msgs[0].CreatedAt.Equal(now) || msgs[0].PublishedAt != nil || msgs[1].Topic != "referral.changed" {
			t.Fatalf("outbox: %+v", msgs)
		}
	})
}

func TestReferralStoreListFiltersAndPages(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewReferrals(db)
		county, tertiary, other := dirTestID(), dirTestID(), dirTestID()
		day := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

		up := refTestTicket(county, tertiary, day.Add(time.Hour)) // green emergency up, submitted
		routine := refTestTicket(county, tertiary, day.Add(26*time.Hour))
		routine.GreenChannel, routine.GreenCategory, routine.Priority, routine.Status = false, "", referral.Routine, referral.Claimed
		down := refTestTicket(tertiary, county, day.Add(2*time.Hour))
		down.Direction, down.GreenChannel, down.GreenCategory, down.Priority = referral.Down, false, "", referral.Urgent
		down.PatientID = up.PatientID
		draft := refTestTicket(county, tertiary, day)
		draft.Status, draft.SubmittedAt, draft.QueuedAt = referral.Draft, nil, nil
		foreign := refTestTicket(other, tertiary, day.Add(3*time.Hour))
		for _, r := range []referral.Referral{up, routine, down, draft, foreign} {
			if err := st.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		yes := true
		from, to := day, day.Add(24*time.Hour)
		ids := func(rs ...referral.Referral) []string {
			out := make([]string, len(rs))
			for i, r := range rs {
				out[i] = r.ID
			}
			slices.Sort(out)
			return out
		}
		tests := []struct {
			name string
			f    store.ReferralFilter
			want []string
		}{
			{"the county sees what it sent, drafts included, and what it received", store.ReferralFilter{PartyHospitalID: county}, ids(up, routine, down, draft)},
			{"the receiver does not see the county's draft", store.ReferralFilter{PartyHospitalID: tertiary}, ids(up, routine, down, foreign)},
			{"an unrelated hospital sees only its own", store.ReferralFilter{PartyHospitalID: other}, ids(foreign)},
			{"direction", store.ReferralFilter{PartyHospitalID: tertiary, Direction: referral.Down}, ids(down)},
			{"status", store.ReferralFilter{Status: referral.Claimed}, ids(routine)},
			{"priority", store.ReferralFilter{Priority: referral.Urgent}, ids(down)},
			{"green channel", store.ReferralFilter{PartyHospitalID: county, GreenChannel: &yes}, ids(up, draft)},
			{"referring hospital", store.ReferralFilter{ReferringHospitalID: tertiary}, ids(down)},
			{"receiving hospital", store.ReferralFilter{PartyHospitalID: county, ReceivingHospitalID: tertiary}, ids(up, routine, draft)},
			{"department, either side", store.ReferralFilter{DepartmentID: down.ReceivingDepartmentID}, ids(down)},
			{"patient", store.ReferralFilter{PatientID: up.PatientID}, ids(up, down)},
			{"submitted on a day", store.ReferralFilter{PartyHospitalID: county, SubmittedFrom: &from, SubmittedTo: &to}, ids(up, down)},
		}
		for _, tc := range tests {
			got, err := st.List(ctx, tc.f)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if g := ids(got...); !slices.Equal(g, tc.want) {
				t.Errorf("%s: got %v, want %v", tc.name, g, tc.want)
			}
		}

		// Pages of two, ordered by id, continue after the cursor.
		all := ids(up, routine, down, draft)
		var seen []string
		after := ""
		for range 3 {
			page, err := st.List(ctx, store.ReferralFilter{PartyHospitalID: county, After: after, Limit: 2})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page {
				seen = append(seen, r.ID)
			}
			if len(page) < 2 {
				break
			}
			after = page[len(page)-1].ID
		}
		if !slices.Equal(seen, all) {
			t.Fatalf("paged: %v, want %v", seen, all)
		}
	})
}

// GetForAction reads the ticket as GetForUpdate does, with what a change
// needs to know of its patient in the same statement: the home hospital (""
// when the patient is unknown) and, when asked, the earliest grant of a
// consent of that purpose that is not withdrawn.
func TestReferralStoreGetForActionBringsThePatientsFacts(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		h := dirTestHospital(t, store.NewDirectory(db), 1, directory.Secondary, "四川省", "苍溪县")
		user := patTestUser(t, db, h.ID, "action.doctor")
		patients := store.NewPatients(db)
		consenting := patTestPatient(t, patients, h.ID, user, "李桂兰", nil)
		withdrawn := patTestPatient(t, patients, h.ID, user, "王秀英", nil)
		otherPurpose := patTestPatient(t, patients, h.ID, user, "张建国", nil)
		st := store.NewReferrals(db)
		now := sqldb.Now()

		earliest, later := now.Add(-2*time.Hour), now.Add(-time.Hour)
		consent := func(p string, purpose patient.Purpose, granted time.Time) patient.Consent {
			c := patient.Consent{ID: dirTestID(), PatientID: p, ConsenterKind: patient.ByPatient, ConsenterName: "本人",
				Purpose: purpose, GrantedAt: granted, RecordedBy: user, RecordedAt: now}
			if err := patients.CreateConsent(ctx, c); err != nil {
				t.Fatal(err)
			}
			return c
		}
		consent(consenting.ID, patient.ForReferral, later)
		consent(consenting.ID, patient.ForReferral, earliest)
		gone := consent(withdrawn.ID, patient.ForReferral, earliest)
		if _, err := patients.WithdrawConsent(ctx, gone.ID, now, user, "家属改变主意"); err != nil {
			t.Fatal(err)
		}
		consent(otherPurpose.ID, patient.ForRemoteConsultation, earliest)

		for i, c := range []struct {
			name    string
			patient string
			purpose string
			home    string
			since   *time.Time
		}{
			{"consenting patient, consent asked: the earliest grant", consenting.ID, "referral", h.ID, &earliest},
			{"consenting patient, no consent asked", consenting.ID, "", h.ID, nil},
			{"only consent withdrawn", withdrawn.ID, "referral", h.ID, nil},
			{"consent of another purpose only", otherPurpose.ID, "referral", h.ID, nil},
			{"unknown patient", dirTestID(), "referral", "", nil},
		} {
			tk := refTestTicket(h.ID, dirTestID(), now)
			tk.PatientID, tk.Number = c.patient, fmt.Sprintf("ZZ-20261201-%06d", i+1)
			if err := st.Create(ctx, tk); err != nil {
				t.Fatal(err)
			}
			err := db.InTx(ctx, func(ctx context.Context) error {
				want, err := st.GetForUpdate(ctx, tk.ID)
				if err != nil {
					return err
				}
				got, facts, err := st.GetForAction(ctx, tk.ID, c.purpose)
				if err != nil {
					return err
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: ticket\n got %+v\nwant %+v", c.name, got, want)
				}
				sameSince := (facts.ConsentSince == nil) == (c.since == nil) &&
					(c.since == nil || facts.ConsentSince.Equal(*c.since))
				if facts.PatientHome != c.home || !sameSince {
					t.Errorf("%s: facts %+v (since %v), want home %q since %v", c.name, facts, facts.ConsentSince, c.home, c.since)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range []string{dirTestID(), "not-an-id"} {
			if _, _, err := st.GetForAction(ctx, id, ""); !errors.Is(err, apperr.ErrNotFound) {
				t.Errorf("GetForAction(%q): %v, want not found", id, err)
			}
		}
	})
}
