package sqldb

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Migrations are plain SQL files, one set per engine, embedded in the binary
// and applied in version order at start. A small runner rather than a library:
// the needs are tiny (forward-only, embedded, one transaction per file, safe
// when several instances start at once) and the two schema sets must stay
// hand-written anyway because the engines' types differ.
//
//go:embed migrations
var migrationFS embed.FS

// Migration is one versioned schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations lists the embedded migrations for a dialect in version order.
func Migrations(d Dialect) ([]Migration, error) {
	dir := path.Join("migrations", d.String())
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, err
	}
	var out []Migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", e.Name())
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev, e.Name(), v)
		}
		seen[v] = e.Name()
		b, err := fs.ReadFile(migrationFS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// migrateLock is the advisory lock key that serialises migrations when
// several instances start against one PostgreSQL at the same moment.
const migrateLock = 7_102_026

// Migrate applies every embedded migration not yet recorded, each in its own
// transaction together with its schema_migrations row. It returns the
// versions it applied.
func Migrate(ctx context.Context, db DB) ([]int, error) {
	ms, err := Migrations(db.Dialect())
	if err != nil {
		return nil, err
	}
	ts := "timestamptz"
	if db.Dialect() == SQLite {
		ts = "text"
	}
	err = db.InTx(ctx, func(ctx context.Context) error {
		if err := lockMigrations(ctx, db); err != nil {
			return err
		}
		_, err := db.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version integer PRIMARY KEY, name text NOT NULL, applied_at `+ts+` NOT NULL)`)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	var applied []int
	for _, m := range ms {
		did := false
		err := db.InTx(ctx, func(ctx context.Context) error {
			if err := lockMigrations(ctx, db); err != nil {
				return err
			}
			var n int
			if err := db.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`, m.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := db.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("apply migration %04d_%s: %w", m.Version, m.Name, err)
			}
			if _, err := db.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.Version, m.Name, Now()); err != nil {
				return err
			}
			did = true
			return nil
		})
		if err != nil {
			return applied, err
		}
		if did {
			applied = append(applied, m.Version)
		}
	}
	return applied, nil
}

// lockMigrations serialises migrating instances on PostgreSQL until the
// transaction ends; SQLite's write transactions are exclusive already.
func lockMigrations(ctx context.Context, db DB) error {
	if db.Dialect() != Postgres {
		return nil
	}
	_, err := db.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock)
	return err
}
