-- Execution read models (spec: execution, executionNodeState, executionLog, executionMetrics,
-- daily_execution_stats), projected by the `executions` projector from the Executions context's
-- events (domain/executions/execution.py), and the workflows' execution counters.
--
-- Rows derived from an event (node states, log lines, metric samples) have ids derived from the
-- execution id and the event's place in the execution's stream, so a rebuild writes the same ids.
-- No foreign key to workflow or "user": other projectors own those tables, and each is rebuilt
-- alone. Node states, log lines and metrics belong to their execution (same projector), and go
-- with it when retention deletes it.
--
-- Row-level security: an execution is visible to the user who started it, to its workflow's owner
-- and to the workflow's sharees (any level). Not to every user merely because the workflow is
-- PUBLIC: a run carries its trigger's and nodes' data (webhook bodies, API answers), which belong
-- to whoever ran it, as comments belong to the workflow's collaborators. Node states, log lines
-- and metrics follow their execution's row. Analysts read everything but the payloads.
--
-- Workflow counters (workflow.execution_count, success_count, failure_count, last_executed_at,
-- avg_execution_time) are kept by the workflows projector, which owns `workflow` and reads the
-- Executions log too: `workflow_execution_stats` holds each workflow's counts (so counts read
-- before the workflow's row exists are not lost; the row takes them when it is inserted) and
-- `workflow_execution_run` which workflow each unfinished execution runs (the events after
-- Queued do not repeat it). Both are internal bookkeeping: not readable by a2n_app.
--
-- daily_execution_stats is the spec's materialized view, exactly; refresh_daily_stats() refreshes
-- it concurrently (its unique index on execution_date allows that). It has no user column, so
-- a2n_app reads it only through admin_daily_execution_stats, which shows rows to ADMIN and OWNER
-- transactions alone.

-- migrate:up
CREATE TYPE execution_status AS ENUM ('QUEUED', 'RUNNING', 'SUCCESS', 'FAILED', 'CANCELLED', 'TIMEOUT');
COMMENT ON TYPE execution_status IS 'QUEUED until a worker claims the run, RUNNING until it ends as SUCCESS, FAILED, CANCELLED or TIMEOUT.';
CREATE TYPE node_execution_status AS ENUM (
    'PENDING', 'RUNNING', 'RETRYING', 'SUCCESS', 'FAILED', 'SKIPPED', 'CANCELLED'
);
COMMENT ON TYPE node_execution_status IS 'Where one node of a run is; SUCCESS, FAILED and SKIPPED are settled.';
CREATE TYPE log_level AS ENUM ('DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL');
COMMENT ON TYPE log_level IS 'Log line levels, least severe first (so level >= ''WARN'' works).';

CREATE TABLE execution (
    id text PRIMARY KEY,
    status execution_status NOT NULL,
    start_time timestamptz,
    end_time timestamptz,
    duration integer,
    trigger_data jsonb NOT NULL DEFAULT '{}',
    input_data jsonb NOT NULL DEFAULT '[]',
    output_data jsonb,
    error_message text,
    error_details jsonb,
    retry_count integer NOT NULL DEFAULT 0,
    max_retries integer,
    priority integer NOT NULL DEFAULT 0,
    parent_execution_id text,
    context_data jsonb NOT NULL DEFAULT '{}',
    metadata jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    workflow_id text NOT NULL,
    workflow_version integer NOT NULL,
    user_id text NOT NULL,
    trigger_id text,
    mode text NOT NULL,
    retry_of text,
    worker_id text,
    revision integer NOT NULL
);
CREATE INDEX idx_execution_history ON execution (user_id, workflow_id, start_time DESC);
CREATE INDEX idx_execution_workflow_status ON execution (workflow_id, status);
CREATE INDEX idx_execution_start_time ON execution (start_time);
CREATE INDEX idx_execution_user ON execution (user_id);
CREATE INDEX idx_execution_failures ON execution (workflow_id, start_time DESC)
    WHERE status IN ('FAILED', 'CANCELLED');
