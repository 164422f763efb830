"""Health checks run by the elected scheduler, stored in `health_check`."""
