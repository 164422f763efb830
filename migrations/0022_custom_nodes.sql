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
--
-- Marketplace: node_rating (one per user and node, projected from NodeRating events, with the
-- average and count kept on node_definition) and node_usage_stats (per node and UTC day, from the
-- executions log: every node run that succeeded or failed counts for its node type; a custom
-- type's runs count for its node, whatever version they pin). The same `nodes` projector keeps
-- node_definition.usage_count / success_rate / avg_execution_time (built-in rows too) from
-- node_usage_total. node_usage_run and node_usage_user are its bookkeeping (which user runs
-- which execution's nodes; which users ran a node on a day), readable by no API role.
-- node_collection(+_item) and node_template come from NodeCollection and NodeTemplate events;
-- private ones are their owner's (and admins'), public ones everyone's.

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

ALTER TABLE node_definition
    ADD COLUMN rating_average numeric(3, 2),
    ADD COLUMN rating_count integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN node_definition.rating_average IS 'Mean of its ratings (1 to 5), two decimals; null while unrated.';
COMMENT ON COLUMN node_definition.rating_count IS 'How many users rated it.';
GRANT SELECT (rating_average, rating_count) ON node_definition TO a2n_analyst;

CREATE TABLE node_rating (
    id text PRIMARY KEY,
    node_definition_id text NOT NULL,
    user_id text NOT NULL,
    rating smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    review text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    revision integer NOT NULL,
    UNIQUE (node_definition_id, user_id)
);
CREATE INDEX idx_node_rating_node ON node_rating (node_definition_id, updated_at DESC, id DESC);
COMMENT ON TABLE node_rating IS 'Ratings of custom nodes: one per user and node, 1 to 5 stars with an optional review.';
COMMENT ON COLUMN node_rating.id IS 'Rating id, derived from the node and the user.';
COMMENT ON COLUMN node_rating.node_definition_id IS 'The rated node (node_definition.id).';
COMMENT ON COLUMN node_rating.user_id IS 'Who rated it.';
COMMENT ON COLUMN node_rating.rating IS 'Stars, 1 to 5.';
COMMENT ON COLUMN node_rating.review IS 'What the user wrote, if anything.';
COMMENT ON COLUMN node_rating.created_at IS 'When the user first rated the node.';
COMMENT ON COLUMN node_rating.updated_at IS 'When the rating last changed.';
COMMENT ON COLUMN node_rating.revision IS 'Events of the rating so far.';
GRANT SELECT ON node_rating TO a2n_app;
ALTER TABLE node_rating ENABLE ROW LEVEL SECURITY;
CREATE POLICY node_rating_visibility ON node_rating FOR ALL TO a2n_app
    USING (EXISTS (SELECT 1 FROM node_definition d WHERE d.id = node_definition_id));
SELECT a2n_grant_analyst('node_rating', ARRAY['review']);

CREATE TABLE node_usage_stats (
    node_definition_id text NOT NULL,
    date date NOT NULL,
    executions integer NOT NULL,
    successes integer NOT NULL,
    failures integer NOT NULL,
    total_duration_ms bigint NOT NULL,
    avg_duration_ms integer NOT NULL,
    p95_duration_ms integer NOT NULL,
    distinct_users integer NOT NULL,
    duration_buckets jsonb NOT NULL,
    PRIMARY KEY (node_definition_id, date)
);
CREATE INDEX idx_node_usage_analytics ON node_usage_stats (node_definition_id, date DESC);
COMMENT ON TABLE node_usage_stats IS 'Runs of each node type per UTC day: counts, durations, users (kept a year).';
COMMENT ON COLUMN node_usage_stats.node_definition_id IS 'The node type (node_definition.id: a built-in''s name, a custom node''s id).';
COMMENT ON COLUMN node_usage_stats.date IS 'UTC day the node runs ended.';
COMMENT ON COLUMN node_usage_stats.executions IS 'Node runs that ended (succeeded or failed after any retries).';
COMMENT ON COLUMN node_usage_stats.successes IS 'Of those, how many succeeded.';
COMMENT ON COLUMN node_usage_stats.failures IS 'Of those, how many failed.';
COMMENT ON COLUMN node_usage_stats.total_duration_ms IS 'Sum of the final attempts'' durations, milliseconds.';
COMMENT ON COLUMN node_usage_stats.avg_duration_ms IS 'Mean duration, milliseconds.';
COMMENT ON COLUMN node_usage_stats.p95_duration_ms IS '95th percentile duration, milliseconds, to within 10% (from duration_buckets).';
COMMENT ON COLUMN node_usage_stats.distinct_users IS 'Users whose executions ran the node that day.';
COMMENT ON COLUMN node_usage_stats.duration_buckets IS 'Run counts by duration bucket {"k": n}: bucket k holds durations up to round(1.1^k) ms.';
GRANT SELECT ON node_usage_stats TO a2n_app;
ALTER TABLE node_usage_stats ENABLE ROW LEVEL SECURITY;
CREATE POLICY node_usage_stats_visibility ON node_usage_stats FOR ALL TO a2n_app
    USING (EXISTS (SELECT 1 FROM node_definition d WHERE d.id = node_definition_id));
SELECT a2n_grant_analyst('node_usage_stats');

CREATE TABLE node_collection (
    id text PRIMARY KEY,
    name text NOT NULL,
    description text,
    visibility text NOT NULL CHECK (visibility IN ('PRIVATE', 'PUBLIC')),
    item_count integer NOT NULL,
    user_id text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    revision integer NOT NULL
);
CREATE INDEX idx_node_collection_user ON node_collection (user_id, id DESC);
CREATE INDEX idx_node_collection_public ON node_collection (id DESC) WHERE visibility = 'PUBLIC';
COMMENT ON TABLE node_collection IS 'Curated, ordered lists of node types, private to their owner or for everyone.';
COMMENT ON COLUMN node_collection.id IS 'Collection id (UUIDv7 text).';
COMMENT ON COLUMN node_collection.name IS 'Its name.';
COMMENT ON COLUMN node_collection.description IS 'What it gathers.';
COMMENT ON COLUMN node_collection.visibility IS 'PRIVATE (its owner and admins) or PUBLIC (everyone).';
COMMENT ON COLUMN node_collection.item_count IS 'How many node types it holds.';
COMMENT ON COLUMN node_collection.user_id IS 'Its owner.';
COMMENT ON COLUMN node_collection.created_at IS 'When it was created.';
COMMENT ON COLUMN node_collection.updated_at IS 'When its items last changed.';
COMMENT ON COLUMN node_collection.revision IS 'Events of the collection so far (its ETag).';
GRANT SELECT ON node_collection TO a2n_app;
ALTER TABLE node_collection ENABLE ROW LEVEL SECURITY;
CREATE POLICY node_collection_visibility ON node_collection FOR ALL TO a2n_app
    USING (
        visibility = 'PUBLIC'
        OR user_id = current_user_id()
        OR current_user_role() IN ('ADMIN', 'OWNER')
    );
SELECT a2n_grant_analyst('node_collection');

CREATE TABLE node_collection_item (
    node_collection_id text NOT NULL,
    node_definition_id text NOT NULL,
    position integer NOT NULL,
    added_at timestamptz NOT NULL,
    PRIMARY KEY (node_collection_id, node_definition_id)
);
CREATE INDEX idx_node_collection_item_node ON node_collection_item (node_definition_id);
COMMENT ON TABLE node_collection_item IS 'The node types of each collection, in order.';
COMMENT ON COLUMN node_collection_item.node_collection_id IS 'The collection (node_collection.id).';
COMMENT ON COLUMN node_collection_item.node_definition_id IS 'A node type in it (node_definition.id).';
COMMENT ON COLUMN node_collection_item.position IS 'Its place in the collection, 0 first.';
COMMENT ON COLUMN node_collection_item.added_at IS 'When it was added.';
GRANT SELECT ON node_collection_item TO a2n_app;
ALTER TABLE node_collection_item ENABLE ROW LEVEL SECURITY;
CREATE POLICY node_collection_item_visibility ON node_collection_item FOR ALL TO a2n_app
    USING (EXISTS (SELECT 1 FROM node_collection c WHERE c.id = node_collection_id));
SELECT a2n_grant_analyst('node_collection_item');

CREATE TABLE node_template (
    id text PRIMARY KEY,
    node_definition_id text NOT NULL,
    node_type text NOT NULL,
    name text NOT NULL,
    description text,
    visibility text NOT NULL CHECK (visibility IN ('PRIVATE', 'PUBLIC')),
    config jsonb NOT NULL,
    tags jsonb NOT NULL,
    user_id text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    revision integer NOT NULL
);
CREATE INDEX idx_node_template_node ON node_template (node_definition_id, id DESC);
CREATE INDEX idx_node_template_user ON node_template (user_id, id DESC);
COMMENT ON TABLE node_template IS 'Nodes pre-configured for common uses, ready to drop into a definition.';
COMMENT ON COLUMN node_template.id IS 'Template id (UUIDv7 text).';
COMMENT ON COLUMN node_template.node_definition_id IS 'The node type it configures (node_definition.id).';
COMMENT ON COLUMN node_template.node_type IS 'The type as a definition names it: a built-in name or a pinned custom type@version.';
COMMENT ON COLUMN node_template.name IS 'Its name.';
COMMENT ON COLUMN node_template.description IS 'What it is for.';
COMMENT ON COLUMN node_template.visibility IS 'PRIVATE (its owner and admins) or PUBLIC (everyone).';
COMMENT ON COLUMN node_template.config IS 'The node config, valid for node_type''s schema.';
COMMENT ON COLUMN node_template.tags IS 'JSON array of tag strings.';
COMMENT ON COLUMN node_template.user_id IS 'Who made it.';
COMMENT ON COLUMN node_template.created_at IS 'When it was made.';
COMMENT ON COLUMN node_template.updated_at IS 'When it last changed.';
COMMENT ON COLUMN node_template.revision IS 'Events of the template so far.';
GRANT SELECT ON node_template TO a2n_app;
ALTER TABLE node_template ENABLE ROW LEVEL SECURITY;
CREATE POLICY node_template_visibility ON node_template FOR ALL TO a2n_app
    USING (
        visibility = 'PUBLIC'
        OR user_id = current_user_id()
        OR current_user_role() IN ('ADMIN', 'OWNER')
    );
SELECT a2n_grant_analyst('node_template');

CREATE TABLE node_usage_total (
    node_definition_id text PRIMARY KEY,
    executions bigint NOT NULL,
    successes bigint NOT NULL,
    total_duration_ms bigint NOT NULL
);
COMMENT ON TABLE node_usage_total IS 'Runs of each node type ever (node_definition''s counters come from here, retention leaves it).';
COMMENT ON COLUMN node_usage_total.node_definition_id IS 'The node type (node_definition.id).';
COMMENT ON COLUMN node_usage_total.executions IS 'Node runs that ended.';
COMMENT ON COLUMN node_usage_total.successes IS 'Of those, how many succeeded.';
COMMENT ON COLUMN node_usage_total.total_duration_ms IS 'Sum of their durations, milliseconds.';
SELECT a2n_grant_analyst('node_usage_total');

CREATE TABLE node_usage_run (
    execution_id text PRIMARY KEY,
    user_id text NOT NULL,
    node_types jsonb NOT NULL
);
COMMENT ON TABLE node_usage_run IS 'Bookkeeping of the nodes projector: the user and node types of each unfinished execution.';
COMMENT ON COLUMN node_usage_run.execution_id IS 'The execution.';
COMMENT ON COLUMN node_usage_run.user_id IS 'Who it runs as.';
COMMENT ON COLUMN node_usage_run.node_types IS '{node id: node type} of its definition.';

CREATE TABLE node_usage_user (
    node_definition_id text NOT NULL,
    date date NOT NULL,
    user_id text NOT NULL,
    PRIMARY KEY (node_definition_id, date, user_id)
);
COMMENT ON TABLE node_usage_user IS 'Bookkeeping of the nodes projector: users who ran a node type on a UTC day (for distinct_users; kept a year).';
COMMENT ON COLUMN node_usage_user.node_definition_id IS 'The node type.';
COMMENT ON COLUMN node_usage_user.date IS 'The UTC day.';
COMMENT ON COLUMN node_usage_user.user_id IS 'A user whose execution ran it.';

-- migrate:down
DROP TABLE node_template;
DROP TABLE node_collection_item;
DROP TABLE node_collection;
DROP TABLE node_usage_user;
DROP TABLE node_usage_run;
DROP TABLE node_usage_total;
DROP TABLE node_usage_stats;
DROP TABLE node_rating;
DROP TABLE node_definition_version;
DROP POLICY node_definition_visibility ON node_definition;
CREATE POLICY node_definition_visibility ON node_definition FOR ALL TO a2n_app
    USING (is_built_in OR is_public OR created_by = current_user_id());
DELETE FROM node_definition WHERE NOT is_built_in;
DELETE FROM projection_tracking WHERE projector = 'nodes';
UPDATE node_definition SET usage_count = 0, success_rate = NULL, avg_execution_time = NULL;
ALTER TABLE node_definition
    DROP COLUMN rating_average,
    DROP COLUMN rating_count,
    DROP COLUMN revision,
    DROP COLUMN replaced_by,
    DROP COLUMN deprecation_reason;