CREATE INDEX idx_execution_workflow_id ON execution (workflow_id, id DESC);
CREATE INDEX idx_execution_parent ON execution (parent_execution_id)
    WHERE parent_execution_id IS NOT NULL;
COMMENT ON INDEX idx_execution_history IS 'A user''s runs of a workflow by start time (spec).';
COMMENT ON INDEX idx_execution_failures IS 'Failed and cancelled runs of a workflow, for error analysis (spec).';
COMMENT ON INDEX idx_execution_workflow_id IS 'A workflow''s runs newest first (GET /executions?workflowId=).';
COMMENT ON INDEX idx_execution_parent IS 'The sub-workflow runs of a run.';

COMMENT ON TABLE execution IS 'Runs of workflows: one row per Execution aggregate.';
COMMENT ON COLUMN execution.id IS 'Execution id (UUIDv7 text; sorts by queueing time).';
COMMENT ON COLUMN execution.status IS 'QUEUED, RUNNING, SUCCESS, FAILED, CANCELLED or TIMEOUT.';
COMMENT ON COLUMN execution.start_time IS 'When a worker claimed the run; NULL while queued.';
COMMENT ON COLUMN execution.end_time IS 'When the run ended; NULL until then.';
COMMENT ON COLUMN execution.duration IS 'How long the run took in milliseconds, as the worker measured it; NULL until it ends (and for a run cancelled before it started).';
COMMENT ON COLUMN execution.trigger_data IS 'What the trigger received (a webhook request, the firing time of a schedule...).';
COMMENT ON COLUMN execution.input_data IS 'The items the start node was given (JSON array).';
COMMENT ON COLUMN execution.output_data IS 'The run''s result items (its last sink node''s output); NULL unless it succeeded.';
COMMENT ON COLUMN execution.error_message IS 'Why the run failed, timed out or was cancelled.';
COMMENT ON COLUMN execution.error_details IS 'Structured error of a failed or timed-out run.';
COMMENT ON COLUMN execution.retry_count IS 'Node attempts retried during the run (NodeRetrying events).';
COMMENT ON COLUMN execution.max_retries IS 'Retry limit of the run; NULL: the events do not record one (the workflow''s retryPolicy applies per node).';
COMMENT ON COLUMN execution.priority IS 'Queue priority, -100 to 100; higher runs first.';
COMMENT ON COLUMN execution.parent_execution_id IS 'The run whose execute_workflow node started this one.';
COMMENT ON COLUMN execution.context_data IS 'Run context: the node the run starts at (startNodeId).';
COMMENT ON COLUMN execution.metadata IS 'Request facts of the queueing event: actor_id, correlation_id, causation_id (no address or user agent).';
COMMENT ON COLUMN execution.created_at IS 'When the run was queued.';
COMMENT ON COLUMN execution.updated_at IS 'When its latest event happened.';
COMMENT ON COLUMN execution.workflow_id IS 'The workflow run.';
COMMENT ON COLUMN execution.workflow_version IS 'The definition version run.';
COMMENT ON COLUMN execution.user_id IS 'Who started the run (for a trigger, the user it runs for).';
COMMENT ON COLUMN execution.trigger_id IS 'workflow_trigger row that started the run, if a trigger did.';
COMMENT ON COLUMN execution.mode IS 'What started it: manual, test, webhook, schedule, event, retry or subworkflow.';
COMMENT ON COLUMN execution.retry_of IS 'The execution this run retries (POST /executions/{id}/retry).';
COMMENT ON COLUMN execution.worker_id IS 'The worker running (or that ran) it.';
COMMENT ON COLUMN execution.revision IS 'Aggregate version (number of events of the execution).';

