-- Retention (issue 9): the retention job picks finished executions of one pool, oldest
-- first, by finished_at. This partial index holds only finished executions, so the pick is
-- an index range scan however many runs are open or recent.
CREATE INDEX executions_finished ON executions (pool, finished_at)
    WHERE phase IN ('Succeeded', 'Failed', 'Cancelled');
