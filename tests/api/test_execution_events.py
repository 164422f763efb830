"""Live progress: GET /executions/{id}/events streams a run's events as Server-Sent Events.

The test client hands over a stream once it has ended, so these tests read whole streams; in
this suite the streams poll the event store only every 30 seconds (api_settings), so a stream
that ends within seconds was woken by the progress notices (over Redis here). tests/e2e/
test_live_progress.py reads streams as they arrive from real servers.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from litestar.testing import TestClient

from application.caller import Caller
from tests.api.helpers import (
    API,
    RUNNABLE,
    SLOW,
    Account,
    live_events,
    problem,
    published,
    run,
    share,
    sign_up,
)

Client = TestClient[Any]
RUN_OF_RUNNABLE = ["Queued", "Started", "NodeSucceeded", "NodeSucceeded", "Succeeded"]
"""Both nodes end before a save: each NodeSucceeded records its start too."""


def test_a_run_streams_every_event_in_order_and_the_stream_ends_with_it(
    client: Client, user: Account
) -> None:
    workflow_id = published(client, user, RUNNABLE)
    started = run(client, user, workflow_id, [{"order": 1}])
    began = time.monotonic()
    messages = live_events(client, user, started["id"])
    assert time.monotonic() - began < 10
    assert [m.event for m in messages] == RUN_OF_RUNNABLE
    assert [m.id for m in messages] == [str(n) for n in range(1, 6)]
    assert [m.data["version"] for m in messages] == list(range(1, 6))
    positions = [m.data["position"] for m in messages]
    assert positions == sorted(positions)
    assert positions[0] == started["position"]
    assert {m.data["executionId"] for m in messages} == {started["id"]}
    queued, set_done, ended = messages[0].data, messages[3].data, messages[-1].data
    assert queued["workflowId"] == workflow_id
    assert queued["inputItems"] == [{"order": 1}]
    assert queued["startNodeId"] == "start"
    assert set_done["nodeId"] == "set"
    assert set_done["outputs"] == {"output": [{"order": 1, "seen": True}]}
    assert isinstance(set_done["durationMs"], int)
    assert (set_done["attempt"], set_done["inputCount"]) == (1, 1)
    assert ended["outputItems"] == [{"order": 1, "seen": True}]
    assert ended["timestamp"] >= queued["timestamp"]
    assert "_meta" not in queued
    assert "originatorId" not in queued


def test_a_client_that_reconnects_gets_only_what_followed_its_last_event(
    client: Client, user: Account
) -> None:
    workflow_id = published(client, user, RUNNABLE)
    ended = run(client, user, workflow_id, wait="true")
    rest = live_events(client, user, ended["id"], **{"Last-Event-ID": "2"})
    assert [m.event for m in rest] == RUN_OF_RUNNABLE[2:]
    assert [m.id for m in rest] == ["3", "4", "5"]
    after_the_end = client.get(
        f"{API}/executions/{ended['id']}/events", headers={**user, "Last-Event-ID": "5"}
    )
    assert after_the_end.status_code == 204  # an EventSource stops reconnecting
    bad = client.get(
        f"{API}/executions/{ended['id']}/events", headers={**user, "Last-Event-ID": "four"}
    )
    assert problem(bad, 400)["errors"][0]["parameter"] == "Last-Event-ID"


def test_a_cancelled_run_ends_its_stream_at_once(client: Client, user: Account) -> None:
    workflow_id = published(client, user, SLOW)
    started = run(client, user, workflow_id)
    service = client.app.state.services.executions

    def cancel_soon() -> None:
        time.sleep(0.5)
        service.cancel(Caller(user.user_id), started["id"])

    canceller = threading.Thread(target=cancel_soon)
    canceller.start()
    began = time.monotonic()
    messages = live_events(client, user, started["id"])
    canceller.join()
    assert time.monotonic() - began < 10  # polling alone would take 30 s
    assert messages[-1].event == "Cancelled"
    assert messages[-1].data["reason"] == f"cancelled by {user.user_id}"
    assert "NodeStarted" in [m.event for m in messages]


def test_large_fields_are_left_out_with_their_sizes(client: Client, user: Account) -> None:
    workflow_id = published(client, user, RUNNABLE)
    big = [{"blob": "x" * 40_000}, {"blob": "y" * 40_000}]
    ended = run(client, user, workflow_id, big, wait="true")
    messages = {m.event: m.data for m in live_events(client, user, ended["id"])}
    queued = messages["Queued"]
    assert "inputItems" not in queued
    assert queued["omitted"]["fields"]["inputItems"]["items"] == 2
    assert queued["omitted"]["fields"]["inputItems"]["bytes"] > 80_000
    assert f"/executions/{ended['id']}" in queued["omitted"]["note"]
    assert queued["workflowId"] == workflow_id  # small fields stay
    succeeded = messages["Succeeded"]
    assert "outputItems" not in succeeded
    assert succeeded["omitted"]["fields"]["outputItems"]["items"] == 2
    assert isinstance(succeeded["durationMs"], int)
    last_node = messages["NodeSucceeded"]  # the set node's: each event name keeps its last
    assert last_node["omitted"]["fields"]["outputs"]["items"] == {"output": 2}
    assert last_node["nodeId"] == "set"


def test_who_may_follow_a_run_is_who_may_read_it(client: Client, user: Account) -> None:
    workflow_id = published(client, user, RUNNABLE)
    ended = run(client, user, workflow_id, wait="true")
    viewer, stranger = sign_up(client), sign_up(client)
    shared = share(client, user, workflow_id, viewer.user_id, "VIEW")
    seen = live_events(
        client, viewer, ended["id"], **{"A2N-Min-Position": f"workflows:{shared['position']}"}
    )
    assert [m.event for m in seen] == RUN_OF_RUNNABLE
    url = f"{API}/executions/{ended['id']}/events"
    problem(client.get(url, headers=stranger), 404)
    problem(
        client.get(f"{API}/executions/00000000-0000-7000-8000-000000000000/events", headers=user),
        404,
    )
    problem(client.get(f"{API}/executions/not-an-id/events", headers=user), 404)
