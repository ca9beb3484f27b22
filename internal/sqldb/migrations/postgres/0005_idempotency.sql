-- Idempotency keys: a retried POST with the same key gets the first answer.
-- The row is written in the same transaction as the change it answers, so a
-- crash can never leave a change without its key or a key without its change.
CREATE TABLE idempotency_keys (
    user_id      uuid NOT NULL,
    key          text NOT NULL,
    fingerprint  bytea NOT NULL,        -- SHA-256 of method, path and body
    status       integer NOT NULL DEFAULT 0,
    content_type text NOT NULL DEFAULT '',
    etag         text NOT NULL DEFAULT '',
    location     text NOT NULL DEFAULT '',
    body         bytea NOT NULL DEFAULT ''::bytea,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
