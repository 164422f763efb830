"""A2N's export document and credential references by name, without I/O."""

from __future__ import annotations

import contextlib
import random
from typing import Any

import pytest

from domain.errors import ValidationFailed
from domain.workflows.credentials import SlotKind, credential_slots, with_credentials
from domain.workflows.definition import normalize_definition
from domain.workflows.limits import DefinitionLimits
from domain.workflows.transfer import (
    FORMAT,
    FORMAT_VERSION,
    SourceFormat,
    detect_format,
    export_document,
    read_export,
)
from domain.workflows.workflow import Workflow

KEY = "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f61"
LOGIN = "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f62"
LIMITS = DefinitionLimits()


def definition() -> dict[str, Any]:
    return normalize_definition(
        {
            "nodes": [
                {
                    "id": "hook",
                    "type": "webhook_trigger",
                    "config": {"path": "in", "auth": {"mode": "basic", "credentialId": LOGIN}},
                },
                {
                    "id": "call",
                    "type": "http_request",
                    "config": {"url": "https://example.com", "credentials": KEY},
                    "credentials": [KEY, LOGIN],
                },
            ],
            "connections": [{"source": "hook", "target": "call"}],
        }
    )


def test_every_credential_reference_is_found() -> None:
    slots = credential_slots(definition())
    assert [(s.node_id, s.kind, s.reference, s.pointer) for s in slots] == [
        ("hook", SlotKind.WEBHOOK_AUTH, LOGIN, "/nodes/0/config/auth/credentialId"),
        ("call", SlotKind.NODE, KEY, "/nodes/1/credentials"),
        ("call", SlotKind.NODE, LOGIN, "/nodes/1/credentials"),
        ("call", SlotKind.HTTP, KEY, "/nodes/1/config/credentials"),
    ]


def test_ids_become_names_and_names_become_ids_again() -> None:
    original = definition()
    named, unmatched = with_credentials(
        original, {KEY: "Stripe", LOGIN: "Partner login"}, keep_unmatched=True
    )
    assert unmatched == []
    assert named["nodes"][1]["config"]["credentials"] == "Stripe"
    assert named["nodes"][0]["config"]["auth"]["credentialId"] == "Partner login"
    restored, unmatched = with_credentials(
        named, {"Stripe": KEY, "Partner login": LOGIN}, keep_unmatched=False
    )
    assert (restored, unmatched) == (original, [])
    assert original == definition()  # the input is not changed


def test_unmatched_references_are_removed_failing_closed() -> None:
    cleaned, unmatched = with_credentials(definition(), {KEY: KEY}, keep_unmatched=False)
    assert [s.reference for s in unmatched] == [LOGIN, LOGIN]
    hook, call = cleaned["nodes"]
    assert hook["config"]["auth"] == {"mode": "none"}
    assert hook["disabled"] is True
    assert call["credentials"] == [KEY]
    assert call["config"]["credentials"] == KEY


def test_unmatched_references_can_be_kept() -> None:
    kept, unmatched = with_credentials(definition(), {}, keep_unmatched=True)
    assert kept == definition()
    assert len(unmatched) == 4


def test_an_unmatched_http_credential_is_dropped_from_the_config() -> None:
    cleaned, _ = with_credentials(definition(), {}, keep_unmatched=False)
    assert "credentials" not in cleaned["nodes"][1]["config"]
    assert cleaned["nodes"][1]["credentials"] == []


def test_export_document_and_reading_it_back() -> None:
    document = export_document(
        name="Orders",
        description="Takes orders",
        tags=["sales"],
        category="ops",
        definition=definition(),
    )
    assert document == {
        "format": FORMAT,
        "formatVersion": FORMAT_VERSION,
        "name": "Orders",
        "description": "Takes orders",
        "tags": ["sales"],
        "category": "ops",
        "definition": definition(),
    }
    draft = read_export(document, LIMITS)
    assert (draft.name, draft.description, draft.tags, draft.category) == (
        "Orders",
        "Takes orders",
        ["sales"],
        "ops",
    )
    assert draft.definition == definition()
    assert draft.origins["call"].pointer == "/definition/nodes/1"


@pytest.mark.parametrize(
    ("change", "pointer", "message"),
    [
        ({"format": "n8n"}, "/format", "must be 'a2n.workflow'"),
        ({"formatVersion": FORMAT_VERSION + 1}, "/formatVersion", "from a newer A2N"),
        ({"formatVersion": "1"}, "/formatVersion", "positive integer"),
        ({"ownerId": "u1"}, "/ownerId", "is not a field of an A2N export"),
        ({"definition": []}, "/definition", "must be an object"),
        ({"definition": {"nodes": {}}}, "/definition/nodes", "must be an array"),
        ({"name": None, "description": "a\x00"}, "/description", "NUL"),
    ],
)
def test_export_documents_with_errors_are_refused(
    change: dict[str, Any], pointer: str, message: str
) -> None:
    document = {
        **export_document(name="x", description=None, tags=[], category=None, definition={}),
        **change,
    }
    with pytest.raises(ValidationFailed) as refused:
        read_export(document, LIMITS)
    found = {v.pointer: v.message for v in refused.value.violations}
    assert message in found[pointer]


def test_a_document_without_a_name_is_refused() -> None:
    with pytest.raises(ValidationFailed) as refused:
        read_export({"format": FORMAT, "formatVersion": 1}, LIMITS)
    assert [v.pointer for v in refused.value.violations] == ["/name"]


@pytest.mark.parametrize(
    ("document", "found"),
    [
        ({"format": FORMAT, "formatVersion": 1}, SourceFormat.A2N),
        ({"format": "other"}, SourceFormat.A2N),
        ({"nodes": [], "connections": {}}, SourceFormat.N8N),
        ({"nodes": []}, SourceFormat.N8N),
        ({"nodes": [], "connections": []}, None),
        ({"name": "x"}, None),
    ],
)
def test_format_detection(document: dict[str, Any], found: SourceFormat | None) -> None:
    assert detect_format(document) is found


ODD_VALUES: list[Any] = [None, True, 3, "x", [], [None], ["a", 1], {}, {"a": []}, [{"id": []}]]


def test_odd_export_documents_are_refused_with_pointers_never_a_crash() -> None:
    chance = random.Random("a2n")
    for _ in range(300):
        node = {
            key: chance.choice([*ODD_VALUES, KEY])
            for key in chance.sample(["id", "type", "config", "credentials", "name"], 3)
        }
        document = {
            **export_document(name="x", description=None, tags=[], category=None, definition={}),
            "definition": {
                "nodes": [
                    node,
                    {
                        "id": "n",
                        "type": "http_request",
                        "config": {"credentials": chance.choice(ODD_VALUES)},
                    },
                ]
            },
            chance.choice(["tags", "category", "description", "name"]): chance.choice(ODD_VALUES),
        }
        with contextlib.suppress(ValidationFailed):
            draft = read_export(document, LIMITS)
            draft.definition, _ = with_credentials(draft.definition, {}, keep_unmatched=False)
            Workflow.create(
                workflow_id=KEY,
                owner_id="u",
                name=draft.name,
                version_id=LOGIN,
                definition=draft.definition,
                description=draft.description,
                tags=draft.tags,
                category=draft.category,
            )
