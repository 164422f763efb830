"""Size limits of workflow definitions, apart from the rules so settings can name the defaults
without loading the schema machinery."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DefinitionLimits:
    """Size limits that keep a definition (and the events carrying it) reasonable."""

    max_nodes: int = 500
    max_connections: int = 2_000
    max_bytes: int = 1_000_000
    max_id_length: int = 128
    max_depth: int = 32
