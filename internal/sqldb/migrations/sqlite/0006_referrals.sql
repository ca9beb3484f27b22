-- SQLite twin of postgres/0006 (ids and instants are text, booleans integers).
-- Two-way referral: tickets, their append-only history, the per-day ticket
-- number counter and the outbox that feeds the desk queues.
-- List-valued parts of a ticket (diagnoses, attachments, redirect target,
-- schedule) are JSON text: they are always read and written with the ticket.
-- Optional ids are NULL, never '', so that id columns hold only ids.

CREATE TABLE referrals (
    id                      text PRIMARY KEY,
    number                  text UNIQUE,            -- 转诊单号, assigned on first submit
    direction               text NOT NULL CHECK (direction IN ('up', 'down')),
    priority                text NOT NULL DEFAULT '',
    green_channel           integer NOT NULL DEFAULT 0,
    green_category          text NOT NULL DEFAULT '',
    transfer_risk           integer NOT NULL DEFAULT 0,
    patient_id              text NOT NULL,
    referring_hospital_id   text NOT NULL,
    referring_department_id text,
    referring_doctor_id     text,
    receiving_hospital_id   text,
    receiving_department_id text,
    receiving_doctor_id     text,
    diagnoses               text NOT NULL DEFAULT '[]',
    reason                  text NOT NULL DEFAULT '',
    clinical_summary        text NOT NULL DEFAULT '',
    treatment_given         text NOT NULL DEFAULT '',
    transport_mode          text NOT NULL DEFAULT '',
    transport_escort        text NOT NULL DEFAULT '',
    requested_from          text,
    requested_to            text,
    attachments             text NOT NULL DEFAULT '[]',
    consent_id              text,
    based_on_id             text,
    redirected_from_id      text,
    redirected_to_id        text,
    status                  text NOT NULL,
    version                 integer NOT NULL DEFAULT 1,
    created_by              text NOT NULL,
    created_at              text NOT NULL,
    updated_at              text NOT NULL,
    submitted_at            text,
    queued_at               text,
    claimed_at              text,
    claimed_by              text,
    decided_at              text,
    decided_by              text,
    scheduled_at            text,
    departed_at             text,
    arrived_at              text,
    completed_at            text,
    completed_by            text,
    closed_at               text,
    ended_at                text,
    reject_reason           text NOT NULL DEFAULT '',
    decision_note           text NOT NULL DEFAULT '',
    info_question           text NOT NULL DEFAULT '',
    info_answer             text NOT NULL DEFAULT '',
    redirect                text,                   -- JSON target, NULL when not redirected
    schedule                text,                   -- JSON schedule, NULL until scheduled
    end_reason              text NOT NULL DEFAULT '',
    fee_waived              integer NOT NULL DEFAULT 0,
    exam_slip_number        text NOT NULL DEFAULT '',
    bed_reservation_id      text,
    outcome                 text NOT NULL DEFAULT '',
    feedback                text NOT NULL DEFAULT ''
);
CREATE INDEX referrals_receiving ON referrals (receiving_hospital_id, status, id);
CREATE INDEX referrals_referring ON referrals (referring_hospital_id, id);
CREATE INDEX referrals_patient ON referrals (patient_id, id);
CREATE INDEX referrals_submitted ON referrals (submitted_at);

-- Append-only: rows are inserted, never updated or deleted.
CREATE TABLE referral_events (
    id                text PRIMARY KEY,
    referral_id       text NOT NULL REFERENCES referrals(id),
    seq               integer NOT NULL,
    action            text NOT NULL,
    from_status       text NOT NULL DEFAULT '',
    to_status         text NOT NULL,
    actor             text,
    actor_hospital_id text,
    reason_code       text NOT NULL DEFAULT '',
    reason            text NOT NULL DEFAULT '',
    at                text NOT NULL,
    UNIQUE (referral_id, seq)
);

-- One counter per calendar day (Asia/Shanghai) for ZZ-YYYYMMDD-NNNNNN.
CREATE TABLE referral_numbers (
    day  text PRIMARY KEY,
    last integer NOT NULL
);

-- Written in the transaction of every state change; a relay publishes the
-- rows (at least once) and stamps published_at.
CREATE TABLE outbox (
    id           integer PRIMARY KEY AUTOINCREMENT,
    topic        text NOT NULL,
    key          text NOT NULL,
    payload      text NOT NULL,
    created_at   text NOT NULL,
    published_at text
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
