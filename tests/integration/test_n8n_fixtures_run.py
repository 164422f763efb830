"""The n8n fixtures (tests/fixtures/n8n/) imported the way a user imports them (WorkflowTransfer
over the credential read model; this user has no credentials), published, and run by the real
engine with the real node runtimes, against the real event store: what each workflow does once
it is in A2N.

Only what cannot run here is changed before publishing, and each change is named: URLs point at
a local HTTP server instead of the fixture's hosts (no outbound network), waits of 15 minutes or
an hour take 10 ms, and where the import asks for a review (an expression A2N cannot run) the
test makes the rewrite a user would. Webhook and schedule workflows are run by hand, as a test
run does: they start at their first trigger with an item shaped like what it would emit.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from psycopg_pool import ConnectionPool

from application.caller import Caller
from application.credentials.directory import ReadModelCredentials
from application.credentials.vault import CredentialVault
from application.eventstore import event_store_env
from application.executions.app import ExecutionsApp
from application.executions.commands import ExecutionService
from application.executions.queue import MemoryQueue
from application.workflows.app import WorkflowsApp
from application.workflows.commands import WorkflowService
from application.workflows.transfer import WorkflowTransfer
from domain.executions.execution import Execution, ExecutionStatus, NodeStatus
from domain.workflows.transfer import IssueKind, SourceFormat
from tests.integration.helpers import credential_vault, run_with_built_in_nodes

FIXTURES = Path(__file__).parent.parent / "fixtures" / "n8n"
OWNER = Caller("0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f81", correlation_id="req-n8n-fixtures")
SHORT_WAIT = 0.01
FIRED_AT = "2030-01-31T02:00:00+01:00"

STOCK = [
    {"sku": "A-1", "quantity": 3, "tracked": True, "category": "food"},
    {"sku": "B-2", "quantity": 40, "tracked": True, "category": "drinks"},
    {"sku": "C-3", "quantity": 2, "tracked": True, "category": "hardware"},
    {"sku": "D-4", "quantity": 1, "tracked": False, "category": "toys"},
]
CUSTOMERS = [
    {"id": "c1", "email": "ada@example.com", "active": True, "name": "Ada"},
    {"id": "c2", "email": "bob@example.com", "active": False, "name": "Bob"},
    {"id": "c3", "email": "cy@example.com", "active": True, "name": "Cy"},
]
ORDERS = [{"orderId": "o1", "customerId": "c1", "total": 10}]


# -- a local stand-in for the fixtures' HTTP services ---------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Services:
    """What the fixtures' hosts answer (erp.example.com, api.example.com, hooks.example.org,
    crm.example.net), and every request they got."""

    base: str = ""
    seen: list[Seen] = field(default_factory=list)

    def answer(self, request: Seen) -> tuple[int, Any]:
        if request.path == "/api/stock":
            return 200, STOCK
        if request.path == "/v2/customers":
            return 200, CUSTOMERS
        if request.path == "/v2/orders":
            return 200, ORDERS
        if request.path == "/sync-started":
            return 202, {"accepted": True}
        if (contact := re.fullmatch(r"/contacts/(\w+)", request.path)) is not None:
            return 200, {"id": contact[1], **(request.body or {}), "updated": True}
        return 404, {"error": "no such path"}

    def requests(self, path: str) -> list[Seen]:
        return [r for r in self.seen if r.path == path]


@pytest.fixture
def services() -> Iterator[Services]:
    known = Services()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            request = Seen(
                self.command,
                url.path,
                {k: v[0] for k, v in parse_qs(url.query).items()},
                {k.lower(): v for k, v in self.headers.items()},
                json.loads(raw) if raw else None,
            )
            known.seen.append(request)
            status, answer = known.answer(request)
            body = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_PUT = do_GET

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    known.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield known
    httpd.shutdown()
    httpd.server_close()


# -- importing, publishing and running ------------------------------------------------------

Change = Callable[[dict[str, Any]], None]


@dataclass
class Rig:
    transfer: WorkflowTransfer
    workflows: WorkflowService
    executions: ExecutionService
    vault: CredentialVault
    services: Services

    def publish(self, fixture: str, *changes: Change) -> str:
        """Import the fixture as a user would, make `changes` to the imported definition (one
        edit, so a second version) and publish the result."""
        document = json.loads((FIXTURES / f"{fixture}.json").read_text())
        imported = self.transfer.import_document(OWNER, document, SourceFormat.N8N)
        workflow = imported.recorded.aggregate
        definition = copy.deepcopy(workflow.definition)
        for change in changes:
            change(definition)
        version = 1
        if definition != workflow.definition:
            edited = self.workflows.replace_definition(OWNER, workflow.id, definition)
            version = edited.aggregate.definition_version
        self.workflows.publish_version(OWNER, workflow.id, version)
        return workflow.id

    def run(self, workflow_id: str, items: list[dict[str, Any]]) -> Execution:
        queued = self.executions.start(OWNER, workflow_id, items)
        return run_with_built_in_nodes(
            self.executions, self.workflows, queued.aggregate.id, "worker-n8n-fixtures", self.vault
        )

    def local_urls(self, definition: dict[str, Any]) -> None:
        """Point every http_request at the local services, keeping path and expressions."""
        for node in nodes_of(definition, "http_request"):
            node["config"]["url"] = re.sub(
                r"^https?://[^/]+", self.services.base, node["config"]["url"]
            )


@pytest.fixture
def rig(database_url: str, services: Services) -> Iterator[Rig]:
    env = event_store_env(database_url, pool_size=3)
    workflows_app, executions_app = WorkflowsApp(env=env), ExecutionsApp(env=env)
    workflows = WorkflowService(workflows_app)
    executions = ExecutionService(executions_app, workflows, MemoryQueue())
    vault = credential_vault(database_url)
    with ConnectionPool(database_url, min_size=1, max_size=2, open=True) as pool:
        transfer = WorkflowTransfer(workflows, ReadModelCredentials(pool))
        yield Rig(transfer, workflows, executions, vault, services)
    workflows_app.close()
    executions_app.close()
    vault.app.close()


def nodes_of(definition: dict[str, Any], node_type: str) -> list[dict[str, Any]]:
    return [node for node in definition["nodes"] if node["type"] == node_type]


def short_waits(definition: dict[str, Any]) -> None:
    for node in nodes_of(definition, "wait"):
        node["config"] = {"seconds": SHORT_WAIT}


def statuses(execution: Execution) -> dict[str, NodeStatus]:
    return {node_id: run.status for node_id, run in execution.nodes.items()}


def output(execution: Execution, node_id: str, handle: str = "output") -> list[dict[str, Any]]:
    return execution.node_outputs()[node_id][handle]


def stopped_at_placeholder(ended: Execution, node_id: str, name: str, reason: str) -> None:
    """The run failed at the placeholder node, saying what it stands for and what to do."""
    assert ended.status is ExecutionStatus.FAILED
    assert statuses(ended)[node_id] is NodeStatus.FAILED
    assert ended.error_message == (
        f"node {name!r} failed: the node is a placeholder: {reason}; replace it, or disable it "
        "to let items pass through"
    )


def webhook_request(body: dict[str, Any]) -> dict[str, Any]:
    """What the webhook trigger of 'Order intake' emits for a POST /webhook/orders."""
    return {
        "method": "POST",
        "path": "orders",
        "headers": {"content-type": "application/json"},
        "query": {},
        "body": body,
    }


# -- Order intake: webhook -> IF -> Set (two branches) -> Respond to Webhook -----------------


def test_order_intake_gives_big_german_orders_priority_and_answers_201(rig: Rig) -> None:
    workflow_id = rig.publish("webhook_if_respond")
    order = {
        "total": 250,
        "country": "DE",
        "customer": {"firstName": "Ada", "lastName": "Lovelace"},
    }
    ended = rig.run(workflow_id, [webhook_request(order)])
    assert ended.status is ExecutionStatus.SUCCESS, ended.error_message
    assert statuses(ended)["mark-normal"] is NodeStatus.SKIPPED
    assert output(ended, "big-german-order", "false") == []
    # keepOnlySet: only the fields Mark priority sets, the total a number as in n8n
    priority = {"priority": "high", "total": 250, "customer": "Ada Lovelace"}
    assert output(ended, "mark-priority") == [priority]
    assert ended.output_items == [priority]
    assert ended.response == {
        "nodeId": "respond",
        "status": 201,
        "headers": {"X-Order-Priority": "high"},
        "body": {"accepted": True, "priority": "high"},
    }


@pytest.mark.parametrize(
    "order",
    [
        {"total": 250, "country": "FR", "customer": {"firstName": "Jean", "lastName": "Bart"}},
        {"total": 20, "country": "DE", "customer": {"firstName": "Ada", "lastName": "L"}},
        {"country": "DE"},  # no total: n8n finds "total > 100" false, so does the import
    ],
)
def test_order_intake_marks_other_orders_normal_keeping_the_request(
    rig: Rig, order: dict[str, Any]
) -> None:
    workflow_id = rig.publish("webhook_if_respond")
    before = datetime.now().astimezone()
    ended = rig.run(workflow_id, [webhook_request(order)])
    assert ended.status is ExecutionStatus.SUCCESS, ended.error_message
    assert statuses(ended)["mark-priority"] is NodeStatus.SKIPPED
    [marked] = output(ended, "mark-normal")
    assert marked["body"] == order  # includeOtherFields: the request is kept
    assert marked["priority"] == "normal"
    assert before <= datetime.fromisoformat(marked["receivedAt"]) <= datetime.now().astimezone()
    assert ended.response is not None
    assert (ended.response["status"], ended.response["body"]) == (
        201,
        {"accepted": True, "priority": "normal"},
    )


# -- Ticket router: manual -> Python code -> Switch (3 rules + fallback) ---------------------


def ticket(**fields: Any) -> dict[str, Any]:
    return {"subject": "  Printer on fire  ", "priority": "normal", "customer": {}, **fields}


def test_ticket_router_sends_urgent_tickets_to_the_slack_placeholder_which_fails(
    rig: Rig,
) -> None:
    ended = rig.run(rig.publish("switch_fallback_code"), [ticket(priority="urgent")])
    stopped_at_placeholder(
        ended, "page-on-call", "Page on-call", "n8n node type n8n-nodes-base.slack is not supported"
    )


def test_ticket_router_sends_invoices_to_the_sub_workflow_placeholder_which_fails(
    rig: Rig,
) -> None:
    ended = rig.run(rig.publish("switch_fallback_code"), [ticket(subject=" invoice #12 ")])
    stopped_at_placeholder(
        ended, "billing-flow", "Billing flow", "runs the n8n workflow 'Create invoice case'"
    )
    assert output(ended, "route-ticket", "1") == [ticket(subject="invoice #12")]


def test_ticket_router_escalation_waits_then_passes_the_disabled_set_node(rig: Rig) -> None:
    workflow_id = rig.publish("switch_fallback_code", short_waits)
    busy = ticket(customer={"tier": "pro"}, openTickets=4)
    ended = rig.run(workflow_id, [busy])
    assert ended.status is ExecutionStatus.SUCCESS, ended.error_message
    cleaned = {**busy, "subject": "Printer on fire"}  # the n8n Python code ran as written
    assert output(ended, "clean-subject") == [cleaned]
    assert output(ended, "route-ticket", "2") == [cleaned]
    # "Escalate" is disabled in n8n and stays so: the items pass it unchanged.
    assert statuses(ended)["escalate"] is NodeStatus.SKIPPED
    assert ended.output_items == [cleaned]


def test_ticket_router_sends_other_tickets_to_the_fallback(rig: Rig) -> None:
    # No tier, no openTickets: rule 3 is false (as in n8n), not an error; fallback takes it.
    ended = rig.run(rig.publish("switch_fallback_code"), [ticket()])
    assert ended.status is ExecutionStatus.SUCCESS, ended.error_message
    assert output(ended, "route-ticket", "fallback") == [ticket(subject="Printer on fire")]
    assert {node: statuses(ended)[node] for node in ("page-on-call", "billing-flow")} == {
        "page-on-call": NodeStatus.SKIPPED,
        "billing-flow": NodeStatus.SKIPPED,
    }
    assert ended.output_items == [ticket(subject="Printer on fire")]


# -- Nightly sync: schedule -> 3 HTTP requests -> Merge -> JavaScript code -> HTTP per item --


def test_nightly_sync_as_imported_stops_at_the_request_whose_luxon_expression_a2n_lacks(
    rig: Rig,
) -> None:
    workflow_id = rig.publish("schedule_http_fanout", rig.local_urls)
    ended = rig.run(workflow_id, [{"firedAt": FIRED_AT}])
    stopped_at_placeholder(
        ended,
        "get-customers",
        "Get customers",
        "its imported http_request config is not valid: /config/query/updatedSince does not "
        "parse as an expression: only functions are called, as in lower(x): A2N values have no "
        "methods (at offset 13)",
    )


def restore_get_customers(definition: dict[str, Any]) -> None:
    """The review the import asks for: the placeholder's notes keep the request's config; its
    Luxon `$now.minus({ days: 1 }).toISO()` is written in A2N as the run's time."""
    [node] = [n for n in definition["nodes"] if n["id"] == "get-customers"]
    config = json.loads(node["notes"].split("Config: ", 1)[1])
    config["query"]["updatedSince"] = "{{ $now }}"
    node.update(type="http_request", config=config)


