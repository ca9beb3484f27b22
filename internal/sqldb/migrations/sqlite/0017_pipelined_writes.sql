-- SQLite twin of postgres/0017: the head keeps the hash it replaced. SQLite
-- appends in its own statements and does not read it; the column keeps the
-- two schemas alike.
ALTER TABLE audit_heads ADD COLUMN prev_hash blob;
