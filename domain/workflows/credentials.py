"""Where a definition refers to credentials, and rewriting those references.

A definition names credentials by id in three places: a node's `credentials` list, an
http_request node's `config.credentials`, and a webhook trigger's `config.auth.credentialId`.
Exports replace those ids by credential names (ids mean nothing on another installation) and
imports replace names by the ids of the importer's credentials; a reference that cannot be
replaced is removed so that it fails closed: a webhook that loses its auth credential is
disabled rather than left open.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

DISABLED_AUTH = {"mode": "none"}


class SlotKind(StrEnum):
    NODE = "node"  # an entry of node.credentials
    HTTP = "http"  # http_request config.credentials
    WEBHOOK_AUTH = "webhookAuth"  # webhook_trigger config.auth.credentialId


@dataclass(frozen=True)
class CredentialSlot:
    """One place in a definition that refers to a credential, and the reference found there."""

    node_index: int
    node_id: str | None
    kind: SlotKind
    reference: str

    @property
    def pointer(self) -> str:
        at = f"/nodes/{self.node_index}"
        return {
            SlotKind.NODE: f"{at}/credentials",
            SlotKind.HTTP: f"{at}/config/credentials",
            SlotKind.WEBHOOK_AUTH: f"{at}/config/auth/credentialId",
        }[self.kind]


def credential_slots(definition: Mapping[str, Any]) -> list[CredentialSlot]:
    """Every credential reference of a definition, in node order."""
    return [slot for index, node in _nodes(definition) for slot in _slots_of(index, node)]


def with_credentials(
    definition: Mapping[str, Any], replacements: Mapping[str, str], *, keep_unmatched: bool
) -> tuple[dict[str, Any], list[CredentialSlot]]:
    """A copy of `definition` with each reference replaced by `replacements[reference]`; the
    references without a replacement are returned, and removed unless `keep_unmatched`."""
    result: dict[str, Any] = copy.deepcopy(dict(definition))
    unmatched: list[CredentialSlot] = []
    for index, node in _nodes(result):
        for slot in _slots_of(index, node):
            found = replacements.get(slot.reference)
            if found is None:
                unmatched.append(slot)
            if found is not None or not keep_unmatched:
                _rewrite(node, slot, found)
        if not keep_unmatched and isinstance(node.get("credentials"), list):
            node["credentials"] = [c for c in node["credentials"] if c is not None]
    return result, unmatched


def _nodes(definition: Mapping[str, Any]) -> Iterator[tuple[int, Any]]:
    nodes = definition.get("nodes")
    if isinstance(nodes, list):
        yield from ((index, node) for index, node in enumerate(nodes) if isinstance(node, Mapping))


def _slots_of(index: int, node: Mapping[str, Any]) -> Iterator[CredentialSlot]:
    node_id = node.get("id") if isinstance(node.get("id"), str) else None
    listed = node.get("credentials")
    if isinstance(listed, list):
        for reference in listed:
            if isinstance(reference, str):
                yield CredentialSlot(index, node_id, SlotKind.NODE, reference)
    config = node.get("config")
    if not isinstance(config, Mapping):
        return
    if node.get("type") == "http_request" and isinstance(config.get("credentials"), str):
        yield CredentialSlot(index, node_id, SlotKind.HTTP, config["credentials"])
    auth = config.get("auth")
    if (
        node.get("type") == "webhook_trigger"
        and isinstance(auth, Mapping)
        and isinstance(auth.get("credentialId"), str)
    ):
        yield CredentialSlot(index, node_id, SlotKind.WEBHOOK_AUTH, auth["credentialId"])


def _rewrite(node: dict[str, Any], slot: CredentialSlot, replacement: str | None) -> None:
    """Put `replacement` where the slot's reference is, or remove the reference (None)."""
    if slot.kind is SlotKind.NODE:
        listed = node["credentials"]
        listed[listed.index(slot.reference)] = replacement  # None entries are dropped after
    elif slot.kind is SlotKind.HTTP:
        if replacement is None:
            del node["config"]["credentials"]
        else:
            node["config"]["credentials"] = replacement
    elif replacement is None:
        # Without its credential the trigger cannot check callers: keep it, but switched off.
        node["config"]["auth"] = dict(DISABLED_AUTH)
        node["disabled"] = True
    else:
        node["config"]["auth"]["credentialId"] = replacement