CREATE TABLE execution_node_state (
    id text PRIMARY KEY,
    execution_id text NOT NULL REFERENCES execution (id) ON DELETE CASCADE,
    node_id text NOT NULL,
    node_name text,
    node_type text NOT NULL,
    sequence integer NOT NULL,
    status node_execution_status NOT NULL,
    start_time timestamptz,
    end_time timestamptz,
    duration integer,
    input_count integer,
    output_data jsonb,
    error_message text,
    error_details jsonb,
    attempt integer NOT NULL DEFAULT 0,
    retry_count integer NOT NULL DEFAULT 0,
    skip_reason text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (execution_id, node_id),
    UNIQUE (execution_id, sequence)
);

COMMENT ON TABLE execution_node_state IS 'Each node a run may reach, with how far it got; one row per execution and node.';
COMMENT ON COLUMN execution_node_state.id IS 'Derived from execution id and node id (uuid5), stable across rebuilds.';
COMMENT ON COLUMN execution_node_state.execution_id IS 'The run.';
COMMENT ON COLUMN execution_node_state.node_id IS 'Node id in the workflow definition.';
COMMENT ON COLUMN execution_node_state.node_name IS 'Node display name when the run started.';
COMMENT ON COLUMN execution_node_state.node_type IS 'Node type (http_request, set, ...).';
COMMENT ON COLUMN execution_node_state.sequence IS 'Position of the node in the definition, from 0.';
COMMENT ON COLUMN execution_node_state.status IS 'PENDING, RUNNING, RETRYING, SUCCESS, FAILED, SKIPPED, or CANCELLED (not settled when the run failed, timed out or was cancelled).';
COMMENT ON COLUMN execution_node_state.start_time IS 'When its first attempt started.';
COMMENT ON COLUMN execution_node_state.end_time IS 'When it settled, or was cancelled while running; NULL for a node that never started.';
COMMENT ON COLUMN execution_node_state.duration IS 'Milliseconds its attempts ran, summed (waits between attempts not counted).';
COMMENT ON COLUMN execution_node_state.input_count IS 'Items its latest attempt received.';
COMMENT ON COLUMN execution_node_state.output_data IS 'Items it sent, by output handle (a skipped disabled node passes its input on).';
COMMENT ON COLUMN execution_node_state.error_message IS 'Error of its latest failed attempt; NULL once it succeeds.';
COMMENT ON COLUMN execution_node_state.error_details IS 'Structured error of its latest failed attempt.';
COMMENT ON COLUMN execution_node_state.attempt IS 'Number of its latest attempt (1 for the first; 0 before it starts).';
COMMENT ON COLUMN execution_node_state.retry_count IS 'Attempts of it that were retried.';
COMMENT ON COLUMN execution_node_state.skip_reason IS 'Why it did not run (no items reached it, or it is disabled).';
COMMENT ON COLUMN execution_node_state.created_at IS 'When the run started (the row is created with the run''s node list).';
COMMENT ON COLUMN execution_node_state.updated_at IS 'When it last changed.';

CREATE TABLE execution_log (
    id text PRIMARY KEY,
    execution_id text NOT NULL REFERENCES execution (id) ON DELETE CASCADE,
    node_id text,
    level log_level NOT NULL,
    message text NOT NULL,
    details jsonb NOT NULL DEFAULT '{}',
    "timestamp" timestamptz NOT NULL,
    event_version integer NOT NULL,
    seq integer NOT NULL,
    UNIQUE (execution_id, event_version, seq)
);
CREATE INDEX idx_execution_logs_search ON execution_log (execution_id, "timestamp" DESC, level);
COMMENT ON INDEX idx_execution_logs_search IS 'Log lines of a run by time and level (spec).';

