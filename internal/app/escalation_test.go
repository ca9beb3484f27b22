package app

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"duikou/internal/auth"
	"duikou/internal/config"
	"duikou/internal/directory"
	"duikou/internal/kv/kvtest"
	"duikou/internal/patient"
	"duikou/internal/queue"
	"duikou/internal/secret"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/referral"
)

// TestDeadlineBreachFiresOnceAcrossTwoInstancesAndARestart runs whole
// instances on one PostgreSQL and one Redis with deadlines of seconds: a
// ticket left unclaimed is escalated once per deadline, pushed to the
// receiving hospital's channel, whatever the number of instances watching
// and across an instance's restart, and its state never changes.
func TestDeadlineBreachFiresOnceAcrossTwoInstancesAndARestart(t *testing.T) {
	dbURL := sqldbtest.PostgresURL(t)
	redisURL := os.Getenv("DUIKOU_TEST_REDIS_URL")
	if redisURL == "" {
		kvtest.ForTest(t) // fails when services are required, else skips below
		t.Skip("no Redis server: set DUIKOU_TEST_REDIS_URL")
	}
	ctx := context.Background()
	deadlines, err := config.ParseDeadlines("green=1s/3s,emergency=1s/3s,urgent=1s/3s,routine=1s/3s")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Config{DatabaseURL: dbURL, RedisURL: redisURL, RedisPrefix: "esc-" + secret.EncodeKey(secret.NewKey())[:8],
		DataKey: secret.EncodeKey(secret.NewKey()), Demo: true, ReferralDeadlines: deadlines}
	start := func(name string) *App {
		c := cfg
		c.DataDir = t.TempDir()
		a, err := New(ctx, c, slog.New(slog.DiscardHandler).With("instance", name))
		if err != nil {
			t.Fatalf("instance %s: %v", name, err)
		}
		return a
	}
	one, two := start("one"), start("two")
	defer func() { two.Close() }()

	// 临溪 refers a consented patient to 青川省人民医院.
	system := auth.Principal{UserID: "system", Roles: []auth.Role{auth.Admin}}
	hs, err := one.svc.directory.Hospitals(ctx, system, directory.HospitalQuery{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]string{}
	for _, h := range hs {
		byName[h.Name] = h.ID
	}
	county, tertiary := byName["临溪县人民医院"], byName["青川省人民医院"]
	dept := func(h string) string {
		ds, err := one.svc.directory.Departments(ctx, system, h, "", 1)
		if err != nil || len(ds) == 0 {
			t.Fatalf("departments of %s: %v", h, err)
		}
		return ds[0].ID
	}
	u, err := one.svc.auth.CreateUser(ctx, system, auth.NewUser{Username: "esc.doctor", DisplayName: "转诊医生",
		HospitalID: county, Roles: []auth.Role{auth.CountyDoctor}, Password: "escalation-password-1"})
	if err != nil {
		t.Fatal(err)
	}
	doctor := auth.Principal{UserID: u.ID, HospitalID: county, Roles: []auth.Role{auth.CountyDoctor}, Reach: map[string]bool{county: true, tertiary: true}}
	pt, err := one.svc.patients.Create(ctx, doctor, patient.PatientInput{Name: "升级患者", Sex: "female", BirthDate: "1956-04-12", HomeHospitalID: county})
	if err != nil {
		t.Fatal(err)
	}
	consent, err := one.svc.patients.RecordConsent(ctx, doctor, pt.ID, patient.ConsentInput{ConsenterKind: "patient", ConsenterName: "升级患者", Purpose: "referral"})
	if err != nil {
		t.Fatal(err)
	}
	events, stopEvents, err := queue.New(one.KV, queue.Options{}).Subscribe(ctx, tertiary)
	if err != nil {
		t.Fatal(err)
	}
	defer stopEvents()

	now := time.Now().UTC()
	r, err := one.svc.referrals.Create(ctx, doctor, referral.Input{
		Direction: referral.Up, Priority: referral.Urgent, TransferRisk: referral.RiskII, PatientID: pt.ID,
		ReferringDepartmentID: dept(county), ReferringDoctorID: doctor.UserID, ReceivingHospitalID: tertiary, ReceivingDepartmentID: dept(tertiary),
		Diagnoses: []referral.Diagnosis{{Code: "I20.0", Text: "不稳定型心绞痛"}}, Reason: "需冠脉造影评估", ClinicalSummary: "反复胸闷1周",
		TreatmentGiven: "阿司匹林、他汀", Transport: referral.Transport{Mode: referral.ByHospitalVehicle, Escort: referral.EscortNurse},
		RequestedWindow: &referral.Window{From: now, To: now.Add(48 * time.Hour)}, ConsentID: consent.ID,
	})
	if err == nil {
		r, err = one.svc.referrals.Act(ctx, doctor, r.ID, r.Version, referral.Submit, referral.ActionInput{})
	}
	if err != nil {
		t.Fatal(err)
	}

	counts := func() (escalations, outbox, audits int) {
		t.Helper()
		for _, q := range []struct {
			dst *int
			sql string
		}{
			{&escalations, `SELECT COUNT(*) FROM referral_escalations WHERE referral_id = $1`},
			{&outbox, `SELECT COUNT(*) FROM outbox WHERE key = $1 AND topic = 'referral.escalated'`},
			{&audits, `SELECT COUNT(*) FROM audit_log WHERE resource_id = $1 AND action = 'referral.escalate'`},
		} {
			if err := one.DB.QueryRow(ctx, q.sql, r.ID).Scan(q.dst); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("waited 30s for %s", what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Both deadlines pass with two instances watching: each is raised once
	// and pushed to the receiving desk and its supervisors.
	waitFor("both escalations", func() bool { e, _, _ := counts(); return e >= 2 })
	pushed := map[string]int{}
	waitFor("both pushes", func() bool {
		select {
		case ev := <-events:
			if ev.Type == queue.EventEscalated && ev.ID == r.ID && ev.Supervisors {
				pushed[string(ev.Kind)]++
			}
		default:
		}
		return pushed["claim"] > 0 && pushed["decide"] > 0
	})

	// Instance one stops and a new one starts; all of them keep watching
	// for a few rounds (the watcher steps every 2 seconds).
	one.Close()
	three := start("three")
	defer func() { three.Close() }()
	time.Sleep(5 * time.Second)
	one = three // counts reads through a live instance
	if e, o, a := counts(); e != 2 || o != 2 || a != 2 {
		t.Errorf("%d escalations, %d outbox and %d audit rows; want 2 of each", e, o, a)
	}
	got, err := three.svc.referrals.Get(ctx, doctor, r.ID)
	if err != nil || got.Status != referral.Submitted || got.Version != r.Version {
		t.Errorf("the ticket after its escalations: %s v%d (%v), want submitted v%d", got.Status, got.Version, err, r.Version)
	}
}
