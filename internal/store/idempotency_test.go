package store_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
)

var (
	idemUser   = "0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0a01"
	idemOther  = "0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0a02"
	idemT0     = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	idemAnswer = store.IdempotentResponse{Fingerprint: []byte("fingerprint"), Status: 201,
		ContentType: "application/json", ETag: `"1"`, Location: "/api/v1/referrals/1", Body: []byte(`{"id":1}`)}
)

func sameAnswer(a *store.IdempotentResponse, b store.IdempotentResponse) bool {
	return a != nil && bytes.Equal(a.Fingerprint, b.Fingerprint) && a.Status == b.Status && a.ContentType == b.ContentType &&
		a.ETag == b.ETag && a.Location == b.Location && bytes.Equal(a.Body, b.Body)
}

func TestIdempotencyKeysClaimSaveAndExpire(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		keys := store.NewIdempotencyKeys(db, time.Hour)

		err := db.InTx(ctx, func(ctx context.Context) error {
			prev, err := keys.Claim(ctx, idemUser, "k", idemT0)
			if err != nil || prev != nil {
				t.Fatalf("first claim: %v %v", prev, err)
			}
			return keys.Save(ctx, idemUser, "k", idemAnswer, idemT0)
		})
		if err != nil {
			t.Fatal(err)
		}
		prev, err := keys.Claim(ctx, idemUser, "k", idemT0.Add(30*time.Minute))
		if err != nil || !sameAnswer(prev, idemAnswer) {
			t.Fatalf("second claim within the hour: %+v %v", prev, err)
		}
		if prev, err := keys.Claim(ctx, idemOther, "k", idemT0.Add(30*time.Minute)); err != nil || prev != nil {
			t.Fatalf("another user's key of the same name: %+v %v", prev, err)
		}

		// Past its time the key is new again, and its new answer replaces
		// the old one in the same transaction.
		later := idemAnswer
		later.ETag, later.Body = `"2"`, []byte(`{"id":2}`)
		err = db.InTx(ctx, func(ctx context.Context) error {
			prev, err := keys.Claim(ctx, idemUser, "k", idemT0.Add(2*time.Hour))
			if err != nil || prev != nil {
				t.Fatalf("a key past its time is new again: %+v %v", prev, err)
			}
			return keys.Save(ctx, idemUser, "k", later, idemT0.Add(2*time.Hour))
		})
		if err != nil {
			t.Fatal(err)
		}
		if prev, err := keys.Claim(ctx, idemUser, "k", idemT0.Add(2*time.Hour+30*time.Minute)); err != nil || !sameAnswer(prev, later) {
			t.Fatalf("claim after the key was used afresh: %+v %v", prev, err)
		}

		for _, c := range []struct {
			now  time.Time
			want int64
		}{{idemT0.Add(2*time.Hour + 59*time.Minute), 0}, {idemT0.Add(5 * time.Hour), 1}} {
			if n, err := keys.Expire(ctx, c.now); err != nil || n != c.want {
				t.Fatalf("Expire at %v removed %d, want %d (err %v)", c.now, n, c.want, err)
			}
		}
	})
}

// A key's row is written once, with its answer: Save inserts it, whether or
// not a claim came first, and nothing updates it afterwards.
func TestIdempotencyKeysRowWrittenOnce(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		keys := store.NewIdempotencyKeys(db, time.Hour)
		err := db.InTx(ctx, func(ctx context.Context) error {
			if prev, err := keys.Claim(ctx, idemUser, "claimed", idemT0); err != nil || prev != nil {
				t.Fatalf("claim: %+v %v", prev, err)
			}
			return keys.Save(ctx, idemUser, "claimed", idemAnswer, idemT0)
		})
		if err != nil {
			t.Fatal(err)
		}
		if db.Dialect() == sqldb.Postgres {
			// The table was empty, so the first row version written goes to
			// the first slot of the first page. Had the row been inserted
			// and then updated, the live version would sit after the dead
			// one.
			var ctid string
			if err := db.QueryRow(ctx, `SELECT ctid::text FROM idempotency_keys WHERE key = 'claimed'`).Scan(&ctid); err != nil || ctid != "(0,1)" {
				t.Errorf("the key's row is at %s (%v), want (0,1): written more than once", ctid, err)
			}
		}

		if err := db.InTx(ctx, func(ctx context.Context) error {
			return keys.Save(ctx, idemUser, "unclaimed", idemAnswer, idemT0)
		}); err != nil {
			t.Fatal(err)
		}
		if prev, err := keys.Claim(ctx, idemUser, "unclaimed", idemT0.Add(time.Minute)); err != nil || !sameAnswer(prev, idemAnswer) {
			t.Errorf("an answer saved without a claimed row first: %+v %v", prev, err)
		}
	})
}

