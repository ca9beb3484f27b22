-- Remote-session response deadlines and their escalations, as for referrals
-- (0008).
--
-- The service stamps a request's response deadline (respond_by, from
-- consult.Deadlines in force) on its row at every change, so the deadline
-- watcher finds due requests through an index instead of judging every
-- waiting one on every tick. The partial index holds only requests still
-- waiting for an answer, so it stays as small as the open requests. A booked
-- expert-clinic session waits for nobody and has none.
ALTER TABLE consult_sessions ADD COLUMN respond_by timestamptz;
CREATE INDEX consult_sessions_respond_due ON consult_sessions (respond_by) WHERE status = 'requested';

-- One row per breached deadline, raised by the watcher: the session, which
-- deadline (only "respond" so far) and when it was due. The unique key makes
-- raising it idempotent whatever the number of watchers or restarts. status
-- is the session's status when the breach was raised. Append-only.
CREATE TABLE session_escalations (
    id         uuid PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES consult_sessions(id),
    kind       text NOT NULL CHECK (kind IN ('respond')),
    due_at     timestamptz NOT NULL,
    raised_at  timestamptz NOT NULL,
    status     text NOT NULL,
    UNIQUE (session_id, kind, due_at)
);