def test_nightly_sync_upserts_the_active_customers_once_reviewed(
    rig: Rig, services: Services
) -> None:
    workflow_id = rig.publish("schedule_http_fanout", restore_get_customers, rig.local_urls)
    ended = rig.run(workflow_id, [{"firedAt": FIRED_AT}])
    assert ended.status is ExecutionStatus.SUCCESS, ended.error_message
    [customers] = services.requests("/v2/customers")
    assert customers.query["limit"] == "500"
    assert datetime.fromisoformat(customers.query["updatedSince"]) <= datetime.now().astimezone()
    [orders] = services.requests("/v2/orders")
    assert orders.headers["accept"] == "application/json"
    [announce] = services.requests("/sync-started")
    assert (announce.method, announce.body) == ("POST", {"job": "nightly-sync", "source": "n8n"})
    # The bodies are the items (as in n8n): customers, then orders, appended by the Merge.
    assert output(ended, "merge") == CUSTOMERS + ORDERS
    # The n8n JavaScript keeps the active customers' id and email.
    active = [{"id": "c1", "email": "ada@example.com"}, {"id": "c3", "email": "cy@example.com"}]
    assert output(ended, "active-customers") == active
    upserts = [r for r in services.seen if r.path.startswith("/contacts/")]
    assert [(r.method, r.path, r.body) for r in upserts] == [
        ("PUT", "/contacts/c1", {"email": "ada@example.com", "syncedBy": "n8n"}),
        ("PUT", "/contacts/c3", {"email": "cy@example.com", "syncedBy": "n8n"}),
    ]
    assert ended.output_items == [
        {"id": "c1", "email": "ada@example.com", "syncedBy": "n8n", "updated": True},
        {"id": "c3", "email": "cy@example.com", "syncedBy": "n8n", "updated": True},
    ]


