package consults_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"duikou/consult"
	"duikou/internal/audit"
	"duikou/internal/consults"
	"duikou/internal/kv"
	"duikou/internal/kv/kvtest"
	"duikou/internal/referrals"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/internal/testclock"
	"duikou/referral"
)

func (w *world) watcher(c *testclock.Clock, opt consults.WatcherOptions) *consults.Watcher {
	opt.Now = c.Now
	return consults.NewWatcher(w.db, store.NewConsults(w.db), audit.NewLog(store.NewAuditLog(w.db), nil), consult.DefaultDeadlines(), opt)
}

// leader is one instance's deadline watcher: the referrals' leader loop
// with the session watcher as its source, under its own lease owner.
func (w *world) leader(t *testing.T, conn *kv.Conn, owner string, c *testclock.Clock) (*referrals.Watcher, *kv.Lease) {
	t.Helper()
	lease, err := kv.NewLease(conn, "referral-deadlines", owner, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rw := referrals.NewWatcher(w.db, store.NewReferrals(w.db), audit.NewLog(store.NewAuditLog(w.db), nil), lease,
		referral.DefaultDeadlines(), referrals.WatcherOptions{Now: c.Now, Sources: []referrals.Source{w.watcher(c, consults.WatcherOptions{Batch: 2})}})
	return rw, lease
}

func (w *world) request(t *testing.T, u consult.Urgency) consult.Session {
	t.Helper()
	in := w.consultInput(w.patient)
	in.Urgency = u
	s, err := w.svc.Request(context.Background(), w.doctor, in)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func scalar(t *testing.T, db sqldb.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// raised lists the stored escalations as session:kind@due, sorted.
func raised(t *testing.T, db sqldb.DB) []string {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT session_id, kind, due_at FROM session_escalations`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var id, kind string
		var due time.Time
		if err := rows.Scan(&id, &kind, &due); err != nil {
			t.Fatal(err)
		}
		out = append(out, id+":"+kind+"@"+due.UTC().Format(time.RFC3339))
	}
	sort.Strings(out)
	return out
}

func breach(s consult.Session) string {
	return s.ID + ":respond@" + s.RespondBy.UTC().Format(time.RFC3339)
}

func breaches(ss ...consult.Session) []string {
	out := []string{}
	for _, s := range ss {
		out = append(out, breach(s))
	}
	sort.Strings(out)
	return out
}

// escalationRows counts the rows that must come with each escalation.
func escalationRows(t *testing.T, db sqldb.DB) (outbox, audits int) {
	t.Helper()
	return scalar(t, db, `SELECT COUNT(*) FROM outbox WHERE topic = $1`, consults.TopicEscalated),
		scalar(t, db, `SELECT COUNT(*) FROM audit_log WHERE action = $1`, consults.ActionEscalate)
}

// sessionStates is every session's status and version, to show a breach
// changes none of them.
func sessionStates(t *testing.T, db sqldb.DB) map[string]string {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT id, status, version FROM consult_sessions`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, status string
		var version int
		if err := rows.Scan(&id, &status, &version); err != nil {
			t.Fatal(err)
		}
		out[id] = fmt.Sprintf("%s@%d", status, version)
	}
	return out
}

func TestSessionWatcherRaisesEachBreachOnceAndNeverChangesTheSession(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		emergency, urgent, routine := w.request(t, consult.Emergency), w.request(t, consult.Urgent), w.request(t, consult.Routine)
		answered := w.act(t, w.head, w.request(t, consult.Emergency), consult.Accept,
			consult.ActionInput{Specialists: []consult.Assignment{{SpecialistID: w.cardiologist.UserID, DepartmentID: w.cardio}}})
		withdrawn := w.act(t, w.doctor, w.request(t, consult.Emergency), consult.Cancel, consult.ActionInput{Reason: "患者已转上级医院"})
		for _, c := range []struct {
			s     consult.Session
			limit time.Duration
		}{{emergency, 30 * time.Minute}, {urgent, 4 * time.Hour}, {routine, 48 * time.Hour}} {
			if c.s.RespondBy == nil || !c.s.RespondBy.Equal(w.now.Add(c.limit)) {
				t.Fatalf("%s request stamped %v, want %v after it", c.s.Urgency, c.s.RespondBy, c.limit)
			}
			stored, err := w.st.Session(ctx, c.s.ID)
			if err != nil || stored.RespondBy == nil || !stored.RespondBy.Equal(*c.s.RespondBy) {
				t.Fatalf("stored deadline %v (%v), want %v", stored.RespondBy, err, c.s.RespondBy)
			}
		}
		before := sessionStates(t, db)
		c := testclock.New(time.Time{})
		wt := w.watcher(c, consults.WatcherOptions{})
		for _, step := range []struct {
			at   time.Duration // after the requests
			new  int
			want []string
		}{
			{30 * time.Minute, 0, breaches()}, // due, not yet past
			{31 * time.Minute, 1, breaches(emergency)},
			{2 * time.Hour, 0, breaches(emergency)}, // raised once, however often it ticks
			{4*time.Hour + time.Second, 1, breaches(emergency, urgent)},
			{72 * time.Hour, 1, breaches(emergency, urgent, routine)},
			{100 * time.Hour, 0, breaches(emergency, urgent, routine)},
		} {
			c.Set(w.now.Add(step.at))
			n, err := wt.Tick(ctx)
			if err != nil || n != step.new {
				t.Fatalf("at +%v: raised %d (%v), want %d", step.at, n, err, step.new)
			}
			if got := raised(t, db); !slices.Equal(got, step.want) {
				t.Fatalf("at +%v: escalations %v, want %v", step.at, got, step.want)
			}
		}
		if outbox, audits := escalationRows(t, db); outbox != 3 || audits != 3 {
			t.Errorf("%d outbox and %d audit rows, want 3 each", outbox, audits)
		}
		if n := scalar(t, db, `SELECT COUNT(*) FROM outbox WHERE topic = $1`, consults.TopicEscalationWebhook); n != 0 {
			t.Errorf("%d webhook rows written with no webhook configured", n)
		}
		if after := sessionStates(t, db); !maps.Equal(before, after) {
			t.Errorf("a breach changed sessions:\n before %v\n after  %v", before, after)
		}
		for _, s := range []consult.Session{answered, withdrawn} {
			if es, err := w.svc.Escalations(ctx, w.doctor, s.ID); err != nil || len(es) != 0 {
				t.Errorf("%s session escalated: %v %v", s.Status, es, err)
			}
		}
		// Both parties read the escalation; it records the status then.
		for _, p := range []struct {
			name string
			es   func() ([]consult.Escalation, error)
		}{
			{"requester", func() ([]consult.Escalation, error) { return w.svc.Escalations(ctx, w.doctor, emergency.ID) }},
			{"target", func() ([]consult.Escalation, error) { return w.svc.Escalations(ctx, w.head, emergency.ID) }},
		} {
			es, err := p.es()
			if err != nil || len(es) != 1 || es[0].Kind != consult.RespondBreach || es[0].Status != consult.Requested ||
				!es[0].Due.Equal(*emergency.RespondBy) || !es[0].RaisedAt.Equal(w.now.Add(31*time.Minute)) {
				t.Errorf("%s reads %+v (%v)", p.name, es, err)
			}
		}
		if _, err := w.svc.Escalations(ctx, w.outsider, emergency.ID); err == nil {
			t.Error("an unrelated hospital reads the escalations")
		}
	})
}

