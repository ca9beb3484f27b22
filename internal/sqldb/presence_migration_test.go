package sqldb_test

import (
	"context"
	"testing"
	"time"

	"duikou/consult"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
)

// migrateTo applies the embedded migrations before version upto not yet
// recorded, recording them as Migrate does, so that Migrate later applies
// the rest.
func migrateTo(t *testing.T, db sqldb.DB, upto int) {
	t.Helper()
	ctx := context.Background()
	ms, err := sqldb.Migrations(db.Dialect())
	if err != nil {
		t.Fatal(err)
	}
	ts := "timestamptz"
	if db.Dialect() == sqldb.SQLite {
		ts = "text"
	}
	if _, err := db.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at `+ts+` NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Version >= upto {
			return
		}
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`, m.Version).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			continue
		}
		if _, err := db.Exec(ctx, m.SQL); err != nil {
			t.Fatalf("migration %d: %v", m.Version, err)
		}
		if _, err := db.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.Version, m.Name, sqldb.Now()); err != nil {
			t.Fatal(err)
		}
	}
}

// Connections recorded before migration 0014 were last seen when they
// joined and are held by no instance; so are those an instance of a
// version before 0014 recorded after it (0018 says when they were last
// seen). Nobody confirms or closes them: from 0018 on, every new connection
// being held, the presence sweep closes those left open at their joining.
// It leaves the closed ones, and the held ones their instance confirms.
func TestPresenceMigrationsLeaveEarlierConnectionsToTheSweep(t *testing.T) {
	ctx := context.Background()
	open := map[string]func(t *testing.T) sqldb.DB{
		"sqlite": func(t *testing.T) sqldb.DB {
			db, err := sqldb.OpenSQLite(ctx, t.TempDir()+"/duikou.db")
			if err != nil {
				t.Fatal(err)
			}
			return db
		},
		"postgres": func(t *testing.T) sqldb.DB {
			db, err := sqldb.OpenPostgres(ctx, sqldbtest.PostgresURL(t))
			if err != nil {
				t.Fatal(err)
			}
			return db
		},
	}
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			db := open[engine](t)
			t.Cleanup(db.Close)
			migrateTo(t, db, 14)
			now := sqldb.Now()
			joined := now.Add(-time.Hour)
			left := joined.Add(10 * time.Minute)
			const session, user = "0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0c01", "0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0c04"
			if _, err := db.Exec(ctx, `INSERT INTO consult_sessions (id, kind, urgency, requester_id, requesting_hospital_id,
				target_hospital_id, question, status, created_at, updated_at)
				VALUES ($1, 'teaching_round', 'routine', $2, $2, $3, 'q', 'live', $4, $4)`,
				session, "0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0c02", "0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0c03", joined); err != nil {
				t.Fatal(err)
			}
			const earlierOpen, earlierClosed = "0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0c11", "0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0c12"
			for id, leftAt := range map[string]*time.Time{earlierOpen: nil, earlierClosed: &left} {
				if _, err := db.Exec(ctx, `INSERT INTO consult_presence (id, session_id, user_id, hospital_id, joined_at, left_at)
					VALUES ($1, $2, $3, $3, $4, $5)`, id, session, user, joined, leftAt); err != nil {
					t.Fatal(err)
				}
			}
			migrateTo(t, db, 18)
			for _, id := range []string{earlierOpen, earlierClosed} {
				var seen time.Time
				var instance *string
				if err := db.QueryRow(ctx, `SELECT seen_at, instance_id FROM consult_presence WHERE id = $1`, id).Scan(
					&seen, &instance); err != nil {
					t.Fatal(err)
				}
				if !seen.Equal(joined) || instance != nil {
					t.Errorf("row %s after 0014: seen %v (want %v), instance %v", id, seen, joined, instance)
				}
			}

			// Between 0014 and 0018 an instance of a version before 0014
			// records a connection as it always did, while one of this
			// version holds another, older, and keeps confirming it.
			const unseen = "0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0c13"
			unseenJoined := now.Add(-30 * time.Minute)
			if _, err := db.Exec(ctx, `INSERT INTO consult_presence (id, session_id, user_id, hospital_id, joined_at)
				VALUES ($1, $2, $3, $3, $4)`, unseen, session, user, unseenJoined); err != nil {
				t.Fatal(err)
			}
			st := store.NewConsults(db)
			held, err := st.RecordJoin(ctx, consult.Presence{SessionID: session, UserID: user, HospitalID: user,
				JoinedAt: now.Add(-2 * time.Hour)}, "live")
			if err != nil {
				t.Fatal(err)
			}
			if ids, err := st.ConfirmPresence(ctx, "live", now); err != nil || len(ids) != 1 {
				t.Fatalf("confirm: %v %v", ids, err)
			}

			if applied, err := sqldb.Migrate(ctx, db); err != nil || len(applied) == 0 || applied[0] != 18 {
				t.Fatalf("migrate: %v %v", applied, err)
			}
			swept, err := st.SweepPresence(ctx, now.Add(-time.Minute), 10)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]time.Time{}
			for _, p := range swept {
				if p.Instance != "" {
					t.Errorf("swept a held connection: %+v", p)
				}
				got[p.ID] = p.LeftAt
			}
			want := map[string]time.Time{earlierOpen: joined, unseen: unseenJoined}
			if len(got) != len(want) || !got[earlierOpen].Equal(joined) || !got[unseen].Equal(unseenJoined) {
				t.Fatalf("swept %v, want %v", got, want)
			}
			var closedLeft time.Time
			var heldLeft *time.Time
			if err := db.QueryRow(ctx, `SELECT (SELECT left_at FROM consult_presence WHERE id = $1),
				(SELECT left_at FROM consult_presence WHERE id = $2)`, earlierClosed, held).Scan(&closedLeft, &heldLeft); err != nil {
				t.Fatal(err)
			}
			if !closedLeft.Equal(left) || heldLeft != nil {
				t.Errorf("the closed connection left at %v (want %v), the held one at %v", closedLeft, left, heldLeft)
			}
		})
	}
}
