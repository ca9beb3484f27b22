-- SQLite twin of postgres/0007 (ids and instants are text).
-- Green channel: reserved bed pools (按一定比例动态预留专用病床). Each
-- receiving department holds a pool of beds kept for up-referred patients;
-- accepting a green-channel ticket holds one of them in the transaction of
-- the acceptance.
--
-- in_use is a counter, moved only by a conditional
--   UPDATE bed_pools SET in_use = in_use + 1 WHERE … AND in_use < size
-- checked by its row count, so two acceptances can never take the last bed
-- twice: on PostgreSQL the second UPDATE waits for the first's row lock and
-- re-reads the row; on SQLite writers are serialised. The CHECKs below are
-- the backstop: no statement, whatever its author meant, can commit a pool
-- that is oversubscribed or below zero.
CREATE TABLE bed_pools (
    hospital_id   text NOT NULL REFERENCES hospitals(id),
    department_id text NOT NULL REFERENCES departments(id),
    size          integer NOT NULL CHECK (size BETWEEN 0 AND 1000),
    in_use        integer NOT NULL DEFAULT 0 CHECK (in_use >= 0),
    version       integer NOT NULL DEFAULT 1,   -- of the settings (size), not of in_use
    created_at    text NOT NULL,
    updated_at    text NOT NULL,
    updated_by    text NOT NULL DEFAULT '',
    PRIMARY KEY (hospital_id, department_id),
    CONSTRAINT bed_pools_not_oversubscribed CHECK (in_use <= size)
);

-- One row per bed a ticket held. A ticket holds at most one bed, ever: it is
-- accepted once. Released rows stay as the record of who held the bed when.
CREATE TABLE bed_reservations (
    id             text PRIMARY KEY,
    hospital_id    text NOT NULL,
    department_id  text NOT NULL,
    referral_id    text NOT NULL UNIQUE REFERENCES referrals(id),
    state          text NOT NULL CHECK (state IN ('held', 'released')),
    held_at        text NOT NULL,
    held_by        text NOT NULL,
    released_at    text,
    released_by    text,
    release_reason text NOT NULL DEFAULT '',
    FOREIGN KEY (hospital_id, department_id) REFERENCES bed_pools (hospital_id, department_id),
    CHECK ((state = 'held') = (released_at IS NULL))
);
CREATE INDEX bed_reservations_held ON bed_reservations (hospital_id, department_id, held_at) WHERE state = 'held';
