package sqldb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

type pgDB struct {
	pool *pgxpool.Pool
	// side serves detached statements (see Detached). Its own few
	// connections mean a transaction holding one of the main pool's never
	// waits for another of the same pool: with every main connection inside
	// a transaction that wants a side statement, a shared pool would
	// deadlock.
	side *pgxpool.Pool
}

// OpenPostgres connects a pgx pool to url (postgres://…).
func OpenPostgres(ctx context.Context, url string) (DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", redactErr(err))
	}
	if cfg.MaxConns < 16 {
		cfg.MaxConns = 16
	}
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect postgres: %w", redactErr(err))
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect postgres: %w", redactErr(err))
	}
	sideCfg := cfg.Copy()
	sideCfg.MaxConns, sideCfg.MinConns = 4, 0
	side, err := pgxpool.NewWithConfig(ctx, sideCfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect postgres: %w", redactErr(err))
	}
	return &pgDB{pool: pool, side: side}, nil
}

// redactErr drops the connection string that pgx may echo in parse errors:
// it can carry a password, and secrets never reach the logs.
func redactErr(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return errors.New("invalid connection string")
	}
	return err
}

type pgQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (d *pgDB) q(ctx context.Context) pgQuerier {
	if tx, ok := ctx.Value(txKey{}).(pgx.Tx); ok {
		return tx
	}
	if detached(ctx) {
		return d.side
	}
	return d.pool
}

func (d *pgDB) Dialect() Dialect               { return Postgres }
func (d *pgDB) Ping(ctx context.Context) error { return d.pool.Ping(ctx) }
func (d *pgDB) Close()                         { d.pool.Close(); d.side.Close() }

func (d *pgDB) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	tag, err := d.q(ctx).Exec(ctx, sql, args...)
	if err != nil {
		return 0, pgErr(err)
	}
	return tag.RowsAffected(), nil
}

func (d *pgDB) Query(ctx context.Context, sql string, args ...any) (Rows, error) {
	rows, err := d.q(ctx).Query(ctx, sql, args...)
	if err != nil {
		return nil, pgErr(err)
	}
	return pgRows{rows}, nil
}

func (d *pgDB) QueryRow(ctx context.Context, sql string, args ...any) Row {
	return pgRow{d.q(ctx).QueryRow(ctx, sql, args...)}
}

func (d *pgDB) InTx(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	if InTransaction(ctx) {
		return savepoint(ctx, func(ctx context.Context, sql string) error {
			_, err := d.Exec(ctx, sql)
			return err
		}, fn)
	}
	pool := d.pool
	if detached(ctx) {
		pool = d.side
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return pgErr(err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	ctx, hooks := withHooks(ctx)
	if err = fn(context.WithValue(ctx, txKey{}, tx)); err != nil {
		return err
	}
	if err = pgErr(tx.Commit(ctx)); err != nil {
		return err
	}
	hooks.run()
	return nil
}

type pgRows struct{ pgx.Rows }

func (r pgRows) Scan(dest ...any) error {
	if err := r.Rows.Scan(dest...); err != nil {
		return pgErr(err)
	}
	utc(dest)
	return nil
}

type pgRow struct{ pgx.Row }

func (r pgRow) Scan(dest ...any) error {
	if err := r.Row.Scan(dest...); err != nil {
		return pgErr(err)
	}
	utc(dest)
	return nil
}

// utc normalises scanned instants: pgx returns timestamptz in the local zone.
func utc(dest []any) {
	for _, d := range dest {
		switch t := d.(type) {
		case *time.Time:
			*t = t.UTC()
		case **time.Time:
			if *t != nil {
				u := (*t).UTC()
				*t = &u
			}
		}
	}
}

func pgErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNoRows
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505":
			return fmt.Errorf("%w: %s", ErrUniqueViolation, pe.ConstraintName)
		case "40001", "40P01":
			return fmt.Errorf("%w: %s", ErrSerialization, pe.Message)
		}
	}
	return err
}
