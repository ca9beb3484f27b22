package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

type liteDB struct {
	db *sql.DB
}

// OpenSQLite opens (creating if needed) the SQLite database file at path.
// WAL lets readers run beside the single writer; transactions begin
// IMMEDIATE so two writers queue on the busy timeout instead of failing to
// upgrade a read lock half way through.
func OpenSQLite(ctx context.Context, path string) (DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create database directory: %w", err)
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "busy_timeout(15000)", "foreign_keys(1)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return &liteDB{db: db}, nil
}

type liteQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (d *liteDB) q(ctx context.Context) liteQuerier {
	if tx, ok := ctx.Value(txKey{}).(*sql.Tx); ok {
		return tx
	}
	return d.db
}

func (d *liteDB) Dialect() Dialect               { return SQLite }
func (d *liteDB) Ping(ctx context.Context) error { return d.db.PingContext(ctx) }
func (d *liteDB) Close()                         { d.db.Close() }

func (d *liteDB) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := d.q(ctx).ExecContext(ctx, query, liteArgs(args)...)
	if err != nil {
		return 0, liteErr(err)
	}
	return res.RowsAffected()
}

func (d *liteDB) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	rows, err := d.q(ctx).QueryContext(ctx, query, liteArgs(args)...)
	if err != nil {
		return nil, liteErr(err)
	}
	return liteRows{rows}, nil
}

func (d *liteDB) QueryRow(ctx context.Context, query string, args ...any) Row {
	return liteRow{d.q(ctx).QueryRowContext(ctx, query, liteArgs(args)...)}
}

// ExecLater runs sql at once: SQLite is in this process, so holding a
// statement back saves no round trip.
func (d *liteDB) ExecLater(ctx context.Context, check func(rows int64) error, sql string, args ...any) error {
	n, err := d.Exec(ctx, sql, args...)
	if err == nil && check != nil {
		err = check(n)
	}
	return err
}

func (d *liteDB) InTx(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	if InTransaction(ctx) {
		return savepoint(ctx, execSavepoints(func(ctx context.Context, sql string) error {
			_, err := d.Exec(ctx, sql)
			return err
		}), fn)
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return liteErr(err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	ctx, hooks := withHooks(ctx)
	if err = fn(context.WithValue(ctx, txKey{}, tx)); err != nil {
		return err
	}
	if err = liteErr(tx.Commit()); err != nil {
		return err
	}
	hooks.run()
	return nil
}

// liteArgs writes instants as fixed-width UTC text (see TimeFormat).
func liteArgs(args []any) []any {
	out := args
	for i, a := range args {
		var conv any
		switch v := a.(type) {
		case time.Time:
			conv = v.UTC().Format(TimeFormat)
		case *time.Time:
			if v == nil {
				conv = nil
			} else {
				conv = v.UTC().Format(TimeFormat)
			}
		default:
			continue
		}
		if &out[0] == &args[0] {
			out = append([]any(nil), args...)
		}
		out[i] = conv
	}
	return out
}

type liteRows struct{ *sql.Rows }

func (r liteRows) Scan(dest ...any) error { return liteErr(r.Rows.Scan(liteDest(dest)...)) }
func (r liteRows) Close()                 { r.Rows.Close() }

type liteRow struct{ *sql.Row }

func (r liteRow) Scan(dest ...any) error { return liteErr(r.Row.Scan(liteDest(dest)...)) }

func liteDest(dest []any) []any {
	out := dest
	for i, d := range dest {
		var s sql.Scanner
		switch v := d.(type) {
		case *time.Time:
			s = timeScanner{v}
		case **time.Time:
			s = nullTimeScanner{v}
		default:
			continue
		}
		if &out[0] == &dest[0] {
			out = append([]any(nil), dest...)
		}
		out[i] = s
	}
	return out
}

type timeScanner struct{ t *time.Time }

func (s timeScanner) Scan(src any) error {
	t, err := parseLiteTime(src)
	if err != nil {
		return err
	}
	if t == nil {
		return errors.New("sqldb: NULL time scanned into time.Time")
	}
	*s.t = *t
	return nil
}

type nullTimeScanner struct{ t **time.Time }

func (s nullTimeScanner) Scan(src any) error {
	t, err := parseLiteTime(src)
	if err != nil {
		return err
	}
	*s.t = t
	return nil
}

func parseLiteTime(src any) (*time.Time, error) {
	var text string
	switch v := src.(type) {
	case nil:
		return nil, nil
	case time.Time:
		u := v.UTC()
		return &u, nil
	case string:
		text = v
	case []byte:
		text = string(v)
	default:
		return nil, fmt.Errorf("sqldb: cannot scan %T into time", src)
	}
	t, err := time.Parse(time.RFC3339Nano, text)
	if err != nil {
		return nil, fmt.Errorf("sqldb: bad stored time %q: %w", text, err)
	}
	t = t.UTC()
	return &t, nil
}

func liteErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNoRows
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %s", ErrUniqueViolation, se.Error())
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return fmt.Errorf("%w: %s", ErrSerialization, se.Error())
		}
	}
	return err
}
