-- SQLite twin of postgres/0008 (ids and instants are text).
-- Referral deadlines and their escalations.
--
-- The service stamps a ticket's deadlines (claim_by, decide_by) on its row at
-- every change, from the limits in force (referral.Deadlines.Due), so the
-- deadline watcher finds due tickets through an index instead of computing
-- every open ticket's deadlines on every tick. The partial indexes hold only
-- the tickets that can breach (waiting unclaimed, or undecided).
ALTER TABLE referrals ADD COLUMN claim_by text;
ALTER TABLE referrals ADD COLUMN decide_by text;
CREATE INDEX referrals_claim_due ON referrals (claim_by) WHERE status = 'submitted';
CREATE INDEX referrals_decide_due ON referrals (decide_by) WHERE status IN ('submitted', 'claimed');

-- One row per breached deadline (ticket, step, due time): the unique key
-- makes raising it idempotent whatever the number of watchers or restarts.
-- status is the ticket's status when the breach was raised. Append-only.
CREATE TABLE referral_escalations (
    id          text PRIMARY KEY,
    referral_id text NOT NULL REFERENCES referrals(id),
    kind        text NOT NULL CHECK (kind IN ('claim', 'decide')),
    due_at      text NOT NULL,
    raised_at   text NOT NULL,
    status      text NOT NULL,
    UNIQUE (referral_id, kind, due_at)
);

-- Retry state of consumers that deliver outside a transaction (the
-- escalation webhook).
ALTER TABLE outbox ADD COLUMN attempts integer NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN next_attempt_at text;
ALTER TABLE outbox ADD COLUMN last_error text NOT NULL DEFAULT '';
