package store

import (
	"context"
	"errors"
	"time"

	"duikou/internal/sqldb"
)

// IdempotentResponse is a stored answer to a POST made with an
// Idempotency-Key.
type IdempotentResponse struct {
	Fingerprint []byte
	Status      int
	ContentType string
	ETag        string
	Location    string
	Body        []byte
}

// IdempotencyKeys keeps the answers to idempotent requests. Claim and Save
// must run inside the transaction of the change they answer.
//
// A key's row is written once, by Save, with the answer: a request that is
// refused or whose answer is not kept writes nothing. What makes a
// concurrent request with the same key wait is not the row but a lock on
// the key, held to the end of the claiming transaction.
type IdempotencyKeys struct {
	db  sqldb.DB
	ttl time.Duration
}

// NewIdempotencyKeys keeps keys for ttl (a day when zero).
func NewIdempotencyKeys(db sqldb.DB, ttl time.Duration) *IdempotencyKeys {
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	return &IdempotencyKeys{db: db, ttl: ttl}
}

// Claim takes key for user until the transaction ends. It returns nil when
// the key is new (or its last use expired), and the stored answer when it
// was used before. A concurrent request with the same key waits until the
// first one's transaction ends, then sees its answer, or nothing if the
// first kept none.
//
// On PostgreSQL the key is a transaction-scoped advisory lock, queued to go
// in one pipeline with the read: in READ COMMITTED each statement takes its
// own snapshot, so the read, which runs once the lock is granted, sees what
// the previous holder committed. On SQLite a write transaction is exclusive
// from its BEGIN (IMMEDIATE), so the read alone is enough.
func (s *IdempotencyKeys) Claim(ctx context.Context, userID, key string, now time.Time) (*IdempotentResponse, error) {
	if s.db.Dialect() == sqldb.Postgres {
		// A user id is a UUID and never holds '/', so the string names one
		// (user, key) pair. Two pairs whose hashes collide merely wait for
		// each other.
		if err := s.db.ExecLater(ctx, nil, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, userID+"/"+key); err != nil {
			return nil, err
		}
	}
	var r IdempotentResponse
	var created time.Time
	err := s.db.QueryRow(ctx, `SELECT fingerprint, status, content_type, etag, location, body, created_at
		FROM idempotency_keys WHERE user_id = $1 AND key = $2`, userID, key).
		Scan(&r.Fingerprint, &r.Status, &r.ContentType, &r.ETag, &r.Location, &r.Body, &created)
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if now.Sub(created) < s.ttl {
		return &r, nil
	}
	// Expired: the key may be used afresh, and Save will insert its row.
	return nil, s.db.ExecLater(ctx, nil, `DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2`, userID, key)
}

// Save stores the answer for a key claimed at now, in the transaction that
// claimed it.
func (s *IdempotencyKeys) Save(ctx context.Context, userID, key string, r IdempotentResponse, now time.Time) error {
	// Sent with the commit: nobody waits for it. The claim holds the key, so
	// no other row for it can appear before this one commits.
	return s.db.ExecLater(ctx, nil, `INSERT INTO idempotency_keys
		(user_id, key, fingerprint, status, content_type, etag, location, body, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		userID, key, r.Fingerprint, r.Status, r.ContentType, r.ETag, r.Location, r.Body, now)
}

// Expire deletes keys older than the time to live; run it now and then.
func (s *IdempotencyKeys) Expire(ctx context.Context, now time.Time) (int64, error) {
	return s.db.Exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < $1`, now.Add(-s.ttl))
}
