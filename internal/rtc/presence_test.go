package rtc

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"duikou/consult"
	"duikou/internal/audit"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/internal/testclock"
	"duikou/signaling"
)

// Two instances hold connections to one teaching round. One keeps
// confirming; the other goes silent (dead, or paused): the sweep closes its
// connections at their last confirmation and leaves the confirmed ones
// open. When the silent one comes back, a late leave keeps the sweep's time
// and a participant still connected is recorded again from its next
// confirmation; attendance counts exactly that.
func TestTheSweepClosesASilentInstancesConnectionsAtTheirLastConfirmation(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewConsults(db)
		t0 := sqldb.Now()
		clk := testclock.New(t0)
		room := uuid.NewString()
		host, guestHospital := uuid.NewString(), uuid.NewString()
		if err := st.CreateSession(ctx, consult.Session{ID: room, Kind: consult.TeachingRound, Urgency: consult.Routine,
			RequesterID: uuid.NewString(), RequestingHospitalID: host, TargetHospitalID: uuid.NewString(), Question: "查房",
			AttendeeHospitalIDs: []string{guestHospital}, Status: consult.Live, Version: 1, CreatedAt: t0, UpdatedAt: t0,
			StartedAt: &t0}); err != nil {
			t.Fatal(err)
		}
		instance := func(id string) *Service {
			return New(Config{Sessions: st, Audit: &auditLog{}, Instance: id, Now: clk.Now})
		}
		live, silent := instance("live"), instance("silent")
		al := &auditLog{}
		sweep := NewPresenceSweep(db, st, al, SweepOptions{Batch: 1, Now: clk.Now})
		at := func(d time.Duration) time.Time { return t0.Add(d) }
		confirm := func(svcs ...*Service) {
			t.Helper()
			for _, s := range svcs {
				if err := s.Confirm(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
		person := func(hospital string) signaling.ParticipantInfo {
			return signaling.ParticipantInfo{ID: uuid.NewString(), Hospital: hospital}
		}
		stays, leaves, comesBack := person(host), person(guestHospital), person(guestHospital)
		live.Joined(room, stays, t0)
		silent.Joined(room, leaves, t0)
		silent.Joined(room, comesBack, t0)
		seenAt := func(user string) []time.Time {
			t.Helper()
			rows, err := db.Query(ctx, `SELECT seen_at FROM consult_presence WHERE user_id = $1 ORDER BY joined_at`, user)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var out []time.Time
			for rows.Next() {
				var at time.Time
				if err := rows.Scan(&at); err != nil {
					t.Fatal(err)
				}
				out = append(out, at)
			}
			return out
		}

		clk.Set(at(30 * time.Second))
		confirm(live, silent)
		if got := seenAt(leaves.ID); !slices.Equal(got, []time.Time{at(30 * time.Second)}) {
			t.Fatalf("a confirmed connection was last seen at %v", got)
		}
		// The silent instance says nothing more; the live one goes on.
		for _, d := range []time.Duration{time.Minute, 90 * time.Second, 2 * time.Minute} {
			clk.Set(at(d))
			confirm(live)
			if n, err := sweep.Tick(ctx); err != nil || n != 0 || len(al.entries) != 0 {
				t.Fatalf("at %v, within StaleAfter of the last confirmation: %d %v %+v", d, n, err, al.entries)
			}
		}
		clk.Set(at(2*time.Minute + time.Second))
		if _, err := sweep.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		if len(al.entries) != 2 {
			t.Fatalf("audit %+v", al.entries)
		}
		for _, e := range al.entries {
			if e.Action != ActionCloseSilent || e.ActorID != "system" || e.ResourceID != room || e.ActorHospitalID != guestHospital ||
				e.Outcome != audit.Success || e.PatientID != "" {
				t.Fatalf("audit entry %+v", e)
			}
		}
		if got := seenAt(stays.ID); !slices.Equal(got, []time.Time{at(2 * time.Minute)}) {
			t.Fatalf("the live instance's connection: %v", got)
		}

		// The silent instance was only paused: the leave it reports now is
		// later than the sweep's and changes nothing; the participant still
		// connected is recorded again from its next confirmation.
		clk.Set(at(4 * time.Minute))
		silent.Left(room, leaves.ID, at(3*time.Minute))
		confirm(silent, live)
		clk.Set(at(5 * time.Minute))
		silent.Left(room, comesBack.ID, at(5*time.Minute))
		live.Left(room, stays.ID, at(10*time.Minute))
		if n, err := sweep.Tick(ctx); err != nil || n != 0 || len(al.entries) != 2 {
			t.Fatalf("a second sweep: %d %v %+v", n, err, al.entries)
		}

		ps, err := st.Presence(ctx, room)
		if err != nil {
			t.Fatal(err)
		}
		type span struct{ joined, left time.Time }
		spans := map[string][]span{}
		for _, p := range ps {
			if p.LeftAt == nil {
				t.Fatalf("a connection is still open: %+v", p)
			}
			spans[p.UserID] = append(spans[p.UserID], span{p.JoinedAt, *p.LeftAt})
		}
		want := map[string][]span{
			stays.ID:     {{t0, at(10 * time.Minute)}},
			leaves.ID:    {{t0, at(30 * time.Second)}},
			comesBack.ID: {{t0, at(30 * time.Second)}, {at(4 * time.Minute), at(5 * time.Minute)}},
		}
		for user, w := range want {
			g := spans[user]
			if len(g) != len(w) {
				t.Fatalf("user %s: %+v, want %+v", user, g, w)
			}
			for i := range w {
				if !g[i].joined.Equal(w[i].joined) || !g[i].left.Equal(w[i].left) {
					t.Fatalf("user %s: %+v, want %+v", user, g, w)
				}
			}
		}
		got := map[string]consult.Attendance{}
		for _, a := range consult.MergeAttendance(ps, t0, at(time.Hour), consult.ReconnectGrace) {
			got[a.UserID] = a
		}
		for user, d := range map[string]struct {
			dur     time.Duration
			periods int
		}{stays.ID: {10 * time.Minute, 1}, leaves.ID: {30 * time.Second, 1}, comesBack.ID: {90 * time.Second, 2}} {
			if a := got[user]; a.Duration != d.dur || a.Periods != d.periods {
				t.Errorf("attendance of %s: %+v, want %v in %d", user, a, d.dur, d.periods)
			}
		}
	})
}

// A connection left open before connections were held by instances
// (migration 0014) is closed by the sweep at its joining, audited like the
// others, once. A connection of a service is always held, by a random
// instance when none was configured, so a live one that joined as long ago
// but is still confirmed stays open.
func TestTheSweepClosesAConnectionNoInstanceHolds(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewConsults(db)
		t0 := sqldb.Now()
		clk := testclock.New(t0)
		room, host := uuid.NewString(), uuid.NewString()
		if err := st.CreateSession(ctx, consult.Session{ID: room, Kind: consult.TeachingRound, Urgency: consult.Routine,
			RequesterID: uuid.NewString(), RequestingHospitalID: host, TargetHospitalID: uuid.NewString(), Question: "查房",
			Status: consult.Live, Version: 1, CreatedAt: t0, UpdatedAt: t0, StartedAt: &t0}); err != nil {
			t.Fatal(err)
		}
		leftover, leftoverUser := uuid.NewString(), uuid.NewString()
		if _, err := db.Exec(ctx, `INSERT INTO consult_presence (id, session_id, user_id, hospital_id, joined_at, seen_at)
			VALUES ($1, $2, $3, $4, $5, $5)`, leftover, room, leftoverUser, host, t0); err != nil {
			t.Fatal(err)
		}
		live := New(Config{Sessions: st, Audit: &auditLog{}, Now: clk.Now})
		stays := signaling.ParticipantInfo{ID: uuid.NewString(), Hospital: host}
		live.Joined(room, stays, t0)

		al := &auditLog{}
		sweep := NewPresenceSweep(db, st, al, SweepOptions{Now: clk.Now})
		for _, d := range []time.Duration{time.Minute, 5 * time.Minute, 10 * time.Minute} {
			clk.Set(t0.Add(d))
			if err := live.Confirm(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := sweep.Tick(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if len(al.entries) != 1 {
			t.Fatalf("audit %+v, want the leftover's closing only", al.entries)
		}
		e := al.entries[0]
		if e.Action != ActionCloseSilent || e.ActorID != "system" || e.ResourceID != room || e.ActorHospitalID != host ||
			!strings.Contains(e.Detail, leftover) || !strings.Contains(e.Detail, "no instance held it") {
			t.Fatalf("audit entry %+v", e)
		}
		ps, err := st.Presence(ctx, room)
		if err != nil || len(ps) != 2 {
			t.Fatalf("presence %+v %v", ps, err)
		}
		for _, p := range ps {
			switch p.UserID {
			case leftoverUser:
				if p.LeftAt == nil || !p.LeftAt.Equal(t0) {
					t.Errorf("the leftover closed at %v, want its joining %v", p.LeftAt, t0)
				}
			case stays.ID:
				if p.LeftAt != nil {
					t.Errorf("a live connection was closed at %v", p.LeftAt)
				}
			}
		}
	})
}

// A leave that could not be written is written at its own time before the
// next confirmation, so this instance does not keep the row open.
func TestAFailedLeaveIsWrittenAtTheNextConfirmation(t *testing.T) {
	st := &fakeSessions{s: session(consult.TeachingRound, consult.Live)}
	svc := New(Config{Sessions: st, Audit: &auditLog{}, Instance: "here", Now: func() time.Time { return start }})
	svc.Joined("s-1", signaling.ParticipantInfo{ID: "u-guest", Hospital: guest}, start)
	svc.Joined("s-1", signaling.ParticipantInfo{ID: "u-cd", Hospital: county}, start)
	if st.instances[0] != "here" {
		t.Fatalf("joined under %q", st.instances[0])
	}
	st.failLeave = errors.New("database unreachable")
	svc.Left("s-1", "u-guest", start.Add(time.Minute))
	if err := svc.Confirm(context.Background()); err == nil {
		t.Fatal("a confirmation whose leave failed again reported no error")
	}
	st.failLeave = nil
	if err := svc.Confirm(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(st.leaves, []string{"presence-u-guest-0"}) {
		t.Fatalf("leaves %v", st.leaves)
	}
	// Both confirmations found u-cd open: nobody was recorded again.
	if len(st.joins) != 2 {
		t.Fatalf("joins %+v", st.joins)
	}
}
