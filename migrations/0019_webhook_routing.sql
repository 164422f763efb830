-- Webhook routing: /webhook/{path} finds the active webhook triggers whose path begins with the
-- request's first segment (always a literal: parameters come later, as in orders/:id), then
-- compares their patterns. The index on the whole path could not serve that lookup.

-- migrate:up
DROP INDEX idx_workflow_trigger_webhook;
CREATE INDEX idx_workflow_trigger_webhook_first ON workflow_trigger (split_part(webhook_path, '/', 1))
    WHERE type = 'WEBHOOK' AND is_active;
COMMENT ON INDEX idx_workflow_trigger_webhook_first IS 'Active webhook triggers by the first segment of their path (webhook routing).';
COMMENT ON COLUMN workflow_trigger.webhook_path IS 'WEBHOOK: path after /webhook/; segments after the first may be :name parameters.';

-- migrate:down
DROP INDEX idx_workflow_trigger_webhook_first;
CREATE INDEX idx_workflow_trigger_webhook ON workflow_trigger (webhook_path)
    WHERE type = 'WEBHOOK' AND is_active;
COMMENT ON COLUMN workflow_trigger.webhook_path IS 'WEBHOOK: path after /webhook/.';
