"""Credentials use cases: manage sealed secrets, share them, use them in executions."""
