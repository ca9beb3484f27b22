// Package sqldb is the one way Duikou talks to a relational database. It hides
// the difference between PostgreSQL (pgx pool, production) and SQLite (pure-Go
// driver, the embedded default) behind a small interface so that every store
// is written once and runs, and is contract-tested, on both engines.
//
// SQL is written in PostgreSQL's dialect with $N placeholders, which SQLite
// also accepts. Transactions travel in the context: InTx puts the transaction
// into ctx, and every Exec/Query/QueryRow made with that ctx runs inside it.
// That lets domain services compose several stores (a change and its audit row,
// a state change and its outbox row) into one transaction without the stores
// knowing about each other.
package sqldb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"duikou/internal/apperr"
)

// Dialect names the SQL engine behind a DB, for the few statements that differ.
type Dialect int

const (
	Postgres Dialect = iota + 1
	SQLite
)

func (d Dialect) String() string {
	switch d {
	case Postgres:
		return "postgres"
	case SQLite:
		return "sqlite"
	}
	return "unknown"
}

// ErrNoRows is returned by Row.Scan when the query matched nothing.
var ErrNoRows = errors.New("sqldb: no rows in result set")

// ErrUniqueViolation wraps errors caused by a unique or primary key constraint.
var ErrUniqueViolation = errors.New("sqldb: unique constraint violated")

// ErrSerialization wraps errors the caller may cure by retrying the transaction
// (serialization failure, deadlock, SQLite busy). It is a passing state of
// the database, so it is also apperr.ErrUnavailable: a request that meets it
// is told to retry shortly (503), not that the server failed.
var ErrSerialization = fmt.Errorf("sqldb: transaction conflict, retry: %w", apperr.ErrUnavailable)

// ErrRowChanged is a guarded write's verdict given by the database: the row
// it was to change is no longer the one its writer read (the expect_one
// function of migration 0017 raised it). Such a write is held back and sent
// with the transaction's commit, so the verdict comes from the commit.
var ErrRowChanged = errors.New("sqldb: the row changed since it was read")

// Rows is the result of Query. Close must be called.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Row is the result of QueryRow.
type Row interface {
	Scan(dest ...any) error
}

// Querier runs statements, inside the context's transaction if it has one.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (int64, error)
	Query(ctx context.Context, sql string, args ...any) (Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) Row
}

// DB is a pool of connections to one database.
type DB interface {
	Querier
	// InTx runs fn in one transaction, committed when fn returns nil and rolled
	// back otherwise. The ctx given to fn carries the transaction. An InTx
	// inside another runs in a savepoint of the outer transaction: when fn
	// fails, its own writes are undone and the outer transaction can go on
	// (on PostgreSQL this also clears the aborted state a failed statement
	// leaves), and the outer decides whether to commit.
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
	// ExecLater runs a write whose answer the caller need not wait for.
	// Inside a transaction on PostgreSQL it is held back and sent with the
	// transaction's next statement or its commit, in one round trip;
	// otherwise it runs at once. check, when not nil, judges the number of
	// rows it touched. Its error, or the statement's, is returned by the
	// call that sends it (a later Exec, Query, QueryRow or the commit), so
	// use it only for writes whose failure fails the whole transaction, and
	// leave args unchanged until then.
	ExecLater(ctx context.Context, check func(rows int64) error, sql string, args ...any) error
	Dialect() Dialect
	Ping(ctx context.Context) error
	Close()
}

// TimeFormat is how instants are written where the engine has no timestamp
// type (SQLite): fixed width, UTC, microseconds, so that text order is time
// order and values round-trip exactly as in PostgreSQL's timestamptz.
const TimeFormat = "2006-01-02T15:04:05.000000Z"

// Now returns the current instant at the precision both engines store.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

type txKey struct{}

// txDepth counts the savepoints open in ctx's transaction, to name them.
type txDepth struct{}

// InTransaction reports whether ctx carries an open transaction.
func InTransaction(ctx context.Context) bool { return ctx.Value(txKey{}) != nil }

