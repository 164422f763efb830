-- Schedules and retention.
--
-- execution_schedule (spec: executionSchedule, "scheduled workflow runs with retry logic"): one row
-- per ExecutionSchedule aggregate (domain/executions/schedule.py), that is per schedule trigger node
-- of a workflow that was ever active, projected by the `schedules` projector from the Executions
-- context's events. The elected scheduler finds due schedules here (next_run_at, retry_at); what it
-- does with them it decides from the event store. Rows follow their workflow under row-level
-- security, like workflow_trigger. No foreign key to workflow: another projector owns it.
--
-- audit_log_archive: audit_log rows older than two years, moved there by retention (application/
-- retention.py). Same columns as audit_log, in the same order (retention moves rows with
-- SELECT *), plus when each was archived. Not readable by the API's role.
--
-- retention_cutoff: the cutoff each retention rule last applied, so that a projector rebuild prunes
-- the rows retention already pruned instead of bringing them back from the events.

-- migrate:up
CREATE TYPE schedule_status AS ENUM ('ARMED', 'DISARMED');
COMMENT ON TYPE schedule_status IS 'ARMED while the workflow is active with the trigger, DISARMED otherwise.';

CREATE TABLE execution_schedule (
    id text PRIMARY KEY,
    workflow_id text NOT NULL,
    trigger_id text NOT NULL,
    node_id text NOT NULL,
    status schedule_status NOT NULL,
    cron text,
    interval_seconds integer,
    timezone text,
    misfire text NOT NULL,
    next_run_at timestamptz,
    retry_at timestamptz,
    last_run_at timestamptz,
    last_execution_id text,
    run_count integer NOT NULL DEFAULT 0,
    missed_count bigint NOT NULL DEFAULT 0,
    attempts integer NOT NULL DEFAULT 0,
    retries integer NOT NULL,
    last_error text,
    disarmed_reason text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    revision integer NOT NULL,
    UNIQUE (workflow_id, node_id)
);
CREATE INDEX idx_execution_schedule_due ON execution_schedule (next_run_at) WHERE status = 'ARMED';
COMMENT ON INDEX idx_execution_schedule_due IS 'Armed schedules by next run time, for the scheduler.';

COMMENT ON TABLE execution_schedule IS 'Schedules of the schedule trigger nodes of workflows: when each runs next, how its firings went.';
COMMENT ON COLUMN execution_schedule.id IS 'Schedule id, derived from workflow id and node id (uuid5).';
COMMENT ON COLUMN execution_schedule.workflow_id IS 'The workflow it starts.';
COMMENT ON COLUMN execution_schedule.trigger_id IS 'workflow_trigger row of the node (executions it queues name it too).';
COMMENT ON COLUMN execution_schedule.node_id IS 'The schedule trigger node runs start at.';
COMMENT ON COLUMN execution_schedule.status IS 'ARMED (it fires) or DISARMED (the workflow is inactive, archived, or no longer has the trigger).';
COMMENT ON COLUMN execution_schedule.cron IS 'Cron expression (6 fields = seconds first), when not an interval.';
COMMENT ON COLUMN execution_schedule.interval_seconds IS 'Seconds between runs, when not cron.';
COMMENT ON COLUMN execution_schedule.timezone IS 'IANA time zone the cron expression is read in.';
COMMENT ON COLUMN execution_schedule.misfire IS 'runOnce (one catch-up run for occurrences missed while no scheduler ran) or skip.';
COMMENT ON COLUMN execution_schedule.next_run_at IS 'Next occurrence; NULL while disarmed.';
COMMENT ON COLUMN execution_schedule.retry_at IS 'When a firing that failed is tried again; NULL when none is pending.';
COMMENT ON COLUMN execution_schedule.last_run_at IS 'When it last queued a run.';
COMMENT ON COLUMN execution_schedule.last_execution_id IS 'The run it last queued.';
COMMENT ON COLUMN execution_schedule.run_count IS 'Runs it queued.';
COMMENT ON COLUMN execution_schedule.missed_count IS 'Occurrences that did not run on time (however the misfire policy handled them).';
COMMENT ON COLUMN execution_schedule.attempts IS 'Failed attempts to queue the run of the latest failed occurrence; 0 after a run is queued.';
COMMENT ON COLUMN execution_schedule.retries IS 'How often a passing failure to queue one occurrence''s run is retried.';
COMMENT ON COLUMN execution_schedule.last_error IS 'Why the latest failed firing failed.';
COMMENT ON COLUMN execution_schedule.disarmed_reason IS 'Why it is disarmed.';
COMMENT ON COLUMN execution_schedule.created_at IS 'When it was first armed.';
COMMENT ON COLUMN execution_schedule.updated_at IS 'When its latest event happened.';
COMMENT ON COLUMN execution_schedule.revision IS 'Aggregate version (number of events of the schedule).';

GRANT SELECT ON execution_schedule TO a2n_app;
ALTER TABLE execution_schedule ENABLE ROW LEVEL SECURITY;
CREATE POLICY execution_schedule_follows_workflow ON execution_schedule FOR ALL TO a2n_app
    USING (EXISTS (SELECT 1 FROM workflow w WHERE w.id = execution_schedule.workflow_id));
SELECT a2n_grant_analyst('execution_schedule');

CREATE TABLE audit_log_archive (LIKE audit_log INCLUDING ALL);
ALTER TABLE audit_log_archive ADD COLUMN archived_at timestamptz NOT NULL DEFAULT now();
COMMENT ON TABLE audit_log_archive IS 'audit_log rows older than two years, moved here by retention (same columns, plus archived_at).';
COMMENT ON COLUMN audit_log_archive.archived_at IS 'When retention moved the row here.';
ALTER TABLE audit_log_archive ENABLE ROW LEVEL SECURITY;
SELECT a2n_grant_analyst('audit_log_archive', ARRAY['ip_address', 'user_agent', 'old_values', 'new_values']);

CREATE TABLE retention_cutoff (
    rule text PRIMARY KEY,
    table_name text NOT NULL,
    cutoff timestamptz NOT NULL,
    applied_at timestamptz NOT NULL,
    rows_pruned bigint NOT NULL
);
COMMENT ON TABLE retention_cutoff IS 'The cutoff each retention rule last applied (rebuilds prune the same rows).';
COMMENT ON COLUMN retention_cutoff.rule IS 'Rule name (application/retention.py), such as execution.success.';
COMMENT ON COLUMN retention_cutoff.table_name IS 'Table the rule prunes.';
COMMENT ON COLUMN retention_cutoff.cutoff IS 'Rows older than this were pruned (only ever moves forward).';
COMMENT ON COLUMN retention_cutoff.applied_at IS 'When the rule last ran.';
COMMENT ON COLUMN retention_cutoff.rows_pruned IS 'Rows that run pruned.';
ALTER TABLE retention_cutoff ENABLE ROW LEVEL SECURITY;
SELECT a2n_grant_analyst('retention_cutoff');

-- migrate:down
DROP TABLE retention_cutoff;
DROP TABLE audit_log_archive;
DROP TABLE execution_schedule;
DROP TYPE schedule_status;
