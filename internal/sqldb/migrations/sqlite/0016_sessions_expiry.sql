-- SQLite twin of postgres/0016: login sessions are purged by absolute
-- expiry, oldest first, in bounded batches that this index keeps cheap.
CREATE INDEX sessions_expires ON sessions (expires_at);