// savepoints opens, releases and rolls back savepoints of one transaction.
type savepoints interface {
	openSavepoint(ctx context.Context, name string) error
	releaseSavepoint(ctx context.Context, name string) error
	rollbackToSavepoint(ctx context.Context, name string) error
}

// savepoint runs fn inside a savepoint of ctx's transaction.
func savepoint(ctx context.Context, sp savepoints, fn func(ctx context.Context) error) (err error) {
	depth, _ := ctx.Value(txDepth{}).(int)
	depth++
	name := "sp" + strconv.Itoa(depth)
	if err := sp.openSavepoint(ctx, name); err != nil {
		return err
	}
	// Hooks registered inside the savepoint count only if it is released:
	// work undone by a rollback to it must not be announced.
	inner := &commitHooks{}
	defer func() {
		if p := recover(); p != nil {
			_ = sp.rollbackToSavepoint(context.WithoutCancel(ctx), name)
			panic(p)
		}
		if err != nil {
			if rerr := sp.rollbackToSavepoint(context.WithoutCancel(ctx), name); rerr != nil {
				err = errors.Join(err, rerr)
			}
			return
		}
		if err = sp.releaseSavepoint(ctx, name); err == nil {
			hooksOf(ctx).adopt(inner)
		}
	}()
	return fn(context.WithValue(context.WithValue(ctx, hooksKey{}, inner), txDepth{}, depth))
}

// execSavepoints runs savepoint statements as they come (SQLite).
type execSavepoints func(ctx context.Context, sql string) error

func (e execSavepoints) openSavepoint(ctx context.Context, name string) error {
	return e(ctx, "SAVEPOINT "+name)
}
func (e execSavepoints) releaseSavepoint(ctx context.Context, name string) error {
	return e(ctx, "RELEASE SAVEPOINT "+name)
}
func (e execSavepoints) rollbackToSavepoint(ctx context.Context, name string) error {
	return e(ctx, "ROLLBACK TO SAVEPOINT "+name)
}

type hooksKey struct{}

// commitHooks are the functions to run once a transaction has committed.
type commitHooks struct{ fns []func() }

func hooksOf(ctx context.Context) *commitHooks {
	h, _ := ctx.Value(hooksKey{}).(*commitHooks)
	return h
}

func (h *commitHooks) adopt(inner *commitHooks) {
	if h != nil && inner != nil {
		h.fns = append(h.fns, inner.fns...)
	}
}

func (h *commitHooks) run() {
	if h == nil {
		return
	}
	for _, fn := range h.fns {
		fn()
	}
}

// withHooks starts the hook list of an outermost transaction.
func withHooks(ctx context.Context) (context.Context, *commitHooks) {
	h := &commitHooks{}
	return context.WithValue(ctx, hooksKey{}, h), h
}

// AfterCommit runs fn once the transaction ctx carries has committed, the
// outermost one when transactions nest; never if it rolls back. Without a
// transaction fn runs at once. It tells others of a change (wakes a relay)
// only when the change is visible to them: a nested service transaction
// inside a retried request's transaction is not yet committed when it ends.
func AfterCommit(ctx context.Context, fn func()) {
	h := hooksOf(ctx)
	if h == nil || !InTransaction(ctx) {
		fn()
		return
	}
	h.fns = append(h.fns, fn)
}

// Detached returns ctx without its transaction: statements made with it run
// on their own connection and commit on their own. For a short, separate
// transaction whose lock must not be held until the caller's commits (a
// counter): the caller must accept that it is not undone with its own.
// On PostgreSQL detached statements use a small pool of their own. On
// SQLite, which has one writer, a detached write waits for the caller's
// transaction and so must not be used while one is open.
func Detached(ctx context.Context) context.Context {
	ctx = context.WithValue(ctx, txKey{}, nil)
	ctx = context.WithValue(ctx, txDepth{}, 0)
	ctx = context.WithValue(ctx, hooksKey{}, nil)
	return context.WithValue(ctx, detachedKey{}, true)
}

type detachedKey struct{}

// detached reports whether ctx asks for a connection of its own.
func detached(ctx context.Context) bool {
	d, _ := ctx.Value(detachedKey{}).(bool)
	return d && !InTransaction(ctx)
}