// The webhook's row is written with the escalation when one is configured,
// and names no patient.
func TestSessionWatcherWritesTheWebhookRowWithoutThePatient(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newWorld(t, db)
		s := w.request(t, consult.Emergency)
		c := testclock.New(w.now.Add(time.Hour))
		if n, err := w.watcher(c, consults.WatcherOptions{Webhook: true}).Tick(context.Background()); err != nil || n != 1 {
			t.Fatalf("raised %d (%v)", n, err)
		}
		var payload string
		if err := db.QueryRow(context.Background(), `SELECT payload FROM outbox WHERE topic = $1`, consults.TopicEscalationWebhook).Scan(&payload); err != nil {
			t.Fatal(err)
		}
		for _, leak := range []string{w.patient, "patient", s.Question, s.ClinicalSummary} {
			if strings.Contains(payload, leak) {
				t.Errorf("the webhook body carries %q: %s", leak, payload)
			}
		}
		for _, must := range []string{s.ID, w.tertiary, `"event":"consult.escalated"`, `"kind":"respond"`} {
			if !strings.Contains(payload, must) {
				t.Errorf("the webhook body lacks %q: %s", must, payload)
			}
		}
	})
}

func TestTwoSessionWatchersRaiseEachBreachOnce(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		var all []consult.Session
		for range 5 {
			all = append(all, w.request(t, consult.Emergency))
		}
		before := sessionStates(t, db)
		c := testclock.New(w.now.Add(31 * time.Minute))
		conn := kvtest.Embedded(t)
		one, _ := w.leader(t, conn, "one", c)
		two, _ := w.leader(t, conn, "two", c)

		// Both step side by side, as both instances' loops do: one leads
		// and raises every breach.
		var mu sync.Mutex
		led := map[string]int{}
		total := 0
		var wg sync.WaitGroup
		for name, rw := range map[string]*referrals.Watcher{"one": one, "two": two} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 6 {
					leader, n, err := rw.Step(ctx)
					if err != nil {
						t.Errorf("%s: %v", name, err)
						return
					}
					mu.Lock()
					if leader {
						led[name]++
					}
					total += n
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(led) != 1 || total != len(all) {
			t.Fatalf("leaders %v raised %d; want one leader and %d escalations", led, total, len(all))
		}

		// Without the lease (a leader paused past it), two watchers ticking
		// at once still raise each breach once.
		for range 3 {
			all = append(all, w.request(t, consult.Emergency))
		}
		c.Set(w.now.Add(time.Hour))
		total = 0
		for range 2 {
			wt := w.watcher(c, consults.WatcherOptions{Batch: 2})
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 4 {
					n, err := wt.Tick(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					total += n
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if total != 3 {
			t.Errorf("concurrent ticks raised %d, want the 3 new breaches", total)
		}
		if got := raised(t, db); !slices.Equal(got, breaches(all...)) {
			t.Errorf("escalations %v\nwant %v", got, breaches(all...))
		}
		if outbox, audits := escalationRows(t, db); outbox != len(all) || audits != len(all) {
			t.Errorf("%d outbox and %d audit rows, want %d each", outbox, audits, len(all))
		}
		for id, st := range sessionStates(t, db) {
			if b, ok := before[id]; ok && b != st {
				t.Errorf("a breach changed session %s: %s → %s", id, b, st)
			}
		}
	})
}

func TestSessionWatcherRestartRaisesWhatWasMissedAndRepeatsNothing(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		emergency, urgent := w.request(t, consult.Emergency), w.request(t, consult.Urgent)
		before := sessionStates(t, db)
		conn := kvtest.Embedded(t)
		c := testclock.New(w.now.Add(31 * time.Minute))

		// The first instance runs until the emergency is escalated, then
		// stops and gives its lease up.
		one, _ := w.leader(t, conn, "one", c)
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			one.Run(runCtx, 10*time.Millisecond)
		}()
		deadline := time.Now().Add(10 * time.Second)
		for len(raised(t, db)) < 1 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		stop()
		<-done
		if got := raised(t, db); !slices.Equal(got, breaches(emergency)) {
			t.Fatalf("before the restart: %v, want %v", got, breaches(emergency))
		}

		// While no watcher runs, the urgent request's deadline passes too.
		c.Set(w.now.Add(5 * time.Hour))
		two, _ := w.leader(t, conn, "two", c)
		leader, n, err := two.Step(ctx)
		if err != nil || !leader || n != 1 {
			t.Fatalf("the restarted watcher's first step: leader=%v raised %d (%v); want it to lead and raise the one missed", leader, n, err)
		}
		if _, n, err := two.Step(ctx); err != nil || n != 0 {
			t.Fatalf("the next step raised %d again (%v)", n, err)
		}
		if got := raised(t, db); !slices.Equal(got, breaches(emergency, urgent)) {
			t.Errorf("after the restart: %v, want %v", got, breaches(emergency, urgent))
		}
		if outbox, audits := escalationRows(t, db); outbox != 2 || audits != 2 {
			t.Errorf("%d outbox and %d audit rows, want 2 each", outbox, audits)
		}
		if after := sessionStates(t, db); !maps.Equal(before, after) {
			t.Errorf("a breach changed sessions:\n before %v\n after  %v", before, after)
		}
	})
}

