"""The transfer use cases on the real event store, with a credential directory that knows some
credentials: references travel by name and come back as the importer's own ids.

`NamedCredentials` is the smallest honest `CredentialDirectory`, so the transfer rules are tested
apart from the credentials context (whose directory, over its read model, is tested in
test_credentials.py and over HTTP in tests/api/test_workflow_transfer.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

from application.caller import Caller
from application.workflows.commands import WorkflowService
from application.workflows.transfer import WorkflowTransfer
from domain.workflows.transfer import IssueKind, SourceFormat

FIXTURES = Path(__file__).parent.parent / "fixtures" / "n8n"
STRIPE = "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f61"
PARTNER = "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f62"
THEIR_STRIPE = "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f71"


class NamedCredentials:
    """Credentials per owner, by id and name."""

    def __init__(self, owned: Mapping[str, Mapping[str, str]]) -> None:
        self.owned = owned  # owner id: {credential id: name}

    def names_of(self, owner_id: str, credential_ids: Collection[str]) -> Mapping[str, str]:
        mine = self.owned.get(owner_id, {})
        return {i: mine[i] for i in credential_ids if i in mine}

    def ids_of(self, owner_id: str, references: Collection[str]) -> Mapping[str, str]:
        by_name = {name: i for i, name in self.owned.get(owner_id, {}).items()}
        return {r: by_name[r] for r in references if r in by_name}


DEFINITION = {
    "nodes": [
        {
            "id": "hook",
            "type": "webhook_trigger",
            "config": {"path": "pay", "auth": {"mode": "basic", "credentialId": PARTNER}},
        },
        {
            "id": "charge",
            "type": "http_request",
            "config": {"url": "https://api.stripe.com/v1/charges", "credentials": STRIPE},
        },
    ],
    "connections": [{"source": "hook", "target": "charge"}],
}


def test_credentials_travel_by_name(
    database_url: str, service_for: Callable[[str], WorkflowService], caller: Caller
) -> None:
    service = service_for(database_url)
    someone_else = Caller(user_id="u-2")
    directory = NamedCredentials(
        {
            caller.user_id: {STRIPE: "Stripe", PARTNER: "Partner login"},
            someone_else.user_id: {THEIR_STRIPE: "Stripe"},
        }
    )
    transfer = WorkflowTransfer(service, directory)
    original = service.create(caller, name="Payments", definition=DEFINITION).aggregate
    row = {
        "name": original.name,
        "description": original.description,
        "tags": original.tags,
        "category": original.category,
        "definition": original.definition,
    }
    document = transfer.export(caller, row)
    assert STRIPE not in json.dumps(document)
    assert document["definition"]["nodes"][1]["config"]["credentials"] == "Stripe"

    mine = transfer.import_document(caller, document, None)
    assert mine.recorded.aggregate.definition == original.definition
    assert mine.issues == []

    theirs = transfer.import_document(someone_else, document, SourceFormat.A2N)
    hook, charge = theirs.recorded.aggregate.definition["nodes"]
    assert charge["config"]["credentials"] == THEIR_STRIPE
    # They have no "Partner login": the webhook keeps no door open.
    assert hook["config"]["auth"] == {"mode": "none"}
    assert hook["disabled"] is True
    assert [(i.kind, i.node_id) for i in theirs.issues] == [(IssueKind.MISSING_CREDENTIAL, "hook")]


def test_n8n_credentials_resolve_to_the_importers(
    database_url: str, service_for: Callable[[str], WorkflowService], caller: Caller
) -> None:
    directory = NamedCredentials({caller.user_id: {STRIPE: "Example API token"}})
    transfer = WorkflowTransfer(service_for(database_url), directory)
    document = json.loads((FIXTURES / "schedule_http_fanout.json").read_text())
    imported = transfer.import_document(caller, document, SourceFormat.N8N)
    nodes = {n["id"]: n for n in imported.recorded.aggregate.definition["nodes"]}
    assert nodes["get-orders"]["config"]["credentials"] == STRIPE
    # A placeholder (its query uses Luxon) keeps the credential on the node for its rewrite.
    assert nodes["get-customers"]["credentials"] == [STRIPE]
    assert IssueKind.MISSING_CREDENTIAL not in {i.kind for i in imported.issues}
    assert imported.recorded.aggregate.is_active is False
