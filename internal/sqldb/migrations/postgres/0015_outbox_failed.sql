-- A consumer that delivers outside a transaction (the escalation webhook)
-- gives a message up after a bounded number of attempts or a bounded age:
-- failed_at records when, last_error and attempts why. A failed message is
-- never tried again and, being unpublished, never purged: it stays on
-- record for whoever looks into the receiver's failure.
ALTER TABLE outbox ADD COLUMN failed_at timestamptz;
