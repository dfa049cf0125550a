-- Failure handling and deadlines (issue 12, items 3 and 4; conveyor_engine/handlers.py).
-- A task row's stage: 'main' (spec.tasks), 'onFailure' or 'finally' (handler rows, created
-- Pending with one extra dependency, the gate, counted down when the main tasks ended).
ALTER TABLE tasks ADD COLUMN stage text NOT NULL DEFAULT 'main'
    CHECK (stage IN ('main', 'onFailure', 'finally'));
-- tasks_failed counts main tasks failed for good without continueOn; tasks_continued those
-- failed with continueOn.failed; handlers_total/handlers_failed the handler rows.
ALTER TABLE executions ADD COLUMN tasks_continued integer NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN handlers_total integer NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN handlers_failed integer NOT NULL DEFAULT 0;
-- The main tasks' outcome once they ended (NULL before), while handlers run.
ALTER TABLE executions ADD COLUMN outcome text CHECK (outcome IN ('Succeeded', 'Failed'));
ALTER TABLE executions ADD COLUMN outcome_message text;
-- activeDeadlineSeconds of the run, and when its main tasks must have ended (set when it
-- is admitted); the dispatcher of its pool enforces it.
ALTER TABLE executions ADD COLUMN deadline_seconds integer;
ALTER TABLE executions ADD COLUMN deadline_at timestamptz;
CREATE INDEX executions_deadline ON executions (pool, deadline_at)
    WHERE deadline_at IS NOT NULL AND outcome IS NULL AND phase IN ('Pending', 'Running');
