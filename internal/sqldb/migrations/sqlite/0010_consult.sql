-- SQLite twin of postgres/0010 (ids and instants are text, booleans integers).
-- Remote sessions (consult/): session requests, their append-only history,
-- the written opinion (immutable once signed) and its append-only addenda,
-- presence in a session, and the slots of specialists' remote clinics.
-- List-valued parts of a session (departments, named specialists,
-- attachments, attendee hospitals, assignments) are JSON text, read and
-- written with the session; optional ids are NULL, never ''.

CREATE TABLE consult_sessions (
    id                       text PRIMARY KEY,
    kind                     text NOT NULL CHECK (kind IN ('consult', 'mdt', 'teaching_round', 'imaging_review', 'expert_clinic')),
    urgency                  text NOT NULL CHECK (urgency IN ('routine', 'urgent', 'emergency')),
    requester_id             text NOT NULL,
    requesting_hospital_id   text NOT NULL,
    requesting_department_id text,
    target_hospital_id       text NOT NULL,
    target_department_ids    text NOT NULL DEFAULT '[]',
    requested_specialist_ids text NOT NULL DEFAULT '[]',
    question                 text NOT NULL,
    clinical_summary         text NOT NULL DEFAULT '',
    attachments              text NOT NULL DEFAULT '[]',
    patient_id               text,                  -- NULL for a teaching round
    attendee_hospital_ids    text NOT NULL DEFAULT '[]',
    slot_id                  text,                  -- the clinic slot of an expert-clinic session
    status                   text NOT NULL,
    version                  integer NOT NULL DEFAULT 1,
    created_at               text NOT NULL,
    updated_at               text NOT NULL,
    specialists              text NOT NULL DEFAULT '[]',
    accepted_by              text,
    accepted_at              text,
    declined_by              text,
    declined_at              text,
    decline_reason           text NOT NULL DEFAULT '',
    schedule_start           text,
    schedule_end             text,
    scheduled_at             text,
    started_at               text,
    ended_at                 text,
    signed_at                text,
    acknowledged_by          text,
    acknowledged_at          text,
    cancelled_by             text,
    cancelled_at             text,
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
    session_id  text NOT NULL REFERENCES consult_sessions(id),
    hospital_id text NOT NULL,
    PRIMARY KEY (session_id, hospital_id)
);
CREATE INDEX consult_attendee_hospitals_hospital ON consult_attendee_hospitals (hospital_id, session_id);

-- Append-only: rows are inserted, never updated or deleted.
CREATE TABLE consult_events (
    id                text PRIMARY KEY,
    session_id        text NOT NULL REFERENCES consult_sessions(id),
    seq               integer NOT NULL,
    action            text NOT NULL,
    from_status       text NOT NULL DEFAULT '',
    to_status         text NOT NULL,
    actor             text,
    actor_hospital_id text,
    reason            text NOT NULL DEFAULT '',
    at                text NOT NULL,
    UNIQUE (session_id, seq)
);

-- The written opinion, one per session: a draft while signed_at is NULL,
-- immutable from its signature on (the triggers refuse any change).
CREATE TABLE consult_opinions (
    session_id              text PRIMARY KEY REFERENCES consult_sessions(id),
    findings                text NOT NULL DEFAULT '',
    impression              text NOT NULL DEFAULT '',
    recommendations         text NOT NULL DEFAULT '',
    diagnoses               text NOT NULL DEFAULT '[]',
    referral_advised        integer NOT NULL DEFAULT 0,
    suggested_department_id text,
    author_id               text NOT NULL,
    updated_at              text NOT NULL,
    signed_by               text,
    signed_at               text,
    digest                  text NOT NULL DEFAULT '',
    CHECK ((signed_at IS NULL) = (signed_by IS NULL))
);

-- Addenda to a signed opinion: append-only.
CREATE TABLE consult_addenda (
    id         text PRIMARY KEY,
    session_id text NOT NULL REFERENCES consult_sessions(id),
    seq        integer NOT NULL,
    text       text NOT NULL,
    signed_by  text NOT NULL,
    signed_at  text NOT NULL,
    digest     text NOT NULL,
    UNIQUE (session_id, seq)
);

CREATE TRIGGER consult_events_no_update BEFORE UPDATE ON consult_events
BEGIN SELECT RAISE(ABORT, 'consult_events is append-only: UPDATE refused'); END;
CREATE TRIGGER consult_events_no_delete BEFORE DELETE ON consult_events
BEGIN SELECT RAISE(ABORT, 'consult_events is append-only: DELETE refused'); END;
CREATE TRIGGER consult_addenda_no_update BEFORE UPDATE ON consult_addenda
BEGIN SELECT RAISE(ABORT, 'consult_addenda is append-only: UPDATE refused'); END;
CREATE TRIGGER consult_addenda_no_delete BEFORE DELETE ON consult_addenda
BEGIN SELECT RAISE(ABORT, 'consult_addenda is append-only: DELETE refused'); END;
CREATE TRIGGER consult_opinions_signed_no_update BEFORE UPDATE ON consult_opinions WHEN OLD.signed_at IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'consult_opinions: a signed opinion is immutable: UPDATE refused'); END;
CREATE TRIGGER consult_opinions_signed_no_delete BEFORE DELETE ON consult_opinions WHEN OLD.signed_at IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'consult_opinions: a signed opinion is immutable: DELETE refused'); END;

-- Connections to a session (join, leave); attendance is merged from them.
CREATE TABLE consult_presence (
    id          text PRIMARY KEY,
    session_id  text NOT NULL REFERENCES consult_sessions(id),
    user_id     text NOT NULL,
    hospital_id text NOT NULL,
    joined_at   text NOT NULL,
    left_at     text
);
CREATE INDEX consult_presence_session ON consult_presence (session_id, joined_at);

-- Published slots of specialists' remote clinics. booked counts taken
-- places; a place is taken by a conditional update (booked < capacity), so
-- two bookings can never share the last place.
CREATE TABLE clinic_slots (
    id            text PRIMARY KEY,
    specialist_id text NOT NULL,
    hospital_id   text NOT NULL,
    department_id text NOT NULL,
    start_at      text NOT NULL,
    end_at        text NOT NULL,
    capacity      integer NOT NULL CHECK (capacity >= 1),
    booked        integer NOT NULL DEFAULT 0,
    status        text NOT NULL CHECK (status IN ('published', 'booked', 'cancelled')),
    published_at  text NOT NULL,
    cancelled_at  text,
    cancel_reason text NOT NULL DEFAULT '',
    version       integer NOT NULL DEFAULT 1,
    CHECK (end_at > start_at),
    CHECK (booked >= 0 AND booked <= capacity)
);
CREATE INDEX clinic_slots_hospital ON clinic_slots (hospital_id, start_at);
CREATE INDEX clinic_slots_specialist ON clinic_slots (specialist_id, start_at);
