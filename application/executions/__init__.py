"""The executions context: queueing, running and reading runs of workflows."""
