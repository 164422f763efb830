-- Identity read models (spec: user, session, refresh_token, account, verification, api_key,
-- security_event), projected from the Identity context, plus two tables the write side owns:
-- personal_data_key (data keys for crypto-shredding; deleting a row erases that user's personal
-- data from every event) and mail_outbox (mail waiting to be sent, readable by an OWNER).

-- migrate:up
CREATE TYPE user_role AS ENUM ('USER', 'ADMIN', 'OWNER');
CREATE TYPE account_status AS ENUM ('ACTIVE', 'SUSPENDED', 'DELETED');

CREATE TABLE "user" (
    id text PRIMARY KEY,
    name text,
    email text,
    email_verified boolean NOT NULL DEFAULT false,
    image text,
    password text,
    role user_role NOT NULL DEFAULT 'USER',
    status account_status NOT NULL DEFAULT 'ACTIVE',
    is_active boolean NOT NULL DEFAULT true,
    last_login_at timestamptz,
    two_factor_enabled boolean NOT NULL DEFAULT false,
    two_factor_secret text,
    workflows_created integer NOT NULL DEFAULT 0,
    workflows_executed integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX idx_user_email ON "user" (lower(email)) WHERE email IS NOT NULL;
CREATE INDEX idx_user_role_status ON "user" (role, status);

CREATE TABLE session (
    id text PRIMARY KEY,
    user_id text NOT NULL,
    ip_address inet,
    user_agent text,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    revoked_reason text,
    last_refreshed_at timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX idx_session_user ON session (user_id, expires_at);

CREATE TABLE refresh_token (
    id text PRIMARY KEY,
    token_hash text NOT NULL UNIQUE,
    user_id text NOT NULL,
    session_id text NOT NULL REFERENCES session (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    is_revoked boolean NOT NULL DEFAULT false,
    revoked_at timestamptz,
    replaced_by text,
    created_at timestamptz NOT NULL
);
CREATE INDEX idx_refresh_token_session ON refresh_token (session_id);
CREATE INDEX idx_refresh_token_user ON refresh_token (user_id);

CREATE TABLE account (
    id text PRIMARY KEY,
    user_id text NOT NULL,
    provider_id text NOT NULL,
    account_id text NOT NULL,
    scope text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (provider_id, account_id)
);
CREATE INDEX idx_account_user ON account (user_id);

CREATE TABLE verification (
    id text PRIMARY KEY,
    identifier text NOT NULL,
    purpose text NOT NULL,
    token_hash text NOT NULL,
    expires_at timestamptz NOT NULL,
    consumed_at timestamptz,
    created_at timestamptz NOT NULL
);
CREATE INDEX idx_verification_identifier ON verification (identifier, purpose);

CREATE TABLE api_key (
    id text PRIMARY KEY,
    user_id text NOT NULL,
    name text NOT NULL,
    prefix text NOT NULL,
    key_hash text NOT NULL,
    scopes jsonb NOT NULL DEFAULT '[]',
    allowed_ips jsonb NOT NULL DEFAULT '[]',
    expires_at timestamptz,
    last_used_at timestamptz,
    is_active boolean NOT NULL DEFAULT true,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX idx_api_key_user ON api_key (user_id) WHERE is_active;

CREATE TABLE security_event (
    id text PRIMARY KEY,
    event_type text NOT NULL,
    severity text NOT NULL DEFAULT 'MEDIUM',
    description text NOT NULL,
    ip_address inet,
    user_agent text,
    user_id text,
    resource_type text,
    resource_id text,
    metadata jsonb,
    is_resolved boolean NOT NULL DEFAULT false,
    resolved_at timestamptz,
    resolved_by text,
    created_at timestamptz NOT NULL
);
CREATE INDEX idx_security_event_type ON security_event (event_type);
CREATE INDEX idx_security_event_severity ON security_event (severity);
CREATE INDEX idx_security_event_unresolved ON security_event (is_resolved) WHERE is_resolved = false;
CREATE INDEX idx_security_event_user ON security_event (user_id, created_at);

CREATE TABLE personal_data_key (
    user_id text PRIMARY KEY,
    wrapped_key bytea NOT NULL,
    key_version integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE mail_outbox (
    id text PRIMARY KEY,
    user_id text,
    to_address text NOT NULL,
    subject text NOT NULL,
    body text NOT NULL,
    purpose text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz
);
CREATE INDEX idx_mail_outbox_unsent ON mail_outbox (created_at) WHERE sent_at IS NULL;

COMMENT ON TABLE "user" IS 'Accounts: who may sign in, with which role and status. Personal fields are NULL/anonymous once erased.';
COMMENT ON COLUMN "user".id IS 'User id (UUIDv7).';
COMMENT ON COLUMN "user".name IS 'Display name; NULL after erasure.';
COMMENT ON COLUMN "user".email IS 'Sign-in address; NULL after erasure.';
COMMENT ON COLUMN "user".email_verified IS 'Whether the address was confirmed with a verification token.';
COMMENT ON COLUMN "user".image IS 'Avatar URL.';
COMMENT ON COLUMN "user".password IS 'argon2id hash of the password (never the password); NULL for OAuth-only accounts.';
COMMENT ON COLUMN "user".role IS 'USER, ADMIN or OWNER.';
COMMENT ON COLUMN "user".status IS 'ACTIVE, SUSPENDED or DELETED.';
COMMENT ON COLUMN "user".is_active IS 'status = ACTIVE, for simple filters.';
COMMENT ON COLUMN "user".last_login_at IS 'Time of the last successful sign-in.';
COMMENT ON COLUMN "user".two_factor_enabled IS 'Whether sign-in asks for a TOTP code.';
COMMENT ON COLUMN "user".two_factor_secret IS 'TOTP secret, sealed with the user''s data key (ciphertext).';
COMMENT ON COLUMN "user".workflows_created IS 'Workflows this user created.';
COMMENT ON COLUMN "user".workflows_executed IS 'Executions this user started.';
COMMENT ON COLUMN "user".created_at IS 'Registration time.';
COMMENT ON COLUMN "user".updated_at IS 'Time of the last change.';

COMMENT ON TABLE session IS 'Sign-ins: one row per refresh-token family.';
COMMENT ON COLUMN session.id IS 'Session id.';
COMMENT ON COLUMN session.user_id IS 'Signed-in user.';
COMMENT ON COLUMN session.ip_address IS 'Client address at sign-in.';
COMMENT ON COLUMN session.user_agent IS 'Client user agent at sign-in.';
COMMENT ON COLUMN session.expires_at IS 'When the session ends unless refreshed.';
COMMENT ON COLUMN session.revoked_at IS 'When it was ended (logout, revocation, token reuse).';
COMMENT ON COLUMN session.revoked_reason IS 'Why it was ended.';
COMMENT ON COLUMN session.last_refreshed_at IS 'Time of the last token refresh.';
COMMENT ON COLUMN session.created_at IS 'Sign-in time.';
COMMENT ON COLUMN session.updated_at IS 'Time of the last change.';

COMMENT ON TABLE refresh_token IS 'Refresh tokens of each session, by hash; a used one is replaced by the next.';
COMMENT ON COLUMN refresh_token.id IS 'Token id.';
COMMENT ON COLUMN refresh_token.token_hash IS 'SHA-256 of the token (the token itself is never stored).';
COMMENT ON COLUMN refresh_token.user_id IS 'Owner.';
COMMENT ON COLUMN refresh_token.session_id IS 'Session (token family).';
COMMENT ON COLUMN refresh_token.expires_at IS 'Expiry.';
COMMENT ON COLUMN refresh_token.is_revoked IS 'Used, or its session ended.';
COMMENT ON COLUMN refresh_token.revoked_at IS 'When it stopped being valid.';
COMMENT ON COLUMN refresh_token.replaced_by IS 'Token issued when this one was redeemed.';
COMMENT ON COLUMN refresh_token.created_at IS 'Issue time.';

COMMENT ON TABLE account IS 'External sign-in providers (OAuth/OIDC) linked to a user.';
COMMENT ON COLUMN account.id IS 'Link id.';
COMMENT ON COLUMN account.user_id IS 'Linked user.';
COMMENT ON COLUMN account.provider_id IS 'Provider name from A2N_OAUTH_PROVIDERS.';
COMMENT ON COLUMN account.account_id IS 'Subject at the provider.';
COMMENT ON COLUMN account.scope IS 'Scopes granted.';
COMMENT ON COLUMN account.created_at IS 'Link time.';
COMMENT ON COLUMN account.updated_at IS 'Time of the last change.';

COMMENT ON TABLE verification IS 'Single-use tokens: email verification and password reset (hashes only).';
COMMENT ON COLUMN verification.id IS 'Verification id.';
COMMENT ON COLUMN verification.identifier IS 'User the token was issued for.';
COMMENT ON COLUMN verification.purpose IS 'EMAIL_VERIFICATION or PASSWORD_RESET.';
COMMENT ON COLUMN verification.token_hash IS 'SHA-256 of the token.';
COMMENT ON COLUMN verification.expires_at IS 'Expiry.';
COMMENT ON COLUMN verification.consumed_at IS 'When it was used (single use).';
COMMENT ON COLUMN verification.created_at IS 'Issue time.';

COMMENT ON TABLE api_key IS 'API keys for programs: hashed secret, scopes, address allow-list, expiry.';
COMMENT ON COLUMN api_key.id IS 'Key id (also the public part of the key).';
COMMENT ON COLUMN api_key.user_id IS 'Owner; the key acts as this user within its scopes.';
COMMENT ON COLUMN api_key.name IS 'Owner''s label.';
COMMENT ON COLUMN api_key.prefix IS 'First characters of the key, to recognise it.';
COMMENT ON COLUMN api_key.key_hash IS 'SHA-256 of the secret part.';
COMMENT ON COLUMN api_key.scopes IS 'Granted scopes, e.g. ["workflows:read"].';
COMMENT ON COLUMN api_key.allowed_ips IS 'CIDR allow-list; empty admits any address.';
COMMENT ON COLUMN api_key.expires_at IS 'Expiry; NULL never expires.';
COMMENT ON COLUMN api_key.last_used_at IS 'Last use (recorded at most once a minute).';
COMMENT ON COLUMN api_key.is_active IS 'False once revoked.';
COMMENT ON COLUMN api_key.revoked_at IS 'Revocation time.';
COMMENT ON COLUMN api_key.created_at IS 'Creation time.';
COMMENT ON COLUMN api_key.updated_at IS 'Time of the last change.';

COMMENT ON TABLE security_event IS 'Security-relevant happenings for administrators: failed sign-ins, token reuse...';
COMMENT ON COLUMN security_event.id IS 'Event id.';
COMMENT ON COLUMN security_event.event_type IS 'FAILED_LOGIN, REFRESH_TOKEN_REUSE, ...';
COMMENT ON COLUMN security_event.severity IS 'LOW, MEDIUM, HIGH or CRITICAL.';
COMMENT ON COLUMN security_event.description IS 'What happened, for people.';
COMMENT ON COLUMN security_event.ip_address IS 'Client address of the request.';
COMMENT ON COLUMN security_event.user_agent IS 'Client user agent of the request.';
COMMENT ON COLUMN security_event.user_id IS 'Account concerned, when known.';
COMMENT ON COLUMN security_event.resource_type IS 'Kind of resource concerned (USER, SESSION, ...).';
COMMENT ON COLUMN security_event.resource_id IS 'Resource concerned.';
COMMENT ON COLUMN security_event.metadata IS 'Further facts.';
COMMENT ON COLUMN security_event.is_resolved IS 'Whether an administrator dealt with it.';
COMMENT ON COLUMN security_event.resolved_at IS 'Resolution time.';
COMMENT ON COLUMN security_event.resolved_by IS 'Administrator who resolved it.';
COMMENT ON COLUMN security_event.created_at IS 'Time it happened.';

COMMENT ON TABLE personal_data_key IS 'Per-user data keys (wrapped by the master key ring) sealing personal data in events; deleting a row erases that data.';
COMMENT ON COLUMN personal_data_key.user_id IS 'User whose data the key seals.';
COMMENT ON COLUMN personal_data_key.wrapped_key IS 'AES-256 data key encrypted with the master key.';
COMMENT ON COLUMN personal_data_key.key_version IS 'Master key version that wrapped it.';
COMMENT ON COLUMN personal_data_key.created_at IS 'Creation time.';

COMMENT ON TABLE mail_outbox IS 'Mail to send (verification, password reset); read by an OWNER when no SMTP server is configured.';
COMMENT ON COLUMN mail_outbox.id IS 'Message id.';
COMMENT ON COLUMN mail_outbox.user_id IS 'Recipient account.';
COMMENT ON COLUMN mail_outbox.to_address IS 'Recipient address.';
COMMENT ON COLUMN mail_outbox.subject IS 'Subject line.';
COMMENT ON COLUMN mail_outbox.body IS 'Plain-text body (holds the single-use link).';
COMMENT ON COLUMN mail_outbox.purpose IS 'EMAIL_VERIFICATION or PASSWORD_RESET.';
COMMENT ON COLUMN mail_outbox.created_at IS 'Queue time.';
COMMENT ON COLUMN mail_outbox.sent_at IS 'Delivery time; NULL while waiting.';

-- migrate:down
DROP TABLE mail_outbox;
DROP TABLE personal_data_key;
DROP TABLE security_event;
DROP TABLE api_key;
DROP TABLE verification;
DROP TABLE account;
DROP TABLE refresh_token;
DROP TABLE session;
DROP TABLE "user";
DROP TYPE account_status;
DROP TYPE user_role;
