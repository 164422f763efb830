-- node_definition (spec: nodeDefinition): the node types workflow definitions may use.
-- Built-in rows (is_built_in) are reference data shipped with the code, not user events: they are
-- upserted from the node registry (domain/workflows/nodes) when `a2n migrate up`, `a2n up` or
-- `a2n serve` starts (application/nodes/catalog.py), never projected. Custom nodes will be the
-- rows with is_built_in = false. created_by has no foreign key to "user", as in the other read
-- models: each context's projections advance independently.

-- migrate:up
CREATE TYPE node_type AS ENUM ('TRIGGER', 'ACTION', 'TRANSFORM', 'FLOW');

CREATE TABLE node_definition (
    id text PRIMARY KEY,
    name text NOT NULL UNIQUE,
    display_name text NOT NULL,
    description text,
    type node_type NOT NULL,
    category text NOT NULL,
    version text NOT NULL,
    is_active boolean NOT NULL DEFAULT true,
    is_built_in boolean NOT NULL DEFAULT false,
    is_public boolean NOT NULL DEFAULT false,
    icon text,
    color text,
    documentation text,
    input_schema jsonb NOT NULL,
    output_schema jsonb NOT NULL,
    settings_schema jsonb NOT NULL,
    credentials jsonb,
    rate_limit jsonb,
    retry_policy jsonb,
    timeout integer,
    execution_mode text NOT NULL DEFAULT 'SYNC'
        CHECK (execution_mode IN ('SYNC', 'ASYNC', 'STREAM')),
    implementation jsonb,
    tags jsonb NOT NULL DEFAULT '[]',
    metadata jsonb NOT NULL DEFAULT '{}',
    usage_count integer NOT NULL DEFAULT 0,
    success_rate integer,
    avg_execution_time integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz DEFAULT now(),
    deprecated_at timestamptz,
    created_by text
);
CREATE INDEX idx_node_definition_type_category ON node_definition (type, category);
CREATE INDEX idx_node_definition_active ON node_definition (is_active);
CREATE INDEX idx_node_definition_public ON node_definition (is_public);

COMMENT ON TABLE node_definition IS 'Node types that workflow definitions may use: built-in ones synced from the code at start-up, and custom ones.';
COMMENT ON COLUMN node_definition.id IS 'Node definition id; a built-in type''s id is its name.';
COMMENT ON COLUMN node_definition.name IS 'The type name definitions use ("type": "http_request"); unique.';
COMMENT ON COLUMN node_definition.display_name IS 'Name shown in editors.';
COMMENT ON COLUMN node_definition.description IS 'One sentence on what the node does.';
COMMENT ON COLUMN node_definition.type IS 'TRIGGER (starts runs, takes no input), ACTION, TRANSFORM or FLOW.';
COMMENT ON COLUMN node_definition.category IS 'Palette group: trigger, flow, data, code, http.';
COMMENT ON COLUMN node_definition.version IS 'Version of the node type (semver).';
COMMENT ON COLUMN node_definition.is_active IS 'Whether new definitions may use it; false once deprecated.';
COMMENT ON COLUMN node_definition.is_built_in IS 'Shipped with A2N (synced from the registry) rather than custom.';
COMMENT ON COLUMN node_definition.is_public IS 'Whether every user sees it (built-ins always).';
COMMENT ON COLUMN node_definition.icon IS 'Icon name for editors.';
COMMENT ON COLUMN node_definition.color IS 'Colour for editors (#rrggbb).';
COMMENT ON COLUMN node_definition.documentation IS 'Longer usage notes.';
COMMENT ON COLUMN node_definition.input_schema IS 'JSON Schema (2020-12) of the items the node receives.';
COMMENT ON COLUMN node_definition.output_schema IS 'JSON Schema (2020-12) of the items the node emits.';
COMMENT ON COLUMN node_definition.settings_schema IS 'JSON Schema (2020-12) of the node''s config in a workflow definition.';
COMMENT ON COLUMN node_definition.credentials IS 'Credentials it can use: {"required": bool, "types": [...]}, or null.';
COMMENT ON COLUMN node_definition.rate_limit IS 'Rate limit applied to the node, or null.';
COMMENT ON COLUMN node_definition.retry_policy IS 'Default retry policy, or null for the workflow''s.';
COMMENT ON COLUMN node_definition.timeout IS 'Default timeout in milliseconds, or null.';
COMMENT ON COLUMN node_definition.execution_mode IS 'SYNC, ASYNC (waits or calls out for long) or STREAM.';
COMMENT ON COLUMN node_definition.implementation IS 'How it runs: {"runtime": "BUILT_IN", "handler": name} for built-ins.';
COMMENT ON COLUMN node_definition.tags IS 'JSON array of tag strings.';
COMMENT ON COLUMN node_definition.metadata IS 'Handles {"handles": {"inputs", "outputs", "caseOutputs"?}, "isTrigger"}.';
COMMENT ON COLUMN node_definition.usage_count IS 'Executions of nodes of this type (maintained from execution events).';
COMMENT ON COLUMN node_definition.success_rate IS 'Percentage of those that succeeded.';
COMMENT ON COLUMN node_definition.avg_execution_time IS 'Mean node execution time in milliseconds.';
COMMENT ON COLUMN node_definition.created_at IS 'When the row was first written.';
COMMENT ON COLUMN node_definition.updated_at IS 'When the row last changed.';
COMMENT ON COLUMN node_definition.published_at IS 'When it became available to workflows.';
COMMENT ON COLUMN node_definition.deprecated_at IS 'When it was deprecated (built-ins: when the code stopped shipping it).';
COMMENT ON COLUMN node_definition.created_by IS 'User who created a custom node; null for built-ins.';

-- Built-in and public nodes are for everyone; custom private ones for their author only.
GRANT SELECT ON node_definition TO a2n_app;
ALTER TABLE node_definition ENABLE ROW LEVEL SECURITY;
CREATE POLICY node_definition_visibility ON node_definition FOR ALL TO a2n_app
    USING (is_built_in OR is_public OR created_by = current_user_id());
SELECT a2n_grant_analyst('node_definition', ARRAY['implementation']);

-- migrate:down
DROP TABLE node_definition;
DROP TYPE node_type;
