-- Runtime settings and the service log.
--
-- app_setting (spec: appSetting, "configurable application settings"): one row per setting an
-- administrator stored (the AppSetting aggregates of the Operations context, projected by the
-- `operations` projector). A setting without a row, or whose row has no value (it was reset),
-- takes its default from the environment (application/runtime_settings.py). Its history is the
-- aggregate's events (GET /admin/settings/{key}/history).
--
-- system_log (spec: systemLog, "application event logging with correlation IDs"): what the
-- service itself did: processes starting and stopping, scheduler elections, projectors parked
-- and resumed, retention runs, migrations applied. Written directly by the processes (not
-- projected: these are facts about the running service, not about the domain); pruned after 90
-- days by retention.
--
-- Both are for administrators only: row-level security lets a2n_app see rows only when the
-- transaction acts as an ADMIN or OWNER.

-- migrate:up
CREATE TABLE app_setting (
    id text PRIMARY KEY,
    key text NOT NULL UNIQUE,
    value jsonb,
    type text NOT NULL,
    updated_by text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    revision integer NOT NULL
);
COMMENT ON TABLE app_setting IS 'Runtime settings administrators stored; settings without a value here take their environment default.';
COMMENT ON COLUMN app_setting.id IS 'AppSetting aggregate id, derived from the key (uuid5).';
COMMENT ON COLUMN app_setting.key IS 'Setting key, e.g. min_position_timeout or retention.system_log.';
COMMENT ON COLUMN app_setting.value IS 'Stored value (JSON of the setting''s type); NULL once reset to the default.';
COMMENT ON COLUMN app_setting.type IS 'integer, number, string, choice or interval.';
COMMENT ON COLUMN app_setting.updated_by IS 'Actor of the latest change.';
COMMENT ON COLUMN app_setting.created_at IS 'When the setting was first stored.';
COMMENT ON COLUMN app_setting.updated_at IS 'When it last changed.';
COMMENT ON COLUMN app_setting.revision IS 'Aggregate version (number of changes).';
GRANT SELECT ON app_setting TO a2n_app;
ALTER TABLE app_setting ENABLE ROW LEVEL SECURITY;
CREATE POLICY app_setting_admins ON app_setting FOR ALL TO a2n_app
    USING (current_user_role() IN ('ADMIN', 'OWNER'));
SELECT a2n_grant_analyst('app_setting');

CREATE TABLE system_log (
    id text PRIMARY KEY,
    level log_level NOT NULL,
    service text NOT NULL,
    component text NOT NULL,
    event text NOT NULL,
    message text NOT NULL,
    metadata jsonb,
    correlation_id text,
    user_id text,
    host text NOT NULL,
    pid integer NOT NULL,
    "timestamp" timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_system_log_timestamp ON system_log ("timestamp");
CREATE INDEX idx_system_log_level_time ON system_log (level, "timestamp");
CREATE INDEX idx_system_log_component_time ON system_log (component, "timestamp");
CREATE INDEX idx_system_log_correlation ON system_log (correlation_id);
COMMENT ON INDEX idx_system_log_timestamp IS 'Newest first listing and retention.';
COMMENT ON INDEX idx_system_log_level_time IS 'Errors and warnings over time.';
COMMENT ON INDEX idx_system_log_component_time IS 'One component''s lines over time.';
COMMENT ON INDEX idx_system_log_correlation IS 'Every line of one process run, request or retention run.';
COMMENT ON TABLE system_log IS 'Service events: process start and stop, scheduler elections, parked and resumed projectors, retention runs, migrations.';
COMMENT ON COLUMN system_log.id IS 'Line id (UUIDv7, sorts by time).';
COMMENT ON COLUMN system_log.level IS 'DEBUG, INFO, WARN, ERROR or FATAL.';
COMMENT ON COLUMN system_log.service IS 'The process role that wrote it: up, serve, project, work, schedule or migrate.';
COMMENT ON COLUMN system_log.component IS 'Part of the service: process, scheduler, projections, retention, settings, migrations.';
COMMENT ON COLUMN system_log.event IS 'What happened, e.g. process.started or scheduler.elected.';
COMMENT ON COLUMN system_log.message IS 'The same for people.';
COMMENT ON COLUMN system_log.metadata IS 'Details (counts, projector, position, error).';
COMMENT ON COLUMN system_log.correlation_id IS 'The request, process run or retention run the line belongs to.';
COMMENT ON COLUMN system_log.user_id IS 'The user who caused it, when one did.';
COMMENT ON COLUMN system_log.host IS 'Host name of the process.';
COMMENT ON COLUMN system_log.pid IS 'Process id.';
COMMENT ON COLUMN system_log."timestamp" IS 'When it happened.';
GRANT SELECT ON system_log TO a2n_app;
ALTER TABLE system_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY system_log_admins ON system_log FOR ALL TO a2n_app
    USING (current_user_role() IN ('ADMIN', 'OWNER'));
SELECT a2n_grant_analyst('system_log');

-- migrate:down
DROP TABLE system_log;
DROP TABLE app_setting;
