"""Notifications: raised by events and alerts, delivered per channel with retries."""
