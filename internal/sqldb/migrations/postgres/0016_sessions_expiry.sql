-- Login sessions that ended long enough ago are purged by the leader
-- (auth.SessionPurge) in bounded batches, oldest absolute expiry first.
-- Every session has ended by its expires_at (logout, revocation and the
-- idle timeout only end it sooner), so that column alone says what may go,
-- and this index lets each batch read only the rows it deletes instead of
-- scanning the table. It costs one index entry per login; expires_at is
-- never updated, so the frequent last_seen_at updates are unaffected.
CREATE INDEX sessions_expires ON sessions (expires_at);
