-- Lifecycle in the spec (issue 9): suspend, and retry from the failed step.
-- A suspended execution starts no task: claims of its tasks are refused and its Ready tasks
-- are not re-dispatched; resuming re-dispatches them. Tasks already running finish.
ALTER TABLE executions ADD COLUMN suspended boolean NOT NULL DEFAULT false;
-- How many times the execution was retried from its failed step.
ALTER TABLE executions ADD COLUMN retries integer NOT NULL DEFAULT 0;
-- Attempts a task had before the current retry round: attempt numbers go on across a retry
-- (every attempt keeps its row), while the task's retry policy counts attempt - attempt_base.
ALTER TABLE tasks ADD COLUMN attempt_base integer NOT NULL DEFAULT 0;
