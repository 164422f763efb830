-- Custom nodes (spec: nodeDefinition, "Plugin Architecture"): node types users write, projected by
-- the `nodes` projector from the NodeDefinition aggregate's events into the rows of node_definition
-- with is_built_in = false (built-in rows stay reference data synced from the code; the projector
-- never touches them, and its rebuild replaces only its own rows), and into
-- node_definition_version, one row per semver version. A node_definition row shows the node's
-- current version: the highest published one, else (for its author) the highest.
--
-- Row-level security: a custom node is visible to its author and to admins; everyone sees it once
-- it is PUBLIC with a version published. Its versions follow it, and others see only published
-- ones.

-- migrate:up
ALTER TABLE node_definition
    ADD COLUMN revision integer,
    ADD COLUMN replaced_by text,
    ADD COLUMN deprecation_reason text;
COMMENT ON COLUMN node_definition.revision IS 'Events of the custom node so far (its ETag); null for built-ins.';
COMMENT ON COLUMN node_definition.replaced_by IS 'The node type to use instead, once deprecated (if its author named one).';
COMMENT ON COLUMN node_definition.deprecation_reason IS 'Why it was deprecated, as its author put it.';
GRANT SELECT (revision, replaced_by, deprecation_reason) ON node_definition TO a2n_analyst;

CREATE TABLE node_definition_version (
    node_definition_id text NOT NULL,
    version text NOT NULL,
    ordinal integer NOT NULL,
    settings_schema jsonb NOT NULL,
    input_schema jsonb NOT NULL,
    output_schema jsonb NOT NULL,
    outputs jsonb NOT NULL,
    implementation jsonb NOT NULL,
    timeout integer,
    execution_mode text NOT NULL,
    change_log text,
    created_at timestamptz NOT NULL,
    created_by text NOT NULL,
    published_at timestamptz,
    PRIMARY KEY (node_definition_id, version)
);
CREATE UNIQUE INDEX idx_node_definition_version_ordinal
    ON node_definition_version (node_definition_id, ordinal);

COMMENT ON TABLE node_definition_version IS 'Versions of custom node types: what each semver version fixes for the workflows that pin it (type@version).';
COMMENT ON COLUMN node_definition_version.node_definition_id IS 'The custom node (node_definition.id; no foreign key: built-in rows are synced separately).';
COMMENT ON COLUMN node_definition_version.version IS 'Semantic version (1.2.0); each new one is higher than those before.';
COMMENT ON COLUMN node_definition_version.ordinal IS 'Order of creation (1 = the first version), which is also version order.';
COMMENT ON COLUMN node_definition_version.settings_schema IS 'JSON Schema (2020-12) of the node''s config in a workflow definition.';
COMMENT ON COLUMN node_definition_version.input_schema IS 'JSON Schema (2020-12) of the items the node receives.';
COMMENT ON COLUMN node_definition_version.output_schema IS 'JSON Schema (2020-12) of the items the node emits.';
COMMENT ON COLUMN node_definition_version.outputs IS 'JSON array of its output handle names.';
COMMENT ON COLUMN node_definition_version.implementation IS 'How it runs: {"runtime": "PYTHON", "entryPoint"}, {"runtime": "WEBHOOK", "url", "timeoutMs", "retries"} or {"runtime": "DOCKER", "image"}.';
COMMENT ON COLUMN node_definition_version.timeout IS 'Default timeout in milliseconds, or null.';
COMMENT ON COLUMN node_definition_version.execution_mode IS 'SYNC, ASYNC or STREAM.';
COMMENT ON COLUMN node_definition_version.change_log IS 'What changed in this version, as its author put it.';
COMMENT ON COLUMN node_definition_version.created_at IS 'When the version was recorded.';
COMMENT ON COLUMN node_definition_version.created_by IS 'User who recorded it (the author or an admin).';
COMMENT ON COLUMN node_definition_version.published_at IS 'When workflows could start using it; null while a draft.';

DROP POLICY node_definition_visibility ON node_definition;
CREATE POLICY node_definition_visibility ON node_definition FOR ALL TO a2n_app
    USING (
        is_built_in
        OR (is_public AND published_at IS NOT NULL)
        OR created_by = current_user_id()
        OR current_user_role() IN ('ADMIN', 'OWNER')
    );

GRANT SELECT ON node_definition_version TO a2n_app;
ALTER TABLE node_definition_version ENABLE ROW LEVEL SECURITY;
-- The subquery sees node_definition through its own policy: invisible nodes hide their versions.
CREATE POLICY node_definition_version_visibility ON node_definition_version FOR ALL TO a2n_app
    USING (
        EXISTS (
            SELECT 1 FROM node_definition d
            WHERE d.id = node_definition_id
              AND (
                  node_definition_version.published_at IS NOT NULL
                  OR d.created_by = current_user_id()
                  OR current_user_role() IN ('ADMIN', 'OWNER')
              )
        )
    );
SELECT a2n_grant_analyst('node_definition_version', ARRAY['implementation']);

-- migrate:down
DROP TABLE node_definition_version;
DROP POLICY node_definition_visibility ON node_definition;
CREATE POLICY node_definition_visibility ON node_definition FOR ALL TO a2n_app
    USING (is_built_in OR is_public OR created_by = current_user_id());
DELETE FROM node_definition WHERE NOT is_built_in;
DELETE FROM projection_tracking WHERE projector = 'nodes';
ALTER TABLE node_definition
    DROP COLUMN revision,
    DROP COLUMN replaced_by,
    DROP COLUMN deprecation_reason;
