-- Workflow sharing (spec: workflowShare, "Permission-based sharing (VIEW, EDIT, EXECUTE, ADMIN)"),
-- projected from the Workflow aggregate's Shared / Unshared / OwnershipTransferred events.
--
-- Row-level security: a workflow is visible to its owner, to everyone when PUBLIC, and now to the
-- users it is shared with; its versions follow it (their policy reads `workflow` under RLS, so
-- they need no change). A share is visible to its recipient, to the workflow's owner and to the
-- workflow's ADMIN sharees (who manage shares).
--
-- The workflow policy cannot read workflow_share under RLS (whose policy reads workflow: Postgres
-- refuses the recursion), so a SECURITY DEFINER function reads it: it answers only for the current
-- user, runs with a fixed search_path, and only a2n_app may call it.

-- migrate:up
CREATE TYPE workflow_permission AS ENUM ('VIEW', 'EXECUTE', 'EDIT', 'ADMIN');
COMMENT ON TYPE workflow_permission IS 'Share levels, lowest first; each includes the ones before it.';

CREATE TABLE workflow_share (
    id text PRIMARY KEY,
    workflow_id text NOT NULL REFERENCES workflow (id) ON DELETE CASCADE,
    user_id text NOT NULL,
    permission workflow_permission NOT NULL,
    shared_by text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (workflow_id, user_id)
);
CREATE INDEX idx_workflow_share_user ON workflow_share (user_id, workflow_id);

COMMENT ON TABLE workflow_share IS 'Who else may use a workflow, and how; one row per user and workflow.';
COMMENT ON COLUMN workflow_share.id IS 'Share id (UUIDv7 text).';
COMMENT ON COLUMN workflow_share.workflow_id IS 'The shared workflow.';
COMMENT ON COLUMN workflow_share.user_id IS 'The user it is shared with.';
COMMENT ON COLUMN workflow_share.permission IS 'VIEW, EXECUTE, EDIT or ADMIN (each includes the lower ones).';
COMMENT ON COLUMN workflow_share.shared_by IS 'Who granted the current permission (the owner or an ADMIN sharee).';
COMMENT ON COLUMN workflow_share.created_at IS 'When the workflow was first shared with the user.';
COMMENT ON COLUMN workflow_share.updated_at IS 'When the permission was last set.';

CREATE FUNCTION workflows_shared_with_current_user(at_least workflow_permission)
    RETURNS SETOF text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT workflow_id FROM public.workflow_share
        WHERE user_id = public.current_user_id() AND permission >= at_least
    $$;
REVOKE EXECUTE ON FUNCTION workflows_shared_with_current_user(workflow_permission) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflows_shared_with_current_user(workflow_permission) TO a2n_app;
COMMENT ON FUNCTION workflows_shared_with_current_user(workflow_permission) IS 'Ids of the workflows shared with the current user at `at_least` or higher (for RLS policies).';

GRANT SELECT ON workflow_share TO a2n_app;
ALTER TABLE workflow_share ENABLE ROW LEVEL SECURITY;
CREATE POLICY workflow_share_visibility ON workflow_share FOR ALL TO a2n_app
    USING (
        user_id = current_user_id()
        OR workflow_id IN (SELECT w.id FROM workflow w WHERE w.user_id = current_user_id())
        OR workflow_id IN (SELECT workflows_shared_with_current_user('ADMIN'))
    );
SELECT a2n_grant_analyst('workflow_share');

ALTER POLICY user_workflow_isolation ON workflow
    USING (
        user_id = current_user_id()
        OR visibility = 'PUBLIC'
        OR id IN (SELECT workflows_shared_with_current_user('VIEW'))
    );

-- migrate:down
ALTER POLICY user_workflow_isolation ON workflow
    USING (user_id = current_user_id() OR visibility = 'PUBLIC');
DROP TABLE workflow_share;
DROP FUNCTION workflows_shared_with_current_user(workflow_permission);
DROP TYPE workflow_permission;
