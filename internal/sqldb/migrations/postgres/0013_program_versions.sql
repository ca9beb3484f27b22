-- A published clinic can be changed (day, time, place) or cancelled with a
-- reason by the recipient hospital's program office, under If-Match: each
-- row gets a version; a cancelled clinic stays on record (the audit trail
-- and the office's list show it) but leaves the public page.
ALTER TABLE program_clinic_sessions ADD COLUMN version integer NOT NULL DEFAULT 1;
ALTER TABLE program_clinic_sessions ADD COLUMN cancelled_at timestamptz;
ALTER TABLE program_clinic_sessions ADD COLUMN cancelled_by text;
ALTER TABLE program_clinic_sessions ADD COLUMN cancel_reason text NOT NULL DEFAULT '';

-- A trainee record is corrected by a program office of the pairing, and a
-- work log entry by the posted doctor until it is confirmed, both under
-- If-Match.
ALTER TABLE program_trainees ADD COLUMN version integer NOT NULL DEFAULT 1;
ALTER TABLE program_work_logs ADD COLUMN version integer NOT NULL DEFAULT 1;
