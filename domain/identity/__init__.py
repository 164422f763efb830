"""Identity: users, their sessions and API keys, one-time verifications, security events."""
