"""Webhook triggers over HTTP: /webhook/{path} for active workflows, /webhook-test/{path} for a
listening draft; the trigger item, response modes, routing (parameters, 404, 405), one path per
active workflow, bodies, and receipt recorded before the answer."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from application.eventstore import event_metadata
from application.executions.webhooks import WebhookService
from application.executions.worker import Slots
from domain.executions.execution import Execution
from tests.api.helpers import API, Account, create, problem, read, sign_up

Client = TestClient[Any]
SEEN = {"id": "seen", "type": "set", "name": "Seen", "config": {"fields": {"seen": True}}}
"""A node after the trigger: each item, marked seen."""


def unique_path(prefix: str = "hook") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def hooked(path: str, *after: dict[str, Any], **config: Any) -> dict[str, Any]:
    """A webhook trigger on `path` followed by the `after` nodes, in a chain."""
    hook = {"id": "hook", "type": "webhook_trigger", "config": {"path": path, **config}}
    nodes = [hook, *after]
    links = [{"source": a["id"], "target": b["id"]} for a, b in itertools.pairwise(nodes)]
    return {"nodes": nodes, "connections": links}


def activated(client: Client, user: Account, definition: dict[str, Any]) -> str:
    """A new active workflow, its triggers projected (so /webhook finds them)."""
    made = create(client, user, definition=definition)
    response = client.post(f"{API}/workflows/{made['id']}/activate", headers=user)
    assert response.status_code == 200, response.text
    read(client, user, f"/workflows/{made['id']}/triggers", response.json()["position"])
    workflow_id: str = made["id"]
    return workflow_id


def webhooks(client: Client) -> WebhookService:
    found: WebhookService = client.app.state.services.webhooks
    return found


def ended(client: Client, execution_id: str) -> Execution:
    execution: Execution = asyncio.run(
        client.app.state.services.executions.wait_for_end(execution_id, 10)
    )
    assert execution.is_final
    return execution


# -- the run a call starts --------------------------------------------------------------------


def test_a_call_is_accepted_with_the_execution_id_and_runs_as_the_owner(
    client: Client, user: Account
) -> None:
    path = unique_path()
    workflow_id = activated(client, user, hooked(path, SEEN, method="POST"))
    response = client.post(
        f"/webhook/{path}",
        params={"ref": "a", "tag": ["x", "y"]},
        json={"order": 7},
        headers={"X-Request-ID": "hook-req-1", "X-Source": "shop"},
    )
    assert response.status_code == 202, response.text
    execution = ended(client, response.json()["executionId"])
    assert str(execution.status) == "SUCCESS"
    assert (execution.workflow_id, execution.user_id) == (workflow_id, user.user_id)
    assert str(execution.mode) == "webhook"
    [item] = execution.input_items
    assert item["method"] == "POST"
    assert item["path"] == path
    assert item["body"] == {"order": 7}
    assert item["query"] == {"ref": "a", "tag": ["x", "y"]}
    assert item["params"] == {}
    assert item["headers"]["x-source"] == "shop"
    assert execution.output_items == [{**item, "seen": True}]
    assert execution.trigger_data == {
        "method": "POST",
        "path": path,
        "ip": "testclient",
        "requestId": "hook-req-1",
        "test": False,
    }
    queued = next(iter(client.app.state.services.executions.app.history(execution.id)))
    meta = event_metadata(queued)
    assert (meta["actor_id"], meta["correlation_id"]) == (user.user_id, "hook-req-1")


def test_the_run_is_recorded_before_the_call_is_answered(client: Client, user: Account) -> None:
    path = unique_path()
    activated(client, user, hooked(path, SEEN))
    store = client.app.state.services.executions.app
    for _ in range(5):
        response = client.get(f"/webhook/{path}")
        assert response.status_code == 202, response.text
        # Read at once, without waiting: the Queued event must already be stored.
        first = next(iter(store.history(response.json()["executionId"])))
        assert isinstance(first, Execution.Queued)


def test_path_parameters_reach_the_item(client: Client, user: Account) -> None:
    prefix = unique_path("orders")
    activated(client, user, hooked(f"{prefix}/:id/lines/:line", SEEN, responseMode="lastNode"))
    response = client.get(f"/webhook/{prefix}/42/lines/3")
    assert response.status_code == 200, response.text
    [item] = response.json()
    assert item["params"] == {"id": "42", "line": "3"}
    assert item["path"] == f"{prefix}/42/lines/3"


def test_a_static_path_wins_over_a_parameter_of_another_workflow(
    client: Client, user: Account
) -> None:
    prefix = unique_path("orders")
    activated(client, user, hooked(f"{prefix}/:id", SEEN, responseMode="lastNode"))
    fixed = {"id": "fixed", "type": "set", "name": "Fixed", "config": {"fields": {"fixed": 1}}}
    activated(client, user, hooked(f"{prefix}/new", fixed, responseMode="lastNode"))
    assert client.get(f"/webhook/{prefix}/new").json()[0]["fixed"] == 1
    assert client.get(f"/webhook/{prefix}/7").json()[0]["params"] == {"id": "7"}


# -- response modes ---------------------------------------------------------------------------


def test_last_node_mode_answers_the_runs_output_items(client: Client, user: Account) -> None:
    path = unique_path()
    activated(client, user, hooked(path, SEEN, method="PUT", responseMode="lastNode"))
    response = client.put(f"/webhook/{path}", json=[1, 2])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    [item] = response.json()
    assert (item["body"], item["seen"]) == ([1, 2], True)


def test_a_last_node_run_this_process_starts_is_saved_once_and_names_its_caller(
    client: Client, user: Account, database_url: str
) -> None:
    """Answered only once it ended, by this process: its Queued event is saved with the run,
    in one transaction instead of two, still stamped with the call's own facts."""
    path = unique_path()
    definition = hooked(path, SEEN, method="POST", responseMode="lastNode")
    workflow_id = activated(client, user, definition)
    response = client.post(
        f"/webhook/{path}", json={"n": 1}, headers={"X-Request-ID": "hook-once-1"}
    )
    assert response.status_code == 200, response.text
    head = client.app.state.services.executions.app.head_position()
    [run] = read(client, user, "/executions", head, workflowId=workflow_id)["items"]
    with psycopg.connect(database_url) as conn:
        saves = conn.execute(
            "SELECT count(DISTINCT xmin::text), count(*) FROM executions_events "
            "WHERE originator_id = %s",
            (run["id"],),
        ).fetchone()
    assert saves == (1, 5)  # Queued, Started, two nodes, Succeeded: one transaction
    queued = next(iter(client.app.state.services.executions.app.history(run["id"])))
    assert isinstance(queued, Execution.Queued)
    meta = event_metadata(queued)
    assert (meta["actor_id"], meta["correlation_id"]) == (user.user_id, "hook-once-1")
    assert meta["ip"] == "testclient"


