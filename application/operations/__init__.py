"""The Operations context: runtime settings (events) and the service's own log."""
