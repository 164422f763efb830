"""The Operations context: runtime settings administrators change while the service runs."""
