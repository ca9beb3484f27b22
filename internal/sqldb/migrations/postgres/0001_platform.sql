-- Platform: directory, identity, patients, consent, audit.
-- Instants are timestamptz (UTC); ids are UUIDv7 (time-ordered, not guessable).

CREATE TABLE hospitals (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    org_code    text NOT NULL UNIQUE,      -- national organisation code (统一社会信用代码)
    tier        text NOT NULL CHECK (tier IN ('authority', 'tertiary', 'secondary', 'township')),
    province    text NOT NULL,
    county      text NOT NULL DEFAULT '',
    address     text NOT NULL DEFAULT '',
    time_zone   text NOT NULL DEFAULT 'Asia/Shanghai',
    version     integer NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE departments (
    id          uuid PRIMARY KEY,
    hospital_id uuid NOT NULL REFERENCES hospitals(id),
    code        text NOT NULL,             -- standard clinical subject code (诊疗科目代码)
    name        text NOT NULL,
    version     integer NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    UNIQUE (hospital_id, code)
);

CREATE TABLE staff (
    id            uuid PRIMARY KEY,
    hospital_id   uuid NOT NULL REFERENCES hospitals(id),
    department_id uuid REFERENCES departments(id),
    name          text NOT NULL,
    title         text NOT NULL,
    phone         text NOT NULL DEFAULT '',
    active        boolean NOT NULL DEFAULT true,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX staff_hospital ON staff (hospital_id, id);

CREATE TABLE pairings (
    id                     uuid PRIMARY KEY,
    supporting_hospital_id uuid NOT NULL REFERENCES hospitals(id),
    recipient_hospital_id  uuid NOT NULL REFERENCES hospitals(id),
    starts_on              date NOT NULL,
    ends_on                date,
    status                 text NOT NULL CHECK (status IN ('active', 'suspended', 'ended')),
    version                integer NOT NULL DEFAULT 1,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL,
    CHECK (supporting_hospital_id <> recipient_hospital_id)
);
CREATE UNIQUE INDEX pairings_pair ON pairings (supporting_hospital_id, recipient_hospital_id, starts_on);
CREATE INDEX pairings_recipient ON pairings (recipient_hospital_id);

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    username      text NOT NULL UNIQUE,
    display_name  text NOT NULL,
    hospital_id   uuid NOT NULL REFERENCES hospitals(id),
    staff_id      uuid REFERENCES staff(id),
    password_hash text NOT NULL,
    supervisor    boolean NOT NULL DEFAULT false,
    disabled      boolean NOT NULL DEFAULT false,
    failed_logins integer NOT NULL DEFAULT 0,
    locked_until  timestamptz,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX users_hospital ON users (hospital_id, id);

CREATE TABLE user_roles (
    user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role    text NOT NULL,
    PRIMARY KEY (user_id, role)
);

CREATE TABLE sessions (
    id           uuid PRIMARY KEY,
    token_hash   bytea NOT NULL UNIQUE,   -- SHA-256 of the opaque token; the token itself is never stored
    user_id      uuid NOT NULL REFERENCES users(id),
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,    -- absolute expiry
    revoked_at   timestamptz,
    client_addr  text NOT NULL DEFAULT '',
    user_agent   text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE patients (
    id                 uuid PRIMARY KEY,
    name               text NOT NULL,
    sex                text NOT NULL CHECK (sex IN ('male', 'female', 'unknown')),
    birth_date         date NOT NULL,
    national_id_cipher bytea,             -- AES-GCM under the configured data key
    national_id_hash   bytea,             -- HMAC-SHA-256 under a key derived from it, for exact search
    national_id_masked text NOT NULL DEFAULT '',
    phone              text NOT NULL DEFAULT '',
    address            text NOT NULL DEFAULT '',
    home_hospital_id   uuid NOT NULL REFERENCES hospitals(id),
    created_by         uuid REFERENCES users(id),
    version            integer NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);
CREATE UNIQUE INDEX patients_national_id ON patients (national_id_hash) WHERE national_id_hash IS NOT NULL;
CREATE INDEX patients_home ON patients (home_hospital_id, id);

CREATE TABLE consents (
    id                      uuid PRIMARY KEY,
    patient_id              uuid NOT NULL REFERENCES patients(id),
    consenter_kind          text NOT NULL CHECK (consenter_kind IN ('patient', 'guardian', 'relative')),
    consenter_name          text NOT NULL,
    relationship            text NOT NULL DEFAULT '',
    purpose                 text NOT NULL CHECK (purpose IN ('referral', 'remote_consultation', 'data_sharing')),
    shared_with_hospital_id uuid REFERENCES hospitals(id),
    note                    text NOT NULL DEFAULT '',
    granted_at              timestamptz NOT NULL,
    recorded_by             uuid NOT NULL REFERENCES users(id),
    recorded_at             timestamptz NOT NULL,
    withdrawn_at            timestamptz,
    withdrawn_by            uuid REFERENCES users(id),
    withdraw_reason         text NOT NULL DEFAULT ''
);
CREATE INDEX consents_patient ON consents (patient_id, id);

-- The audit log is append-only and hash-chained. Rows are spread over a few
-- independent chains so that concurrent transactions do not all queue on one
-- head row; each chain is verified on its own.
CREATE TABLE audit_log (
    seq               bigserial PRIMARY KEY,
    chain             smallint NOT NULL,
    chain_seq         bigint NOT NULL,
    at                timestamptz NOT NULL,
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
    prev_hash         bytea NOT NULL,
    hash              bytea NOT NULL,
    UNIQUE (chain, chain_seq)
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_patient ON audit_log (patient_id, seq) WHERE patient_id <> '';
CREATE INDEX audit_log_actor ON audit_log (actor_id, seq);

CREATE TABLE audit_heads (
    chain     smallint PRIMARY KEY,
    chain_seq bigint NOT NULL,
    hash      bytea NOT NULL
);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
END
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;
