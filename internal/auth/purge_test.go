package auth_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"duikou/internal/auth"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
)

// countingPurgeStore records the size of each purge statement.
type countingPurgeStore struct {
	auth.PurgeStore
	deleted []int64
	fail    error
}

func (c *countingPurgeStore) PurgeSessions(ctx context.Context, before time.Time, limit int) (int64, error) {
	if c.fail != nil {
		return 0, c.fail
	}
	n, err := c.PurgeStore.PurgeSessions(ctx, before, limit)
	c.deleted = append(c.deleted, n)
	return n, err
}

func (c *countingPurgeStore) take() []int64 {
	out := c.deleted
	c.deleted = nil
	return out
}

func sessionCount(t *testing.T, db sqldb.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), `SELECT count(*) FROM sessions`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSessionPurge: sessions that ended (logged out, left idle, expired)
// more than the retention ago go, in statements of at most Batch and runs of
// at most MaxBatches; live and recently ended sessions stay.
func TestSessionPurge(t *testing.T) {
	t.Parallel()
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		f := newFixture(t, db) // the administrator's session, left idle
		f.createUser(t, "chen.jie")
		out := f.login(t, "chen.jie", testPassword)
		if err := f.svc.Logout(ctx, out.Principal); err != nil {
			t.Fatal(err)
		}
		f.login(t, "chen.jie", testPassword) // left idle

		// Just past the retention after their absolute expiry, all three
		// are due; then one session is opened and one ended now.
		f.clock.Advance(auth.SessionRetention + 12*time.Hour + time.Minute)
		live := f.login(t, "chen.jie", testPassword)
		ended := f.login(t, "chen.jie", testPassword)
		if err := f.svc.Logout(ctx, ended.Principal); err != nil {
			t.Fatal(err)
		}
		if n := sessionCount(t, db); n != 5 {
			t.Fatalf("%d sessions before the purge, want 5", n)
		}

		st := &countingPurgeStore{PurgeStore: f.users}
		p := auth.NewSessionPurge(st, auth.PurgeOptions{Batch: 1, MaxBatches: 2, Now: f.clock.Now})
		ticks := []struct {
			advance time.Duration
			want    []int64 // rows deleted by each statement of the tick
			left    int
		}{
			{want: []int64{1, 1}, left: 3},                  // cut short by MaxBatches
			{want: []int64{1, 0}, left: 2},                  // goes on at once, and finishes
			{want: nil, left: 2},                            // the next run is an hour away
			{advance: time.Hour, want: []int64{0}, left: 2}, // due again, nothing to do
		}
		for i, tk := range ticks {
			f.clock.Advance(tk.advance)
			if n, err := p.Tick(ctx); err != nil || n != 0 {
				t.Fatalf("tick %d = %d, %v", i+1, n, err)
			}
			if got := st.take(); !slices.Equal(got, tk.want) {
				t.Errorf("tick %d deleted %v per statement, want %v", i+1, got, tk.want)
			}
			if n := sessionCount(t, db); n != tk.left {
				t.Errorf("after tick %d: %d sessions, want %d", i+1, n, tk.left)
			}
			if i == 2 {
				// Still within its idle timeout: it must go on working.
				if _, err := f.svc.Authenticate(ctx, live.Token); err != nil {
					t.Errorf("the live session after the purge: %v", err)
				}
			}
		}

		// A failed statement is retried a minute later, not at every tick.
		st.fail = errors.New("database gone")
		f.clock.Advance(time.Hour)
		if _, err := p.Tick(ctx); err == nil {
			t.Error("a failing purge reported no error")
		}
		st.fail = nil
		if _, err := p.Tick(ctx); err != nil || len(st.take()) != 0 {
			t.Errorf("retried at once after a failure (%v)", err)
		}
		f.clock.Advance(time.Minute)
		if _, err := p.Tick(ctx); err != nil || len(st.take()) != 1 {
			t.Errorf("not retried a minute after a failure (%v)", err)
		}
	})
}
