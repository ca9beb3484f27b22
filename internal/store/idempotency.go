package store

import (
	"context"
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

// IdempotencyKeys keeps the answers to idempotent requests. Both methods must
// run inside the transaction of the change they answer.
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

// Claim takes key for user. It returns nil when the key is new (or its last
// use expired), and the stored answer when it was used before. A concurrent
// request with the same key waits on the row until the first one commits,
// then sees its answer.
func (s *IdempotencyKeys) Claim(ctx context.Context, userID, key string, fingerprint []byte, now time.Time) (*IdempotentResponse, error) {
	for attempt := 0; attempt < 2; attempt++ {
		n, err := s.db.Exec(ctx, `INSERT INTO idempotency_keys (user_id, key, fingerprint, created_at)
			VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, key) DO NOTHING`, userID, key, fingerprint, now)
		if err != nil {
			return nil, err
		}
		if n == 1 {
			return nil, nil
		}
		var r IdempotentResponse
		var created time.Time
		err = s.db.QueryRow(ctx, `SELECT fingerprint, status, content_type, etag, location, body, created_at
			FROM idempotency_keys WHERE user_id = $1 AND key = $2`, userID, key).
			Scan(&r.Fingerprint, &r.Status, &r.ContentType, &r.ETag, &r.Location, &r.Body, &created)
		if err != nil {
			return nil, err
		}
		if now.Sub(created) < s.ttl {
			return &r, nil
		}
		// Expired: the key may be used afresh.
		if _, err := s.db.Exec(ctx, `DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2`, userID, key); err != nil {
			return nil, err
		}
	}
	return nil, sqldb.ErrSerialization
}

// Save stores the answer for a claimed key.
func (s *IdempotencyKeys) Save(ctx context.Context, userID, key string, r IdempotentResponse) error {
	// Sent with the commit: nobody waits for it.
	return s.db.ExecLater(ctx, nil, `UPDATE idempotency_keys SET status = $3, content_type = $4, etag = $5, location = $6, body = $7
		WHERE user_id = $1 AND key = $2`, userID, key, r.Status, r.ContentType, r.ETag, r.Location, r.Body)
}

// Release gives a claimed key back, for a request whose answer is not kept.
func (s *IdempotencyKeys) Release(ctx context.Context, userID, key string) error {
	_, err := s.db.Exec(ctx, `DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2`, userID, key)
	return err
}

// Expire deletes keys older than the time to live; run it now and then.
func (s *IdempotencyKeys) Expire(ctx context.Context, now time.Time) (int64, error) {
	return s.db.Exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < $1`, now.Add(-s.ttl))
}
