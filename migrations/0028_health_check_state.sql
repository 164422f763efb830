-- The status in effect of each health check, from its changes (the HealthCheck aggregates).
--
-- health_check keeps every sample the scheduler took (telemetry, 30 days); the changes of a
-- check's status are events of its HealthCheck aggregate in the Operations log (kept for ever),
-- and the `operations` projector keeps this table from them: one row per configured check (a
-- service name and a check type) with its status and since when. Rebuildable from zero
-- (`a2n project rebuild operations`). Administrators only, like health_check.

-- migrate:up
CREATE TABLE health_check_state (
    id text PRIMARY KEY,
    service_name text NOT NULL,
    check_type text NOT NULL,
    status health_status NOT NULL,
    previous_status health_status,
    message text NOT NULL,
    response_time integer,
    since timestamptz NOT NULL,
    changes integer NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    revision integer NOT NULL,
    UNIQUE (service_name, check_type)
);
CREATE INDEX idx_health_check_state_status ON health_check_state (status, since);
COMMENT ON INDEX idx_health_check_state_status IS 'The checks that are not HEALTHY, longest first.';
COMMENT ON TABLE health_check_state IS 'Each health check''s status in effect and since when, projected from its changes (HealthCheck events); the samples are in health_check.';
COMMENT ON COLUMN health_check_state.id IS 'HealthCheck aggregate id, derived from service_name and check_type (uuid5).';
COMMENT ON COLUMN health_check_state.service_name IS 'What is checked: postgres, redis, queue.high, projection.workflows, disk, workers...';
COMMENT ON COLUMN health_check_state.check_type IS 'Kind of check: database, cache, queue, projection, disk, worker.';
COMMENT ON COLUMN health_check_state.status IS 'HEALTHY, DEGRADED or UNHEALTHY: the status of the latest change.';
COMMENT ON COLUMN health_check_state.previous_status IS 'The status before the latest change; NULL until the first change.';
COMMENT ON COLUMN health_check_state.message IS 'What the sample that changed the status found.';
COMMENT ON COLUMN health_check_state.response_time IS 'Milliseconds that sample''s probe took (NULL when it measured nothing remote).';
COMMENT ON COLUMN health_check_state.since IS 'When the sample that changed the status was taken.';
COMMENT ON COLUMN health_check_state.changes IS 'Changes of status since the check was first sampled (flapping shows here).';
COMMENT ON COLUMN health_check_state.created_at IS 'When the check was first sampled (its Registered event).';
COMMENT ON COLUMN health_check_state.updated_at IS 'When its latest change was recorded.';
COMMENT ON COLUMN health_check_state.revision IS 'Aggregate version (1 + changes).';
GRANT SELECT ON health_check_state TO a2n_app;
ALTER TABLE health_check_state ENABLE ROW LEVEL SECURITY;
CREATE POLICY health_check_state_admins ON health_check_state FOR ALL TO a2n_app
    USING (current_user_role() IN ('ADMIN', 'OWNER'));
SELECT a2n_grant_analyst('health_check_state');

-- migrate:down
DROP TABLE health_check_state;
