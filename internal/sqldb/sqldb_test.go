package sqldb_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
)

func TestEngines(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		now := sqldb.Now()
		id := "0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0a01"
		if _, err := db.Exec(ctx, `INSERT INTO hospitals (id, name, org_code, tier, province, created_at, updated_at)
			VALUES ($1, $2, $3, 'tertiary', 'P', $4, $4)`, id, "医院", "12345", now); err != nil {
			t.Fatal(err)
		}

		t.Run("instants round-trip exactly in UTC", func(t *testing.T) {
			var got time.Time
			var null *time.Time
			if err := db.QueryRow(ctx, `SELECT created_at, NULL FROM hospitals WHERE id = $1`, id).Scan(&got, &null); err != nil {
				t.Fatal(err)
			}
			if !got.Equal(now) || got.Location() != time.UTC || null != nil {
				t.Fatalf("got %v (%v), null %v; want %v UTC", got, got.Location(), null, now)
			}
		})

		t.Run("unique violation is recognised", func(t *testing.T) {
			_, err := db.Exec(ctx, `INSERT INTO hospitals (id, name, org_code, tier, province, created_at, updated_at)
				VALUES ($1, 'x', '12345', 'tertiary', 'P', $2, $2)`, "0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0a02", now)
			if !errors.Is(err, sqldb.ErrUniqueViolation) {
				t.Fatalf("err = %v, want ErrUniqueViolation", err)
			}
		})

		t.Run("no rows is recognised", func(t *testing.T) {
			var s string
			err := db.QueryRow(ctx, `SELECT name FROM hospitals WHERE org_code = $1`, "nope").Scan(&s)
			if !errors.Is(err, sqldb.ErrNoRows) {
				t.Fatalf("err = %v, want ErrNoRows", err)
			}
		})

		t.Run("a failed transaction leaves nothing behind", func(t *testing.T) {
			boom := errors.New("boom")
			err := db.InTx(ctx, func(ctx context.Context) error {
				if _, err := db.Exec(ctx, `UPDATE hospitals SET name = 'changed' WHERE id = $1`, id); err != nil {
					return err
				}
				// A nested InTx joins the outer transaction.
				return db.InTx(ctx, func(ctx context.Context) error { return boom })
			})
			if !errors.Is(err, boom) {
				t.Fatalf("err = %v", err)
			}
			var name string
			db.QueryRow(ctx, `SELECT name FROM hospitals WHERE id = $1`, id).Scan(&name)
			if name != "医院" {
				t.Fatalf("name = %q after rollback", name)
			}
		})

		t.Run("a failed inner transaction undoes only its own writes", func(t *testing.T) {
			err := db.InTx(ctx, func(ctx context.Context) error {
				if _, err := db.Exec(ctx, `UPDATE hospitals SET county = 'outer' WHERE id = $1`, id); err != nil {
					return err
				}
				inner := db.InTx(ctx, func(ctx context.Context) error {
					if _, err := db.Exec(ctx, `UPDATE hospitals SET name = 'inner' WHERE id = $1`, id); err != nil {
						return err
					}
					// A failing statement: on PostgreSQL it aborts the
					// transaction until the savepoint is rolled back.
					_, err := db.Exec(ctx, `INSERT INTO hospitals (id, name, org_code, tier, province, created_at, updated_at)
						VALUES ($1, 'dup', '12345', 'tertiary', 'P', $2, $2)`, "0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0a03", now)
					return err
				})
				if !errors.Is(inner, sqldb.ErrUniqueViolation) {
					t.Errorf("inner err = %v", inner)
				}
				// The outer transaction goes on after the inner failure.
				_, err := db.Exec(ctx, `UPDATE hospitals SET address = 'after' WHERE id = $1`, id)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			var name, county, address string
			db.QueryRow(ctx, `SELECT name, county, address FROM hospitals WHERE id = $1`, id).Scan(&name, &county, &address)
			if name != "医院" || county != "outer" || address != "after" {
				t.Fatalf("name %q county %q address %q; want the inner write undone and the outer ones kept", name, county, address)
			}
		})

		t.Run("migrations are applied once", func(t *testing.T) {
			applied, err := sqldb.Migrate(ctx, db)
			if err != nil || len(applied) != 0 {
				t.Fatalf("second Migrate applied %v, err %v", applied, err)
			}
		})
	})
}

// Several instances starting at once against one PostgreSQL must apply each
// migration exactly once (the runner takes an advisory lock).
func TestConcurrentMigrationsOnPostgres(t *testing.T) {
	url := sqldbtest.PostgresURL(t)
	ctx := context.Background()
	const instances = 4
	errs := make(chan error, instances)
	for i := 0; i < instances; i++ {
		go func() {
			db, err := sqldb.OpenPostgres(ctx, url)
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			_, err = sqldb.Migrate(ctx, db)
			errs <- err
		}()
	}
	for i := 0; i < instances; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("instance migration: %v", err)
		}
	}
	db, err := sqldb.OpenPostgres(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ms, _ := sqldb.Migrations(sqldb.Postgres)
	var n int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(ms) {
		t.Fatalf("schema_migrations has %d rows (err %v), want %d", n, err, len(ms))
	}
}

// TestAfterCommit: a hook runs once the outermost transaction commits, never
// when it or the savepoint that registered it rolls back, and at once
// without a transaction.
func TestAfterCommit(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		var ran []string
		hook := func(name string) func() { return func() { ran = append(ran, name) } }
		boom := errors.New("boom")

		err := db.InTx(ctx, func(ctx context.Context) error {
			sqldb.AfterCommit(ctx, hook("outer"))
			if err := db.InTx(ctx, func(ctx context.Context) error {
				sqldb.AfterCommit(ctx, hook("released savepoint"))
				return nil
			}); err != nil {
				return err
			}
			_ = db.InTx(ctx, func(ctx context.Context) error {
				sqldb.AfterCommit(ctx, hook("rolled-back savepoint"))
				return boom
			})
			if len(ran) != 0 {
				t.Errorf("hooks ran before the commit: %v", ran)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"outer", "released savepoint"}; !equal(ran, want) {
			t.Errorf("after commit %v, want %v", ran, want)
		}

		ran = nil
		_ = db.InTx(ctx, func(ctx context.Context) error {
			sqldb.AfterCommit(ctx, hook("rolled back"))
			return boom
		})
		sqldb.AfterCommit(ctx, hook("no transaction"))
		if want := []string{"no transaction"}; !equal(ran, want) {
			t.Errorf("got %v, want %v", ran, want)
		}

		// A detached context has no transaction: what it writes is its own.
		err = db.InTx(ctx, func(ctx context.Context) error {
			if !sqldb.InTransaction(ctx) || sqldb.InTransaction(sqldb.Detached(ctx)) {
				t.Error("Detached must drop the transaction and only it")
			}
			sqldb.AfterCommit(sqldb.Detached(ctx), hook("detached"))
			return nil
		})
		if err != nil || !equal(ran, []string{"no transaction", "detached"}) {
			t.Errorf("detached hook: %v %v", ran, err)
		}
	})
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