def test_a_run_to_be_saved_with_its_run_is_saved_first_if_it_goes_to_the_queue_after_all(
    client: Client, user: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker stopped between the call's acceptance and its run (start_here says so):
    the run is saved before it is submitted, so whichever worker takes it can read it."""
    path = unique_path()
    activated(client, user, hooked(path, SEEN, method="POST", responseMode="lastNode"))
    monkeypatch.setattr(webhooks(client).worker, "start_here", lambda *given: None)
    response = client.post(f"/webhook/{path}", json={"n": 3})
    assert response.status_code == 200, response.text
    assert [(item["body"], item["seen"]) for item in response.json()] == [({"n": 3}, True)]


def test_a_run_to_be_saved_with_its_run_that_the_worker_drops_is_503_to_send_again(
    client: Client, user: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker stopped under the run before its first save: nothing of it is kept, and the
    caller is told to send the call again (not that the run goes on)."""
    path = unique_path()
    workflow_id = activated(
        client, user, hooked(path, SEEN, method="POST", responseMode="lastNode")
    )

    def dropped(*given: object) -> asyncio.Future[Execution]:
        stopped: asyncio.Future[Execution] = asyncio.get_running_loop().create_future()
        stopped.cancel()  # what a stopping worker does to the runs under way
        return stopped

    monkeypatch.setattr(webhooks(client).worker, "start_here", dropped)
    response = client.post(f"/webhook/{path}", json={"n": 4})
    body = problem(response, 503)
    assert "send the request again" in body["detail"]
    assert response.headers["retry-after"] == "1"
    head = client.app.state.services.executions.app.head_position()
    assert read(client, user, "/executions", head, workflowId=workflow_id)["items"] == []


def test_a_call_runs_in_this_process_unless_no_slot_frees_for_a_while_then_through_the_queue(
    client: Client, user: Account, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run this process's worker has no slot for within `unsaved_wait_seconds` goes to the
    queue (Redis here: another worker may have room), saved first; it is still answered."""
    queue = client.app.state.services.executions.queue
    submitted: list[str] = []
    submit = queue.submit
    monkeypatch.setattr(
        queue, "submit", lambda run, priority: (submitted.append(run), submit(run, priority))[1]
    )
    path = unique_path()
    definition = hooked(path, SEEN, method="POST", responseMode="lastNode")
    workflow_id = activated(client, user, definition)
    here = client.post(f"/webhook/{path}", json={"n": 1})

    async def no_slot(self: Slots) -> bool:
        return False

    monkeypatch.setattr(Slots, "acquire_now", no_slot)
    monkeypatch.setattr(webhooks(client).worker, "unsaved_wait_seconds", 0.0)
    queued = client.post(f"/webhook/{path}", json={"n": 2})
    for response, n in [(here, 1), (queued, 2)]:
        assert response.status_code == 200, response.text
        assert [(item["body"], item["seen"]) for item in response.json()] == [({"n": n}, True)]
    head = client.app.state.services.executions.app.head_position()
    runs = read(client, user, "/executions", head, workflowId=workflow_id)["items"]
    by_input = {ended(client, run["id"]).input_items[0]["body"]["n"]: run["id"] for run in runs}
    assert [run for run in submitted if run in by_input.values()] == [by_input[2]]
    with psycopg.connect(database_url) as conn:
        saves = conn.execute(
            "SELECT count(DISTINCT xmin::text) FROM executions_events WHERE originator_id = %s",
            (by_input[2],),
        ).fetchone()
    assert saves == (2,)  # Queued first, then the run


def test_calls_beyond_the_accepting_threads_wait_their_turn_and_are_all_answered(
    client: Client, user: Account
) -> None:
    accepts = client.app.state.services.webhook_accepts
    path = unique_path()
    activated(client, user, hooked(path, SEEN, method="POST", responseMode="lastNode"))
    calls = 4 * int(accepts.total_tokens)

    def call(n: int) -> tuple[int, Any]:
        response = client.post(f"/webhook/{path}", json={"n": n})
        return response.status_code, response.json()

    with ThreadPoolExecutor(calls) as pool:
        answers = list(pool.map(call, range(calls)))
    assert [status for status, _ in answers] == [200] * calls
    assert [body[0]["body"]["n"] for _, body in answers] == list(range(calls))
    assert accepts.borrowed_tokens == 0


def test_a_call_beyond_the_calls_a_process_holds_is_503_at_once_and_starts_nothing(
    client: Client, user: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A2N_WEBHOOK_MAX_CALLS bounds the callers (and bodies) a flood can park in the process."""
    calls = client.app.state.services.webhook_calls
    monkeypatch.setattr(calls, "total_tokens", 1)
    pause = {"id": "pause", "type": "wait", "config": {"seconds": 1}}
    path = unique_path()
    definition = hooked(path, pause, method="POST", responseMode="lastNode")
    workflow_id = activated(client, user, definition)
    executions = client.app.state.services.executions.app

    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(client.post, f"/webhook/{path}", json={"n": 1})
        deadline = time.monotonic() + 10
        while calls.borrowed_tokens == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        refused = client.post(f"/webhook/{path}", json={"n": 2})
        assert held.result().status_code == 200
    busy = problem(refused, 503)
    assert "A2N_WEBHOOK_MAX_CALLS" in busy["detail"]
    assert refused.headers["retry-after"] == "1"
    assert calls.borrowed_tokens == 0
    assert client.post(f"/webhook/{path}", json={"n": 3}).status_code == 200
    # The refused call started nothing: the runs are the first and the third call's.
    runs = read(client, user, "/executions", executions.head_position(), workflowId=workflow_id)
    assert sorted(
        ended(client, run["id"]).input_items[0]["body"]["n"] for run in runs["items"]
    ) == [
        1,
        3,
    ]


def test_last_node_mode_answers_500_with_the_execution_when_the_run_fails(
    client: Client, user: Account
) -> None:
    boom = {"id": "boom", "type": "code", "config": {"code": "raise ValueError('no')"}}
    path = unique_path()
    activated(client, user, hooked(path, boom, responseMode="lastNode"))
    failed = problem(client.get(f"/webhook/{path}"), 500)
    assert "FAILED" in failed["detail"]
    assert str(ended(client, failed["executionId"]).status) == "FAILED"


def test_a_run_that_does_not_answer_in_time_gets_504_and_goes_on(
    client: Client, user: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks(client), "wait_seconds", 0.3)
    slow = {"id": "slow", "type": "wait", "config": {"seconds": 600}}
    path = unique_path()
    activated(client, user, hooked(path, slow, responseMode="lastNode"))
    late = problem(client.get(f"/webhook/{path}"), 504)
    execution_id = late["executionId"]
    running = client.app.state.services.executions.app.load(execution_id, Execution)
    assert not running.is_final
    cancelled = client.post(f"{API}/executions/{execution_id}/cancel", headers=user)
    assert cancelled.status_code == 200, cancelled.text


def respond(**config: Any) -> dict[str, Any]:
    return {"id": "answer", "type": "respond_to_webhook", "name": "Answer", "config": config}


def test_respond_node_mode_answers_what_the_node_chose(client: Client, user: Account) -> None:
    path = unique_path()
    answer = respond(
        statusCode=201,
        headers={"X-Order": "{{ $json.body.id }}", "Set-Cookie": "a=b", "Connection": "close"},
        body={"created": "{{ $json.body.id }}"},
    )
    activated(client, user, hooked(path, answer, method="POST", responseMode="respondNode"))
    response = client.post(f"/webhook/{path}", json={"id": "o-9"})
    assert response.status_code == 201, response.text
    assert response.json() == {"created": "o-9"}
    assert response.headers["x-order"] == "o-9"
    assert "set-cookie" not in response.headers
    assert response.headers.get("connection") != "close"


def test_respond_node_mode_sends_a_string_body_as_text(client: Client, user: Account) -> None:
    path = unique_path()
    answer = respond(body="thanks", headers={"Content-Type": "text/csv"})
    activated(client, user, hooked(path, answer, responseMode="respondNode"))
    response = client.get(f"/webhook/{path}")
    assert response.status_code == 200, response.text
    assert response.text == "thanks"
    assert response.headers["content-type"].startswith("text/csv")


def test_respond_node_mode_answers_before_the_run_ends(
    client: Client, user: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks(client), "wait_seconds", 10)
    path = unique_path()
    slow = {"id": "slow", "type": "wait", "config": {"seconds": 600}}
    definition = hooked(path, respond(statusCode=200), slow, responseMode="respondNode")
    workflow_id = activated(client, user, definition)
    response = client.get(f"/webhook/{path}")
    assert response.status_code == 200, response.text
    assert response.json()["path"] == path  # without a body the node answers the first item
    head = client.app.state.services.executions.app.head_position()
    listed = read(client, user, "/executions", head, workflowId=workflow_id)["items"]
    assert [run["status"] for run in listed] == ["RUNNING"]
    cancelled = client.post(f"{API}/executions/{listed[0]['id']}/cancel", headers=user)
    assert cancelled.status_code == 200, cancelled.text


# -- routing ----------------------------------------------------------------------------------


def test_an_unknown_path_is_404(client: Client) -> None:
    found = problem(client.post(f"/webhook/{unique_path()}", json={}), 404)
    assert "No active workflow" in found["detail"]


def test_a_known_path_with_another_method_is_405_with_allow(client: Client, user: Account) -> None:
    path = unique_path()
    activated(client, user, hooked(path, methods=["POST", "PUT"]))
    refused = client.delete(f"/webhook/{path}")
    problem(refused, 405)
    assert refused.headers["allow"] == "POST, PUT"


def test_an_inactive_workflow_does_not_answer(client: Client, user: Account) -> None:
    path = unique_path()
    made = create(client, user, definition=hooked(path))
    read(client, user, f"/workflows/{made['id']}/triggers", made["position"])
    problem(client.get(f"/webhook/{path}"), 404)


def test_a_deactivated_workflow_stops_answering_at_once(client: Client, user: Account) -> None:
    path = unique_path()
    workflow_id = activated(client, user, hooked(path))
    assert client.get(f"/webhook/{path}").status_code == 202
    off = client.post(f"{API}/workflows/{workflow_id}/deactivate", headers=user)
    assert off.status_code == 200, off.text
    # Whether or not the read model caught up: the event store says it is inactive.
    problem(client.get(f"/webhook/{path}"), 404)


# -- one path per active workflow -------------------------------------------------------------


def test_a_second_active_workflow_may_not_take_a_path_and_method(
    client: Client, user: Account
) -> None:
    path = unique_path()
    first = activated(client, user, hooked(f"{path}/:id", methods=["GET", "POST"]))
    other = sign_up_and_create(client, hooked(f"{path}/:number", method="POST"))
    refused = client.post(f"{API}/workflows/{other.workflow_id}/activate", headers=other.account)
    detail = problem(refused, 409)["detail"]
    assert first in detail
    assert f"POST /webhook/{path}/:number" in detail
    another_method = sign_up_and_create(client, hooked(f"{path}/:id", method="DELETE"))
    allowed = client.post(
        f"{API}/workflows/{another_method.workflow_id}/activate", headers=another_method.account
    )
    assert allowed.status_code == 200, allowed.text
    assert client.post(f"{API}/workflows/{first}/deactivate", headers=user).status_code == 200
    again = client.post(f"{API}/workflows/{other.workflow_id}/activate", headers=other.account)
    assert again.status_code == 200, again.text


def test_of_two_activations_at_the_same_time_one_takes_the_path(client: Client) -> None:
    path = unique_path()
    rivals = [sign_up_and_create(client, hooked(path)) for _ in range(4)]

    def activate(made: Made) -> int:
        url = f"{API}/workflows/{made.workflow_id}/activate"
        return int(client.post(url, headers=made.account).status_code)

    with ThreadPoolExecutor(len(rivals)) as pool:
        statuses = sorted(pool.map(activate, rivals))
    assert statuses == [200, 409, 409, 409]


def test_publishing_a_clashing_version_of_an_active_workflow_is_refused(
    client: Client, user: Account
) -> None:
    taken = unique_path()
    activated(client, user, hooked(taken))
    workflow_id = activated(client, user, hooked(unique_path()))
    saved = client.put(
        f"{API}/workflows/{workflow_id}/definition", json=hooked(taken), headers=user
    )
    assert saved.status_code == 200, saved.text
    refused = client.post(f"{API}/workflows/{workflow_id}/versions/2/publish", headers=user)
    assert taken in problem(refused, 409)["detail"]


class Made:
    def __init__(self, account: Account, workflow_id: str) -> None:
        self.account = account
        self.workflow_id = workflow_id


def sign_up_and_create(client: Client, definition: dict[str, Any]) -> Made:
    account = sign_up(client)
    return Made(account, create(client, account, definition=definition)["id"])


# -- the test URL -----------------------------------------------------------------------------


def listen(client: Client, user: Account, workflow_id: str) -> dict[str, Any]:
    response = client.post(f"{API}/workflows/{workflow_id}/webhook-test/listen", headers=user)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_test_url_answers_once_while_listening_with_the_draft(
    client: Client, user: Account
) -> None:
    path = unique_path()
    workflow_id = activated(client, user, hooked(path, SEEN, responseMode="lastNode"))
    draft = hooked(path, {**SEEN, "config": {"fields": {"seen": "draft"}}}, responseMode="lastNode")
    saved = client.put(f"{API}/workflows/{workflow_id}/definition", json=draft, headers=user)
    assert saved.status_code == 200, saved.text
    problem(client.get(f"/webhook-test/{path}"), 404)
    listening = listen(client, user, workflow_id)
    assert listening["version"] == 2
    assert [w["testUrl"] for w in listening["webhooks"]] == [
        f"http://127.0.0.1:8000/webhook-test/{path}"
    ]
    tried = client.get(f"/webhook-test/{path}")
    assert tried.status_code == 200, tried.text
    assert tried.json()[0]["seen"] == "draft"
    assert "listen" in problem(client.get(f"/webhook-test/{path}"), 404)["detail"]
    assert client.get(f"/webhook/{path}").json()[0]["seen"] is True


def test_a_test_run_runs_the_draft_of_a_workflow_never_activated(
    client: Client, user: Account
) -> None:
    path = unique_path()
    made = create(client, user, definition=hooked(path, SEEN, method="POST"))
    listen(client, user, made["id"])
    response = client.post(f"/webhook-test/{path}", content=b"plain words")
    assert response.status_code == 202, response.text
    execution = ended(client, response.json()["executionId"])
    assert execution.input_items[0]["body"] == "plain words"
    assert execution.trigger_data["test"] is True
    assert execution.workflow_version == 1


def test_listening_needs_a_webhook_and_edit_and_a_free_path(client: Client, user: Account) -> None:
    path = unique_path()
    made = create(client, user, definition=hooked(path))
    listen(client, user, made["id"])
    rival = sign_up_and_create(client, hooked(path))
    url = f"{API}/workflows/{rival.workflow_id}/webhook-test/listen"
    assert made["id"] in problem(client.post(url, headers=rival.account), 409)["detail"]
    manual = create(client, user, definition={"nodes": [{"id": "m", "type": "manual_trigger"}]})
    refused = client.post(f"{API}/workflows/{manual['id']}/webhook-test/listen", headers=user)
    assert "no enabled webhook trigger" in problem(refused, 409)["detail"]
    problem(client.post(f"{API}/workflows/{made['id']}/webhook-test/listen"), 401)
    stranger = sign_up_and_create(client, hooked(unique_path()))
    problem(
        client.post(f"{API}/workflows/{made['id']}/webhook-test/listen", headers=stranger.account),
        404,
    )


# -- bodies -----------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413(client: Client, user: Account) -> None:
    path = unique_path()
    activated(client, user, hooked(path, method="POST"))
    limit = client.app.state.services.settings.max_body_bytes
    response = client.post(f"/webhook/{path}", content=b"x" * (limit + 1))
    problem(response, 413)


def test_malformed_json_is_400_and_starts_nothing(client: Client, user: Account) -> None:
    path = unique_path()
    activated(client, user, hooked(path, method="POST"))
    before = client.app.state.services.executions.app.head_position()
    for body in (b'{"a": ', b'{"a": NaN}', b"[" * 100_000 + b"]" * 100_000):
        response = client.post(
            f"/webhook/{path}", content=body, headers={"Content-Type": "application/json"}
        )
        problem(response, 400)
    assert client.app.state.services.executions.app.head_position() == before


def test_any_content_type_is_accepted_as_text(client: Client, user: Account) -> None:
    path = unique_path()
    activated(client, user, hooked(path, method="POST", responseMode="lastNode"))
    response = client.post(
        f"/webhook/{path}",
        content=b"a=1&b=2",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.json()[0]["body"] == "a=1&b=2"
    vendor = client.post(
        f"/webhook/{path}", content=b'{"v": 1}', headers={"Content-Type": "application/vnd.x+json"}
    )
    assert vendor.json()[0]["body"] == {"v": 1}


# -- who may call -----------------------------------------------------------------------------

TOKEN = "tok-" + uuid.uuid4().hex
PASSWORD = "pw-" + uuid.uuid4().hex
HMAC_SECRET = "hs-" + uuid.uuid4().hex
COOKIE = "session=ck-" + uuid.uuid4().hex


def new_credential(client: Client, user: Account, kind: str, data: dict[str, str]) -> str:
    response = client.post(
        f"{API}/credentials",
        json={"name": f"hook {uuid.uuid4().hex[:8]}", "type": kind, "data": data},
        headers=user,
    )
    assert response.status_code == 201, response.text
    credential_id: str = response.json()["id"]
    return credential_id


@pytest.fixture
def credentials(client: Client, user: Account) -> dict[str, str]:
    """Credentials of `user`, stored sealed and opened through the vault: a token, a user and
    password, an HMAC secret."""
    return {
        "header": new_credential(client, user, "API_KEY", {"apiKey": TOKEN}),
        "basic": new_credential(
            client, user, "BASIC_AUTH", {"username": "shop", "password": PASSWORD}
        ),
        "hmac": new_credential(client, user, "CUSTOM", {"secret": HMAC_SECRET}),
    }


def guarded(client: Client, user: Account, auth: dict[str, Any]) -> str:
    path = unique_path()
    activated(client, user, hooked(path, SEEN, methods=["GET", "POST"], auth=auth))
    return path


def test_header_auth_needs_the_exact_token(
    client: Client, user: Account, credentials: dict[str, str]
) -> None:
    auth = {"mode": "header", "headerName": "X-Token", "credentialId": credentials["header"]}
    path = guarded(client, user, auth)
    accepted = client.get(f"/webhook/{path}", headers={"X-Token": TOKEN, "X-Other": "kept"})
    assert accepted.status_code == 202, accepted.text
    headers = ended(client, accepted.json()["executionId"]).input_items[0]["headers"]
    assert "x-token" not in headers
    assert headers["x-other"] == "kept"
    for sent in ({"X-Token": TOKEN + "x"}, {"X-Token": ""}, {}):
        problem(client.get(f"/webhook/{path}", headers=sent), 401)


def basic(user_name: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{user_name}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def test_basic_auth_needs_the_user_name_and_password(
    client: Client, user: Account, credentials: dict[str, str]
) -> None:
    path = guarded(client, user, {"mode": "basic", "credentialId": credentials["basic"]})
    accepted = client.get(f"/webhook/{path}", headers=basic("shop", PASSWORD))
    assert accepted.status_code == 202, accepted.text
    for sent in (
        basic("shop", "wrong"),
        basic("other", PASSWORD),
        {"Authorization": "Basic !"},
        {},
    ):
        refused = client.get(f"/webhook/{path}", headers=sent)
        problem(refused, 401)
        assert refused.headers["www-authenticate"].startswith("Basic")


def signed(body: bytes, *, at: float | None = None, secret: str = HMAC_SECRET) -> dict[str, str]:
    stamp = str(int(time.time() if at is None else at))
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Signature": f"sha256={digest}", "X-A2N-Timestamp": stamp}


def test_hmac_auth_needs_a_fresh_signature_of_the_body_used_once(
    client: Client, user: Account, credentials: dict[str, str]
) -> None:
    auth = {"mode": "hmac", "headerName": "X-Signature", "credentialId": credentials["hmac"]}
    path = guarded(client, user, auth)
    body = b'{"paid": 12}'
    headers = {**signed(body), "Content-Type": "application/json"}
    accepted = client.post(f"/webhook/{path}", content=body, headers=headers)
    assert accepted.status_code == 202, accepted.text
    replayed = client.post(f"/webhook/{path}", content=body, headers=headers)
    assert "already used" in problem(replayed, 401)["detail"]
    refusals = [
        (b'{"paid": 13}', headers),  # the body changed after signing
        (body, signed(body, secret="not the secret")),
        (body, signed(body, at=time.time() - 330)),  # too old
        (body, signed(body, at=time.time() + 330)),  # from the future
        (body, {"X-Signature": headers["X-Signature"]}),  # no timestamp
        (body, {}),
    ]
    for content, sent in refusals:
        problem(client.post(f"/webhook/{path}", content=content, headers=sent), 401)


def test_a_credential_is_looked_up_for_the_workflows_owner(
    client: Client, user: Account, credentials: dict[str, str]
) -> None:
    """Another user naming `user`'s credential in their trigger does not get to use it."""
    auth = {"mode": "header", "headerName": "X-Token", "credentialId": credentials["header"]}
    intruder = sign_up(client)
    path = guarded(client, intruder, auth)
    problem(client.get(f"/webhook/{path}", headers={"X-Token": TOKEN}), 401)


def test_a_guarded_webhook_whose_credential_does_not_exist_refuses_every_call(
    client: Client, user: Account
) -> None:
    auth = {"mode": "header", "headerName": "X-Token", "credentialId": str(uuid.uuid4())}
    path = guarded(client, user, auth)
    problem(client.get(f"/webhook/{path}", headers={"X-Token": TOKEN}), 401)


def test_no_secret_sent_to_a_webhook_reaches_an_event(
    client: Client, user: Account, credentials: dict[str, str], database_url: str
) -> None:
    header = {"mode": "header", "headerName": "X-Token", "credentialId": credentials["header"]}
    sent = [
        (guarded(client, user, header), {"X-Token": TOKEN, "Cookie": COOKIE}, b""),
        (
            guarded(client, user, {"mode": "basic", "credentialId": credentials["basic"]}),
            {**basic("shop", PASSWORD), "Cookie": COOKIE},
            b"",
        ),
    ]
    hmac_auth = {"mode": "hmac", "headerName": "X-Signature", "credentialId": credentials["hmac"]}
    body = b"signed words"
    signature = signed(body)
    sent.append((guarded(client, user, hmac_auth), signature, body))
    for path, headers, content in sent:
        response = client.post(f"/webhook/{path}", content=content, headers=headers)
        assert response.status_code == 202, response.text
        ended(client, response.json()["executionId"])
    secrets = [TOKEN, PASSWORD, COOKIE, basic("shop", PASSWORD)["Authorization"].split()[1]]
    secrets.append(signature["X-Signature"].removeprefix("sha256="))
    with psycopg.connect(database_url) as conn:
        stored = b"\n".join(
            bytes(row[0]) for row in conn.execute("SELECT state FROM executions_events")
        )
    assert stored  # the runs are there
    assert [s for s in secrets if s.encode() in stored] == []