// A request made before deadlines were stored is stamped when a watcher
// takes the lead, then escalated like the others; its version stays.
func TestSessionWatcherStampsRequestsMadeBeforeDeadlinesWereStored(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		s := w.request(t, consult.Emergency)
		if _, err := db.Exec(ctx, `UPDATE consult_sessions SET respond_by = NULL WHERE id = $1`, s.ID); err != nil {
			t.Fatal(err)
		}
		c := testclock.New(w.now.Add(31 * time.Minute))
		if n, err := w.watcher(c, consults.WatcherOptions{}).Tick(ctx); err != nil || n != 0 {
			t.Fatalf("an unstamped request was found by the index: %d (%v)", n, err)
		}
		rw, _ := w.leader(t, kvtest.Embedded(t), "one", c)
		if leader, n, err := rw.Step(ctx); err != nil || !leader || n != 1 {
			t.Fatalf("the first step as leader: %v %d %v; want the request stamped and escalated", leader, n, err)
		}
		got, err := w.st.Session(ctx, s.ID)
		if err != nil || got.RespondBy == nil || !got.RespondBy.Equal(*s.RespondBy) || got.Version != s.Version {
			t.Errorf("stamped %v (want %v), version %d (want %d), %v", got.RespondBy, s.RespondBy, got.Version, s.Version, err)
		}
	})
}
