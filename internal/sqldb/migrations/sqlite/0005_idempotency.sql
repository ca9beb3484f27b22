-- SQLite twin of postgres/0005.
CREATE TABLE idempotency_keys (
    user_id      text NOT NULL,
    key          text NOT NULL,
    fingerprint  blob NOT NULL,
    status       integer NOT NULL DEFAULT 0,
    content_type text NOT NULL DEFAULT '',
    etag         text NOT NULL DEFAULT '',
    location     text NOT NULL DEFAULT '',
    body         blob NOT NULL DEFAULT x'',
    created_at   text NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