COMMENT ON TABLE execution_log IS 'Log lines of runs: the nodes'' own lines and one line per start and end of each node and run.';
COMMENT ON COLUMN execution_log.id IS 'Derived from execution id, event version and line number (uuid5), stable across rebuilds.';
COMMENT ON COLUMN execution_log.execution_id IS 'The run.';
COMMENT ON COLUMN execution_log.node_id IS 'The node that logged it; NULL for lines about the whole run.';
COMMENT ON COLUMN execution_log.level IS 'DEBUG, INFO, WARN, ERROR or FATAL.';
COMMENT ON COLUMN execution_log.message IS 'The text of the line.';
COMMENT ON COLUMN execution_log.details IS 'Other fields the node logged with the line.';
COMMENT ON COLUMN execution_log."timestamp" IS 'When it was logged (the node''s time when it gave one, else its event''s).';
COMMENT ON COLUMN execution_log.event_version IS 'Version of the execution event that carried the line (orders lines).';
COMMENT ON COLUMN execution_log.seq IS 'Line number within that event, from 0.';

CREATE TABLE execution_metrics (
    id text PRIMARY KEY,
    execution_id text NOT NULL REFERENCES execution (id) ON DELETE CASCADE,
    node_id text,
    metric_name text NOT NULL,
    metric_value double precision NOT NULL,
    unit text NOT NULL,
    tags jsonb NOT NULL DEFAULT '{}',
    "timestamp" timestamptz NOT NULL,
    event_version integer NOT NULL,
    seq integer NOT NULL,
    UNIQUE (execution_id, event_version, seq)
);
CREATE INDEX idx_execution_metrics_name ON execution_metrics (metric_name, "timestamp");
COMMENT ON INDEX idx_execution_metrics_name IS 'One metric over time, for performance analysis.';

COMMENT ON TABLE execution_metrics IS 'Measurements of runs: per node attempt duration_ms, items_in and items_out; per run duration_ms.';
COMMENT ON COLUMN execution_metrics.id IS 'Derived from execution id, event version and sample number (uuid5), stable across rebuilds.';
COMMENT ON COLUMN execution_metrics.execution_id IS 'The run.';
COMMENT ON COLUMN execution_metrics.node_id IS 'The node measured; NULL for the whole run.';
COMMENT ON COLUMN execution_metrics.metric_name IS 'duration_ms, items_in or items_out.';
COMMENT ON COLUMN execution_metrics.metric_value IS 'The measured value, in unit.';
COMMENT ON COLUMN execution_metrics.unit IS 'ms or items.';
COMMENT ON COLUMN execution_metrics.tags IS 'What else identifies the sample: the node attempt.';
COMMENT ON COLUMN execution_metrics."timestamp" IS 'When the event that carried the sample happened.';
COMMENT ON COLUMN execution_metrics.event_version IS 'Version of the execution event that carried the sample.';
COMMENT ON COLUMN execution_metrics.seq IS 'Sample number within that event, from 0.';

GRANT SELECT ON execution, execution_node_state, execution_log, execution_metrics TO a2n_app;
ALTER TABLE execution ENABLE ROW LEVEL SECURITY;
CREATE POLICY execution_visibility ON execution FOR ALL TO a2n_app
    USING (
        user_id = current_user_id()
        OR workflow_id IN (SELECT w.id FROM workflow w WHERE w.user_id = current_user_id())
        OR workflow_id IN (SELECT workflows_shared_with_current_user('VIEW'))
    );
SELECT a2n_grant_analyst('execution', ARRAY['trigger_data', 'input_data', 'output_data', 'error_details']);
ALTER TABLE execution_node_state ENABLE ROW LEVEL SECURITY;
CREATE POLICY execution_node_state_follows_execution ON execution_node_state FOR ALL TO a2n_app
    USING (EXISTS (SELECT 1 FROM execution e WHERE e.id = execution_node_state.execution_id));
SELECT a2n_grant_analyst('execution_node_state', ARRAY['output_data', 'error_details']);
ALTER TABLE execution_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY execution_log_follows_execution ON execution_log FOR ALL TO a2n_app
    USING (EXISTS (SELECT 1 FROM execution e WHERE e.id = execution_log.execution_id));
