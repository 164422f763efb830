"""Identity use cases: accounts, sessions, API keys, verification, OAuth."""
