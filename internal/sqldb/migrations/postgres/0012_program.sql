-- Paired-support program records (对口支援信息管理): agreements and their
-- versions, postings of dispatched doctors, arrival, daily attendance,
-- monthly evaluations, work logs, the public clinic schedule and trainees.
--
-- Days are text YYYY-MM-DD (Asia/Shanghai calendar days, as the program
-- counts them), the same on both engines, so that the reports' grouping
-- by month (substr(day, 1, 7)), quarter and year is one SQL text for both.
-- Every row carries its pairing and both hospitals (denormalised from the
-- pairing, which never changes sides), so counting per pairing, hospital,
-- county and province (join hospitals) needs no walk through postings.

-- The current version of each agreement; every version, the first
-- included, is also a row of program_agreement_versions.
CREATE TABLE program_agreements (
    id                     uuid PRIMARY KEY,
    pairing_id             uuid NOT NULL REFERENCES pairings(id),
    supporting_hospital_id uuid NOT NULL REFERENCES hospitals(id),
    recipient_hospital_id  uuid NOT NULL REFERENCES hospitals(id),
    starts_on              text NOT NULL CHECK (length(starts_on) = 10),
    ends_on                text NOT NULL CHECK (length(ends_on) = 10 AND ends_on >= starts_on),
    -- The commitments the compliance checklist compares with, as columns;
    -- the rest of the terms (lists, green channel) as JSON.
    teams_per_year         integer NOT NULL CHECK (teams_per_year >= 0),
    days_per_year          integer NOT NULL CHECK (days_per_year >= 0),
    trainees_per_year      integer NOT NULL CHECK (trainees_per_year >= 0),
    terms                  text NOT NULL,
    signed_document_id     uuid REFERENCES attachments(id),
    version                integer NOT NULL,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL,
    updated_by             text NOT NULL
);
CREATE INDEX program_agreements_pairing ON program_agreements (pairing_id, starts_on);

CREATE TABLE program_agreement_versions (
    agreement_id uuid NOT NULL REFERENCES program_agreements(id),
    version      integer NOT NULL,
    terms        text NOT NULL,
    -- The signed document of this version: a partner hospital may download
    -- a file an agreement of its pairing carries (attachments.Holder).
    signed_document_id uuid REFERENCES attachments(id),
    created_at   timestamptz NOT NULL,
    created_by   text NOT NULL,
    PRIMARY KEY (agreement_id, version)
);
CREATE INDEX program_agreement_versions_document ON program_agreement_versions (signed_document_id);

CREATE TABLE program_postings (
    id                      uuid PRIMARY KEY,
    pairing_id              uuid NOT NULL REFERENCES pairings(id),
    staff_id                uuid NOT NULL REFERENCES staff(id),
    staff_name              text NOT NULL,
    title                   text NOT NULL,   -- as it was when posted
    home_hospital_id        uuid NOT NULL REFERENCES hospitals(id),
    home_department_id      uuid REFERENCES departments(id),
    recipient_hospital_id   uuid NOT NULL REFERENCES hospitals(id),
    recipient_department_id uuid NOT NULL REFERENCES departments(id),
    starts_on               text NOT NULL CHECK (length(starts_on) = 10),
    ends_on                 text NOT NULL CHECK (length(ends_on) = 10 AND ends_on >= starts_on),
    team                    text NOT NULL,
    team_leader             boolean NOT NULL,
    specialty               text NOT NULL,
    warnings                text NOT NULL,   -- JSON list of program.Warning
    override_reason         text,
    override_by             text,
    override_at             timestamptz,
    arrival_due_on          text NOT NULL,
    arrived_on              text,
    arrival_confirmed_by    text,
    arrival_confirmed_at    timestamptz,
    arrival_note            text NOT NULL DEFAULT '',
    appraisal_grade         text,
    appraisal_comment       text NOT NULL DEFAULT '',
    appraised_by            text,
    appraised_at            timestamptz,
    version                 integer NOT NULL,
    created_at              timestamptz NOT NULL,
    created_by              text NOT NULL,
    updated_at              timestamptz NOT NULL,
    -- A posting with warnings exists only when the office accepted them.
    CHECK (warnings = '[]' OR override_reason IS NOT NULL),
    CHECK ((arrived_on IS NULL) = (arrival_confirmed_at IS NULL))
);
CREATE INDEX program_postings_pairing ON program_postings (pairing_id, team, starts_on);
CREATE INDEX program_postings_recipient ON program_postings (recipient_hospital_id, starts_on);
CREATE INDEX program_postings_home ON program_postings (home_hospital_id, starts_on);
CREATE INDEX program_postings_staff ON program_postings (staff_id);

