-- Public workflows and the template gallery (spec: workflow.visibility, workflow.isTemplate,
-- "Category-based organization and template system").
--
-- A PUBLIC workflow is readable by every user while it is not archived: archiving withdraws it
-- (an archived workflow refuses changes, so its owner could not make it PRIVATE again). The row
-- policy now says the same as the Workflow aggregate's `is_public` and the API's queries; versions
-- and triggers follow their workflow's row, so they need no change.
--
-- The gallery (GET /workflows/templates) lists PUBLIC, non-archived templates of every user,
-- newest first, optionally of one category: two partial indexes hold exactly those rows, in that
-- order. Tag and text filters check the gallery's rows one by one: under row-level security the
-- policy is checked before any operator that is not leakproof (jsonb @>, ILIKE), so the GIN index
-- on tags cannot narrow them first (tests/integration/test_workflow_gallery_plan.py).

-- migrate:up
ALTER POLICY user_workflow_isolation ON workflow
    USING (
        user_id = current_user_id()
        OR (visibility = 'PUBLIC' AND archived_at IS NULL)
        OR id IN (SELECT workflows_shared_with_current_user('VIEW'))
    );

CREATE INDEX idx_workflow_gallery ON workflow (id DESC)
    WHERE is_template AND visibility = 'PUBLIC' AND archived_at IS NULL;
CREATE INDEX idx_workflow_gallery_category ON workflow (category, id DESC)
    WHERE is_template AND visibility = 'PUBLIC' AND archived_at IS NULL;
COMMENT ON INDEX idx_workflow_gallery IS 'The template gallery, newest first.';
COMMENT ON INDEX idx_workflow_gallery_category IS 'The template gallery of one category, newest first.';

-- migrate:down
DROP INDEX idx_workflow_gallery_category;
DROP INDEX idx_workflow_gallery;
ALTER POLICY user_workflow_isolation ON workflow
    USING (
        user_id = current_user_id()
        OR visibility = 'PUBLIC'
        OR id IN (SELECT workflows_shared_with_current_user('VIEW'))
    );
