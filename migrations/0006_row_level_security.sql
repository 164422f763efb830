-- Row-level security on the read models (spec: "Row Level Security for user data isolation").
--
-- Projectors and migrations write as the connecting role, which owns the tables and so bypasses
-- RLS. API queries run as `a2n_app`: each read transaction does `SET LOCAL ROLE a2n_app` and sets
-- `app.current_user_id` / `app.current_user_role` (application/row_security.py), so even a query
-- without a WHERE clause sees only the caller's rows (and rows shared with everyone). `a2n_analyst`
-- reads every row of the analytical tables, minus secret and personal columns; give analysts a
-- login role that is a member of it (`CREATE ROLE alice LOGIN IN ROLE a2n_analyst`).
--
-- Roles belong to the whole PostgreSQL cluster, so they are created only when missing (several
-- A2N databases, or test runs, share them) and are not dropped on the way down. The migrating
-- role needs CREATEROLE, or an administrator creates both roles first and grants `a2n_app` to it.
-- Each later migration that adds a user-owned table grants and protects it the same way.

-- migrate:up
DO $$
BEGIN
    CREATE ROLE a2n_app NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- created by another database or a concurrent migration
END $$;

DO $$
BEGIN
    CREATE ROLE a2n_analyst NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END $$;

DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'a2n_app', 'MEMBER') THEN
        EXECUTE format('GRANT a2n_app TO %I', current_user);
    END IF;
END $$;

GRANT USAGE ON SCHEMA public TO a2n_app, a2n_analyst;

CREATE FUNCTION current_user_id() RETURNS text
    LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.current_user_id', true), '') $$;
COMMENT ON FUNCTION current_user_id() IS 'The user the current transaction acts for (app.current_user_id), or NULL.';

CREATE FUNCTION current_user_role() RETURNS text
    LANGUAGE sql STABLE
    AS $$ SELECT coalesce(nullif(current_setting('app.current_user_role', true), ''), 'USER') $$;
COMMENT ON FUNCTION current_user_role() IS 'USER, ADMIN or OWNER: the administrative rights the current transaction acts with.';

CREATE FUNCTION a2n_grant_analyst(tbl regclass, hidden text[] DEFAULT '{}') RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
    columns text;
BEGIN
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO columns
    FROM pg_attribute
    WHERE attrelid = tbl AND attnum > 0 AND NOT attisdropped AND attname <> ALL (hidden);
    EXECUTE format('GRANT SELECT (%s) ON %s TO a2n_analyst', columns, tbl);
    EXECUTE format('CREATE POLICY analyst_reads_all ON %s FOR SELECT TO a2n_analyst USING (true)', tbl);
END $$;
COMMENT ON FUNCTION a2n_grant_analyst(regclass, text[]) IS 'Let a2n_analyst read every row of a table, and every column but the hidden ones.';

-- Accounts: your own; admins see everyone (GET /users).
GRANT SELECT ON "user" TO a2n_app;
ALTER TABLE "user" ENABLE ROW LEVEL SECURITY;
CREATE POLICY user_isolation ON "user" FOR ALL TO a2n_app
    USING (id = current_user_id() OR current_user_role() IN ('ADMIN', 'OWNER'));
SELECT a2n_grant_analyst('"user"', ARRAY['password', 'two_factor_secret', 'name', 'email', 'image']);

-- Sign-in state: your own only, admins included.
GRANT SELECT ON session, refresh_token, account, api_key TO a2n_app;
ALTER TABLE session ENABLE ROW LEVEL SECURITY;
CREATE POLICY user_session_isolation ON session FOR ALL TO a2n_app
    USING (user_id = current_user_id());
SELECT a2n_grant_analyst('session', ARRAY['ip_address', 'user_agent']);
ALTER TABLE refresh_token ENABLE ROW LEVEL SECURITY;
CREATE POLICY user_refresh_token_isolation ON refresh_token FOR ALL TO a2n_app
    USING (user_id = current_user_id());
SELECT a2n_grant_analyst('refresh_token', ARRAY['token_hash']);
ALTER TABLE account ENABLE ROW LEVEL SECURITY;
CREATE POLICY user_account_isolation ON account FOR ALL TO a2n_app
    USING (user_id = current_user_id());
SELECT a2n_grant_analyst('account', ARRAY['account_id']);
ALTER TABLE api_key ENABLE ROW LEVEL SECURITY;
CREATE POLICY user_api_key_isolation ON api_key FOR ALL TO a2n_app
    USING (user_id = current_user_id());
SELECT a2n_grant_analyst('api_key', ARRAY['key_hash', 'allowed_ips']);

-- Security events: about you, or all of them for admins.
GRANT SELECT ON security_event TO a2n_app;
ALTER TABLE security_event ENABLE ROW LEVEL SECURITY;
CREATE POLICY user_security_event_isolation ON security_event FOR ALL TO a2n_app
    USING (user_id = current_user_id() OR current_user_role() IN ('ADMIN', 'OWNER'));
