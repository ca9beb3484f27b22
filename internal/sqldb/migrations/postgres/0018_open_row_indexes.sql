-- Two partial indexes of rows still to be worked change what they hold.
--
-- Outbox: a delivery given up (failed_at, migration 0015) is never tried
-- again nor purged, yet stayed in the index of unpublished rows, which so
-- grew with every failure for ever while the relay and the webhook stepped
-- over those rows on each read. The index now holds only pending rows:
-- neither published nor given up. PostgreSQL uses a partial index only for
-- a query whose WHERE implies its predicate, so every read of pending rows
-- (store.Referrals.TakeOutbox, ClaimOutbox, Outbox) says failed_at IS NULL.
-- Building it holds writes to the outbox for one pass over the table,
-- which the purge keeps to about the retention period's messages.
DROP INDEX outbox_unpublished;
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL AND failed_at IS NULL;

-- Presence: a connection left open with no instance holding it (recorded
-- before migration 0014 by an instance that then died) was never closed:
-- the sweep took only held connections. Instances of 0014 and later record
-- every connection under themselves, and store.Consults.RecordJoin now
-- refuses one without, so one no instance holds is a leftover nobody will
-- confirm or close, last known open when it joined. The sweep now closes
-- every open connection unconfirmed for too long, held or not, and its
-- index holds them all. One an instance of a version before 0014 recorded
-- after that migration has no seen_at: it too was last seen when it
-- joined. (An upgrade from before 0014 must therefore have stopped its old
-- instances when this migration runs: connections they still hold would
-- be closed as left over.)
UPDATE consult_presence SET seen_at = joined_at WHERE left_at IS NULL AND seen_at IS NULL;
DROP INDEX consult_presence_unconfirmed;
CREATE INDEX consult_presence_unconfirmed ON consult_presence (seen_at) WHERE left_at IS NULL;
