package referrals_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"duikou/internal/audit"
	"duikou/internal/kv"
	"duikou/internal/kv/kvtest"
	"duikou/internal/queue"
	"duikou/internal/referrals"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/internal/testclock"
	"duikou/referral"
)

// instance is one app-like setup's deadline watcher: its own database
// handle, Redis connection and lease owner.
type instance struct {
	watcher *referrals.Watcher
	lease   *kv.Lease
}

func newInstance(t *testing.T, db sqldb.DB, conn *kv.Conn, owner string, ttl time.Duration, now func() time.Time, opt referrals.WatcherOptions) instance {
	t.Helper()
	lease, err := kv.NewLease(conn, "referral-deadlines", owner, ttl)
	if err != nil {
		t.Fatal(err)
	}
	opt.Now = now
	w := referrals.NewWatcher(db, store.NewReferrals(db), audit.NewLog(store.NewAuditLog(db), nil), lease, referral.DefaultDeadlines(), opt)
	return instance{watcher: w, lease: lease}
}

func count(t *testing.T, db sqldb.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// escalations lists the stored escalations as ticket:kind, sorted.
func escalations(t *testing.T, db sqldb.DB) []string {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT referral_id, kind FROM referral_escalations`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var id, kind string
		if err := rows.Scan(&id, &kind); err != nil {
			t.Fatal(err)
		}
		out = append(out, id+":"+kind)
	}
	sort.Strings(out)
	return out
}

func sorted(pairs ...string) []string {
	sort.Strings(pairs)
	return pairs
}

// escalationRows counts, per escalation, the rows that must come with it.
func escalationRows(t *testing.T, db sqldb.DB) (outbox, audits int) {
	t.Helper()
	return count(t, db, `SELECT COUNT(*) FROM outbox WHERE topic = $1`, referrals.TopicEscalated),
		count(t, db, `SELECT COUNT(*) FROM audit_log WHERE action = $1`, referrals.ActionEscalate)
}

// states is every ticket's status and version, to show a breach changes
// none of them.
func states(t *testing.T, db sqldb.DB) map[string]string {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT id, status, version FROM referrals`)
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

func tick(t *testing.T, w *referrals.Watcher) int {
	t.Helper()
	n, err := w.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWatcherRaisesEachBreachOnceAndNeverChangesTheTicket(t *testing.T) {
	relayWorlds(t, func(t *testing.T, w *relayWorld) {
		ctx := context.Background()
		// Urgent tickets: claimed within an hour, decided within four.
		waiting := w.submitted(t)
		held := w.act(t, w.desk, w.submitted(t), referral.Claim, referral.ActionInput{})
		asked := w.act(t, w.desk, w.act(t, w.desk, w.submitted(t), referral.Claim, referral.ActionInput{}),
			referral.RequestInfo, referral.ActionInput{Question: "请补充心电图"})
		w.act(t, w.doctor, w.submitted(t), referral.Cancel, referral.ActionInput{Reason: "患者家属决定就近治疗"})
		if waiting.ClaimBy == nil || !waiting.ClaimBy.Equal(w.now.Add(time.Hour)) || !waiting.DecideBy.Equal(w.now.Add(4*time.Hour)) {
			t.Fatalf("deadlines stamped on the ticket: %v %v", waiting.ClaimBy, waiting.DecideBy)
		}
		w.flush(t)
		before := states(t, w.db)
		events, stop, err := w.q.Subscribe(ctx, w.tertiary)
		if err != nil {
			t.Fatal(err)
		}
		defer stop()

		c := testclock.New(w.now.Add(59 * time.Minute))
		in := newInstance(t, w.db, kvtest.Embedded(t), "one", 15*time.Second, c.Now, referrals.WatcherOptions{})
		if n := tick(t, in.watcher); n != 0 {
			t.Fatalf("before any deadline: %d raised", n)
		}
		c.Set(w.now.Add(time.Hour + time.Second))
		if n := tick(t, in.watcher); n != 1 {
			t.Fatalf("past the claim deadline: %d raised, want the waiting ticket's", n)
		}
		if n := tick(t, in.watcher); n != 0 {
			t.Fatalf("the next tick raised %d again", n)
		}
		c.Set(w.now.Add(4*time.Hour + time.Second))
		if n := tick(t, in.watcher); n != 2 {
			t.Fatalf("past the decide deadline: %d raised, want the waiting and the held ticket's", n)
		}
		if n := tick(t, in.watcher); n != 0 {
			t.Fatalf("the next tick raised %d again", n)
		}
		if got, want := escalations(t, w.db), sorted(waiting.ID+":claim", waiting.ID+":decide", held.ID+":decide"); !slices.Equal(got, want) {
			t.Fatalf("escalations %v, want %v (none for the ticket waiting on the referrer %s or the cancelled one)", got, want, asked.ID)
		}
		if outbox, audits := escalationRows(t, w.db); outbox != 3 || audits != 3 {
			t.Errorf("%d outbox and %d audit rows, want one each per escalation", outbox, audits)
		}
		if after := states(t, w.db); !maps(before, after) {
			t.Errorf("a breach changed tickets:\n before %v\n after  %v", before, after)
		}

		// Visible on the ticket, with the status it had when raised.
		es, err := w.svc.Escalations(ctx, w.doctor, waiting.ID)
		if err != nil || len(es) != 2 || es[0].Kind != referral.ClaimBreach || !es[0].Due.Equal(*waiting.ClaimBy) ||
			es[0].Status != referral.Submitted || es[1].Kind != referral.DecideBreach || !es[1].Due.Equal(*waiting.DecideBy) {
			t.Fatalf("the waiting ticket's escalations: %+v %v", es, err)
		}
		if es, err := w.svc.Escalations(ctx, w.outside, waiting.ID); err == nil || es != nil {
			t.Errorf("a hospital no party to the ticket read its escalations: %v", es)
		}

		// The outbox message names the ticket, never the patient.
		var payload string
		if err := w.db.QueryRow(ctx, `SELECT payload FROM outbox WHERE topic = $1 ORDER BY id LIMIT 1`, referrals.TopicEscalated).Scan(&payload); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(payload, w.patient) || strings.Contains(payload, "patient") || !strings.Contains(payload, waiting.Number) {
			t.Errorf("escalation message %s", payload)
		}

		// The relay pushes each to the receiving hospital's channel (desk and
		// supervisors) and marks the queue.
		if n := w.flush(t); n != 3 {
			t.Fatalf("relayed %d, want the three escalations", n)
		}
		var pushed []string
		timeout := time.After(5 * time.Second)
		for len(pushed) < 3 {
			select {
			case ev := <-events:
				if ev.Type != queue.EventEscalated {
					continue
				}
				if !ev.Supervisors || ev.EscalationID == "" || ev.Due == nil || ev.DepartmentID != w.cardio {
					t.Errorf("escalation event %+v", ev)
				}
				pushed = append(pushed, ev.ID+":"+string(ev.Kind))
			case <-timeout:
				t.Fatalf("pushes received: %v, want three", pushed)
			}
		}
		sort.Strings(pushed)
		if want := escalations(t, w.db); !slices.Equal(pushed, want) {
			t.Errorf("pushed %v, want %v", pushed, want)
		}
		breached := func() map[string][]referral.BreachKind {
			items, err := w.desks.Queue(ctx, w.desk, w.tertiary, "", 100)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string][]referral.BreachKind{}
			for _, it := range items {
				out[it.ID] = it.Breached
			}
			return out
		}
		wantBoard := map[string][]referral.BreachKind{waiting.ID: {referral.ClaimBreach, referral.DecideBreach}, held.ID: {referral.DecideBreach}}
		if got := breached(); fmt.Sprint(got) != fmt.Sprint(wantBoard) {
			t.Errorf("board marks %v, want %v", got, wantBoard)
		}
		// A Redis that lost the queues gets the marks back from the database.
		if _, err := w.q.Rebuild(ctx, w.relay); err != nil {
			t.Fatal(err)
		}
		if got := breached(); fmt.Sprint(got) != fmt.Sprint(wantBoard) {
			t.Errorf("board marks after a rebuild %v, want %v", got, wantBoard)
		}
	})
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// sharedServers runs fn against one database and one Redis, opened twice
// as two instances would: each gets its own database handle and Redis
// connection.
func sharedServers(t *testing.T, fn func(t *testing.T, dbs [2]sqldb.DB, conns [2]*kv.Conn)) {
	ctx := context.Background()
	engines := []struct {
		name string
		open func(t *testing.T) func() sqldb.DB
	}{
		{"sqlite", func(t *testing.T) func() sqldb.DB {
			path := t.TempDir() + "/duikou.db"
			return func() sqldb.DB {
				db, err := sqldb.OpenSQLite(ctx, path)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(db.Close)
				return db
			}
		}},
		{"postgres", func(t *testing.T) func() sqldb.DB {
			url := sqldbtest.PostgresURL(t)
			return func() sqldb.DB {
				db, err := sqldb.OpenPostgres(ctx, url)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(db.Close)
				return db
			}
		}},
	}
	for _, rs := range []struct {
		name string
		open func(testing.TB) *kv.Conn
	}{{"embedded-redis", kvtest.Embedded}, {"redis", kvtest.ForTest}} {
		for _, e := range engines {
			t.Run(rs.name+"/"+e.name, func(t *testing.T) {
				open := e.open(t)
				a := open()
				if _, err := sqldb.Migrate(ctx, a); err != nil {
					t.Fatal(err)
				}
				conn := rs.open(t)
				opt := *conn.Options()
				second := redis.NewClient(&opt)
				t.Cleanup(func() { second.Close() })
				fn(t, [2]sqldb.DB{a, open()}, [2]*kv.Conn{conn, {Client: second, Prefix: conn.Prefix}})
			})
		}
	}
}

func TestTwoWatchersRaiseEachBreachOnce(t *testing.T) {
	sharedServers(t, func(t *testing.T, dbs [2]sqldb.DB, conns [2]*kv.Conn) {
		ctx := context.Background()
		w := newRefWorld(t, dbs[0], nil)
		var tickets []string
		for range 8 {
			tickets = append(tickets, w.act(t, w.doctor, w.draft(t, w.input(w.patient)), referral.Submit, referral.ActionInput{}).ID)
		}
		before := states(t, w.db)
		c := testclock.New(w.now.Add(time.Hour + time.Second))
		one := newInstance(t, dbs[0], conns[0], "one", 15*time.Second, c.Now, referrals.WatcherOptions{Batch: 3})
		two := newInstance(t, dbs[1], conns[1], "two", 15*time.Second, c.Now, referrals.WatcherOptions{Batch: 3})

		// Both step side by side, as both instances' loops do: one leads.
		var mu sync.Mutex
		led := map[string]int{}
		raised := 0
		var wg sync.WaitGroup
		for name, in := range map[string]instance{"one": one, "two": two} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 10 {
					leader, n, err := in.watcher.Step(ctx)
					if err != nil {
						t.Errorf("%s: %v", name, err)
						return
					}
					mu.Lock()
					if leader {
						led[name]++
					}
					raised += n
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(led) != 1 || raised != len(tickets) {
			t.Fatalf("leaders %v raised %d; want one leader and %d escalations", led, raised, len(tickets))
		}

		// Even without the lease, two watchers ticking at once (a leader
		// paused past its lease) raise each breach once.
		c.Set(w.now.Add(4*time.Hour + time.Second))
		raised = 0
		for _, in := range []instance{one, two} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 5 {
					n, err := in.watcher.Tick(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					raised += n
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if raised != len(tickets) {
			t.Errorf("concurrent ticks raised %d decide escalations, want %d", raised, len(tickets))
		}
		var wantKinds []string
		for _, id := range tickets {
			wantKinds = append(wantKinds, id+":claim", id+":decide")
		}
		if got := escalations(t, w.db); !slices.Equal(got, sorted(wantKinds...)) {
			t.Errorf("escalations %v\nwant %v", got, sorted(wantKinds...))
		}
		if outbox, audits := escalationRows(t, w.db); outbox != 2*len(tickets) || audits != 2*len(tickets) {
			t.Errorf("%d outbox and %d audit rows, want %d each", outbox, audits, 2*len(tickets))
		}
		if after := states(t, w.db); !maps(before, after) {
			t.Errorf("a breach changed tickets:\n before %v\n after  %v", before, after)
		}
	})
}

func TestWatcherRestartRaisesWhatWasMissedAndRepeatsNothing(t *testing.T) {
	sharedServers(t, func(t *testing.T, dbs [2]sqldb.DB, conns [2]*kv.Conn) {
		ctx := context.Background()
		w := newRefWorld(t, dbs[0], nil)
		first := w.act(t, w.doctor, w.draft(t, w.input(w.patient)), referral.Submit, referral.ActionInput{})
		second := w.act(t, w.doctor, w.draft(t, w.input(w.patient)), referral.Submit, referral.ActionInput{})
		before := states(t, w.db)
		c := testclock.New(w.now.Add(time.Hour + time.Second))

		// The first instance's watcher runs until both claim deadlines are
		// escalated, then the instance stops (and gives its lease up).
		one := newInstance(t, dbs[0], conns[0], "one", 15*time.Second, c.Now, referrals.WatcherOptions{})
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			one.watcher.Run(runCtx, 10*time.Millisecond)
		}()
		deadline := time.Now().Add(10 * time.Second)
		for len(escalations(t, w.db)) < 2 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		stop()
		<-done
		if got, want := escalations(t, w.db), sorted(first.ID+":claim", second.ID+":claim"); !slices.Equal(got, want) {
			t.Fatalf("before the restart: %v, want %v", got, want)
		}

		// While no watcher runs, both decide deadlines pass.
		c.Set(w.now.Add(4*time.Hour + time.Second))
		two := newInstance(t, dbs[1], conns[1], "two", 15*time.Second, c.Now, referrals.WatcherOptions{})
		leader, n, err := two.watcher.Step(ctx)
		if err != nil || !leader || n != 2 {
			t.Fatalf("the new instance's first step: leader=%v raised %d (%v); want it to lead at once and raise the two missed", leader, n, err)
		}
		if _, n, _ := two.watcher.Step(ctx); n != 0 {
			t.Fatalf("the next step raised %d again", n)
		}
		want4 := sorted(first.ID+":claim", second.ID+":claim", first.ID+":decide", second.ID+":decide")
		if got := escalations(t, w.db); !slices.Equal(got, want4) {
			t.Fatalf("after the restart: %v, want %v", got, want4)
		}

		// An instance that dies holding the lease: nobody else leads until
		// the lease expires, then the next one raises nothing new.
		if err := two.lease.Release(ctx); err != nil {
			t.Fatal(err)
		}
		crashed := newInstance(t, dbs[0], conns[0], "crashed", 300*time.Millisecond, c.Now, referrals.WatcherOptions{})
		if leader, _, err := crashed.watcher.Step(ctx); err != nil || !leader {
			t.Fatalf("the soon-crashed instance does not lead: %v", err)
		}
		next := newInstance(t, dbs[1], conns[1], "next", 15*time.Second, c.Now, referrals.WatcherOptions{})
		if leader, _, err := next.watcher.Step(ctx); err != nil || leader {
			t.Fatalf("another instance leads while the lease is live (%v)", err)
		}
		deadline = time.Now().Add(10 * time.Second)
		for {
			leader, n, err := next.watcher.Step(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if leader {
				if n != 0 {
					t.Errorf("after the failover %d raised again", n)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the lease of the crashed instance never expired")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got := escalations(t, w.db); !slices.Equal(got, want4) {
			t.Errorf("after the failover: %v, want %v", got, want4)
		}
		if outbox, audits := escalationRows(t, w.db); outbox != 4 || audits != 4 {
			t.Errorf("%d outbox and %d audit rows, want 4 each", outbox, audits)
		}
		if after := states(t, w.db); !maps(before, after) {
			t.Errorf("a breach changed tickets:\n before %v\n after  %v", before, after)
		}
	})
}

func TestWatcherStampsTicketsQueuedBeforeDeadlinesWereStored(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		w := newRefWorld(t, db, nil)
		r := w.act(t, w.doctor, w.draft(t, w.input(w.patient)), referral.Submit, referral.ActionInput{})
		if _, err := db.Exec(ctx, `UPDATE referrals SET claim_by = NULL, decide_by = NULL WHERE id = $1`, r.ID); err != nil {
			t.Fatal(err)
		}
		c := testclock.New(w.now.Add(time.Hour + time.Second))
		in := newInstance(t, db, kvtest.Embedded(t), "one", 15*time.Second, c.Now, referrals.WatcherOptions{})
		if n := tick(t, in.watcher); n != 0 {
			t.Fatalf("an unstamped ticket was found: %d", n)
		}
		if leader, n, err := in.watcher.Step(ctx); err != nil || !leader || n != 1 {
			t.Fatalf("the first step as leader: %v %d %v; want the ticket stamped and its claim escalated", leader, n, err)
		}
		got, err := w.st.Get(ctx, r.ID)
		if err != nil || got.ClaimBy == nil || !got.ClaimBy.Equal(*r.ClaimBy) || got.Version != r.Version {
			t.Errorf("stamped: %v %v, version %d (%v)", got.ClaimBy, r.ClaimBy, got.Version, err)
		}
	})
}

// TestWatcherJudgesByTheDomainRule checks the watcher's query against
// referral.Deadlines.Breaches over tickets of every band at several moments.
func TestWatcherJudgesByTheDomainRule(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newRefWorld(t, db, nil)
		d := referral.DefaultDeadlines()
		var tickets []referral.Referral
		for _, p := range []referral.Priority{referral.Routine, referral.Urgent, referral.Emergency} {
			in := w.input(w.patient)
			in.Priority = p
			tickets = append(tickets, w.act(t, w.doctor, w.draft(t, in), referral.Submit, referral.ActionInput{}))
		}
		c := testclock.New(time.Time{})
		in := newInstance(t, db, kvtest.Embedded(t), "one", 15*time.Second, c.Now, referrals.WatcherOptions{})
		wantSet := map[string]bool{}
		for _, after := range []time.Duration{10 * time.Minute, 16 * time.Minute, 31 * time.Minute, 61 * time.Minute,
			5 * time.Hour, 25 * time.Hour, 73 * time.Hour} {
			at := w.now.Add(after)
			c.Set(at)
			tick(t, in.watcher)
			for _, r := range tickets {
				for _, b := range d.Breaches(r, at) {
					wantSet[r.ID+":"+string(b.Kind)] = true
				}
			}
			var wantList []string
			for k := range wantSet {
				wantList = append(wantList, k)
			}
			if got := escalations(t, db); !slices.Equal(got, sorted(wantList...)) {
				t.Fatalf("at +%v: %v, want %v", after, got, sorted(wantList...))
			}
		}
		if len(wantSet) != 6 {
			t.Errorf("%d breaches over three days, want every ticket's two", len(wantSet))
		}
	})
}

// fakeSource counts how the leader loop drives a further domain.
type fakeSource struct {
	mu           sync.Mutex
	leads, ticks int
	fail         error
}

func (f *fakeSource) Name() string { return "fake deadlines" }

func (f *fakeSource) Lead(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leads++
	return nil
}

func (f *fakeSource) Tick(context.Context) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ticks++
	return 1, f.fail
}

// Further sources tick under the referrals' lease: only the leader ticks
// them, each new leadership prepares them once, and a failing source does
// not keep the referrals (or another source) from ticking.
func TestWatcherTicksItsSourcesUnderTheSameLease(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		w := newRefWorld(t, db, nil)
		r := w.act(t, w.doctor, w.draft(t, w.input(w.patient)), referral.Submit, referral.ActionInput{})
		failing, fine := &fakeSource{fail: fmt.Errorf("storage gone")}, &fakeSource{}
		c := testclock.New(w.now.Add(time.Hour + time.Second))
		conn := kvtest.Embedded(t)
		one := newInstance(t, db, conn, "one", 15*time.Second, c.Now, referrals.WatcherOptions{Sources: []referrals.Source{failing, fine}})
		two := newInstance(t, db, conn, "two", 15*time.Second, c.Now, referrals.WatcherOptions{Sources: []referrals.Source{fine}})

		leader, n, err := one.watcher.Step(ctx)
		if !leader || err == nil || !strings.Contains(err.Error(), "fake deadlines: storage gone") || n != 3 {
			t.Fatalf("step: leader=%v raised %d err %v; want the claim breach and both sources' counts, and the failure named", leader, n, err)
		}
		if got := escalations(t, db); !slices.Equal(got, []string{r.ID + ":claim"}) {
			t.Errorf("the referrals did not tick beside a failing source: %v", got)
		}
		if leader, _, _ := two.watcher.Step(ctx); leader {
			t.Fatal("two instances lead")
		}
		one.watcher.Step(ctx)
		if failing.leads != 1 || failing.ticks != 2 || fine.leads != 1 || fine.ticks != 2 {
			t.Errorf("failing %d leads %d ticks, fine %d leads %d ticks; want 1 and 2 each (only the leader ticks)",
				failing.leads, failing.ticks, fine.leads, fine.ticks)
		}
	})
}
