"""The node catalog: the `node_definition` table and the queries on it."""
