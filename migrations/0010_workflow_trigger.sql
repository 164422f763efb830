-- workflow_trigger: one row per trigger node of the definition that runs (the published version,
-- or the latest while none is published), projected from Workflows events. Webhook routing,
-- the scheduler and event triggers look triggers up here; GET /workflows/{id}/triggers lists them.

-- migrate:up
CREATE TYPE trigger_type AS ENUM ('MANUAL', 'WEBHOOK', 'SCHEDULE', 'EVENT');

CREATE TABLE workflow_trigger (
    id text PRIMARY KEY,
    workflow_id text NOT NULL REFERENCES workflow (id) ON DELETE CASCADE,
    node_id text NOT NULL,
    node_name text,
    type trigger_type NOT NULL,
    config jsonb NOT NULL,
    is_active boolean NOT NULL,
    workflow_version integer NOT NULL,
    webhook_path text,
    webhook_methods text[],
    webhook_auth_mode text,
    response_mode text,
    cron text,
    interval_seconds integer,
    timezone text,
    misfire text,
    event_workflow_id text,
    event_status text,
    event_name text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    user_id text NOT NULL,
    UNIQUE (workflow_id, node_id)
);
CREATE INDEX idx_workflow_trigger_webhook ON workflow_trigger (webhook_path)
    WHERE type = 'WEBHOOK' AND is_active;
CREATE INDEX idx_workflow_trigger_schedule ON workflow_trigger (workflow_id)
    WHERE type = 'SCHEDULE' AND is_active;
CREATE INDEX idx_workflow_trigger_event_workflow ON workflow_trigger (event_workflow_id)
    WHERE type = 'EVENT' AND is_active;
CREATE INDEX idx_workflow_trigger_event_name ON workflow_trigger (event_name)
    WHERE type = 'EVENT' AND is_active;
CREATE INDEX idx_workflow_trigger_user ON workflow_trigger (user_id);

COMMENT ON TABLE workflow_trigger IS 'Trigger nodes of the definition each workflow runs (published version, else latest).';
COMMENT ON COLUMN workflow_trigger.id IS 'Stable id derived from workflow id and node id (executions refer to it).';
COMMENT ON COLUMN workflow_trigger.workflow_id IS 'Workflow whose definition holds the trigger node.';
COMMENT ON COLUMN workflow_trigger.node_id IS 'Id of the trigger node in the definition.';
COMMENT ON COLUMN workflow_trigger.node_name IS 'Display name of the trigger node.';
COMMENT ON COLUMN workflow_trigger.type IS 'MANUAL, WEBHOOK, SCHEDULE or EVENT.';
COMMENT ON COLUMN workflow_trigger.config IS 'The trigger node''s config as saved (credential ids, never secrets).';
COMMENT ON COLUMN workflow_trigger.is_active IS 'Whether the workflow is active, so the trigger may start runs.';
COMMENT ON COLUMN workflow_trigger.workflow_version IS 'Definition version the trigger comes from.';
COMMENT ON COLUMN workflow_trigger.webhook_path IS 'WEBHOOK: path after /webhook/.';
COMMENT ON COLUMN workflow_trigger.webhook_methods IS 'WEBHOOK: HTTP methods answered.';
COMMENT ON COLUMN workflow_trigger.webhook_auth_mode IS 'WEBHOOK: none, header, basic or hmac.';
COMMENT ON COLUMN workflow_trigger.response_mode IS 'WEBHOOK: immediately, lastNode or respondNode.';
COMMENT ON COLUMN workflow_trigger.cron IS 'SCHEDULE: cron expression (6 fields = seconds first).';
COMMENT ON COLUMN workflow_trigger.interval_seconds IS 'SCHEDULE: seconds between runs, when not cron.';
COMMENT ON COLUMN workflow_trigger.timezone IS 'SCHEDULE: IANA time zone of the cron expression.';
COMMENT ON COLUMN workflow_trigger.misfire IS 'SCHEDULE: runOnce or skip, for runs missed while down.';
COMMENT ON COLUMN workflow_trigger.event_workflow_id IS 'EVENT: workflow whose finished runs start this one.';
COMMENT ON COLUMN workflow_trigger.event_status IS 'EVENT: run status that counts (SUCCESS, FAILED, CANCELLED).';
COMMENT ON COLUMN workflow_trigger.event_name IS 'EVENT: name of the published event that starts a run.';
COMMENT ON COLUMN workflow_trigger.created_at IS 'When the trigger node first appeared in the running definition.';
COMMENT ON COLUMN workflow_trigger.updated_at IS 'When the row last changed.';
COMMENT ON COLUMN workflow_trigger.user_id IS 'Owner of the workflow.';

GRANT SELECT ON workflow_trigger TO a2n_app;
ALTER TABLE workflow_trigger ENABLE ROW LEVEL SECURITY;
CREATE POLICY workflow_trigger_follows_workflow ON workflow_trigger FOR ALL TO a2n_app
    USING (EXISTS (SELECT 1 FROM workflow w WHERE w.id = workflow_trigger.workflow_id));
SELECT a2n_grant_analyst('workflow_trigger');

-- migrate:down
DROP TABLE workflow_trigger;
DROP TYPE trigger_type;
