"""The executions context: runs of workflows, node by node."""
