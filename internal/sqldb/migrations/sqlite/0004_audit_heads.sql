-- Audit log: one head row per chain from the start (chains 0 to 15, see
-- audit.Chains), at the genesis hash, so appends never race to create them.
WITH RECURSIVE c(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM c WHERE n < 15)
INSERT INTO audit_heads (chain, chain_seq, hash)
SELECT n, 0, zeroblob(32) FROM c WHERE true
ON CONFLICT (chain) DO NOTHING;

-- "Who touched this record": auditors look a resource's trail up by id.
CREATE INDEX audit_log_resource ON audit_log (resource_id, seq) WHERE resource_id <> '';