// A second claim of a key waits until the transaction holding it ends and
// then sees what that transaction stored: its answer, or nothing when it
// kept none (a refused request), in which case the second runs afresh.
func TestIdempotencyKeysConcurrentClaimWaitsForTheFirst(t *testing.T) {
	for _, c := range []struct {
		name       string
		firstSaves bool
	}{
		{"the first keeps its answer", true},
		{"the first keeps nothing", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
				ctx := context.Background()
				keys := store.NewIdempotencyKeys(db, time.Hour)
				release, first := holdKey(t, db, keys, idemUser, "k", c.firstSaves)

				type result struct {
					prev *store.IdempotentResponse
					err  error
				}
				second := make(chan result, 1)
				go func() {
					var r result
					r.err = db.InTx(ctx, func(ctx context.Context) error {
						var err error
						r.prev, err = keys.Claim(ctx, idemUser, "k", idemT0.Add(time.Minute))
						return err
					})
					second <- r
				}()
				waitForWaiter(t, db)
				select {
				case r := <-second:
					t.Fatalf("the second claim returned %+v, %v while the first transaction held the key", r.prev, r.err)
				default:
				}

				release()
				if err := receive(t, first); err != nil {
					t.Fatalf("first transaction: %v", err)
				}
				r := receive(t, second)
				switch {
				case r.err != nil:
					t.Fatalf("second claim: %v", r.err)
				case c.firstSaves && !sameAnswer(r.prev, idemAnswer):
					t.Errorf("second claim got %+v, want the first's answer", r.prev)
				case !c.firstSaves && r.prev != nil:
					t.Errorf("second claim got %+v after the first kept nothing", r.prev)
				}
			})
		})
	}
}

// Claims of different keys do not wait for each other: not another key of
// the same user, nor the same key of another user. PostgreSQL only: on
// SQLite every write transaction waits for the one that is open.
func TestIdempotencyKeysOtherKeysDoNotWait(t *testing.T) {
	db := sqldbtest.Postgres(t)
	keys := store.NewIdempotencyKeys(db, time.Hour)
	release, first := holdKey(t, db, keys, idemUser, "a", true)
	for _, c := range []struct{ name, user, key string }{
		{"another key of the same user", idemUser, "b"},
		{"the same key of another user", idemOther, "a"},
	} {
		// Bounded: a claim that waited for the held key would be cancelled.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := db.InTx(ctx, func(ctx context.Context) error {
			prev, err := keys.Claim(ctx, c.user, c.key, idemT0)
			if err == nil && prev != nil {
				err = fmt.Errorf("found %+v", prev)
			}
			return err
		})
		cancel()
		if err != nil {
			t.Errorf("%s, claimed while key %q is held: %v", c.name, "a", err)
		}
	}
	release()
	if err := receive(t, first); err != nil {
		t.Fatalf("first transaction: %v", err)
	}
}

// holdKey claims user's key in a transaction of its own and keeps it open
// until release is called (at the latest when the test ends, so that a
// failing test does not leave it open); then it saves idemAnswer (when save)
// and commits, sending the transaction's outcome on the returned channel.
func holdKey(t *testing.T, db sqldb.DB, keys *store.IdempotencyKeys, user, key string, save bool) (release func(), done chan error) {
	t.Helper()
	claimed, released := make(chan struct{}), make(chan struct{})
	release = sync.OnceFunc(func() { close(released) })
	t.Cleanup(release)
	done = make(chan error, 1)
	go func() {
		done <- db.InTx(context.Background(), func(ctx context.Context) error {
			prev, err := keys.Claim(ctx, user, key, idemT0)
			if err != nil {
				return err
			}
			if prev != nil {
				return fmt.Errorf("the first claim found %+v", prev)
			}
			close(claimed)
			<-released
			if save {
				return keys.Save(ctx, user, key, idemAnswer, idemT0)
			}
			return nil
		})
	}()
	select {
	case <-claimed:
	case err := <-done:
		t.Fatalf("first transaction: %v", err)
	}
	return release, done
}

// waitForWaiter returns once a transaction is waiting for a claimed key.
// PostgreSQL shows it as an advisory lock not yet granted; SQLite shows no
// waiters (the second transaction cannot even begin while the first is
// open), so it is given a moment to get there.
func waitForWaiter(t *testing.T, db sqldb.DB) {
	t.Helper()
	if db.Dialect() != sqldb.Postgres {
		time.Sleep(100 * time.Millisecond)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		var n int
		err := db.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n)
		if err != nil {
			t.Fatalf("no transaction came to wait for the claimed key: %v", err)
		}
		if n > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// receive takes a value from ch, failing the test if none comes within a
// bound far beyond any wait the test causes.
func receive[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(time.Minute):
		t.Fatal("no answer within a minute")
		panic("unreachable")
	}
}
