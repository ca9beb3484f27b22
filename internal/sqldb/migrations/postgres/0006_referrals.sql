-- Two-way referral: tickets, their append-only history, the per-day ticket
-- number counter and the outbox that feeds the desk queues.
-- List-valued parts of a ticket (diagnoses, attachments, redirect target,
-- schedule) are JSON text: they are always read and written with the ticket.
-- Optional ids are NULL, never '', so that uuid columns hold only ids.

CREATE TABLE referrals (
    id                      uuid PRIMARY KEY,
    number                  text UNIQUE,            -- 转诊单号, assigned on first submit
    direction               text NOT NULL CHECK (direction IN ('up', 'down')),
    priority                text NOT NULL DEFAULT '',
    green_channel           boolean NOT NULL DEFAULT false,
    green_category          text NOT NULL DEFAULT '',
    transfer_risk           integer NOT NULL DEFAULT 0,
    patient_id              uuid NOT NULL,
    referring_hospital_id   uuid NOT NULL,
    referring_department_id uuid,
    referring_doctor_id     uuid,
    receiving_hospital_id   uuid,
    receiving_department_id uuid,
    receiving_doctor_id     uuid,
    diagnoses               text NOT NULL DEFAULT '[]',
    reason                  text NOT NULL DEFAULT '',
    clinical_summary        text NOT NULL DEFAULT '',
    treatment_given         text NOT NULL DEFAULT '',
    transport_mode          text NOT NULL DEFAULT '',
    transport_escort        text NOT NULL DEFAULT '',
    requested_from          timestamptz,
    requested_to            timestamptz,
    attachments             text NOT NULL DEFAULT '[]',
    consent_id              uuid,
    based_on_id             uuid,
    redirected_from_id      uuid,
    redirected_to_id        uuid,
    status                  text NOT NULL,
    version                 integer NOT NULL DEFAULT 1,
    created_by              uuid NOT NULL,
    created_at              timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL,
    submitted_at            timestamptz,
    queued_at               timestamptz,
    claimed_at              timestamptz,
    claimed_by              uuid,
    decided_at              timestamptz,
    decided_by              uuid,
    scheduled_at            timestamptz,
    departed_at             timestamptz,
    arrived_at              timestamptz,
    completed_at            timestamptz,
    completed_by            uuid,
    closed_at               timestamptz,
    ended_at                timestamptz,
    reject_reason           text NOT NULL DEFAULT '',
    decision_note           text NOT NULL DEFAULT '',
    info_question           text NOT NULL DEFAULT '',
    info_answer             text NOT NULL DEFAULT '',
    redirect                text,                   -- JSON target, NULL when not redirected
    schedule                text,                   -- JSON schedule, NULL until scheduled
    end_reason              text NOT NULL DEFAULT '',
    fee_waived              boolean NOT NULL DEFAULT false,
    exam_slip_number        text NOT NULL DEFAULT '',
    bed_reservation_id      uuid,
    outcome                 text NOT NULL DEFAULT '',
    feedback                text NOT NULL DEFAULT ''
);
CREATE INDEX referrals_receiving ON referrals (receiving_hospital_id, status, id);
CREATE INDEX referrals_referring ON referrals (referring_hospital_id, id);
CREATE INDEX referrals_patient ON referrals (patient_id, id);
CREATE INDEX referrals_submitted ON referrals (submitted_at);

-- Append-only: rows are inserted, never updated or deleted.
CREATE TABLE referral_events (
    id                uuid PRIMARY KEY,
    referral_id       uuid NOT NULL REFERENCES referrals(id),
    seq               integer NOT NULL,
    action            text NOT NULL,
    from_status       text NOT NULL DEFAULT '',
    to_status         text NOT NULL,
    actor             uuid,
    actor_hospital_id uuid,
    reason_code       text NOT NULL DEFAULT '',
    reason            text NOT NULL DEFAULT '',
    at                timestamptz NOT NULL,
    UNIQUE (referral_id, seq)
);

-- One counter per calendar day (Asia/Shanghai) for ZZ-YYYYMMDD-NNNNNN.
CREATE TABLE referral_numbers (
    day  text PRIMARY KEY,
    last bigint NOT NULL
);

-- Written in the transaction of every state change; a relay publishes the
-- rows (at least once) and stamps published_at.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    topic        text NOT NULL,
    key          text NOT NULL,
    payload      text NOT NULL,
    created_at   timestamptz NOT NULL,
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
