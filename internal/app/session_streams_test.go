package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"duikou/consult"
	"duikou/internal/auth"
	"duikou/internal/config"
	"duikou/internal/kv/kvtest"
	"duikou/internal/patient"
	"duikou/internal/queue"
	"duikou/internal/secret"
	"duikou/internal/sqldb/sqldbtest"
)

// TestSessionStreamsReachScreensOnAnotherInstance requests a remote session
// through one instance while the target specialist and the requesting
// doctor watch through another, both on the same PostgreSQL and Redis: the
// specialist sees the request arrive and, once its (here very short)
// response deadline passes unanswered, the escalation; the doctor sees the
// request but not the escalation, which is the target's to act on. The
// escalation is then listed on the session.
func TestSessionStreamsReachScreensOnAnotherInstance(t *testing.T) {
	dbURL := sqldbtest.PostgresURL(t)
	redisURL := os.Getenv("DUIKOU_TEST_REDIS_URL")
	if redisURL == "" {
		kvtest.ForTest(t) // fails when services are required, else skips below
		t.Skip("no Redis server: set DUIKOU_TEST_REDIS_URL")
	}
	key := secret.EncodeKey(secret.NewKey())
	ctx := context.Background()
	deadlines := consult.Deadlines{Emergency: 3 * time.Second, Urgent: time.Hour, Routine: 2 * time.Hour}
	start := func(name string) *App {
		a, err := New(ctx, config.Config{DatabaseURL: dbURL, RedisURL: redisURL, RedisPrefix: "sessions-" + t.Name(),
			DataKey: key, DataDir: t.TempDir(), Demo: true, ShutdownTimeout: streamWait, SessionDeadlines: deadlines},
			slog.New(slog.DiscardHandler).With("instance", name))
		if err != nil {
			t.Fatalf("instance %s: %v", name, err)
		}
		t.Cleanup(a.Close)
		return a
	}
	one, two := start("one"), start("two")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stopTwo := context.WithCancel(ctx)
	defer stopTwo()
	go func() { _ = two.Serve(serveCtx, ln) }()
	base := "http://" + ln.Addr().String()

	login := func(username string) (string, auth.Principal) {
		res, err := one.svc.auth.Login(ctx, username, "duikou-demo-2026", "203.0.113.8", "session-streams-test")
		if err != nil {
			t.Fatalf("login %s: %v", username, err)
		}
		p, err := one.svc.auth.Authenticate(ctx, res.Token)
		if err != nil {
			t.Fatal(err)
		}
		return res.Token, p
	}
	specialistToken, specialist := login("sph.cardio")
	doctorToken, doctor := login("linxi.doctor")
	specialistStream := openAppStream(t, base, specialistToken, "/api/v1/sessions/stream")
	doctorStream := openAppStream(t, base, doctorToken, "/api/v1/sessions/stream")
	specialistStream.await(t, "ready", "")
	doctorStream.await(t, "ready", "")

	// The county doctor asks the provincial hospital through instance one.
	admin := auth.Principal{UserID: "system", Roles: []auth.Role{auth.Admin}}
	depts, err := one.svc.directory.Departments(ctx, admin, specialist.HospitalID, "", 1)
	if err != nil || len(depts) == 0 {
		t.Fatalf("departments: %v", err)
	}
	pt, err := one.svc.patients.Create(ctx, doctor, patient.PatientInput{Name: "远程会诊", Sex: "female", BirthDate: "1957-02-11"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := one.svc.consults.Request(ctx, doctor, consult.Input{Kind: consult.Consult, Urgency: consult.Emergency,
		TargetHospitalID: specialist.HospitalID, TargetDepartmentIDs: []string{depts[0].ID},
		Question: "急性胸痛，是否溶栓？", ClinicalSummary: "女，69岁，胸痛2小时", PatientID: pt.ID})
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	specialistStream.awaitSession(t, queue.SessionChanged, s.ID, consult.Requested)
	t.Logf("request seen on the other instance %s after it committed (relay period 250 ms)", time.Since(sent).Round(time.Millisecond))
	doctorStream.awaitSession(t, queue.SessionChanged, s.ID, consult.Requested)

	// Nobody answers: the deadline passes and the target is told.
	specialistStream.awaitSession(t, queue.SessionEscalated, s.ID, consult.Requested)
	t.Logf("escalation seen %s after the request (deadline %s, watcher period 2 s)", time.Since(sent).Round(time.Millisecond), deadlines.Emergency)

	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/sessions/"+s.ID+"/escalations", nil)
	req.Header.Set("Authorization", "Bearer "+specialistToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var list struct {
		Items []consult.Escalation `json:"items"`
	}
	if err := json.NewDecoder(res.Body).Decode(&list); err != nil || res.StatusCode != http.StatusOK || len(list.Items) != 1 ||
		list.Items[0].Kind != consult.RespondBreach || list.Items[0].SessionID != s.ID {
		t.Fatalf("escalations: %d %+v (%v)", res.StatusCode, list, err)
	}

	// The requester's screen heard no escalation: the next notice it gets
	// is the cancellation, not an escalation.
	if _, err := one.svc.consults.Act(ctx, doctor, s.ID, s.Version, consult.Cancel, consult.ActionInput{Reason: "已转上级医院急诊"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(streamWait)
	for {
		name, data := doctorStream.next(t, deadline)
		if name == queue.SessionEscalated {
			t.Fatalf("the requesting hospital was sent the escalation: %s", data)
		}
		var n queue.SessionNotice
		if json.Unmarshal([]byte(data), &n) == nil && n.ID == s.ID && n.Status == consult.Cancelled {
			break
		}
	}
	stopTwo()
	specialistStream.ended(t)
}

// awaitSession skips to the session notice of type typ for the session in
// status.
func (s *appStream) awaitSession(t *testing.T, typ, id string, status consult.Status) {
	t.Helper()
	deadline := time.After(streamWait)
	for {
		name, data := s.next(t, deadline)
		var n queue.SessionNotice
		if name == typ && json.Unmarshal([]byte(data), &n) == nil && n.ID == id && n.Status == status {
			return
		}
	}
}
