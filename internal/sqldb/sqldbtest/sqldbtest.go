// Package sqldbtest gives tests fresh, migrated databases on both engines.
//
// PostgreSQL comes from DUIKOU_TEST_DATABASE_URL (the test command starts a
// throwaway server and sets it); each call creates its own database there and
// drops it afterwards. When DUIKOU_TEST_SERVICES=required, a missing server
// fails the test instead of skipping it.
package sqldbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"duikou/internal/sqldb"
)

// Required reports whether the test command demands real servers.
func Required() bool { return os.Getenv("DUIKOU_TEST_SERVICES") == "required" }

// ForEach runs fn once per engine, each with a fresh migrated database.
func ForEach(t *testing.T, fn func(t *testing.T, db sqldb.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}

// SQLite opens a migrated SQLite database in a temporary directory.
func SQLite(t testing.TB) sqldb.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sqldb.OpenSQLite(ctx, t.TempDir()+"/duikou.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if _, err := sqldb.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	return db
}

// PostgresURL creates an empty database on the test server and returns its
// URL; the database is dropped when the test ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("DUIKOU_TEST_DATABASE_URL")
	if base == "" {
		if Required() {
			t.Fatal("DUIKOU_TEST_DATABASE_URL is not set but DUIKOU_TEST_SERVICES=required")
		}
		t.Skip("no PostgreSQL: set DUIKOU_TEST_DATABASE_URL or run the README's test command")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect test postgres: %v", err)
	}
	defer admin.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	name := "duikou_test_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// Postgres opens a fresh migrated PostgreSQL database.
func Postgres(t testing.TB) sqldb.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sqldb.OpenPostgres(ctx, PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if _, err := sqldb.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	return db
}
