-- A chain's head also keeps the hash it replaced, so that one statement can
-- move the head and insert the audit row linked to the row before it: an
-- UPDATE's RETURNING sees only the new values, and prev_hash = hash in its
-- SET list carries the old one through. Inside a change's transaction the
-- append then needs no round trip of its own (store.AuditLog.Append).
-- Rows written before this migration leave it NULL until their chain moves.
ALTER TABLE audit_heads ADD COLUMN prev_hash bytea;

-- expect_one raises SQLSTATE DK412 unless n is 1. A guarded write whose
-- row count decides the transaction (an UPDATE of a ticket at the version
-- its writer read) can then go to the server together with COMMIT: should
-- the guard fail, the transaction fails and COMMIT rolls it back, where a
-- check made by the client would have to see the count before sending
-- COMMIT, one more round trip on every change. sqldb reports DK412 as
-- ErrRowChanged.
CREATE FUNCTION expect_one(n bigint) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    IF n <> 1 THEN
        RAISE EXCEPTION 'expected one row to change, % did', n USING ERRCODE = 'DK412';
    END IF;
    RETURN n;
END
$$;