# -- Legacy stock alerts: Cron -> HTTP -> IF 1 -> Switch 2 -> Set 2 / Function -> Merge 1 ----


def test_legacy_stock_alerts_route_low_stock_by_category_and_merge_by_position(
    rig: Rig, services: Services
) -> None:
    workflow_id = rig.publish("legacy_nodes", rig.local_urls, short_waits)
    ended = rig.run(workflow_id, [{"firedAt": FIRED_AT}])
    assert ended.status is ExecutionStatus.SUCCESS, ended.error_message
    # Started at the first enabled trigger (the Cron; the header-auth webhook is disabled).
    assert "restock-hook" not in ended.nodes
    [fetch] = services.requests("/api/stock")
    assert fetch.query == {"warehouse": "north"}
    assert "authorization" not in fetch.headers  # no credential known: the request is anonymous
    a1, b2, c3, d4 = STOCK
    assert output(ended, "low-stock", "true") == [a1, c3]
    assert output(ended, "low-stock", "false") == [b2, d4]  # plenty, or not tracked
    assert output(ended, "by-category", "0") == [a1]
    assert output(ended, "by-category", "2") == [c3]
    assert output(ended, "build-alert") == [{"threshold": 10, "alert": "Only 3 left of A-1"}]
    # The n8n Function node's items.map(item => ({json: {...item.json, reorder: true}}))
    assert output(ended, "flag-reorder") == [{**c3, "reorder": True}]
    assert output(ended, "merge") == [
        {"threshold": 10, "alert": "Only 3 left of A-1", **c3, "reorder": True}
    ]
    # The loop back from "Retry later" was dropped at import (A2N has no cycles): it waits,
    # then ends the run, so its items are the run's output (the last sink in the definition).
    assert output(ended, "retry-later") == [b2, d4]
    assert ended.output_items == [b2, d4]


def test_imports_report_what_the_runs_show(rig: Rig) -> None:
    """Each failure above was announced by the import report, at the node that failed."""
    reports = {
        fixture: rig.transfer.import_document(
            OWNER,
            json.loads((FIXTURES / f"{fixture}.json").read_text()),
            SourceFormat.N8N,
        ).issues
        for fixture in ("switch_fallback_code", "schedule_http_fanout")
    }
    assert {
        (i.kind, i.node_id)
        for i in reports["switch_fallback_code"]
        if i.kind is IssueKind.UNSUPPORTED_NODE
    } == {
        (IssueKind.UNSUPPORTED_NODE, "page-on-call"),
        (IssueKind.UNSUPPORTED_NODE, "billing-flow"),
    }
    assert {
        (i.kind, i.node_id)
        for i in reports["schedule_http_fanout"]
        if i.kind in (IssueKind.EXPRESSION, IssueKind.INVALID_CONFIG)
    } == {(IssueKind.EXPRESSION, "get-customers"), (IssueKind.INVALID_CONFIG, "get-customers")}
