-- Health checks and run durations.
--
-- health_check: one row per check the elected scheduler ran (application/health/), newest rows
-- read by GET /api/v1/admin/health-checks; kept 30 days (application/retention.py). Telemetry
-- written directly rather than through events: events are kept forever, checks only 30 days.
-- execution_duration_bucket: how many ended runs took at most each bound (one bucket per run,
-- not cumulative), kept by the workflows projector from the runs' ending events; /metrics turns
-- it into the Prometheus histogram a2n_execution_duration_seconds. On an installation with runs
-- already, it starts empty: `a2n project rebuild workflows` counts the earlier runs in.

-- migrate:up
CREATE TYPE health_status AS ENUM ('HEALTHY', 'DEGRADED', 'UNHEALTHY');

CREATE TABLE health_check (
    id text PRIMARY KEY,
    service_name text NOT NULL,
    check_type text NOT NULL,
    status health_status NOT NULL,
    response_time integer,
    message text NOT NULL,
    details jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    next_check_at timestamptz NOT NULL
);
CREATE INDEX idx_health_check_next ON health_check (service_name, next_check_at);
CREATE INDEX idx_health_check_service_status ON health_check (service_name, status);
CREATE INDEX idx_health_check_created ON health_check (created_at);
COMMENT ON TABLE health_check IS 'Results of the health checks the elected scheduler runs (PostgreSQL, Redis, queue depth, projection lag, disk, worker heartbeats); kept 30 days.';
COMMENT ON COLUMN health_check.id IS 'Result id (UUIDv7: id order is time order).';
COMMENT ON COLUMN health_check.service_name IS 'What was checked: postgres, redis, queue.high, projection.workflows, disk, workers...';
COMMENT ON COLUMN health_check.check_type IS 'Kind of check: database, cache, queue, projection, disk, worker.';
COMMENT ON COLUMN health_check.status IS 'HEALTHY, DEGRADED (past its warning threshold) or UNHEALTHY (failing).';
COMMENT ON COLUMN health_check.response_time IS 'Milliseconds the probe took (NULL when it measured nothing remote).';
COMMENT ON COLUMN health_check.message IS 'What was found, in a line (never a secret).';
COMMENT ON COLUMN health_check.details IS 'The figures measured and the thresholds applied.';
COMMENT ON COLUMN health_check.created_at IS 'When the check ran.';
COMMENT ON COLUMN health_check.next_check_at IS 'When the scheduler runs this check again.';
GRANT SELECT ON health_check TO a2n_app;
ALTER TABLE health_check ENABLE ROW LEVEL SECURITY;
CREATE POLICY admin_reads_health_check ON health_check FOR ALL TO a2n_app
    USING (current_user_role() IN ('ADMIN', 'OWNER'));
SELECT a2n_grant_analyst('health_check');

CREATE TABLE execution_duration_bucket (
    le_seconds double precision PRIMARY KEY,
    runs bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE execution_duration_bucket IS 'Ended runs by duration bucket (a run counts in the smallest bucket that holds it), kept by the workflows projector.';
COMMENT ON COLUMN execution_duration_bucket.le_seconds IS 'Upper bound of the bucket in seconds (Infinity: longer than every bound).';
COMMENT ON COLUMN execution_duration_bucket.runs IS 'Ended runs whose duration fell in this bucket.';
ALTER TABLE execution_duration_bucket ENABLE ROW LEVEL SECURITY;
SELECT a2n_grant_analyst('execution_duration_bucket');

-- migrate:down
DROP TABLE execution_duration_bucket;
DROP TABLE health_check;
DROP TYPE health_status;
