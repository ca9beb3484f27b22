-- SQLite twin of postgres/0014 (instants are text).
-- A consumer that delivers outside a transaction (the escalation webhook)
-- gives a message up after a bounded number of attempts or a bounded age:
-- failed_at records when; it is never tried again nor purged.
ALTER TABLE outbox ADD COLUMN failed_at text;
