-- Sub-workflows, workflow outputs and time variables (issue 12, items 2 and 5).
--
-- A child execution (a `workflow` task's run of another Workflow) names its parent task:
-- (parent_execution_id, parent_task, parent_attempt). `depth` is 0 for a top-level run,
-- parent depth + 1 for a child (bounded by CONVEYOR_MAX_WORKFLOW_DEPTH at run time).
ALTER TABLE executions ADD COLUMN parent_execution_id uuid;
ALTER TABLE executions ADD COLUMN parent_task text;
ALTER TABLE executions ADD COLUMN parent_attempt integer;
ALTER TABLE executions ADD COLUMN depth integer NOT NULL DEFAULT 0;
-- The workflow's declared outputs, evaluated once the run Succeeded (NULL until then).
ALTER TABLE executions ADD COLUMN outputs jsonb;
-- For runs a Schedule created: the tick's scheduled time (`execution.scheduledTime`).
ALTER TABLE executions ADD COLUMN scheduled_time timestamptz;
CREATE INDEX executions_parent ON executions (parent_execution_id, parent_task, parent_attempt)
    WHERE parent_execution_id IS NOT NULL;

-- The version a name resolves to for a child run: the one registered last.
ALTER TABLE workflow_versions ADD COLUMN registered_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX workflow_versions_name ON workflow_versions (name, registered_at DESC);

-- Waking the parent task when a child finishes, in the transaction that finishes it
-- (whatever finishes it: the last task's commit, a cancel, a refusal at submit). The parent
-- task waits `Waiting` on a `resume` timer (its periodic re-check); the timer is made due
-- now, so the parent pool's dispatcher re-runs it within one dispatch interval.
CREATE FUNCTION conveyor_wake_parent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tasks SET due_at = LEAST(due_at, now())
    WHERE execution_id = NEW.parent_execution_id AND name = NEW.parent_task
      AND attempt = NEW.parent_attempt AND phase = 'Waiting' AND timer_kind = 'resume';
    RETURN NULL;
END $$;
CREATE TRIGGER executions_wake_parent AFTER INSERT OR UPDATE OF phase ON executions
    FOR EACH ROW
    WHEN (NEW.parent_execution_id IS NOT NULL
          AND NEW.phase IN ('Succeeded', 'Failed', 'Cancelled'))
    EXECUTE FUNCTION conveyor_wake_parent();

-- The other order: the child finished before the parent task's suspension was committed
-- (a fast child). The suspension's timer is then made due at once.
CREATE FUNCTION conveyor_child_done() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM executions c
               WHERE c.parent_execution_id = NEW.execution_id AND c.parent_task = NEW.name
                 AND c.parent_attempt = NEW.attempt
                 AND c.phase IN ('Succeeded', 'Failed', 'Cancelled')) THEN
        NEW.due_at := LEAST(NEW.due_at, now());
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER tasks_child_done BEFORE UPDATE ON tasks
    FOR EACH ROW
    WHEN (NEW.phase = 'Waiting' AND NEW.type = 'workflow' AND NEW.timer_kind = 'resume')
    EXECUTE FUNCTION conveyor_child_done();
