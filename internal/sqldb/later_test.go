package sqldb_test

import (
	"context"
	"errors"
	"testing"

	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
)

// Writes held back by ExecLater behave, on both engines, as if they had run
// where they were queued: later reads see them, savepoints undo them, a
// failure fails the transaction and the commit keeps them.
func TestExecLater(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		now := sqldb.Now()
		insert := `INSERT INTO hospitals (id, name, org_code, tier, province, created_at, updated_at)
			VALUES ($1, $2, $3, 'tertiary', 'P', $4, $4)`
		ids := []string{
			"0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0b01", "0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0b02",
			"0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0b03", "0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0b04",
			"0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0b05", "0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0b06",
		}
		exists := func(t *testing.T, ctx context.Context, id string) bool {
			t.Helper()
			var n int
			if err := db.QueryRow(ctx, `SELECT count(*) FROM hospitals WHERE id = $1`, id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n == 1
		}
		nameIn := func(t *testing.T, ctx context.Context, id string) string {
			t.Helper()
			var s string
			if err := db.QueryRow(ctx, `SELECT name FROM hospitals WHERE id = $1`, id).Scan(&s); err != nil {
				t.Fatal(err)
			}
			return s
		}
		name := func(t *testing.T, id string) string { return nameIn(t, ctx, id) }

		t.Run("a later read in the transaction sees the write, and the commit keeps it", func(t *testing.T) {
			err := db.InTx(ctx, func(ctx context.Context) error {
				if err := db.ExecLater(ctx, nil, insert, ids[0], "甲", "b01", now); err != nil {
					return err
				}
				if !exists(t, ctx, ids[0]) {
					t.Error("the held-back insert is not visible to the next read")
				}
				return nil
			})
			if err != nil || !exists(t, ctx, ids[0]) {
				t.Fatalf("err = %v, committed = %v", err, exists(t, ctx, ids[0]))
			}
		})

		t.Run("a transaction of held-back writes only commits them", func(t *testing.T) {
			err := db.InTx(ctx, func(ctx context.Context) error {
				if err := db.ExecLater(ctx, nil, insert, ids[1], "乙", "b02", now); err != nil {
					return err
				}
				return db.ExecLater(ctx, nil, `UPDATE hospitals SET name = '乙2' WHERE id = $1`, ids[1])
			})
			if err != nil || name(t, ids[1]) != "乙2" {
				t.Fatalf("err = %v, name = %q", err, name(t, ids[1]))
			}
		})

		t.Run("a check that fails at commit fails the transaction, and nothing stays", func(t *testing.T) {
			noMatch := errors.New("no such hospital")
			err := db.InTx(ctx, func(ctx context.Context) error {
				if err := db.ExecLater(ctx, nil, insert, ids[2], "丙", "b03", now); err != nil {
					return err
				}
				return db.ExecLater(ctx, func(n int64) error {
					if n != 1 {
						return noMatch
					}
					return nil
				}, `UPDATE hospitals SET name = 'x' WHERE id = $1`, "0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0bff")
			})
			if !errors.Is(err, noMatch) {
				t.Fatalf("err = %v, want the check's error", err)
			}
			if exists(t, ctx, ids[2]) {
				t.Fatal("the insert of a failed transaction stayed")
			}
		})

		t.Run("a failing held-back write is reported by the statement that sends it", func(t *testing.T) {
			var laterErr, readErr error
			err := db.InTx(ctx, func(ctx context.Context) error {
				// org_code b01 is taken: a unique violation, reported at
				// once where the write is not held back (SQLite).
				if laterErr = db.ExecLater(ctx, nil, insert, ids[3], "丁", "b01", now); laterErr != nil {
					return laterErr
				}
				var n int
				readErr = db.QueryRow(ctx, `SELECT count(*) FROM hospitals`).Scan(&n)
				return readErr
			})
			first := laterErr
			if db.Dialect() == sqldb.Postgres {
				first = readErr
			}
			if !errors.Is(first, sqldb.ErrUniqueViolation) || !errors.Is(err, sqldb.ErrUniqueViolation) {
				t.Fatalf("ExecLater err = %v, read err = %v, tx err = %v, want unique violations", laterErr, readErr, err)
			}
			if exists(t, ctx, ids[3]) {
				t.Fatal("the failed insert stayed")
			}
		})

		t.Run("a rolled-back savepoint drops its held-back writes and keeps an earlier sibling's", func(t *testing.T) {
			boom := errors.New("boom")
			err := db.InTx(ctx, func(ctx context.Context) error {
				if err := db.InTx(ctx, func(ctx context.Context) error {
					return db.ExecLater(ctx, nil, insert, ids[4], "戊", "b05", now)
				}); err != nil {
					return err
				}
				// A sibling savepoint of the same depth, rolled back.
				if err := db.InTx(ctx, func(ctx context.Context) error {
					if err := db.ExecLater(ctx, nil, insert, ids[5], "己", "b06", now); err != nil {
						return err
					}
					return boom
				}); !errors.Is(err, boom) {
					return err
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !exists(t, ctx, ids[4]) || exists(t, ctx, ids[5]) {
				t.Fatalf("kept sibling: %v (want true), rolled-back sibling: %v (want false)", exists(t, ctx, ids[4]), exists(t, ctx, ids[5]))
			}
		})

		t.Run("a savepoint rolled back after its writes were sent undoes them", func(t *testing.T) {
			boom := errors.New("boom")
			err := db.InTx(ctx, func(ctx context.Context) error {
				if err := db.ExecLater(ctx, nil, `UPDATE hospitals SET name = 'outer' WHERE id = $1`, ids[0]); err != nil {
					return err
				}
				err := db.InTx(ctx, func(ctx context.Context) error {
					if err := db.ExecLater(ctx, nil, `UPDATE hospitals SET name = 'inner' WHERE id = $1`, ids[1]); err != nil {
						return err
					}
					if got := nameIn(t, ctx, ids[1]); got != "inner" { // sends it
						t.Errorf("inside the savepoint name = %q", got)
					}
					// A failing statement aborts the transaction on
					// PostgreSQL until the savepoint is rolled back.
					_, err := db.Exec(ctx, insert, ids[3], "丁", "b01", now)
					if !errors.Is(err, sqldb.ErrUniqueViolation) {
						t.Errorf("err = %v, want a unique violation", err)
					}
					return boom
				})
				if !errors.Is(err, boom) {
					return err
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if name(t, ids[0]) != "outer" || name(t, ids[1]) != "乙2" {
				t.Fatalf("names %q, %q; want outer, 乙2", name(t, ids[0]), name(t, ids[1]))
			}
		})

		t.Run("after a failed transaction the pool's connections still work", func(t *testing.T) {
			for i := 0; i < 20; i++ {
				_ = db.InTx(ctx, func(ctx context.Context) error {
					_ = db.ExecLater(ctx, nil, `SELECT 1/0`)
					return nil
				})
			}
			if !exists(t, ctx, ids[0]) {
				t.Fatal("lost a row")
			}
		})
	})
}

// On PostgreSQL a savepoint reaches the server only when something needs
// it: reads go ahead of a held-back SAVEPOINT, and a savepoint released
// before any of its writes went out is dropped, its writes becoming the
// enclosing transaction's own. Rolling back still undoes exactly the
// savepoint's work, and a read that fails ahead of its savepoint fails the
// whole transaction instead of leaving it half aborted.
func TestSavepointsReachTheServerOnlyWhenNeeded(t *testing.T) {
	db := sqldbtest.Postgres(t)
	ctx := context.Background()
	now := sqldb.Now()
	insert := `INSERT INTO hospitals (id, name, org_code, tier, province, created_at, updated_at)
		VALUES ($1, $2, $3, 'tertiary', 'P', $4, $4)`
	ids := []string{"0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0c01", "0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0c02",
		"0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0c03"}
	count := func(t *testing.T, ctx context.Context, id string) int {
		t.Helper()
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM hospitals WHERE id = $1`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("a released savepoint's writes are the enclosing transaction's own", func(t *testing.T) {
		var own bool
		err := db.InTx(ctx, func(ctx context.Context) error {
			if err := db.InTx(ctx, func(ctx context.Context) error {
				if count(t, ctx, ids[0]) != 0 { // a read inside the savepoint
					t.Error("row exists before the insert")
				}
				return db.ExecLater(ctx, nil, insert, ids[0], "甲", "c01", now)
			}); err != nil {
				return err
			}
			// A row written in a subtransaction carries the subtransaction's
			// id, not the transaction's.
			return db.QueryRow(ctx, `SELECT xmin::text::bigint = pg_current_xact_id()::text::bigint % 4294967296
				FROM hospitals WHERE id = $1`, ids[0]).Scan(&own)
		})
		if err != nil {
			t.Fatal(err)
		}
		if !own {
			t.Error("the write ran in a subtransaction: the released savepoint reached the server")
		}
		if count(t, ctx, ids[0]) != 1 {
			t.Error("the write was not committed")
		}
	})

	t.Run("a savepoint rolled back after reads only undoes its held-back writes", func(t *testing.T) {
		boom := errors.New("boom")
		err := db.InTx(ctx, func(ctx context.Context) error {
			if err := db.ExecLater(ctx, nil, insert, ids[1], "乙", "c02", now); err != nil {
				return err
			}
			err := db.InTx(ctx, func(ctx context.Context) error {
				if count(t, ctx, ids[1]) != 1 { // sends the outer write, not the SAVEPOINT
					t.Error("the enclosing transaction's write is not visible inside the savepoint")
				}
				if err := db.ExecLater(ctx, nil, insert, ids[2], "丙", "c03", now); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				return err
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if count(t, ctx, ids[1]) != 1 || count(t, ctx, ids[2]) != 0 {
			t.Fatalf("outer write %d (want 1), rolled-back write %d (want 0)", count(t, ctx, ids[1]), count(t, ctx, ids[2]))
		}
	})

	t.Run("a read failing ahead of its savepoint fails the transaction", func(t *testing.T) {
		err := db.InTx(ctx, func(ctx context.Context) error {
			if err := db.ExecLater(ctx, nil, `UPDATE hospitals SET name = 'changed' WHERE id = $1`, ids[0]); err != nil {
				return err
			}
			if err := db.InTx(ctx, func(ctx context.Context) error {
				var n int
				return db.QueryRow(ctx, `SELECT 1/0`).Scan(&n)
			}); err == nil {
				t.Error("the failing read did not fail its savepoint")
			}
			return nil // as a caller that carries on after a failed step would
		})
		if err == nil {
			t.Fatal("the transaction committed after a read failed ahead of its savepoint")
		}
		var name string
		if err := db.QueryRow(ctx, `SELECT name FROM hospitals WHERE id = $1`, ids[0]).Scan(&name); err != nil || name != "甲" {
			t.Fatalf("name = %q, %v; want the write of the failed transaction undone", name, err)
		}
	})
}
