-- user.two_factor_secret is never written: the TOTP secret is kept only sealed with the user's
-- data key in the Identity event store (User.TwoFactorEnrolled), where sign-in reads it, so no read
-- table holds it in any form. The column stays for the spec's shape; this records its meaning.

-- migrate:up
COMMENT ON COLUMN "user".two_factor_secret IS 'Always NULL: the TOTP secret is kept only sealed with the user''s data key in the Identity event store, never in a read table. See two_factor_enabled.';

-- migrate:down
COMMENT ON COLUMN "user".two_factor_secret IS 'TOTP secret, sealed with the user''s data key (ciphertext).';
