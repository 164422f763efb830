-- api_rate_limit: one row per window in which a caller was blocked by the API rate limiter (spec:
-- api_rate_limit). The live counters are in Redis (or memory); this table is the durable record for
-- analysis, written once per blocked window rather than once per refused request.

-- migrate:up
CREATE TABLE api_rate_limit (
    id text PRIMARY KEY,
    identifier text NOT NULL,
    endpoint text NOT NULL,
    request_count integer NOT NULL DEFAULT 0,
    window_start timestamptz NOT NULL,
    window_end timestamptz NOT NULL,
    is_blocked boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_rate_limit_lookup ON api_rate_limit (identifier, endpoint, window_end);

COMMENT ON TABLE api_rate_limit IS 'Windows in which a caller exceeded an API rate limit; one row per blocked window.';
COMMENT ON COLUMN api_rate_limit.id IS 'UUIDv7 of the row.';
COMMENT ON COLUMN api_rate_limit.identifier IS 'Whom the limit counted: user:{user id}, key:{api key id} or ip:{client address}.';
COMMENT ON COLUMN api_rate_limit.endpoint IS 'Route group the limit applies to, e.g. auth, read, write, webhook.';
COMMENT ON COLUMN api_rate_limit.request_count IS 'Requests in the window when the block began: those counted plus the refused one.';
COMMENT ON COLUMN api_rate_limit.window_start IS 'Start of the sliding window that was full (window_end minus the window length).';
COMMENT ON COLUMN api_rate_limit.window_end IS 'When the first request was refused.';
COMMENT ON COLUMN api_rate_limit.is_blocked IS 'Whether requests were refused in the window (always true as written by the API).';
COMMENT ON COLUMN api_rate_limit.created_at IS 'When the row was written.';

-- migrate:down
DROP TABLE api_rate_limit;
