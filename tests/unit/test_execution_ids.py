"""The executions projector's derived row ids are RFC 9562 version 5 UUIDs, as `uuid.uuid5`
makes them (rows projected before its faster helper keep their ids through a rebuild)."""

from __future__ import annotations

import random
import uuid

from projections.executions import _LOG_IDS, _METRIC_IDS, _NODE_STATE_IDS, _uuid5

NAMES = [
    "",
    "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f62/7/3",
    "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f62/node with spaces",
    "exécution/nœud/😀",
    "nul\x00inside",
    "x" * 500,
]


def test_derived_ids_equal_uuid5() -> None:
    chooser = random.Random(11)
    alphabet = "abc/-_ 0123456789éœ😀\x00\n"
    names = NAMES + [
        "".join(chooser.choices(alphabet, k=chooser.randint(0, 60))) for _ in range(3000)
    ]
    for namespace in (_NODE_STATE_IDS, _LOG_IDS, _METRIC_IDS, uuid.NAMESPACE_URL):
        for name in names:
            assert _uuid5(namespace, name) == str(uuid.uuid5(namespace, name)), name
