-- Account lifecycle: invitations join the single-use tokens in `verification` and their mail in
-- `mail_outbox` (purpose INVITE), and a resolved security event keeps the administrator's note.
-- Analysts do not get the note: it is free text and may name people.

-- migrate:up
ALTER TABLE security_event ADD COLUMN resolution_note text;
COMMENT ON COLUMN security_event.resolution_note IS 'What the administrator who resolved it noted; NULL without a note.';
COMMENT ON COLUMN verification.identifier IS 'User the token was issued for (for INVITE, the id the invited account will get).';
COMMENT ON COLUMN verification.purpose IS 'EMAIL_VERIFICATION, PASSWORD_RESET, TWO_FACTOR_LOGIN or INVITE.';
COMMENT ON COLUMN mail_outbox.purpose IS 'EMAIL_VERIFICATION, PASSWORD_RESET or INVITE.';
COMMENT ON COLUMN mail_outbox.user_id IS 'Recipient account (for INVITE, the id the invited account will get); its mail is deleted when it is erased.';

-- migrate:down
COMMENT ON COLUMN mail_outbox.user_id IS 'Recipient account.';
COMMENT ON COLUMN mail_outbox.purpose IS 'EMAIL_VERIFICATION or PASSWORD_RESET.';
COMMENT ON COLUMN verification.purpose IS 'EMAIL_VERIFICATION or PASSWORD_RESET.';
COMMENT ON COLUMN verification.identifier IS 'User the token was issued for.';
ALTER TABLE security_event DROP COLUMN resolution_note;
