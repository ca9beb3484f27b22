package sqldb_test

import (
	"context"
	"testing"
	"time"

	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
)

// migrateTo applies the embedded migrations before version upto, recording
// them as Migrate does, so that Migrate later applies the rest.
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
	if _, err := db.Exec(ctx, `CREATE TABLE schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at `+ts+` NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Version >= upto {
			return
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
// joined and are held by no instance, so the presence sweep leaves them to
// whoever recorded them: an instance of the previous version, still running
// during a rolling upgrade, closes its own.
func TestPresenceMigrationKeepsEarlierConnections(t *testing.T) {
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
			joined := sqldb.Now().Add(-time.Hour)
			left := joined.Add(10 * time.Minute)
			const session = "0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0c01"
			if _, err := db.Exec(ctx, `INSERT INTO consult_sessions (id, kind, urgency, requester_id, requesting_hospital_id,
				target_hospital_id, question, status, created_at, updated_at)
				VALUES ($1, 'teaching_round', 'routine', $2, $2, $3, 'q', 'live', $4, $4)`,
				session, "0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0c02", "0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0c03", joined); err != nil {
				t.Fatal(err)
			}
			rows := map[string]*time.Time{"0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0c11": nil, "0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0c12": &left}
			for id, leftAt := range rows {
				if _, err := db.Exec(ctx, `INSERT INTO consult_presence (id, session_id, user_id, hospital_id, joined_at, left_at)
					VALUES ($1, $2, $3, $3, $4, $5)`, id, session, "0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0c04", joined, leftAt); err != nil {
					t.Fatal(err)
				}
			}
			if applied, err := sqldb.Migrate(ctx, db); err != nil || len(applied) == 0 || applied[0] != 14 {
				t.Fatalf("migrate: %v %v", applied, err)
			}

			for id, leftAt := range rows {
				var seen time.Time
				var instance *string
				var gotLeft *time.Time
				if err := db.QueryRow(ctx, `SELECT seen_at, instance_id, left_at FROM consult_presence WHERE id = $1`, id).Scan(
					&seen, &instance, &gotLeft); err != nil {
					t.Fatal(err)
				}
				if !seen.Equal(joined) || instance != nil || (gotLeft == nil) != (leftAt == nil) {
					t.Errorf("row %s: seen %v (want %v), instance %v, left %v", id, seen, joined, instance, gotLeft)
				}
			}
			swept, err := store.NewConsults(db).SweepPresence(ctx, sqldb.Now(), 10)
			if err != nil || len(swept) != 0 {
				t.Fatalf("the sweep took earlier connections: %+v %v", swept, err)
			}
		})
	}
}
