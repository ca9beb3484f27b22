-- Requests still waiting for an answer used to be found by their age
-- (consult_sessions_waiting, 0010). The deadline watcher finds them by
-- their own deadline instead (consult_sessions_respond_due, 0011), and
-- nothing reads them by age any more, so the index only cost every write
-- of a session.
DROP INDEX consult_sessions_waiting;
