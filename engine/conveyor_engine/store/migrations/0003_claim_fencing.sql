-- Fencing and lost attempts (issue 9, items 1 and 2).
-- Every claim of a task gets the next claim number (a fencing token, as in Kleppmann's
-- "How to do distributed locking"): an outcome is committed only while the token it was
-- claimed with is still the task's current one, so a late commit from a superseded claim is
-- refused. claimed_at is when the current claim began (the start of a lost attempt).
ALTER TABLE tasks ADD COLUMN claim bigint NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN claimed_at timestamptz;
-- A machine-readable reason next to the message (e.g. WorkerLost).
ALTER TABLE tasks ADD COLUMN reason text;
ALTER TABLE attempts ADD COLUMN reason text;
-- An attempt whose worker stopped renewing its lease is recorded as Lost.
ALTER TABLE attempts DROP CONSTRAINT attempts_outcome_check;
ALTER TABLE attempts ADD CONSTRAINT attempts_outcome_check
    CHECK (outcome IN ('Succeeded', 'Failed', 'Skipped', 'Lost'));
