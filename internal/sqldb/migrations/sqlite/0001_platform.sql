-- Platform: directory, identity, patients, consent, audit.
-- SQLite twin of postgres/0001: ids and instants are text (fixed-width UTC,
-- see sqldb.TimeFormat), booleans are integers, bytea is blob.

CREATE TABLE hospitals (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    org_code    text NOT NULL UNIQUE,
    tier        text NOT NULL CHECK (tier IN ('authority', 'tertiary', 'secondary', 'township')),
    province    text NOT NULL,
    county      text NOT NULL DEFAULT '',
    address     text NOT NULL DEFAULT '',
    time_zone   text NOT NULL DEFAULT 'Asia/Shanghai',
    version     integer NOT NULL DEFAULT 1,
    created_at  text NOT NULL,
    updated_at  text NOT NULL
);

CREATE TABLE departments (
    id          text PRIMARY KEY,
    hospital_id text NOT NULL REFERENCES hospitals(id),
    code        text NOT NULL,
    name        text NOT NULL,
    version     integer NOT NULL DEFAULT 1,
    created_at  text NOT NULL,
    updated_at  text NOT NULL,
    UNIQUE (hospital_id, code)
);

CREATE TABLE staff (
    id            text PRIMARY KEY,
    hospital_id   text NOT NULL REFERENCES hospitals(id),
    department_id text REFERENCES departments(id),
    name          text NOT NULL,
    title         text NOT NULL,
    phone         text NOT NULL DEFAULT '',
    active        integer NOT NULL DEFAULT 1,
    version       integer NOT NULL DEFAULT 1,
    created_at    text NOT NULL,
    updated_at    text NOT NULL
);
CREATE INDEX staff_hospital ON staff (hospital_id, id);

CREATE TABLE pairings (
    id                     text PRIMARY KEY,
    supporting_hospital_id text NOT NULL REFERENCES hospitals(id),
    recipient_hospital_id  text NOT NULL REFERENCES hospitals(id),
    starts_on              text NOT NULL,
    ends_on                text,
    status                 text NOT NULL CHECK (status IN ('active', 'suspended', 'ended')),
    version                integer NOT NULL DEFAULT 1,
    created_at             text NOT NULL,
    updated_at             text NOT NULL,
    CHECK (supporting_hospital_id <> recipient_hospital_id)
);
CREATE UNIQUE INDEX pairings_pair ON pairings (supporting_hospital_id, recipient_hospital_id, starts_on);
CREATE INDEX pairings_recipient ON pairings (recipient_hospital_id);

CREATE TABLE users (
    id            text PRIMARY KEY,
    username      text NOT NULL UNIQUE,
    display_name  text NOT NULL,
    hospital_id   text NOT NULL REFERENCES hospitals(id),
    staff_id      text REFERENCES staff(id),
    password_hash text NOT NULL,
    supervisor    integer NOT NULL DEFAULT 0,
    disabled      integer NOT NULL DEFAULT 0,
    failed_logins integer NOT NULL DEFAULT 0,
    locked_until  text,
    version       integer NOT NULL DEFAULT 1,
    created_at    text NOT NULL,
    updated_at    text NOT NULL
);
CREATE INDEX users_hospital ON users (hospital_id, id);

CREATE TABLE user_roles (
    user_id text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role    text NOT NULL,
    PRIMARY KEY (user_id, role)
);

CREATE TABLE sessions (
    id           text PRIMARY KEY,
    token_hash   blob NOT NULL UNIQUE,
    user_id      text NOT NULL REFERENCES users(id),
    created_at   text NOT NULL,
    last_seen_at text NOT NULL,
    expires_at   text NOT NULL,
    revoked_at   text,
    client_addr  text NOT NULL DEFAULT '',
    user_agent   text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE patients (
    id                 text PRIMARY KEY,
    name               text NOT NULL,
    sex                text NOT NULL CHECK (sex IN ('male', 'female', 'unknown')),
    birth_date         text NOT NULL,
    national_id_cipher blob,
    national_id_hash   blob,
    national_id_masked text NOT NULL DEFAULT '',
    phone              text NOT NULL DEFAULT '',
    address            text NOT NULL DEFAULT '',
    home_hospital_id   text NOT NULL REFERENCES hospitals(id),
    created_by         text REFERENCES users(id),
    version            integer NOT NULL DEFAULT 1,
    created_at         text NOT NULL,
    updated_at         text NOT NULL
);
CREATE UNIQUE INDEX patients_national_id ON patients (national_id_hash) WHERE national_id_hash IS NOT NULL;
CREATE INDEX patients_home ON patients (home_hospital_id, id);

CREATE TABLE consents (
    id                      text PRIMARY KEY,
    patient_id              text NOT NULL REFERENCES patients(id),
    consenter_kind          text NOT NULL CHECK (consenter_kind IN ('patient', 'guardian', 'relative')),
    consenter_name          text NOT NULL,
    relationship            text NOT NULL DEFAULT '',
    purpose                 text NOT NULL CHECK (purpose IN ('referral', 'remote_consultation', 'data_sharing')),
    shared_with_hospital_id text REFERENCES hospitals(id),
    note                    text NOT NULL DEFAULT '',
    granted_at              text NOT NULL,
    recorded_by             text NOT NULL REFERENCES users(id),
    recorded_at             text NOT NULL,
    withdrawn_at            text,
    withdrawn_by            text REFERENCES users(id),
    withdraw_reason         text NOT NULL DEFAULT ''
);
CREATE INDEX consents_patient ON consents (patient_id, id);

CREATE TABLE audit_log (
    seq               integer PRIMARY KEY AUTOINCREMENT,
    chain             integer NOT NULL,
    chain_seq         integer NOT NULL,
    at                text NOT NULL,
    actor_id          text NOT NULL DEFAULT '',
    actor_hospital_id text NOT NULL DEFAULT '',
    action            text NOT NULL,
    resource_type     text NOT NULL DEFAULT '',
    resource_id       text NOT NULL DEFAULT '',
    patient_id        text NOT NULL DEFAULT '',
    outcome           text NOT NULL,
    request_id        text NOT NULL DEFAULT '',
    client_addr       text NOT NULL DEFAULT '',
    detail            text NOT NULL DEFAULT '',
    prev_hash         blob NOT NULL,
    hash              blob NOT NULL,
    UNIQUE (chain, chain_seq)
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_patient ON audit_log (patient_id, seq) WHERE patient_id <> '';
CREATE INDEX audit_log_actor ON audit_log (actor_id, seq);

CREATE TABLE audit_heads (
    chain     integer PRIMARY KEY,
    chain_seq integer NOT NULL,
    hash      blob NOT NULL
);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END;
