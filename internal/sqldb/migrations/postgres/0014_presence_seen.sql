-- A connection to a session's room is held by one server instance, which
-- confirms it (seen_at) while it stays open; when the instance dies without
-- closing its connections (a crash, a kill), the leader's sweep closes them
-- at the last confirmation instead of leaving them open for ever.
--
-- instance_id names the instance holding the connection; NULL for a
-- connection no instance holds (recorded through the session service, or
-- before this migration), which the sweep never touches: nobody confirms
-- it, so silence says nothing. Both columns stay nullable so that an
-- instance of the previous version, still running during a rolling upgrade,
-- keeps recording (and closing) its connections as before.
ALTER TABLE consult_presence ADD COLUMN instance_id text;
ALTER TABLE consult_presence ADD COLUMN seen_at timestamptz;
UPDATE consult_presence SET seen_at = joined_at;

-- Both indexes hold only open connections, so they stay as small as the
-- rooms in use: the sweep reads the held ones by their last confirmation,
-- each instance its own when it confirms them.
CREATE INDEX consult_presence_unconfirmed ON consult_presence (seen_at) WHERE left_at IS NULL AND instance_id IS NOT NULL;
CREATE INDEX consult_presence_held ON consult_presence (instance_id) WHERE left_at IS NULL;
