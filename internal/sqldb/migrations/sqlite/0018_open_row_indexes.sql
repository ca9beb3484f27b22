-- SQLite twin of postgres/0018. The outbox index holds only pending rows
-- (neither published nor given up), and every read of pending rows says
-- so; the presence sweep closes every open connection unconfirmed for too
-- long, held by an instance or (left open before migration 0014) not, last
-- seen when it joined if nothing later is known.
DROP INDEX outbox_unpublished;
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL AND failed_at IS NULL;

UPDATE consult_presence SET seen_at = joined_at WHERE left_at IS NULL AND seen_at IS NULL;
DROP INDEX consult_presence_unconfirmed;
CREATE INDEX consult_presence_unconfirmed ON consult_presence (seen_at) WHERE left_at IS NULL;
