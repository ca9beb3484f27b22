-- SQLite twin of postgres/0014 (instants are text).
-- A connection to a session's room is held by one server instance, which
-- confirms it (seen_at) while it stays open; the leader's sweep closes the
-- connections of a dead instance at their last confirmation. instance_id is
-- NULL for a connection no instance holds, which the sweep never touches.
ALTER TABLE consult_presence ADD COLUMN instance_id text;
ALTER TABLE consult_presence ADD COLUMN seen_at text;
UPDATE consult_presence SET seen_at = joined_at;

CREATE INDEX consult_presence_unconfirmed ON consult_presence (seen_at) WHERE left_at IS NULL AND instance_id IS NOT NULL;
CREATE INDEX consult_presence_held ON consult_presence (instance_id) WHERE left_at IS NULL;
