"""Workflows that use custom nodes, through the API: definitions pin `type@version` and are
checked against that version's schemas; runs execute PYTHON nodes from an installed package
(tests/fixtures/plugins, on sys.path with its .dist-info), WEBHOOK nodes through a signed call
to a service on 127.0.0.1, and refuse DOCKER nodes without a Docker engine."""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from domain.nodes.rating import NodeRating
from tests.api.helpers import API, Account, create, problem, run, sign_up
from tests.api.test_custom_nodes import WEBHOOK, create_node, node_name
from tests.http_doubles import JSONHandler

Client = TestClient[Any]
PLUGINS = Path(__file__).resolve().parents[1] / "fixtures" / "plugins"
SHOUT_CONFIG = {
    "type": "object",
    "properties": {"field": {"type": "string"}, "suffix": {"type": "string"}},
    "required": ["field"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module", autouse=True)
def installed_plugins() -> Iterator[None]:
    """The example node package, found by importlib.metadata like any installed one."""
    sys.path.insert(0, str(PLUGINS))
    yield
    sys.path.remove(str(PLUGINS))


def published_node(client: Client, author: Account, **body: Any) -> dict[str, Any]:
    """A new node with version 1.0.0 published; the creation's answer."""
    made = create_node(client, author, **body)
    response = client.post(f"{API}/nodes/{made['id']}/publish", headers=author)
    assert response.status_code == 200, response.text
    assert response.json()["signingSecret"] is None  # shown when a version is recorded only
    return made


def python_node(client: Client, author: Account, entry_point: str, **body: Any) -> dict[str, Any]:
    return published_node(
        client,
        author,
        implementation={"runtime": "PYTHON", "entryPoint": entry_point},
        **body,
    )


def graph(node_type: str, config: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A manual trigger feeding one node of `node_type`."""
    return {
        "nodes": [
            {"id": "start", "type": "manual_trigger", "name": "Start"},
            {"id": "custom", "type": node_type, "name": "Custom", "config": config},
            *extra.get("nodes", []),
        ],
        "connections": [
            {"source": "start", "target": "custom"},
            *extra.get("connections", []),
        ],
    }


def ran(client: Client, account: Account, definition: dict[str, Any], items: Any) -> Any:
    """Create a workflow with `definition`, run its draft and wait for the end."""
    workflow = create(client, account, definition=definition)
    return run(client, account, workflow["id"], items, wait="true", test="true", timeout="60")


def marked_from(pinned: str, config: dict[str, Any], handle: str) -> dict[str, Any]:
    """`graph` with a set node marking what the custom node sends on `handle` (`seen: true`)."""
    mark = {"id": "mark", "type": "set", "name": "Mark", "config": {"fields": {"seen": True}}}
    return graph(
        pinned,
        config,
        nodes=[mark],
        connections=[{"source": "custom", "target": "mark", "sourceHandle": handle}],
    )


def refused(client: Client, account: Account, definition: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post(
        f"{API}/workflows", json={"name": "Refused", "definition": definition}, headers=account
    )
    errors: list[dict[str, Any]] = problem(response, 422)["errors"]
    return errors


def test_a_python_node_from_an_installed_package_runs_its_pinned_version(
    client: Client, user: Account
) -> None:
    node = python_node(client, user, "example.shout", settingsSchema=SHOUT_CONFIG)
    pinned = f"{node['name']}@1.0.0"
    config = {"field": "name", "suffix": "{{ $json.mark }}"}
    done = ran(client, user, graph(pinned, config), [{"name": "ada", "mark": "!"}])
    assert done["status"] == "SUCCESS", done
    assert done["outputItems"] == [
        {
            "name": "ADA!",
            "mark": "!",
            "ranAs": {"id": "custom", "name": "Custom", "type": pinned},
        }
    ]


def test_definitions_are_checked_against_the_pinned_version(client: Client, user: Account) -> None:
    node = python_node(client, user, "example.shout", settingsSchema=SHOUT_CONFIG)
    name = node["name"]
    errors = refused(client, user, graph(f"{name}@1.0.0", {"suffix": 1}))
    assert {(e["pointer"], e["message"]) for e in errors} == {
        ("/definition/nodes/1/config/field", "is required"),
        ("/definition/nodes/1/config/suffix", "must be a string"),
    }
    [unpinned] = refused(client, user, graph(name, {"field": "a"}))
    assert unpinned["pointer"] == "/definition/nodes/1/type"
    assert f"pinned to a version, such as {name}@1.0.0" in unpinned["message"]
    [unknown] = refused(client, user, graph(f"{name}@3.0.0", {"field": "a"}))
    assert "is not a published version" in unknown["message"]

    # 2.0.0 asks for another config; a workflow pinned to 1.0.0 keeps its schema and its runs.
    workflow = create(client, user, definition=graph(f"{name}@1.0.0", {"field": "name"}))
    stricter = {**SHOUT_CONFIG, "required": ["field", "suffix"]}
    added = client.patch(
        f"{API}/nodes/{node['id']}",
        json={"version": "2.0.0", "settingsSchema": stricter},
        headers=user,
    )
    assert added.status_code == 200, added.text
    [draft] = refused(client, user, graph(f"{name}@2.0.0", {"field": "name", "suffix": "?"}))
    assert "is not a published version" in draft["message"]
    published = client.post(f"{API}/nodes/{node['id']}/publish", headers=user)
    assert published.status_code == 200, published.text
    [missing] = refused(client, user, graph(f"{name}@2.0.0", {"field": "name"}))
    assert missing["pointer"] == "/definition/nodes/1/config/suffix"
    again = run(client, user, workflow["id"], [{"name": "x"}], wait="true", test="true")
    assert again["outputItems"][0]["name"] == "X"
    two = ran(client, user, graph(f"{name}@2.0.0", {"field": "name", "suffix": "?"}), [{}])
    assert two["outputItems"][0]["name"] == "?"


def test_private_nodes_are_their_authors_and_public_ones_everyones(
    client: Client, user: Account
) -> None:
    private = python_node(client, user, "example.shout", settingsSchema=SHOUT_CONFIG)
    public = python_node(
        client, user, "example.shout", settingsSchema=SHOUT_CONFIG, visibility="PUBLIC"
    )
    other = sign_up(client)
    [hidden] = refused(client, other, graph(f"{private['name']}@1.0.0", {"field": "a"}))
    assert hidden["message"].startswith("is not a known node type")
    done = ran(client, other, graph(f"{public['name']}@1.0.0", {"field": "a"}), [{"a": "b"}])
    assert done["outputItems"][0]["a"] == "B"


def test_a_deprecated_node_keeps_its_workflows_but_takes_no_new_ones(
    client: Client, user: Account
) -> None:
    node = python_node(client, user, "example.shout", settingsSchema=SHOUT_CONFIG)
    pinned = f"{node['name']}@1.0.0"
    workflow = create(client, user, definition=graph(pinned, {"field": "a"}))
    retired = client.post(
        f"{API}/nodes/{node['id']}/deprecate", json={"replacement": "set"}, headers=user
    )
    assert retired.status_code == 200, retired.text
    [refusal] = refused(client, user, graph(pinned, {"field": "a"}))
    assert refusal["message"] == "is deprecated; use set"
    # The workflow that pinned it may still change and run.
    changed = client.put(
        f"{API}/workflows/{workflow['id']}/definition",
        json=graph(pinned, {"field": "a", "suffix": "."}),
        headers=user,
    )
    assert changed.status_code == 200, changed.text
    done = run(client, user, workflow["id"], [{"a": "x"}], wait="true", test="true")
    assert done["outputItems"][0]["a"] == "X."


def test_outputs_are_the_versions_handles(client: Client, user: Account) -> None:
    node = python_node(
        client,
        user,
        "example.split",
        type="FLOW",
        outputs=["big", "small"],
        settingsSchema={"type": "object", "properties": {"threshold": {"type": "integer"}}},
    )
    pinned = f"{node['name']}@1.0.0"
    wired = marked_from(pinned, {"threshold": 10}, "big")
    done = ran(client, user, wired, [{"n": 1}, {"n": 12}, {"n": 30}])
    assert done["status"] == "SUCCESS", done
    assert done["outputItems"] == [{"n": 12, "seen": True}, {"n": 30, "seen": True}]
    wrong = {
        **wired,
        "connections": [
            wired["connections"][0],
            {"source": "custom", "target": "mark", "sourceHandle": "huge"},
        ],
    }
    [error] = refused(client, user, wrong)
    assert (
        error["message"]
        == f"is not an output of node 'custom' ({pinned}); its outputs are: big, small"
    )


def test_a_disabled_node_passes_its_items_on_its_first_output(
    client: Client, user: Account
) -> None:
    node = python_node(
        client, user, "example.split", type="FLOW", outputs=["big", "small"], settingsSchema={}
    )
    wired = marked_from(f"{node['name']}@1.0.0", {"threshold": 10}, "big")
    wired["nodes"][1]["disabled"] = True
    done = ran(client, user, wired, [{"n": 1}, {"n": 12}])
    assert done["status"] == "SUCCESS", done
    assert done["outputItems"] == [{"n": 1, "seen": True}, {"n": 12, "seen": True}]


@pytest.mark.parametrize(
    ("implementation", "message"),
    [
        (
            {"runtime": "PYTHON", "entryPoint": "example.refuse"},
            "the refuse node refuses every item",
        ),
        (
            {"runtime": "PYTHON", "entryPoint": "example.absent"},
            "no installed package provides the node 'example.absent'",
        ),
        (
            {"runtime": "DOCKER", "image": "ghcr.io/acme/greet:1"},
            "runs in a DOCKER container, and this installation has no Docker engine configured",
        ),
    ],
    ids=["node-failure", "not-installed", "docker"],
)
def test_nodes_that_cannot_run_fail_the_run_saying_why(
    client: Client, user: Account, implementation: dict[str, Any], message: str
) -> None:
    node = published_node(client, user, implementation=implementation, settingsSchema={})
    done = ran(client, user, graph(f"{node['name']}@1.0.0", {}), [{}])
    assert done["status"] == "FAILED", done
    assert message in done["errorMessage"]


def test_a_python_node_that_overruns_its_timeout_fails(client: Client, user: Account) -> None:
    node = python_node(client, user, "example.nap", settingsSchema={}, timeout=200)
    done = ran(client, user, graph(f"{node['name']}@1.0.0", {"seconds": 3}), [{}])
    assert done["status"] == "FAILED", done
    assert "example.nap did not finish within 0.2 seconds" in done["errorMessage"]


# -- WEBHOOK ---------------------------------------------------------------------------------


@dataclass
class NodeService:
    """A node implemented as an HTTP service on 127.0.0.1: answers each call from `script`
    (status, body, delay) in turn, the last one for ever, and records what it was sent."""

    script: list[tuple[int, Any, float]]
    received: list[dict[str, Any]] = field(default_factory=list)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(JSONHandler):
            def do_POST(self) -> None:
                body = self.body()
                index = min(len(service.received), len(service.script) - 1)
                status, answer, delay = service.script[index]
                service.received.append({"headers": self.lower_headers(), "body": body})
                time.sleep(delay)
                self.answer(status, answer)

        return Handler


def webhook_node(client: Client, author: Account, url: str, **runtime: Any) -> dict[str, Any]:
    return published_node(
        client,
        author,
        implementation={"runtime": "WEBHOOK", "url": url, **runtime},
        settingsSchema={"type": "object", "properties": {"greeting": {"type": "string"}}},
    )


def test_a_webhook_node_calls_its_service_signed_and_retries_it(
    client: Client, user: Account, serve: Any
) -> None:
    service = NodeService(
        [(503, {"title": "busy"}, 0), (200, {"items": [{"greeted": "hi ada"}]}, 0)]
    )
    node = webhook_node(client, user, serve(service), retries=2)
    secret = node["signingSecret"]
    assert isinstance(secret, str)
    assert len(secret) == 64
    done = ran(
        client,
        user,
        graph(f"{node['name']}@1.0.0", {"greeting": "hi {{ $json.name }}"}),
        [{"name": "ada"}],
    )
    assert done["status"] == "SUCCESS", done
    assert done["outputItems"] == [{"greeted": "hi ada"}]
    assert len(service.received) == 2
    for call in service.received:
        headers, body = call["headers"], call["body"]
        signed = headers["x-a2n-timestamp"].encode() + b"." + body
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        assert headers["x-a2n-signature"] == f"sha256={expected}"
        assert abs(int(headers["x-a2n-timestamp"]) - time.time()) < 300
    sent = json.loads(service.received[0]["body"])
    assert sent["config"] == {"greeting": "hi ada"}
    assert sent["items"] == [{"name": "ada"}]
    assert sent["node"] == {"id": "custom", "name": "Custom", "type": f"{node['name']}@1.0.0"}
    assert set(sent["execution"]) == {"id", "mode", "workflowId", "workflowVersion"}
    # The secret is for the author's eyes in command answers only.
    row = client.get(f"{API}/nodes/{node['id']}", headers=user).json()
    assert secret not in json.dumps(row)


@pytest.mark.parametrize(
    ("script", "runtime", "calls", "message"),
    [
        ([(400, {"title": "bad"}, 0)], {"retries": 2}, 1, "the node service answered 400"),
        ([(502, {}, 0)], {"retries": 1}, 2, "it answered 502 (2 attempts)"),
        ([(200, {}, 1.5)], {"retries": 0, "timeoutMs": 300}, 1, "no answer within 0.3 seconds"),
        ([(200, {"items": [1]}, 0)], {}, 1, "must return a list of objects; item 0 is a number"),
        ([(200, {"outputs": {"odd": []}}, 0)], {}, 1, "returned items for odd"),
    ],
    ids=["client-error", "server-error", "timeout", "not-items", "unknown-output"],
)
def test_a_webhook_node_fails_when_its_service_does(
    client: Client,
    user: Account,
    serve: Any,
    script: list[tuple[int, Any, float]],
    runtime: dict[str, Any],
    calls: int,
    message: str,
) -> None:
    service = NodeService(script)
    node = webhook_node(client, user, serve(service), **runtime)
    done = ran(client, user, graph(f"{node['name']}@1.0.0", {}), [{}])
    assert done["status"] == "FAILED", done
    assert message in done["errorMessage"]
    assert len(service.received) == calls


def test_signing_secrets_are_shown_when_a_webhook_version_is_recorded(
    client: Client, user: Account
) -> None:
    first = create_node(client, user, name=node_name("one"))
    second = create_node(client, user, name=node_name("two"))
    assert first["signingSecret"] != second["signingSecret"]
    renamed = client.patch(f"{API}/nodes/{first['id']}", json={"icon": "bell"}, headers=user)
    assert renamed.json()["signingSecret"] is None
    again = client.patch(
        f"{API}/nodes/{first['id']}", json={"version": "1.0.1", "retries": 0}, headers=user
    )
    assert again.status_code == 422  # retries belongs to the implementation
    moved = client.patch(
        f"{API}/nodes/{first['id']}",
        json={"version": "1.1.0", "implementation": {**WEBHOOK, "retries": 0}},
        headers=user,
    )
    assert moved.json()["signingSecret"] == first["signingSecret"]
    python = create_node(
        client, user, implementation={"runtime": "PYTHON", "entryPoint": "example.shout"}
    )
    assert python["signingSecret"] is None


# -- marketplace: ratings and usage ------------------------------------------------------------


def executions_head(client: Client) -> int:
    return int(client.app.state.services.executions.app.head_position())


def stats(client: Client, account: Account, node_id: str, **params: Any) -> Any:
    response = client.get(
        f"{API}/nodes/{node_id}/stats",
        params=params,
        headers={
            **account,
            "A2N-Min-Position": f"executions:{executions_head(client)}, "
            f"nodes:{client.app.state.services.nodes.app.head_position()}",
        },
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_usage_is_counted_per_node_and_day(client: Client, user: Account) -> None:
    node = python_node(
        client, user, "example.shout", settingsSchema=SHOUT_CONFIG, visibility="PUBLIC"
    )
    refuse = python_node(client, user, "example.refuse", settingsSchema={})
    other = sign_up(client)
    pinned = f"{node['name']}@1.0.0"
    for account in (user, user, other):
        done = ran(client, account, graph(pinned, {"field": "a"}), [{"a": "x"}, {"a": "y"}])
        assert done["status"] == "SUCCESS", done
    failed = ran(client, user, graph(f"{refuse['name']}@1.0.0", {}), [{}])
    assert failed["status"] == "FAILED"

    found = stats(client, user, node["name"])
    assert (found["usageCount"], found["successRate"]) == (3, 100)
    assert found["avgExecutionTime"] is not None
    [today] = found["days"]
    assert {k: today[k] for k in ("executions", "successes", "failures", "distinctUsers")} == {
        "executions": 3,
        "successes": 3,
        "failures": 0,
        "distinctUsers": 2,
    }
    assert 0 <= today["avgDurationMs"] <= today["p95DurationMs"] * 1.1 + 1
    assert found["to"] == today["date"]
    refused_stats = stats(client, user, refuse["id"])
    assert (refused_stats["usageCount"], refused_stats["successRate"]) == (1, 0)
    assert refused_stats["days"][0]["failures"] == 1
    row = client.get(f"{API}/nodes/{node['id']}", headers=user).json()
    assert (row["usageCount"], row["successRate"]) == (3, 100)
    # Built-in types are counted too; private nodes' stats are their author's.
    assert stats(client, user, "manual_trigger")["usageCount"] >= 4
    problem(client.get(f"{API}/nodes/{refuse['id']}/stats", headers=other), 404)
    earlier = stats(client, user, node["id"], to="2020-01-31")
    assert (earlier["from"], earlier["days"]) == ("2020-01-02", [])


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"from": "2024-02-02", "to": "2024-02-01"}, "from"),
        ({"from": "2020-01-01", "to": "2024-01-01"}, "from"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2024-13-01"}, "to"),
    ],
)
def test_bad_stats_ranges_are_400(
    client: Client, user: Account, params: dict[str, str], parameter: str
) -> None:
    body = problem(client.get(f"{API}/nodes/noop/stats", params=params, headers=user), 400)
    assert [e["parameter"] for e in body["errors"]] == [parameter]


def test_one_rating_per_user_and_node_with_its_average(client: Client, user: Account) -> None:
    node = published_node(client, user, visibility="PUBLIC")
    path = f"{API}/nodes/{node['id']}/rating"
    fans = [sign_up(client) for _ in range(3)]
    first = client.put(path, json={"rating": 5, "review": "Great"}, headers=fans[0])
    assert first.status_code == 201, first.text
    assert client.put(path, json={"rating": 4}, headers=fans[1]).status_code == 201
    again = client.put(path, json={"rating": 2, "review": "Changed my mind"}, headers=fans[0])
    assert again.status_code == 200, again.text
    assert (again.json()["rating"], again.json()["revision"]) == (2, 2)
    same = client.put(path, json={"rating": 2, "review": "Changed my mind"}, headers=fans[0])
    assert same.json()["revision"] == 2  # nothing new to record

    position = client.put(path, json={"rating": 5}, headers=fans[2]).json()["position"]
    listed = client.get(
        f"{API}/nodes/{node['name']}/ratings",
        params={"limit": 2},
        headers={**fans[1], "A2N-Min-Position": str(position)},
    ).json()
    assert [(r["userId"], r["rating"]) for r in listed["items"]] == [
        (fans[2].user_id, 5),
        (fans[0].user_id, 2),
    ]
    assert listed["items"][1]["review"] == "Changed my mind"
    rest = client.get(
        f"{API}/nodes/{node['id']}/ratings",
        params={"cursor": listed["nextCursor"]},
        headers=fans[1],
    ).json()
    assert [(r["userId"], r["rating"]) for r in rest["items"]] == [(fans[1].user_id, 4)]
    assert rest["nextCursor"] is None
    row = client.get(f"{API}/nodes/{node['id']}", headers=fans[1]).json()
    assert (row["ratingAverage"], row["ratingCount"]) == (3.67, 3)


def test_ratings_are_for_published_nodes_of_others(client: Client, user: Account) -> None:
    draft = create_node(client, user, visibility="PUBLIC")
    private = published_node(client, user)
    public = published_node(client, user, visibility="PUBLIC")
    fan = sign_up(client)
    before = int(client.app.state.services.nodes.app.head_position())
    body = {"rating": 3}
    problem(client.put(f"{API}/nodes/{draft['id']}/rating", json=body, headers=fan), 404)
    problem(client.put(f"{API}/nodes/{private['id']}/rating", json=body, headers=fan), 404)
    problem(client.put(f"{API}/nodes/{public['id']}/rating", json=body, headers=user), 409)
    problem(client.put(f"{API}/nodes/{draft['id']}/rating", json=body, headers=user), 409)
    problem(client.put(f"{API}/nodes/noop/rating", json=body, headers=fan), 404)
    for bad, pointer in (
        ({"rating": 0}, "/rating"),
        ({"rating": 6}, "/rating"),
        ({"rating": 4, "review": "x" * 5001}, "/review"),
        ({"rating": 4, "review": "a\x00b"}, "/review"),
    ):
        response = client.put(f"{API}/nodes/{public['id']}/rating", json=bad, headers=fan)
        assert [e["pointer"] for e in problem(response, 422)["errors"]] == [pointer]
    for malformed in ({"rating": "4"}, {"rating": 4.5}, {"stars": 4}, {}):
        response = client.put(f"{API}/nodes/{public['id']}/rating", json=malformed, headers=fan)
        problem(response, 422)
    assert int(client.app.state.services.nodes.app.head_position()) == before
    problem(client.get(f"{API}/nodes/{private['id']}/ratings", headers=fan), 404)


def test_an_erased_raters_review_is_gone(client: Client, owner: Account, user: Account) -> None:
    node = published_node(client, user, visibility="PUBLIC")
    fan = sign_up(client)
    rated = client.put(
        f"{API}/nodes/{node['id']}/rating", json={"rating": 5, "review": "Mine"}, headers=fan
    )
    assert rated.json()["review"] == "Mine"
    stored = client.app.state.services.nodes.app.load(rated.json()["id"], NodeRating)
    assert stored.review is not None
    assert "Mine" not in stored.review  # the event holds it sealed
    erased = client.post(f"{API}/users/{fan.user_id}/erase", headers=owner)
    assert erased.status_code == 200, erased.text
    listed = client.get(
        f"{API}/nodes/{node['id']}/ratings",
        headers={
            **user,
            # The rating (nodes log) and the erasure (identity log): a rebuild-like race
            # otherwise, the list read before the rating was projected.
            "A2N-Min-Position": f"nodes:{rated.json()['position']}, "
            f"identity:{erased.json()['position']}",
        },
    ).json()
    assert [(r["rating"], r["review"]) for r in listed["items"]] == [(5, None)]
