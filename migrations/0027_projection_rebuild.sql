-- Rebuilds started over HTTP (POST /api/v1/admin/projections/{name}/rebuild).
--
-- projection_rebuild: the latest rebuild of each projector an administrator started through the
-- API, which runs in the background of the process that took the request: its state, who asked,
-- and how far the replay got. GET /api/v1/admin/projections shows it beside each projector; a row
-- left `running` by a process that died is shown `interrupted` (its advisory lock is gone). The
-- lock `a2n.rebuild.<projector>`, not this table, keeps two rebuilds of one projector apart.
-- Written directly (facts about the running service, like system_log); administrators only.

-- migrate:up
CREATE TABLE projection_rebuild (
    projector text PRIMARY KEY,
    state text NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
    requested_by text NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    events_done bigint NOT NULL DEFAULT 0,
    events_total bigint NOT NULL DEFAULT 0,
    positions jsonb,
    error text
);
COMMENT ON TABLE projection_rebuild IS 'The latest rebuild of each projector started through the API (POST /admin/projections/{name}/rebuild), with its progress.';
COMMENT ON COLUMN projection_rebuild.projector IS 'Projector name (a2n project status).';
COMMENT ON COLUMN projection_rebuild.state IS 'running, succeeded or failed (a running row whose process died is served as interrupted).';
COMMENT ON COLUMN projection_rebuild.requested_by IS 'User id of the administrator who started it.';
COMMENT ON COLUMN projection_rebuild.started_at IS 'When the rebuild took its lock and began replaying.';
COMMENT ON COLUMN projection_rebuild.finished_at IS 'When it succeeded or failed; NULL while running.';
COMMENT ON COLUMN projection_rebuild.events_done IS 'Events replayed so far.';
COMMENT ON COLUMN projection_rebuild.events_total IS 'Events to replay: while running an estimate (the log heads'' positions, gaps included); once succeeded, the events replayed.';
COMMENT ON COLUMN projection_rebuild.positions IS 'Positions reached per event log once it succeeded.';
COMMENT ON COLUMN projection_rebuild.error IS 'Why it failed (exception type and message, never a secret).';
GRANT SELECT ON projection_rebuild TO a2n_app;
ALTER TABLE projection_rebuild ENABLE ROW LEVEL SECURITY;
CREATE POLICY projection_rebuild_admins ON projection_rebuild FOR ALL TO a2n_app
    USING (current_user_role() IN ('ADMIN', 'OWNER'));
SELECT a2n_grant_analyst('projection_rebuild');

-- migrate:down
DROP TABLE projection_rebuild;