CREATE TABLE program_attendance (
    posting_id   uuid NOT NULL REFERENCES program_postings(id),
    day          text NOT NULL CHECK (length(day) = 10),
    status       text NOT NULL CHECK (status IN ('present', 'leave', 'absent')),
    reason       text NOT NULL,
    recorded_by  text NOT NULL,
    recorded_at  timestamptz NOT NULL,
    confirmed_by text,
    confirmed_at timestamptz,
    PRIMARY KEY (posting_id, day),
    CHECK (status <> 'leave' OR reason <> '')
);

CREATE TABLE program_evaluations (
    posting_id   uuid NOT NULL REFERENCES program_postings(id),
    month        text NOT NULL CHECK (length(month) = 7),
    scores       text NOT NULL,  -- JSON object criterion → score
    total        integer NOT NULL,
    comment      text NOT NULL,
    evaluated_by text NOT NULL,
    evaluated_at timestamptz NOT NULL,
    due_on       text NOT NULL,
    late         boolean NOT NULL,
    version      integer NOT NULL,
    PRIMARY KEY (posting_id, month)
);

-- One column per figure, so the reports SUM them per period and place.
CREATE TABLE program_work_logs (
    id                      uuid PRIMARY KEY,
    posting_id              uuid NOT NULL REFERENCES program_postings(id),
    day                     text NOT NULL CHECK (length(day) = 10),
    outpatients             integer NOT NULL CHECK (outpatients >= 0),
    ward_rounds             integer NOT NULL CHECK (ward_rounds >= 0),
    operations              integer NOT NULL CHECK (operations >= 0),
    surgical_demonstrations integer NOT NULL CHECK (surgical_demonstrations >= 0),
    teaching_rounds         integer NOT NULL CHECK (teaching_rounds >= 0),
    lectures                integer NOT NULL CHECK (lectures >= 0),
    case_discussions        integer NOT NULL CHECK (case_discussions >= 0),
    consultations           integer NOT NULL CHECK (consultations >= 0),
    people_trained          integer NOT NULL CHECK (people_trained >= 0),
    free_clinics            integer NOT NULL CHECK (free_clinics >= 0),
    free_clinic_people      integer NOT NULL CHECK (free_clinic_people >= 0),
    new_techniques          integer NOT NULL CHECK (new_techniques >= 0),
    technique_names         text NOT NULL,  -- JSON list
    note                    text NOT NULL,
    entered_by              text NOT NULL,
    entered_at              timestamptz NOT NULL,
    confirmed_by            text,
    confirmed_at            timestamptz
);
CREATE INDEX program_work_logs_posting ON program_work_logs (posting_id, day);

CREATE TABLE program_clinic_sessions (
    id                    uuid PRIMARY KEY,
    posting_id            uuid NOT NULL REFERENCES program_postings(id),
    recipient_hospital_id uuid NOT NULL REFERENCES hospitals(id),
    day                   text NOT NULL CHECK (length(day) = 10),
    starts_at             text NOT NULL,
    ends_at               text NOT NULL CHECK (ends_at > starts_at),
    place                 text NOT NULL,
    published_by          text NOT NULL,
    published_at          timestamptz NOT NULL
);
CREATE INDEX program_clinic_sessions_hospital ON program_clinic_sessions (recipient_hospital_id, day, starts_at);

CREATE TABLE program_trainees (
    id                     uuid PRIMARY KEY,
    pairing_id             uuid NOT NULL REFERENCES pairings(id),
    supporting_hospital_id uuid NOT NULL REFERENCES hospitals(id),
    recipient_hospital_id  uuid NOT NULL REFERENCES hospitals(id),
    staff_id               uuid NOT NULL REFERENCES staff(id),
    staff_name             text NOT NULL,
    department_id          uuid REFERENCES departments(id),
    host_department        text NOT NULL,
    starts_on              text NOT NULL CHECK (length(starts_on) = 10),
    ends_on                text NOT NULL CHECK (length(ends_on) = 10 AND ends_on >= starts_on),
    created_by             text NOT NULL,
    created_at             timestamptz NOT NULL
);
CREATE INDEX program_trainees_pairing ON program_trainees (pairing_id, starts_on);
CREATE INDEX program_trainees_recipient ON program_trainees (recipient_hospital_id, starts_on);
