-- audit_log: one row per event of every context (spec: audit_log), projected rather than written
-- by triggers. Rows are keyed by (application, position) so a rebuild yields identical rows.

-- migrate:up
CREATE TABLE audit_log (
    id text PRIMARY KEY,
    application text NOT NULL,
    position bigint NOT NULL,
    user_id text,
    action text NOT NULL,
    resource text NOT NULL,
    resource_id text NOT NULL,
    resource_version bigint NOT NULL,
    old_values jsonb,
    new_values jsonb,
    ip_address inet,
    user_agent text,
    correlation_id text,
    metadata jsonb NOT NULL DEFAULT '{}',
    "timestamp" timestamptz NOT NULL,
    UNIQUE (application, position)
);
CREATE INDEX idx_audit_log_user_action_time ON audit_log (user_id, action, "timestamp");
CREATE INDEX idx_audit_log_resource ON audit_log (resource_id, resource_version);
CREATE INDEX idx_audit_log_timestamp ON audit_log ("timestamp");

COMMENT ON TABLE audit_log IS 'Every event of every context as an audit entry: who did what to which resource, when.';
COMMENT ON COLUMN audit_log.id IS '{application}:{position}.';
COMMENT ON COLUMN audit_log.application IS 'Context whose event log holds the event.';
COMMENT ON COLUMN audit_log.position IS 'Notification id of the event in that log.';
COMMENT ON COLUMN audit_log.user_id IS 'Actor (user, api key or system) that caused the event.';
COMMENT ON COLUMN audit_log.action IS 'Event type, e.g. WorkflowCreated.';
COMMENT ON COLUMN audit_log.resource IS 'Aggregate type, e.g. workflow.';
COMMENT ON COLUMN audit_log.resource_id IS 'Aggregate id.';
COMMENT ON COLUMN audit_log.resource_version IS 'Aggregate version the event produced.';
COMMENT ON COLUMN audit_log.old_values IS 'Values replaced by the event, where the event records them.';
COMMENT ON COLUMN audit_log.new_values IS 'The event''s own fields.';
COMMENT ON COLUMN audit_log.ip_address IS 'Client address of the request that caused the event.';
COMMENT ON COLUMN audit_log.user_agent IS 'Client user agent of that request.';
COMMENT ON COLUMN audit_log.correlation_id IS 'Request id; joins events caused by one request.';
COMMENT ON COLUMN audit_log.metadata IS 'Other event metadata (causation id, anonymized flag).';
COMMENT ON COLUMN audit_log."timestamp" IS 'When the event happened.';

-- migrate:down
DROP TABLE audit_log;
