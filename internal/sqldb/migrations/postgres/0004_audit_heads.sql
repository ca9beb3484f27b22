-- Audit log: one head row per chain from the start (chains 0 to 15, see
-- audit.Chains), at the genesis hash, so appends never race to create them.
INSERT INTO audit_heads (chain, chain_seq, hash)
SELECT c, 0, decode(repeat('00', 32), 'hex') FROM generate_series(0, 15) AS c
ON CONFLICT (chain) DO NOTHING;

-- "Who touched this record": auditors look a resource's trail up by id.
CREATE INDEX audit_log_resource ON audit_log (resource_id, seq) WHERE resource_id <> '';
