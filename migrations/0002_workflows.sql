-- Workflow read models (spec: workflow, workflow_version), projected from the Workflows context.
-- user_id has no foreign key to "user": each context's projections advance independently, so a
-- row may legitimately arrive before the row it refers to.

-- migrate:up
CREATE TYPE workflow_visibility AS ENUM ('PRIVATE', 'PUBLIC');

CREATE TABLE workflow (
    id text PRIMARY KEY,
    name text NOT NULL,
    description text,
    definition jsonb NOT NULL,
    is_active boolean NOT NULL DEFAULT false,
    is_template boolean NOT NULL DEFAULT false,
    visibility workflow_visibility NOT NULL DEFAULT 'PRIVATE',
    version integer NOT NULL DEFAULT 1,
    published_version integer,
    tags jsonb NOT NULL DEFAULT '[]',
    category text,
    variables jsonb NOT NULL DEFAULT '{}',
    settings jsonb NOT NULL DEFAULT '{}',
    execution_count integer NOT NULL DEFAULT 0,
    success_count integer NOT NULL DEFAULT 0,
    failure_count integer NOT NULL DEFAULT 0,
    last_executed_at timestamptz,
    avg_execution_time integer,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    published_at timestamptz,
    archived_at timestamptz,
    user_id text NOT NULL,
    revision integer NOT NULL,
    duplicated_from text
);
CREATE INDEX idx_workflow_user_active ON workflow (user_id, is_active);
CREATE INDEX idx_workflow_user_id ON workflow (user_id, id DESC);
CREATE INDEX idx_workflow_visibility ON workflow (visibility);
CREATE INDEX idx_workflow_category ON workflow (category);
CREATE INDEX idx_workflow_active_only ON workflow (user_id, name) WHERE is_active = true;
CREATE INDEX idx_workflow_template ON workflow (is_template) WHERE is_template = true;
CREATE INDEX idx_workflow_tags ON workflow USING gin (tags jsonb_path_ops);

COMMENT ON TABLE workflow IS 'Workflows with their current definition; one row per Workflow aggregate.';
COMMENT ON COLUMN workflow.id IS 'Workflow id (UUIDv7 text).';
COMMENT ON COLUMN workflow.name IS 'Display name.';
COMMENT ON COLUMN workflow.description IS 'Free text description.';
COMMENT ON COLUMN workflow.definition IS 'Current definition: nodes, connections, variables, settings.';
COMMENT ON COLUMN workflow.is_active IS 'Whether triggers may start the workflow.';
COMMENT ON COLUMN workflow.is_template IS 'Whether the workflow is offered as a template.';
COMMENT ON COLUMN workflow.visibility IS 'PRIVATE or PUBLIC.';
COMMENT ON COLUMN workflow.version IS 'Number of the latest definition version (workflow_version.version).';
COMMENT ON COLUMN workflow.published_version IS 'Number of the version that triggered runs execute.';
COMMENT ON COLUMN workflow.tags IS 'JSON array of tag strings.';
COMMENT ON COLUMN workflow.category IS 'Category name.';
COMMENT ON COLUMN workflow.variables IS 'Copy of definition.variables, for queries.';
COMMENT ON COLUMN workflow.settings IS 'Copy of definition.settings (timeout, retryPolicy, notifications).';
COMMENT ON COLUMN workflow.execution_count IS 'Finished executions (maintained from execution events).';
COMMENT ON COLUMN workflow.success_count IS 'Executions that succeeded.';
COMMENT ON COLUMN workflow.failure_count IS 'Executions that failed.';
COMMENT ON COLUMN workflow.last_executed_at IS 'Start time of the latest execution.';
COMMENT ON COLUMN workflow.avg_execution_time IS 'Mean execution duration in milliseconds.';
COMMENT ON COLUMN workflow.created_at IS 'When the workflow was created.';
COMMENT ON COLUMN workflow.updated_at IS 'When any of its events last happened.';
COMMENT ON COLUMN workflow.published_at IS 'When published_version was published.';
COMMENT ON COLUMN workflow.archived_at IS 'When the workflow was archived (it no longer changes).';
COMMENT ON COLUMN workflow.user_id IS 'Owner user id.';
COMMENT ON COLUMN workflow.revision IS 'Aggregate version (number of events); the ETag for If-Match.';
COMMENT ON COLUMN workflow.duplicated_from IS 'Workflow this one was duplicated from, if any.';

CREATE TABLE workflow_version (
    id text PRIMARY KEY,
    workflow_id text NOT NULL REFERENCES workflow (id) ON DELETE CASCADE,
    version integer NOT NULL,
    definition jsonb NOT NULL,
    change_log text,
    is_published boolean NOT NULL DEFAULT false,
    published_at timestamptz,
    created_at timestamptz NOT NULL,
    user_id text NOT NULL,
    UNIQUE (workflow_id, version)
);
CREATE INDEX idx_workflow_version_user ON workflow_version (user_id);

COMMENT ON TABLE workflow_version IS 'Every definition a workflow has had, numbered from 1.';
COMMENT ON COLUMN workflow_version.id IS 'Version id (UUIDv7 text).';
COMMENT ON COLUMN workflow_version.workflow_id IS 'The workflow.';
COMMENT ON COLUMN workflow_version.version IS 'Version number within the workflow, from 1.';
COMMENT ON COLUMN workflow_version.definition IS 'The definition as of this version.';
COMMENT ON COLUMN workflow_version.change_log IS 'Change message given when the version was saved.';
COMMENT ON COLUMN workflow_version.is_published IS 'Whether this is the published version.';
COMMENT ON COLUMN workflow_version.published_at IS 'When it was published.';
COMMENT ON COLUMN workflow_version.created_at IS 'When the version was saved.';
COMMENT ON COLUMN workflow_version.user_id IS 'Who saved the version.';

-- migrate:down
DROP TABLE workflow_version;
DROP TABLE workflow;
DROP TYPE workflow_visibility;
