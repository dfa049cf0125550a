-- A lease on Running tasks kept in PostgreSQL too, so a task whose worker died is recovered
-- even when Redis lost the stream's pending entries (Redis can be rebuilt from PostgreSQL).
ALTER TABLE tasks ADD COLUMN lease_until timestamptz;
CREATE INDEX tasks_running_lease ON tasks (pool, lease_until) WHERE phase = 'Running';
CREATE INDEX tasks_running_worker ON tasks (worker) WHERE phase = 'Running';
