package consults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"duikou/consult"
	"duikou/internal/consults"
	"duikou/internal/directory"
	"duikou/internal/kv/kvtest"
	"duikou/internal/queue"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/internal/testclock"
)

// listener collects one hospital's session notices.
type listener struct {
	ch   <-chan queue.SessionNotice
	got  []queue.SessionNotice
	stop func()
}

// drain reads what arrives until the channel is quiet for a moment.
func (l *listener) drain() []string {
	for {
		select {
		case n := <-l.ch:
			l.got = append(l.got, n)
			continue
		case <-time.After(300 * time.Millisecond):
		}
		break
	}
	var out []string
	for _, n := range l.got {
		out = append(out, n.Type+" "+n.ID+" "+string(n.Status)+fmt.Sprintf("@%d", n.Version))
	}
	sort.Strings(out)
	return out
}

// pairOtherCounty pairs the other county hospital with the tertiary one, so
// it may be invited to its teaching rounds.
func (w *world) pairOtherCounty(t *testing.T) {
	t.Helper()
	if err := store.NewDirectory(w.db).CreatePairing(context.Background(), directory.Pairing{ID: newID(), SupportingHospitalID: w.tertiary,
		RecipientHospitalID: w.otherCounty, StartsOn: w.now.AddDate(0, -1, 0).Format(time.DateOnly),
		Status: directory.PairingActive, Version: 1, CreatedAt: w.now, UpdatedAt: w.now}); err != nil {
		t.Fatal(err)
	}
}

// round is a teaching round the county asks of the tertiary hospital, with
// the other county hospital invited.
func (w *world) round(t *testing.T) consult.Session {
	t.Helper()
	s, err := w.svc.Request(context.Background(), w.doctor, consult.Input{Kind: consult.TeachingRound, Urgency: consult.Routine,
		TargetHospitalID: w.tertiary, TargetDepartmentIDs: []string{w.cardio}, Question: "急性冠脉综合征的基层识别",
		AttendeeHospitalIDs: []string{w.otherCounty}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func unpublished(t *testing.T, db sqldb.DB) int {
	t.Helper()
	return scalar(t, db, `SELECT COUNT(*) FROM outbox WHERE published_at IS NULL AND topic LIKE 'consult.%'`)
}

func TestRelayTellsEveryHospitalTakingPartAndLeavesNoRowBehind(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		w.pairOtherCounty(t)
		q := queue.New(kvtest.Embedded(t), queue.Options{})
		listen := map[string]*listener{}
		for _, h := range []string{w.county, w.tertiary, w.otherCounty} {
			ch, stop, err := q.SubscribeSessions(ctx, h)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(stop)
			listen[h] = &listener{ch: ch, stop: stop}
		}

		requested := w.request(t, consult.Emergency)
		accepted := w.act(t, w.head, requested, consult.Accept,
			consult.ActionInput{Specialists: []consult.Assignment{{SpecialistID: w.cardiologist.UserID, DepartmentID: w.cardio}}})
		round := w.round(t)
		late := w.request(t, consult.Emergency)
		c := testclock.New(w.now.Add(time.Hour))
		if n, err := w.watcher(c, consults.WatcherOptions{}).Tick(ctx); err != nil || n != 1 {
			t.Fatalf("escalated %d (%v), want the late request", n, err)
		}
		if n := unpublished(t, db); n != 5 {
			t.Fatalf("%d outbox rows waiting, want 4 changes and 1 escalation", n)
		}

		relay := consults.NewRelay(db, store.NewConsults(db), q, nil)
		if n, err := relay.Flush(ctx); err != nil || n != 5 {
			t.Fatalf("flushed %d (%v), want 5", n, err)
		}
		if n := unpublished(t, db); n != 0 {
			t.Fatalf("%d rows left unpublished", n)
		}
		if n, err := relay.Flush(ctx); err != nil || n != 0 {
			t.Fatalf("a second flush took %d (%v)", n, err)
		}

		changed := func(s consult.Session) string {
			return fmt.Sprintf("changed %s %s@%d", s.ID, s.Status, s.Version)
		}
		both := []string{changed(requested), changed(accepted), changed(round), changed(late)}
		want := map[string][]string{
			w.county:      both,
			w.tertiary:    append(slices.Clone(both), fmt.Sprintf("escalated %s %s@0", late.ID, consult.Requested)),
			w.otherCounty: {changed(round)}, // invited to the round, nothing else
		}
		for h, l := range listen {
			got := l.drain()
			sort.Strings(want[h])
			if !slices.Equal(got, want[h]) {
				t.Errorf("hospital %s heard\n %v\nwant\n %v", h, got, want[h])
			}
			for _, n := range l.got {
				b, _ := json.Marshal(n)
				for _, leak := range []string{w.patient, requested.Question, requested.ClinicalSummary} {
					if strings.Contains(string(b), leak) {
						t.Errorf("a notice carries %q: %s", leak, b)
					}
				}
				if n.Type == queue.SessionEscalated && (n.EscalationID == "" || n.Due == nil || !n.Due.Equal(*late.RespondBy)) {
					t.Errorf("escalation notice %s", b)
				}
				if n.Type == queue.SessionChanged && n.ID == late.ID && (n.RespondBy == nil || !n.RespondBy.Equal(*late.RespondBy)) {
					t.Errorf("a waiting request's notice without its deadline: %s", b)
				}
			}
		}
	})
}

// A backlog larger than a batch (the rows that piled up while nothing
// consumed them) is drained in one flush, and rows written before changes
// named the invited hospitals still reach them.
func TestRelayDrainsABacklog(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		st := store.NewConsults(db)
		w.pairOtherCounty(t)
		s, round := w.request(t, consult.Urgent), w.round(t)
		// Messages in the form written before they named invited hospitals.
		old := func(x consult.Session, version int) string {
			return fmt.Sprintf(`{"id":%q,"kind":%q,"status":"requested","requesting_hospital_id":%q,"target_hospital_id":%q,"version":%d}`,
				x.ID, x.Kind, w.county, w.tertiary, version)
		}
		err := db.InTx(ctx, func(ctx context.Context) error {
			for i := range 520 {
				if err := st.EnqueueOutbox(ctx, consults.TopicChanged, s.ID, old(s, i+1), w.now); err != nil {
					return err
				}
			}
			return st.EnqueueOutbox(ctx, consults.TopicChanged, round.ID, old(round, 7), w.now)
		})
		if err != nil {
			t.Fatal(err)
		}
		q := queue.New(kvtest.Embedded(t), queue.Options{})
		ch, stop, err := q.SubscribeSessions(ctx, w.otherCounty)
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		invited := &listener{ch: ch}
		relay := consults.NewRelay(db, st, q, nil)
		if n, err := relay.Flush(ctx); err != nil || n != 523 {
			t.Fatalf("flushed %d (%v), want 523", n, err)
		}
		if n := unpublished(t, db); n != 0 {
			t.Errorf("%d rows left", n)
		}
		want := []string{fmt.Sprintf("changed %s requested@1", round.ID), fmt.Sprintf("changed %s requested@7", round.ID)}
		if got := invited.drain(); !slices.Equal(got, want) {
			t.Errorf("the invited hospital heard %v, want %v", got, want)
		}
	})
}
