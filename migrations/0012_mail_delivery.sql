-- Mail delivery through SMTP: the mail sender (`a2n mail send`, or `a2n up` when A2N_SMTP_URL is
-- set) claims due rows of mail_outbox with FOR UPDATE SKIP LOCKED, delivers them, and records each
-- attempt here. A sent row keeps its headers for audit but loses its body (it held a single-use
-- link), so body becomes nullable.

-- migrate:up
ALTER TABLE mail_outbox
    ALTER COLUMN body DROP NOT NULL,
    ADD COLUMN attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN last_error text,
    ADD COLUMN last_attempt_at timestamptz,
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN failed_at timestamptz;
DROP INDEX idx_mail_outbox_unsent;
CREATE INDEX idx_mail_outbox_due ON mail_outbox (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;

COMMENT ON TABLE mail_outbox IS 'Mail to send (verification, password reset): delivered by the mail sender when SMTP is configured, else read by an OWNER. Sent rows stay for audit without their body.';
COMMENT ON COLUMN mail_outbox.body IS 'Plain-text body (holds the single-use link); NULL once sent.';
COMMENT ON COLUMN mail_outbox.sent_at IS 'When the SMTP server accepted it; NULL while waiting.';
COMMENT ON COLUMN mail_outbox.attempts IS 'Delivery attempts made so far.';
COMMENT ON COLUMN mail_outbox.last_error IS 'Why the last attempt failed (SMTP reply or connection error, never credentials); NULL after a success.';
COMMENT ON COLUMN mail_outbox.last_attempt_at IS 'Time of the last delivery attempt.';
COMMENT ON COLUMN mail_outbox.next_attempt_at IS 'Earliest time the sender tries (again); moves back exponentially after each failure.';
COMMENT ON COLUMN mail_outbox.failed_at IS 'When the sender gave up (the server refused the message for good, or too many attempts); the body stays for the OWNER.';

-- migrate:down
DROP INDEX idx_mail_outbox_due;
CREATE INDEX idx_mail_outbox_unsent ON mail_outbox (created_at) WHERE sent_at IS NULL;
UPDATE mail_outbox SET body = '' WHERE body IS NULL;
ALTER TABLE mail_outbox
    ALTER COLUMN body SET NOT NULL,
    DROP COLUMN attempts,
    DROP COLUMN last_error,
    DROP COLUMN last_attempt_at,
    DROP COLUMN next_attempt_at,
    DROP COLUMN failed_at;
COMMENT ON TABLE mail_outbox IS 'Mail to send (verification, password reset); read by an OWNER when no SMTP server is configured.';
COMMENT ON COLUMN mail_outbox.body IS 'Plain-text body (holds the single-use link).';
COMMENT ON COLUMN mail_outbox.sent_at IS 'Delivery time; NULL while waiting.';
