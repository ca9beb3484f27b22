-- Referral deadlines and their escalations.
--
-- The service stamps a ticket's deadlines (claim_by, decide_by) on its row at
-- every change, from the limits in force (referral.Deadlines.Due), so the
-- deadline watcher finds due tickets through an index instead of computing
-- every open ticket's deadlines on every tick. The partial indexes hold only
-- the tickets that can breach (waiting unclaimed, or undecided), so they stay
-- as small as the open queues whatever the number of tickets ever written.
ALTER TABLE referrals ADD COLUMN claim_by timestamptz;
ALTER TABLE referrals ADD COLUMN decide_by timestamptz;
CREATE INDEX referrals_claim_due ON referrals (claim_by) WHERE status = 'submitted';
CREATE INDEX referrals_decide_due ON referrals (decide_by) WHERE status IN ('submitted', 'claimed');

-- One row per breached deadline, raised by the watcher. A deadline is the
-- ticket, which step (claim or decide) and when it was due: the unique key
-- makes raising it idempotent whatever the number of watchers or restarts,
-- and a ticket that re-enters a queue gets new due times, so new breaches.
-- status is the ticket's status when the breach was raised. Append-only.
CREATE TABLE referral_escalations (
    id          uuid PRIMARY KEY,
    referral_id uuid NOT NULL REFERENCES referrals(id),
    kind        text NOT NULL CHECK (kind IN ('claim', 'decide')),
    due_at      timestamptz NOT NULL,
    raised_at   timestamptz NOT NULL,
    status      text NOT NULL,
    UNIQUE (referral_id, kind, due_at)
);

-- Consumers that deliver outside a transaction (the escalation webhook) claim
-- a row for a while and retry it later: attempts counts deliveries tried,
-- next_attempt_at is when the row may be tried again (NULL: now).
ALTER TABLE outbox ADD COLUMN attempts integer NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN next_attempt_at timestamptz;
ALTER TABLE outbox ADD COLUMN last_error text NOT NULL DEFAULT '';
