-- Notifications (spec: systemNotification, 90 days' retention): what A2N told whom, and how each
-- channel's delivery went. Rows are written by the notification process manager (execution
-- endings, security events), by alerts (parked projector, failing health check, expiring
-- credential) and by the test route; the notification sender (beside the execution workers)
-- delivers the queued rows of notification_delivery with retries and exponential backoff. Like
-- mail_outbox these are operational rows, not a projection: nothing rebuilds them.

-- migrate:up
CREATE TABLE system_notification (
    id text PRIMARY KEY,
    user_id text,
    sender_id text NOT NULL DEFAULT 'system',
    kind text NOT NULL,
    severity text NOT NULL CHECK (severity IN ('info', 'warning', 'error', 'critical')),
    title text NOT NULL,
    body text NOT NULL,
    resource_type text,
    resource_id text,
    dedupe_key text UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_system_notification_created ON system_notification (created_at, id);
CREATE INDEX idx_system_notification_user ON system_notification (user_id, created_at);
CREATE INDEX idx_system_notification_kind ON system_notification (kind, created_at);

COMMENT ON TABLE system_notification IS 'Notifications A2N raised (execution endings per workflow settings.notifications, security events, parked projectors, failing health checks, expiring credentials, tests); pruned after 90 days.';
COMMENT ON COLUMN system_notification.id IS 'Notification id (UUIDv7).';
COMMENT ON COLUMN system_notification.user_id IS 'The user it is for (who sees it in GET /notifications); NULL: for administrators only.';
COMMENT ON COLUMN system_notification.sender_id IS 'Who caused it: a user id, or system.';
COMMENT ON COLUMN system_notification.kind IS 'What happened: execution.failed, execution.succeeded, security.<event type>, credential.expiring, projector.parked, health_check.failed, test...';
COMMENT ON COLUMN system_notification.severity IS 'info, warning, error or critical.';
COMMENT ON COLUMN system_notification.title IS 'One-line summary (mail subject, chat first line).';
COMMENT ON COLUMN system_notification.body IS 'Plain-text details; never secrets.';
COMMENT ON COLUMN system_notification.resource_type IS 'Kind of object it is about (execution, credential, projector...), if any.';
COMMENT ON COLUMN system_notification.resource_id IS 'Id of the object it is about, if any.';
COMMENT ON COLUMN system_notification.dedupe_key IS 'What makes it unique (the event it came from): raising it twice stores it once.';
COMMENT ON COLUMN system_notification.created_at IS 'When it was raised.';

CREATE TABLE notification_delivery (
    id text PRIMARY KEY,
    notification_id text NOT NULL REFERENCES system_notification (id) ON DELETE CASCADE,
    channel text NOT NULL CHECK (channel IN ('email', 'slack', 'discord', 'webhook')),
    status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    last_error text,
    sent_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (notification_id, channel)
);
CREATE INDEX idx_notification_delivery_due ON notification_delivery (next_attempt_at)
    WHERE status = 'queued';
CREATE INDEX idx_notification_delivery_status ON notification_delivery (status, channel);

COMMENT ON TABLE notification_delivery IS 'One channel''s delivery of a notification: queued until the notification sender delivers it (sent) or gives up (failed); goes with its notification.';
COMMENT ON COLUMN notification_delivery.id IS 'Delivery id (UUIDv7).';
COMMENT ON COLUMN notification_delivery.notification_id IS 'The notification delivered.';
COMMENT ON COLUMN notification_delivery.channel IS 'email, slack, discord or webhook (destinations come from the A2N_NOTIFY_* settings, never stored here).';
COMMENT ON COLUMN notification_delivery.status IS 'queued, sent or failed (for good).';
COMMENT ON COLUMN notification_delivery.attempts IS 'Delivery attempts made so far.';
COMMENT ON COLUMN notification_delivery.next_attempt_at IS 'Earliest time the sender tries (again); moves back exponentially after each failure.';
COMMENT ON COLUMN notification_delivery.last_attempt_at IS 'Time of the last attempt.';
COMMENT ON COLUMN notification_delivery.last_error IS 'Why the last attempt failed (status, connection or egress error; never a URL token or password); NULL after a success.';
COMMENT ON COLUMN notification_delivery.sent_at IS 'When the channel accepted it.';
COMMENT ON COLUMN notification_delivery.created_at IS 'When it was queued.';

GRANT SELECT ON system_notification, notification_delivery TO a2n_app;
ALTER TABLE system_notification ENABLE ROW LEVEL SECURITY;
CREATE POLICY system_notification_visibility ON system_notification FOR ALL TO a2n_app
    USING (user_id = current_user_id() OR current_user_role() IN ('ADMIN', 'OWNER'));
ALTER TABLE notification_delivery ENABLE ROW LEVEL SECURITY;
CREATE POLICY notification_delivery_follows_notification ON notification_delivery FOR ALL TO a2n_app
    USING (EXISTS (SELECT 1 FROM system_notification n
                   WHERE n.id = notification_delivery.notification_id));
SELECT a2n_grant_analyst('system_notification', ARRAY['body']);
SELECT a2n_grant_analyst('notification_delivery');

-- migrate:down
DROP TABLE notification_delivery;
DROP TABLE system_notification;
