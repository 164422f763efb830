-- Publishing workflow versions: at most one workflow_version row per workflow is the published
-- one (the workflows projector unmarks the old row before marking the new one).

-- migrate:up
CREATE UNIQUE INDEX idx_workflow_version_published ON workflow_version (workflow_id)
    WHERE is_published;

COMMENT ON COLUMN workflow_version.is_published IS 'Whether this is the published version (the one triggered runs execute); at most one row per workflow.';
COMMENT ON COLUMN workflow_version.published_at IS 'When this version was published; NULL once another version is published.';
COMMENT ON COLUMN workflow.published_version IS 'Number of the published version (the one triggered runs execute); NULL until one is published. Test runs execute the latest version.';

-- migrate:down
DROP INDEX idx_workflow_version_published;

COMMENT ON COLUMN workflow_version.is_published IS 'Whether this is the published version.';
COMMENT ON COLUMN workflow_version.published_at IS 'When it was published.';
COMMENT ON COLUMN workflow.published_version IS 'Number of the version that triggered runs execute.';
