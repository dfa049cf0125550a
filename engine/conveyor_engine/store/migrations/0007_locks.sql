-- Named locks and semaphores, and global rate limits (issue 10, items 3, 4 and 6).
-- Each lock name has a monotonically increasing sequence: every holder's fencing token is
-- the next number (Kleppmann, "How to do distributed locking"). The sequence row is also
-- what acquirers of one name serialise on (SELECT ... FOR UPDATE).
CREATE TABLE lock_sequences (
    name  text PRIMARY KEY,
    token bigint NOT NULL DEFAULT 0
);
-- Current holders: one row per (lock, task), taken under the task's claim, with a lease.
-- A row whose lease ran out or whose task no longer runs under that claim is dead; the
-- next acquirer or the dispatcher's sweeper deletes it. Deleting an execution (retention)
-- deletes its holders.
CREATE TABLE lock_holders (
    name         text NOT NULL,
    execution_id uuid NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    task_name    text NOT NULL,
    claim        bigint NOT NULL,
    token        bigint NOT NULL,
    worker       text NOT NULL,
    lease_until  timestamptz NOT NULL,
    acquired_at  timestamptz NOT NULL,
    PRIMARY KEY (name, execution_id, task_name)
);
CREATE INDEX lock_holders_task ON lock_holders (execution_id, task_name);
CREATE INDEX lock_holders_worker ON lock_holders (worker);
-- A task waiting for a lock names it, so a release wakes the waiters of that lock.
ALTER TABLE tasks ADD COLUMN waiting_for text;
CREATE INDEX tasks_waiting_lock ON tasks (waiting_for, claimed_at)
    WHERE phase = 'Waiting' AND timer_kind = 'lock';
-- Two more durable timers: waiting for a lock, waiting for a rate-limit token.
ALTER TABLE tasks DROP CONSTRAINT tasks_timer_kind_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_timer_kind_check
    CHECK (timer_kind IN ('retry', 'resume', 'lock', 'rate'));
-- Rate-limit declarations by workflow: a key's limit is global, so every workflow that
-- declares it must agree (checked when a workflow is registered).
CREATE TABLE rate_limits (
    key           text NOT NULL,
    workflow_name text NOT NULL,
    spec          jsonb NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key, workflow_name)
);
