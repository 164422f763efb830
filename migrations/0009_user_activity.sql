-- Counts of what each user did in other contexts, kept by the identity projector so that
-- "user".workflows_created / workflows_executed come out the same whatever order the projector
-- reads the Identity and Workflows logs in: a count that arrives before its user row waits here,
-- and the row takes it when it is inserted. Internal bookkeeping: not readable by a2n_app.

-- migrate:up
CREATE TABLE user_activity (
    user_id text PRIMARY KEY,
    workflows_created integer NOT NULL DEFAULT 0,
    workflows_executed integer NOT NULL DEFAULT 0
);
ALTER TABLE user_activity ENABLE ROW LEVEL SECURITY;
SELECT a2n_grant_analyst('user_activity');

COMMENT ON TABLE user_activity IS 'Per-user activity counts the identity projector copies into "user" (so they survive either log being read first).';
COMMENT ON COLUMN user_activity.user_id IS 'User id (no foreign key: the count may arrive before the user row).';
COMMENT ON COLUMN user_activity.workflows_created IS 'Workflows this user created (Workflow.Created events, duplicates and imports included).';
COMMENT ON COLUMN user_activity.workflows_executed IS 'Executions this user started (maintained once executions exist).';
COMMENT ON COLUMN "user".workflows_created IS 'Workflows this user created, from Workflows events (see user_activity).';
COMMENT ON COLUMN "user".workflows_executed IS 'Executions this user started (see user_activity).';

-- migrate:down
COMMENT ON COLUMN "user".workflows_created IS 'Workflows this user created.';
COMMENT ON COLUMN "user".workflows_executed IS 'Executions this user started.';
DROP TABLE user_activity;
