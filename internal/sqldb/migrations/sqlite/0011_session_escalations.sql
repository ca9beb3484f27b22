-- SQLite twin of postgres/0011 (ids and instants are text).
-- Remote-session response deadlines and their escalations, as for referrals.
--
-- The service stamps a request's response deadline (respond_by) on its row
-- at every change; the partial index holds only requests still waiting for
-- an answer, which the deadline watcher reads.
ALTER TABLE consult_sessions ADD COLUMN respond_by text;
CREATE INDEX consult_sessions_respond_due ON consult_sessions (respond_by) WHERE status = 'requested';

-- One row per breached deadline (session, kind, due time): the unique key
-- makes raising it idempotent whatever the number of watchers or restarts.
-- status is the session's status when the breach was raised. Append-only.
CREATE TABLE session_escalations (
    id         text PRIMARY KEY,
    session_id text NOT NULL REFERENCES consult_sessions(id),
    kind       text NOT NULL CHECK (kind IN ('respond')),
    due_at     text NOT NULL,
    raised_at  text NOT NULL,
    status     text NOT NULL,
    UNIQUE (session_id, kind, due_at)
);
