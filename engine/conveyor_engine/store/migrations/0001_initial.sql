-- Conveyor's durable state. PostgreSQL is the source of truth; Redis can be rebuilt from it.

CREATE TABLE workflow_versions (
    content_hash text PRIMARY KEY,           -- 'sha256:<hex>' of the canonical spec JSON
    name         text NOT NULL,
    spec         jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE executions (
    id              uuid PRIMARY KEY,
    idempotency_key text UNIQUE,             -- caller-supplied; a repeated submit finds the row
    workflow_name   text NOT NULL,
    workflow_hash   text NOT NULL REFERENCES workflow_versions (content_hash),
    pool            text NOT NULL,
    inputs          jsonb NOT NULL,
    phase           text NOT NULL
        CHECK (phase IN ('Pending', 'Running', 'Succeeded', 'Failed', 'Cancelled')),
    message         text,
    tasks_total     integer NOT NULL,
    tasks_open      integer NOT NULL,        -- tasks not yet in a final phase
    tasks_failed    integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX executions_open ON executions (created_at) WHERE phase IN ('Pending', 'Running');
CREATE INDEX executions_updated ON executions (updated_at);

CREATE TABLE tasks (
    execution_id uuid NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    name         text NOT NULL,
    type         text NOT NULL,
    pool         text NOT NULL,
    phase        text NOT NULL
        CHECK (phase IN ('Pending', 'Ready', 'Running', 'Waiting',
                         'Succeeded', 'Failed', 'Skipped', 'Cancelled')),
    deps_open    integer NOT NULL,           -- dependencies not yet Succeeded or Skipped
    attempt      integer NOT NULL DEFAULT 0, -- the attempt dispatched or last run (1-based)
    due_at       timestamptz,                -- Ready: when it became ready; Waiting: timer
    timer_kind   text CHECK (timer_kind IN ('retry', 'resume')),
    resume_from  timestamptz,                -- set when a 'resume' timer fired
    worker       text,
    outputs      jsonb,
    error        text,
    message      text,
    started_at   timestamptz,
    finished_at  timestamptz,
    PRIMARY KEY (execution_id, name)
);
-- The dispatcher's two questions: which timers are due, which ready tasks were never claimed.
CREATE INDEX tasks_waiting ON tasks (pool, due_at) WHERE phase = 'Waiting';
CREATE INDEX tasks_ready ON tasks (pool, due_at) WHERE phase = 'Ready';

CREATE TABLE attempts (
    execution_id uuid NOT NULL,
    task_name    text NOT NULL,
    attempt      integer NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('Succeeded', 'Failed', 'Skipped')),
    outputs      jsonb,
    error        text,
    worker       text,
    started_at   timestamptz,
    finished_at  timestamptz NOT NULL,
    -- At most one recorded final outcome per (execution, task, attempt).
    PRIMARY KEY (execution_id, task_name, attempt),
    FOREIGN KEY (execution_id, task_name) REFERENCES tasks (execution_id, name) ON DELETE CASCADE
);
