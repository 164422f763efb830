-- Credentials (spec: credential, credentialShare, credentialUsageLog, credentialTemplate,
-- credentialValidation; "Credential Management System"), projected by the `credentials` projector
-- from the Credential aggregate's events, except credential_template: built-in templates are
-- reference data shipped with the code and written at start-up, like node_definition.
--
-- Secrets: encrypted_data holds only the sealed blob (AES-256-GCM under a per-version data key,
-- itself wrapped by master key `encryption_version`); nothing here ever holds credential data in
-- clear. The API's role may not even read encrypted_data, and analysts read no secret column.
--
-- Row-level security: a credential is visible to its owner (the spec's user_credential_isolation)
-- and to the users it is shared with; a share to its recipient and the credential's owner; a use
-- to the credential's owner and to whoever used it; validations follow their credential. As in
-- 0014, the credential policy reads credential_share through a SECURITY DEFINER function (the share
-- policy reads credential, and Postgres refuses policies that recurse).
--
-- Retention (spec "Usage logs (1 year)"): idx_credential_usage_log_used_at serves the pruning
-- job, which deletes credential_usage_log rows older than a year.

-- migrate:up
CREATE TYPE credential_type AS ENUM (
    'API_KEY', 'BASIC_AUTH', 'OAUTH', 'BEARER_TOKEN', 'CERTIFICATE', 'SSH_KEY', 'CUSTOM'
);
COMMENT ON TYPE credential_type IS 'Kinds of credential; each fixes the fields of its data and configuration.';
CREATE TYPE credential_permission AS ENUM ('USE', 'EDIT');
COMMENT ON TYPE credential_permission IS 'Share levels, lowest first: USE (use in executions, validate), EDIT (also change).';

CREATE TABLE credential (
    id text PRIMARY KEY,
    name text NOT NULL,
    description text,
    type credential_type NOT NULL,
    provider text,
    encrypted_data text NOT NULL,
    encryption_version text NOT NULL,
    is_active boolean NOT NULL DEFAULT true,
    is_shared boolean NOT NULL DEFAULT false,
    expires_at timestamptz,
    last_used_at timestamptz,
    usage_count integer NOT NULL DEFAULT 0,
    metadata jsonb NOT NULL DEFAULT '{}',
    configuration jsonb NOT NULL DEFAULT '{}',
    validation_rules jsonb NOT NULL DEFAULT '{}',
    tags jsonb NOT NULL DEFAULT '[]',
    notes text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    last_validated_at timestamptz,
    validation_status text,
    user_id text NOT NULL,
    data_fields jsonb NOT NULL DEFAULT '[]',
    revision integer NOT NULL
);
CREATE INDEX idx_credential_user_type ON credential (user_id, type);
CREATE INDEX idx_credential_user_id ON credential (user_id, id DESC);
CREATE INDEX idx_credential_user_name ON credential (user_id, name);
CREATE INDEX idx_credential_is_active ON credential (is_active);
CREATE INDEX idx_credential_expiration
    ON credential (expires_at)
    WHERE expires_at IS NOT NULL AND is_active = true;
CREATE INDEX idx_credential_shared
    ON credential (type, provider)
    WHERE is_shared = true AND is_active = true;

COMMENT ON TABLE credential IS 'Credentials (API keys, passwords, tokens, certificates, SSH keys): details and sealed data; one row per live Credential aggregate.';
COMMENT ON COLUMN credential.id IS 'Credential id (UUIDv7 text).';
COMMENT ON COLUMN credential.name IS 'Display name; workflow imports match credentials by it.';
COMMENT ON COLUMN credential.description IS 'Free text description.';
COMMENT ON COLUMN credential.type IS 'API_KEY, BASIC_AUTH, OAUTH, BEARER_TOKEN, CERTIFICATE, SSH_KEY or CUSTOM.';
COMMENT ON COLUMN credential.provider IS 'Service it is for (stripe, github, ...), if given.';
COMMENT ON COLUMN credential.encrypted_data IS 'Sealed data: a2n-credential:v1:<data version>:<master key version>:<wrapped data key>:<nonce and ciphertext>, base64; never plaintext.';
COMMENT ON COLUMN credential.encryption_version IS 'Version of the master key (A2N_MASTER_KEYS) that wraps the data key.';
COMMENT ON COLUMN credential.is_active IS 'Whether executions may use it.';
COMMENT ON COLUMN credential.is_shared IS 'Whether it is shared with anyone.';
COMMENT ON COLUMN credential.expires_at IS 'When it stops being usable, if ever.';
COMMENT ON COLUMN credential.last_used_at IS 'When an execution last used it.';
COMMENT ON COLUMN credential.usage_count IS 'How many times executions used it.';
COMMENT ON COLUMN credential.metadata IS 'Free JSON object for the owner''s own bookkeeping.';
COMMENT ON COLUMN credential.configuration IS 'How to use the secret (not secret): header name, URLs, scopes, host; shaped by the type.';
COMMENT ON COLUMN credential.validation_rules IS 'Free JSON object of rules the owner attached.';
COMMENT ON COLUMN credential.tags IS 'JSON array of tag strings.';
COMMENT ON COLUMN credential.notes IS 'The owner''s notes.';
COMMENT ON COLUMN credential.created_at IS 'When it was created.';
COMMENT ON COLUMN credential.updated_at IS 'When any of its events (uses included) last happened.';
COMMENT ON COLUMN credential.last_validated_at IS 'When it was last validated.';
COMMENT ON COLUMN credential.validation_status IS 'Outcome of the last validation: VALID, EXPIRED or INVALID.';
COMMENT ON COLUMN credential.user_id IS 'Owner user id.';
COMMENT ON COLUMN credential.data_fields IS 'Names of the secret fields its data sets (never their values).';
COMMENT ON COLUMN credential.revision IS 'Aggregate version (number of events, uses included); the ETag for If-Match.';

CREATE TABLE credential_share (
    id text PRIMARY KEY,
    credential_id text NOT NULL REFERENCES credential (id) ON DELETE CASCADE,
    user_id text NOT NULL,
    permission credential_permission NOT NULL,
    expires_at timestamptz,
    usage_limit integer,
    used_count integer NOT NULL DEFAULT 0,
    shared_by text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (credential_id, user_id)
);
CREATE INDEX idx_credential_share_user ON credential_share (user_id, credential_id);

COMMENT ON TABLE credential_share IS 'Who else may use a credential, how, until when and how often; one row per user and credential.';
COMMENT ON COLUMN credential_share.id IS 'Share id (UUIDv7 text).';
COMMENT ON COLUMN credential_share.credential_id IS 'The shared credential.';
COMMENT ON COLUMN credential_share.user_id IS 'The user it is shared with.';
COMMENT ON COLUMN credential_share.permission IS 'USE or EDIT.';
COMMENT ON COLUMN credential_share.expires_at IS 'When the share stops allowing anything, if ever.';
COMMENT ON COLUMN credential_share.usage_limit IS 'How many uses the share allows in all (NULL: no limit).';
COMMENT ON COLUMN credential_share.used_count IS 'How many uses went through the share so far.';
COMMENT ON COLUMN credential_share.shared_by IS 'Who set the current terms (the owner).';
COMMENT ON COLUMN credential_share.created_at IS 'When the credential was first shared with the user.';
COMMENT ON COLUMN credential_share.updated_at IS 'When the terms were last set.';

CREATE TABLE credential_usage_log (
    id text PRIMARY KEY,
    credential_id text NOT NULL,
    owner_id text NOT NULL,
    user_id text NOT NULL,
    share_id text,
    execution_id text,
    node_id text,
    used_at timestamptz NOT NULL
);
CREATE INDEX idx_credential_usage_log_credential ON credential_usage_log (credential_id, id DESC);
CREATE INDEX idx_credential_usage_log_user ON credential_usage_log (user_id, id DESC);
CREATE INDEX idx_credential_usage_log_used_at ON credential_usage_log (used_at);

COMMENT ON TABLE credential_usage_log IS 'Every use of a credential by an execution (kept one year); rows outlive a deleted credential.';
COMMENT ON COLUMN credential_usage_log.id IS 'Use id (UUIDv7 text derived from the event: sorts by time).';
COMMENT ON COLUMN credential_usage_log.credential_id IS 'The credential used.';
COMMENT ON COLUMN credential_usage_log.owner_id IS 'The credential''s owner when it was used.';
COMMENT ON COLUMN credential_usage_log.user_id IS 'Whose execution used it.';
COMMENT ON COLUMN credential_usage_log.share_id IS 'The share the use went through; NULL for the owner''s own use.';
COMMENT ON COLUMN credential_usage_log.execution_id IS 'The execution that used it.';
COMMENT ON COLUMN credential_usage_log.node_id IS 'The node of that execution''s workflow that used it.';
COMMENT ON COLUMN credential_usage_log.used_at IS 'When the data was decrypted for the use.';

CREATE TABLE credential_validation (
    id text PRIMARY KEY,
    credential_id text NOT NULL REFERENCES credential (id) ON DELETE CASCADE,
    status text NOT NULL,
    checks jsonb NOT NULL,
    data_version integer NOT NULL,
    validated_by text NOT NULL,
    validated_at timestamptz NOT NULL
);
CREATE INDEX idx_credential_validation_credential ON credential_validation (credential_id, id DESC);

COMMENT ON TABLE credential_validation IS 'Each validation of a credential (offline checks: fields, expiry, certificate and key parsing).';
COMMENT ON COLUMN credential_validation.id IS 'Validation id (UUIDv7 text derived from the event).';
COMMENT ON COLUMN credential_validation.credential_id IS 'The credential validated.';
COMMENT ON COLUMN credential_validation.status IS 'VALID, EXPIRED or INVALID.';
COMMENT ON COLUMN credential_validation.checks IS 'JSON array of {name, ok, message}: what was checked and found (never a value).';
COMMENT ON COLUMN credential_validation.data_version IS 'Which version of the data was checked (1 = as created, +1 per replacement).';
COMMENT ON COLUMN credential_validation.validated_by IS 'Who asked for the validation.';
COMMENT ON COLUMN credential_validation.validated_at IS 'When it was validated.';

CREATE TABLE credential_template (
    id text PRIMARY KEY,
    name text NOT NULL,
    description text NOT NULL,
    type credential_type NOT NULL,
    provider text,
    data_schema jsonb NOT NULL,
    configuration_schema jsonb NOT NULL,
    configuration jsonb NOT NULL DEFAULT '{}',
    instructions text NOT NULL,
    documentation_url text,
    icon text,
    is_built_in boolean NOT NULL DEFAULT true,
    user_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_credential_template_type ON credential_template (type, id);

COMMENT ON TABLE credential_template IS 'Setup guidance per credential type and common service; built-in rows are written at start-up from the code.';
COMMENT ON COLUMN credential_template.id IS 'Template id: a stable slug (api_key, stripe).';
COMMENT ON COLUMN credential_template.name IS 'Display name.';
COMMENT ON COLUMN credential_template.description IS 'What the credential is for.';
COMMENT ON COLUMN credential_template.type IS 'The credential type it creates.';
COMMENT ON COLUMN credential_template.provider IS 'The service, for provider templates; NULL for a generic one.';
COMMENT ON COLUMN credential_template.data_schema IS 'JSON Schema of the secret fields (the type''s).';
COMMENT ON COLUMN credential_template.configuration_schema IS 'JSON Schema of the configuration (the type''s).';
COMMENT ON COLUMN credential_template.configuration IS 'Configuration a credential made from it starts with.';
COMMENT ON COLUMN credential_template.instructions IS 'How to obtain the secret and fill the fields.';
COMMENT ON COLUMN credential_template.documentation_url IS 'The provider''s documentation, if any.';
COMMENT ON COLUMN credential_template.icon IS 'Icon name.';
COMMENT ON COLUMN credential_template.is_built_in IS 'Shipped with A2N (every row, for now).';
COMMENT ON COLUMN credential_template.user_id IS 'Who made it, for templates users make; NULL for built-in ones.';
COMMENT ON COLUMN credential_template.created_at IS 'When the row was first written.';
COMMENT ON COLUMN credential_template.updated_at IS 'When the row last changed.';

CREATE FUNCTION credentials_shared_with_current_user()
    RETURNS SETOF text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT credential_id FROM public.credential_share WHERE user_id = public.current_user_id()
    $$;
REVOKE EXECUTE ON FUNCTION credentials_shared_with_current_user() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION credentials_shared_with_current_user() TO a2n_app;
COMMENT ON FUNCTION credentials_shared_with_current_user() IS 'Ids of the credentials shared with the current user (for RLS policies).';

-- The API's role reads every column but the sealed data.
GRANT SELECT (
    id, name, description, type, provider, encryption_version, is_active, is_shared, expires_at,
    last_used_at, usage_count, metadata, configuration, validation_rules, tags, notes, created_at,
    updated_at, last_validated_at, validation_status, user_id, data_fields, revision
) ON credential TO a2n_app;
ALTER TABLE credential ENABLE ROW LEVEL SECURITY;
CREATE POLICY user_credential_isolation ON credential FOR ALL TO a2n_app
    USING (user_id = current_user_id() OR id IN (SELECT credentials_shared_with_current_user()));
SELECT a2n_grant_analyst('credential', ARRAY['encrypted_data', 'notes']);

GRANT SELECT ON credential_share TO a2n_app;
ALTER TABLE credential_share ENABLE ROW LEVEL SECURITY;
CREATE POLICY credential_share_visibility ON credential_share FOR ALL TO a2n_app
    USING (
        user_id = current_user_id()
        OR credential_id IN (SELECT c.id FROM credential c WHERE c.user_id = current_user_id())
    );
SELECT a2n_grant_analyst('credential_share');

GRANT SELECT ON credential_usage_log TO a2n_app;
ALTER TABLE credential_usage_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY credential_usage_log_visibility ON credential_usage_log FOR ALL TO a2n_app
    USING (owner_id = current_user_id() OR user_id = current_user_id());
SELECT a2n_grant_analyst('credential_usage_log');

GRANT SELECT ON credential_validation TO a2n_app;
ALTER TABLE credential_validation ENABLE ROW LEVEL SECURITY;
CREATE POLICY credential_validation_follows_credential ON credential_validation FOR ALL TO a2n_app
    USING (EXISTS (SELECT 1 FROM credential c WHERE c.id = credential_validation.credential_id));
SELECT a2n_grant_analyst('credential_validation');

GRANT SELECT ON credential_template TO a2n_app;
ALTER TABLE credential_template ENABLE ROW LEVEL SECURITY;
CREATE POLICY credential_template_visibility ON credential_template FOR ALL TO a2n_app
    USING (is_built_in OR user_id = current_user_id());
SELECT a2n_grant_analyst('credential_template');

-- migrate:down
DROP TABLE credential_template;
DROP TABLE credential_validation;
DROP TABLE credential_usage_log;
DROP TABLE credential_share;
DROP TABLE credential;
DROP FUNCTION credentials_shared_with_current_user();
DROP TYPE credential_permission;
DROP TYPE credential_type;