SELECT a2n_grant_analyst('security_event', ARRAY['ip_address', 'user_agent', 'metadata']);

-- Mail carries sign-in links: OWNER only; analysts never.
GRANT SELECT ON mail_outbox TO a2n_app;
ALTER TABLE mail_outbox ENABLE ROW LEVEL SECURITY;
CREATE POLICY owner_reads_mail_outbox ON mail_outbox FOR ALL TO a2n_app
    USING (current_user_role() = 'OWNER');

-- Blocked rate-limit windows: admins (identifiers name users and addresses).
GRANT SELECT ON api_rate_limit TO a2n_app;
ALTER TABLE api_rate_limit ENABLE ROW LEVEL SECURITY;
CREATE POLICY admin_reads_api_rate_limit ON api_rate_limit FOR ALL TO a2n_app
    USING (current_user_role() IN ('ADMIN', 'OWNER'));
SELECT a2n_grant_analyst('api_rate_limit', ARRAY['identifier']);

-- Workflows: your own, and public ones (templates). Versions follow their workflow.
GRANT SELECT ON workflow, workflow_version TO a2n_app;
ALTER TABLE workflow ENABLE ROW LEVEL SECURITY;
CREATE POLICY user_workflow_isolation ON workflow FOR ALL TO a2n_app
    USING (user_id = current_user_id() OR visibility = 'PUBLIC');
SELECT a2n_grant_analyst('workflow');
ALTER TABLE workflow_version ENABLE ROW LEVEL SECURITY;
CREATE POLICY workflow_version_follows_workflow ON workflow_version FOR ALL TO a2n_app
    USING (EXISTS (SELECT 1 FROM workflow w WHERE w.id = workflow_version.workflow_id));
SELECT a2n_grant_analyst('workflow_version');

-- Audit entries: what you did, what was done to your workflows; admins see all.
GRANT SELECT ON audit_log TO a2n_app;
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY user_audit_log_isolation ON audit_log FOR ALL TO a2n_app
    USING (
        user_id = current_user_id()
        OR current_user_role() IN ('ADMIN', 'OWNER')
        OR EXISTS (
            SELECT 1 FROM workflow w
            WHERE w.id = audit_log.resource_id AND w.user_id = current_user_id()
        )
    );
SELECT a2n_grant_analyst('audit_log', ARRAY['ip_address', 'user_agent', 'old_values', 'new_values']);

-- migrate:down
DROP POLICY user_audit_log_isolation ON audit_log;
DROP POLICY analyst_reads_all ON audit_log;
ALTER TABLE audit_log DISABLE ROW LEVEL SECURITY;
DROP POLICY workflow_version_follows_workflow ON workflow_version;
DROP POLICY analyst_reads_all ON workflow_version;
ALTER TABLE workflow_version DISABLE ROW LEVEL SECURITY;
DROP POLICY user_workflow_isolation ON workflow;
DROP POLICY analyst_reads_all ON workflow;
ALTER TABLE workflow DISABLE ROW LEVEL SECURITY;
DROP POLICY admin_reads_api_rate_limit ON api_rate_limit;
DROP POLICY analyst_reads_all ON api_rate_limit;
ALTER TABLE api_rate_limit DISABLE ROW LEVEL SECURITY;
DROP POLICY owner_reads_mail_outbox ON mail_outbox;
ALTER TABLE mail_outbox DISABLE ROW LEVEL SECURITY;
DROP POLICY user_security_event_isolation ON security_event;
DROP POLICY analyst_reads_all ON security_event;
ALTER TABLE security_event DISABLE ROW LEVEL SECURITY;
DROP POLICY user_api_key_isolation ON api_key;
DROP POLICY analyst_reads_all ON api_key;
ALTER TABLE api_key DISABLE ROW LEVEL SECURITY;
DROP POLICY user_account_isolation ON account;
DROP POLICY analyst_reads_all ON account;
ALTER TABLE account DISABLE ROW LEVEL SECURITY;
DROP POLICY user_refresh_token_isolation ON refresh_token;
DROP POLICY analyst_reads_all ON refresh_token;
ALTER TABLE refresh_token DISABLE ROW LEVEL SECURITY;
DROP POLICY user_session_isolation ON session;
DROP POLICY analyst_reads_all ON session;
ALTER TABLE session DISABLE ROW LEVEL SECURITY;
DROP POLICY user_isolation ON "user";
DROP POLICY analyst_reads_all ON "user";
ALTER TABLE "user" DISABLE ROW LEVEL SECURITY;
REVOKE ALL ON "user", session, refresh_token, account, api_key, security_event, mail_outbox,
    api_rate_limit, workflow, workflow_version, audit_log FROM a2n_app, a2n_analyst;
REVOKE USAGE ON SCHEMA public FROM a2n_app, a2n_analyst;
DROP FUNCTION a2n_grant_analyst(regclass, text[]);
DROP FUNCTION current_user_role();
DROP FUNCTION current_user_id();
