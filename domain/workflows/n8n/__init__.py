"""n8n workflow import: n8n's export format mapped onto A2N's definition (no I/O)."""

from domain.workflows.n8n.document import convert
from domain.workflows.n8n.repair import repair

__all__ = ["convert", "repair"]
