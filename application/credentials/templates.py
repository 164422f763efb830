"""Keep the built-in rows of `credential_template` in step with the code (at start-up, as the
node catalog is): changed templates are rewritten, matching ones left alone, and built-in rows
the code no longer ships are removed (nothing refers to a template)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from application.reference_data import sync_rows, upsert_changed
from domain.credentials.templates import BUILT_IN_TEMPLATES, CredentialTemplate

COLUMNS = (
    "name",
    "description",
    "type",
    "provider",
    "data_schema",
    "configuration_schema",
    "configuration",
    "instructions",
    "documentation_url",
    "icon",
    "is_built_in",
)
_UPSERT = upsert_changed("credential_template", COLUMNS, casts={"type": "credential_type"})
_REMOVE = "DELETE FROM credential_template WHERE is_built_in AND NOT (id = ANY(%s))"


def template_row(template: CredentialTemplate) -> dict[str, Any]:
    return {
        "id": template.id,
        "name": template.name,
        "description": template.description,
        "type": template.type.value,
        "provider": template.provider,
        "data_schema": Jsonb(template.spec.data_schema),
        "configuration_schema": Jsonb(template.spec.configuration_schema),
        "configuration": Jsonb(dict(template.configuration)),
        "instructions": template.instructions,
        "documentation_url": template.documentation_url,
        "icon": template.icon,
        "is_built_in": True,
    }


def sync_credential_templates(
    conn: psycopg.Connection[Any], templates: Iterable[CredentialTemplate] = BUILT_IN_TEMPLATES
) -> int:
    """Make the built-in rows match `templates` in one transaction; how many rows it wrote."""
    rows = [template_row(t) for t in templates]
    written, removed = sync_rows(conn, "credential_template", _UPSERT, rows, _REMOVE)
    return written + removed
