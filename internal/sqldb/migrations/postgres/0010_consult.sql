-- Remote sessions (consult/): session requests, their append-only history,
-- the written opinion (immutable once signed) and its append-only addenda,
-- presence in a session, and the slots of specialists' remote clinics.
-- List-valued parts of a session (departments, named specialists,
-- attachments, attendee hospitals, assignments) are JSON text, read and
-- written with the session; optional ids are NULL, never ''.

CREATE TABLE consult_sessions (
    id                       uuid PRIMARY KEY,
    kind                     text NOT NULL CHECK (kind IN ('consult', 'mdt', 'teaching_round', 'imaging_review', 'expert_clinic')),
    urgency                  text NOT NULL CHECK (urgency IN ('routine', 'urgent', 'emergency')),
    requester_id             uuid NOT NULL,
    requesting_hospital_id   uuid NOT NULL,
    requesting_department_id uuid,
    target_hospital_id       uuid NOT NULL,
    target_department_ids    text NOT NULL DEFAULT '[]',
    requested_specialist_ids text NOT NULL DEFAULT '[]',
    question                 text NOT NULL,
    clinical_summary         text NOT NULL DEFAULT '',
    attachments              text NOT NULL DEFAULT '[]',
    patient_id               uuid,                  -- NULL for a teaching round
    attendee_hospital_ids    text NOT NULL DEFAULT '[]',
    slot_id                  uuid,                  -- the clinic slot of an expert-clinic session
    status                   text NOT NULL,
    version                  integer NOT NULL DEFAULT 1,
    created_at               timestamptz NOT NULL,
    updated_at               timestamptz NOT NULL,
    specialists              text NOT NULL DEFAULT '[]',
    accepted_by              uuid,
    accepted_at              timestamptz,
    declined_by              uuid,
    declined_at              timestamptz,
    decline_reason           text NOT NULL DEFAULT '',
    schedule_start           timestamptz,
    schedule_end             timestamptz,
    scheduled_at             timestamptz,
    started_at               timestamptz,
    ended_at                 timestamptz,
    signed_at                timestamptz,
    acknowledged_by          uuid,
    acknowledged_at          timestamptz,
    cancelled_by             uuid,
    cancelled_at             timestamptz,
    cancel_reason            text NOT NULL DEFAULT ''
);
CREATE INDEX consult_sessions_requesting ON consult_sessions (requesting_hospital_id, id);
CREATE INDEX consult_sessions_target ON consult_sessions (target_hospital_id, status, id);
CREATE INDEX consult_sessions_patient ON consult_sessions (patient_id, id);
-- Unanswered requests, for the deadline watcher.
CREATE INDEX consult_sessions_waiting ON consult_sessions (created_at) WHERE status = 'requested';
-- One patient holds at most one live booking of a slot.
CREATE UNIQUE INDEX consult_sessions_slot_patient ON consult_sessions (slot_id, patient_id)
    WHERE slot_id IS NOT NULL AND status <> 'cancelled';

-- The hospitals invited to a teaching round, so that each finds its rounds.
-- Written with the session; the invitation list does not change.
CREATE TABLE consult_attendee_hospitals (
    session_id  uuid NOT NULL REFERENCES consult_sessions(id),
    hospital_id uuid NOT NULL,
    PRIMARY KEY (session_id, hospital_id)
);
CREATE INDEX consult_attendee_hospitals_hospital ON consult_attendee_hospitals (hospital_id, session_id);

-- Append-only: rows are inserted, never updated or deleted.
CREATE TABLE consult_events (
    id                uuid PRIMARY KEY,
    session_id        uuid NOT NULL REFERENCES consult_sessions(id),
    seq               integer NOT NULL,
    action            text NOT NULL,
    from_status       text NOT NULL DEFAULT '',
    to_status         text NOT NULL,
    actor             uuid,
    actor_hospital_id uuid,
    reason            text NOT NULL DEFAULT '',
    at                timestamptz NOT NULL,
    UNIQUE (session_id, seq)
);

-- The written opinion, one per session: a draft while signed_at is NULL,
-- immutable from its signature on (the trigger refuses any change).
CREATE TABLE consult_opinions (
    session_id              uuid PRIMARY KEY REFERENCES consult_sessions(id),
    findings                text NOT NULL DEFAULT '',
    impression              text NOT NULL DEFAULT '',
    recommendations         text NOT NULL DEFAULT '',
    diagnoses               text NOT NULL DEFAULT '[]',
    referral_advised        boolean NOT NULL DEFAULT false,
    suggested_department_id uuid,
    author_id               uuid NOT NULL,
    updated_at              timestamptz NOT NULL,
    signed_by               uuid,
    signed_at               timestamptz,
    digest                  text NOT NULL DEFAULT '',
    CHECK ((signed_at IS NULL) = (signed_by IS NULL))
);

-- Addenda to a signed opinion: append-only.
CREATE TABLE consult_addenda (
    id         uuid PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES consult_sessions(id),
    seq        integer NOT NULL,
    text       text NOT NULL,
    signed_by  uuid NOT NULL,
    signed_at  timestamptz NOT NULL,
    digest     text NOT NULL,
    UNIQUE (session_id, seq)
);

CREATE FUNCTION consult_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END
$$;
CREATE TRIGGER consult_events_no_change BEFORE UPDATE OR DELETE ON consult_events
    FOR EACH ROW EXECUTE FUNCTION consult_append_only();
CREATE TRIGGER consult_addenda_no_change BEFORE UPDATE OR DELETE ON consult_addenda
    FOR EACH ROW EXECUTE FUNCTION consult_append_only();

CREATE FUNCTION consult_signed_opinion_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'consult_opinions: a signed opinion is immutable: % refused', TG_OP;
END
$$;
CREATE TRIGGER consult_opinions_signed BEFORE UPDATE OR DELETE ON consult_opinions
    FOR EACH ROW WHEN (OLD.signed_at IS NOT NULL) EXECUTE FUNCTION consult_signed_opinion_immutable();

-- Connections to a session (join, leave); attendance is merged from them.
CREATE TABLE consult_presence (
    id          uuid PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES consult_sessions(id),
    user_id     uuid NOT NULL,
    hospital_id uuid NOT NULL,
    joined_at   timestamptz NOT NULL,
    left_at     timestamptz
);
CREATE INDEX consult_presence_session ON consult_presence (session_id, joined_at);

-- Published slots of specialists' remote clinics. booked counts taken
-- places; a place is taken by a conditional update (booked < capacity), so
-- two bookings can never share the last place.
CREATE TABLE clinic_slots (
    id            uuid PRIMARY KEY,
    specialist_id uuid NOT NULL,
    hospital_id   uuid NOT NULL,
    department_id uuid NOT NULL,
    start_at      timestamptz NOT NULL,
    end_at        timestamptz NOT NULL,
    capacity      integer NOT NULL CHECK (capacity >= 1),
    booked        integer NOT NULL DEFAULT 0,
    status        text NOT NULL CHECK (status IN ('published', 'booked', 'cancelled')),
    published_at  timestamptz NOT NULL,
    cancelled_at  timestamptz,
    cancel_reason text NOT NULL DEFAULT '',
    version       integer NOT NULL DEFAULT 1,
    CHECK (end_at > start_at),
    CHECK (booked >= 0 AND booked <= capacity)
);
CREATE INDEX clinic_slots_hospital ON clinic_slots (hospital_id, start_at);
CREATE INDEX clinic_slots_specialist ON clinic_slots (specialist_id, start_at);
