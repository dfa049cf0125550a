-- Concurrency groups and priorities (issue 10).
-- An execution may belong to one concurrency group (concurrency_key): at most
-- concurrency_limit of its open runs are admitted at once; the others wait, queued = true,
-- their tasks held Pending, in arrival order (concurrency_seq, taken under the group's
-- advisory lock). reason says why a run waits or ended as it did (ConcurrencyLimit,
-- ConcurrencyForbidden, ConcurrencyReplaced); NULL otherwise.
ALTER TABLE executions ADD COLUMN concurrency_key text;
ALTER TABLE executions ADD COLUMN concurrency_limit integer;
ALTER TABLE executions ADD COLUMN concurrency_seq bigint;
ALTER TABLE executions ADD COLUMN queued boolean NOT NULL DEFAULT false;
ALTER TABLE executions ADD COLUMN reason text;
CREATE SEQUENCE executions_concurrency_seq;
-- Open runs of one group in arrival order: what admission reads under the group's lock.
CREATE INDEX executions_concurrency_open ON executions (concurrency_key, concurrency_seq)
    WHERE concurrency_key IS NOT NULL AND phase IN ('Pending', 'Running');
-- Priority of an execution (-1000..1000, default 0), copied to its tasks so that every
-- dispatch (after a commit, a timer, a re-dispatch, a resume) picks the band's stream
-- without reading the execution.
ALTER TABLE executions ADD COLUMN priority integer NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN priority integer NOT NULL DEFAULT 0;