SELECT a2n_grant_analyst('execution_log', ARRAY['message', 'details']);
ALTER TABLE execution_metrics ENABLE ROW LEVEL SECURITY;
CREATE POLICY execution_metrics_follows_execution ON execution_metrics FOR ALL TO a2n_app
    USING (EXISTS (SELECT 1 FROM execution e WHERE e.id = execution_metrics.execution_id));
SELECT a2n_grant_analyst('execution_metrics');

-- Daily execution statistics (the spec's view and function, as written there).
CREATE MATERIALIZED VIEW daily_execution_stats AS
SELECT
  DATE(start_time) as execution_date,
  COUNT(*) as total_executions,
  COUNT(CASE WHEN status = 'SUCCESS' THEN 1 END) as successful_executions,
  COUNT(CASE WHEN status = 'FAILED' THEN 1 END) as failed_executions,
  AVG(duration) as avg_duration,
  COUNT(DISTINCT user_id) as unique_users,
  COUNT(DISTINCT workflow_id) as unique_workflows
FROM execution
WHERE start_time >= CURRENT_DATE - INTERVAL '90 days'
GROUP BY DATE(start_time);
CREATE UNIQUE INDEX idx_daily_execution_stats_date ON daily_execution_stats (execution_date);
COMMENT ON INDEX idx_daily_execution_stats_date IS 'One row per day; lets REFRESH ... CONCURRENTLY run.';

COMMENT ON MATERIALIZED VIEW daily_execution_stats IS 'Runs per start day over the last 90 days (as of its last refresh_daily_stats()).';
COMMENT ON COLUMN daily_execution_stats.execution_date IS 'Day the runs started (server time zone).';
COMMENT ON COLUMN daily_execution_stats.total_executions IS 'Runs started that day.';
COMMENT ON COLUMN daily_execution_stats.successful_executions IS 'Of those, runs that succeeded.';
COMMENT ON COLUMN daily_execution_stats.failed_executions IS 'Of those, runs that failed (timeouts and cancellations not counted).';
COMMENT ON COLUMN daily_execution_stats.avg_duration IS 'Mean duration in milliseconds of those that ended.';
COMMENT ON COLUMN daily_execution_stats.unique_users IS 'Users who started them.';
COMMENT ON COLUMN daily_execution_stats.unique_workflows IS 'Workflows run.';

CREATE OR REPLACE FUNCTION refresh_daily_stats()
RETURNS void AS $$
BEGIN
  REFRESH MATERIALIZED VIEW CONCURRENTLY daily_execution_stats;
END;
$$ LANGUAGE plpgsql;
COMMENT ON FUNCTION refresh_daily_stats() IS 'Recompute daily_execution_stats without blocking its readers (spec: daily at midnight).';

CREATE VIEW admin_daily_execution_stats AS
    SELECT * FROM daily_execution_stats WHERE current_user_role() IN ('ADMIN', 'OWNER');
COMMENT ON VIEW admin_daily_execution_stats IS 'daily_execution_stats for the API: rows only in ADMIN and OWNER transactions.';
COMMENT ON COLUMN admin_daily_execution_stats.execution_date IS 'Day the runs started (server time zone).';
COMMENT ON COLUMN admin_daily_execution_stats.total_executions IS 'Runs started that day.';
COMMENT ON COLUMN admin_daily_execution_stats.successful_executions IS 'Of those, runs that succeeded.';
COMMENT ON COLUMN admin_daily_execution_stats.failed_executions IS 'Of those, runs that failed.';
COMMENT ON COLUMN admin_daily_execution_stats.avg_duration IS 'Mean duration in milliseconds of those that ended.';
COMMENT ON COLUMN admin_daily_execution_stats.unique_users IS 'Users who started them.';
COMMENT ON COLUMN admin_daily_execution_stats.unique_workflows IS 'Workflows run.';
GRANT SELECT ON admin_daily_execution_stats TO a2n_app;
GRANT SELECT ON daily_execution_stats TO a2n_analyst;

-- The workflows projector's execution counters.
CREATE TABLE workflow_execution_stats (
    workflow_id text PRIMARY KEY,
    execution_count integer NOT NULL DEFAULT 0,
    success_count integer NOT NULL DEFAULT 0,
    failure_count integer NOT NULL DEFAULT 0,
    timed_count integer NOT NULL DEFAULT 0,
    total_duration_ms bigint NOT NULL DEFAULT 0,
    last_executed_at timestamptz
);
ALTER TABLE workflow_execution_stats ENABLE ROW LEVEL SECURITY;
SELECT a2n_grant_analyst('workflow_execution_stats');
COMMENT ON TABLE workflow_execution_stats IS 'Per-workflow run counts the workflows projector copies into workflow (so they survive either log being read first).';
COMMENT ON COLUMN workflow_execution_stats.workflow_id IS 'Workflow id (no foreign key: counts may arrive before the workflow row).';
COMMENT ON COLUMN workflow_execution_stats.execution_count IS 'Runs that ended, whatever the outcome.';
COMMENT ON COLUMN workflow_execution_stats.success_count IS 'Runs that succeeded.';
COMMENT ON COLUMN workflow_execution_stats.failure_count IS 'Runs that failed or timed out.';
COMMENT ON COLUMN workflow_execution_stats.timed_count IS 'Ended runs with a measured duration (all but those cancelled before they started).';
COMMENT ON COLUMN workflow_execution_stats.total_duration_ms IS 'Sum of the durations of the timed runs, in milliseconds.';
COMMENT ON COLUMN workflow_execution_stats.last_executed_at IS 'Start time of the latest run started.';

CREATE TABLE workflow_execution_run (
    execution_id text PRIMARY KEY,
    workflow_id text NOT NULL
);
ALTER TABLE workflow_execution_run ENABLE ROW LEVEL SECURITY;
SELECT a2n_grant_analyst('workflow_execution_run');
COMMENT ON TABLE workflow_execution_run IS 'Unfinished runs and their workflow, for the counters (a row goes when its run ends).';
COMMENT ON COLUMN workflow_execution_run.execution_id IS 'The run.';
COMMENT ON COLUMN workflow_execution_run.workflow_id IS 'The workflow it runs.';

COMMENT ON COLUMN workflow.execution_count IS 'Runs that ended, whatever the outcome (from Executions events; see workflow_execution_stats).';
COMMENT ON COLUMN workflow.success_count IS 'Runs that succeeded.';
COMMENT ON COLUMN workflow.failure_count IS 'Runs that failed or timed out.';
COMMENT ON COLUMN workflow.last_executed_at IS 'Start time of the latest run started.';
COMMENT ON COLUMN workflow.avg_execution_time IS 'Mean duration in milliseconds of the ended runs that have one.';
COMMENT ON COLUMN user_activity.workflows_executed IS 'Executions this user started (Execution.Queued events, every mode).';

-- migrate:down
COMMENT ON COLUMN user_activity.workflows_executed IS 'Executions this user started (maintained once executions exist).';
COMMENT ON COLUMN workflow.execution_count IS 'Finished executions (maintained from execution events).';
COMMENT ON COLUMN workflow.success_count IS 'Executions that succeeded.';
COMMENT ON COLUMN workflow.failure_count IS 'Executions that failed.';
COMMENT ON COLUMN workflow.last_executed_at IS 'Start time of the latest execution.';
COMMENT ON COLUMN workflow.avg_execution_time IS 'Mean execution duration in milliseconds.';
DROP TABLE workflow_execution_run;
DROP TABLE workflow_execution_stats;
DROP VIEW admin_daily_execution_stats;
DROP FUNCTION refresh_daily_stats();
DROP MATERIALIZED VIEW daily_execution_stats;
DROP TABLE execution_metrics;
DROP TABLE execution_log;
DROP TABLE execution_node_state;
DROP TABLE execution;
DROP TYPE log_level;
DROP TYPE node_execution_status;
DROP TYPE execution_status;
