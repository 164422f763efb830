"""Authorization over every route of the app, enumerated from the router.

Each protected route has a `Case` saying how to call it for real. For every route: no credentials
→ 401; the right caller → 2xx; someone else's resource → 404; a caller lacking the role, the scope
or a signed-in session → 403. A route without a case fails `test_every_route_has_a_case`, so new
routes are covered as they are added.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pyotp
import pytest
from litestar.testing import TestClient

from api.app import API_PREFIX, create_app
from api.auth import authorize_metrics
from application.executions.app import ExecutionsApp
from application.settings import Settings
from domain.executions.schedule import schedule_id
from tests.api.helpers import (
    API,
    METRICS_TOKEN,
    N8N_WORKFLOW,
    PASSWORD,
    RUNNABLE,
    SCRAPER,
    SLOW,
    Account,
    create,
    problem,
    promote,
    published,
    run,
    run_seen,
    scheduled_workflow,
    share,
    sign_up,
    webhook_graph,
)
from tests.api.test_credentials import create_credential, share_credential
from tests.api.test_custom_nodes import WEBHOOK, create_node, node_name
from tests.integration.helpers import GRAPH

Client = TestClient[Any]
RoleName = Literal["USER", "ADMIN", "OWNER"]


@dataclass(frozen=True)
class Call:
    """Path parameters, JSON body and query parameters of one request."""

    params: dict[str, str] = field(default_factory=dict)
    body: Any = None
    query: dict[str, str] = field(default_factory=dict)


Build = Callable[["World", Account], Call]


@dataclass(frozen=True)
class Case:
    """How to call a route as `me` (a fresh account with `role`), and, for routes that address
    a user's resource, the same call aimed at somebody else's."""

    own: Build = lambda world, me: Call()
    foreign: Build | None = None
    role: RoleName = "USER"


@dataclass
class World:
    client: Client
    owner: Account
    runs: ExecutionsApp

    def account(self, role: RoleName) -> Account:
        if role == "OWNER":
            return self.owner
        me = sign_up(self.client)
        return promote(self.client, self.owner, me) if role == "ADMIN" else me

    def stranger(self) -> Account:
        """A new account, already in the read model (so a 404 means 'not yours')."""
        account = sign_up(self.client)
        seen = self.client.get(
            f"{API}/users/{account.user_id}",
            headers={**self.owner, "A2N-Min-Position": str(account.tokens["position"])},
        )
        assert seen.status_code == 200, seen.text
        return account

    def workflow(self, of: Account, **body: Any) -> str:
        """A new workflow of `of`, already in the read model (so a 404 means 'not yours')."""
        made = create(self.client, of, **body)
        seen = self.client.get(
            f"{API}/workflows/{made['id']}",
            headers={**of, "A2N-Min-Position": str(made["position"])},
        )
        assert seen.status_code == 200, seen.text
        workflow_id: str = made["id"]
        return workflow_id

    def run(self, of: Account) -> str:
        """A finished run of a new workflow of `of`, started by `of`, in the read model."""
        return run_seen(self.client, self.runs, of, self.workflow(of)).id

    def session(self, of: Account) -> str:
        sessions = self.client.get(f"{API}/me/sessions", headers=of).json()
        found: str = sessions[0]["id"]
        return found

    def api_key(self, of: Account, scopes: list[str]) -> str:
        made = self.client.post(
            f"{API}/me/api-keys", json={"name": "matrix", "scopes": scopes}, headers=of
        )
        assert made.status_code == 201, made.text
        key: str = made.json()["key"]
        return key

    def two_factor_secret(self, of: Account) -> str:
        started = self.client.post(f"{API}/me/2fa/setup", headers=of)
        assert started.status_code == 200, started.text
        secret: str = started.json()["secret"]
        return secret

    def recovery_code(self, of: Account) -> str:
        """Turn two-factor sign-in on for `of`; one of its recovery codes."""
        code = pyotp.TOTP(self.two_factor_secret(of)).now()
        confirmed = self.client.post(f"{API}/me/2fa/confirm", json={"code": code}, headers=of)
        assert confirmed.status_code == 200, confirmed.text
        recovery: str = confirmed.json()["recoveryCodes"][0]
        return recovery

    def security_event(self) -> str:
        """A new FAILED_LOGIN security event (a wrong password for a new account), projected."""
        victim = self.stranger()
        wrong = self.client.post(
            f"{API}/auth/login", json={"email": victim.email, "password": "not the password"}
        )
        assert wrong.status_code == 401, wrong.text
        head = self.client.app.state.services.identity.app.head_position()
        page = self.client.get(
            f"{API}/security-events",
            params={"userId": victim.user_id},
            headers={**self.owner, "A2N-Min-Position": str(head)},
        ).json()
        found: str = page["items"][0]["id"]
        return found

    def credential(self, of: Account) -> str:
        """A new credential of `of`, already in the read model (so a 404 means 'not yours')."""
        made = create_credential(self.client, of)
        seen = self.client.get(
            f"{API}/credentials/{made['id']}",
            headers={**of, "A2N-Min-Position": str(made["position"])},
        )
        assert seen.status_code == 200, seen.text
        credential_id: str = made["id"]
        return credential_id

    def api_key_id(self, of: Account) -> str:
        made = self.client.post(
            f"{API}/me/api-keys", json={"name": "matrix", "scopes": ["workflows:read"]}, headers=of
        )
        assert made.status_code == 201, made.text
        found: str = made.json()["id"]
        return found


def runnable(of: Callable[[World, Account], Account]) -> Build:
    """A published, runnable workflow of `of(world, me)`."""
    return lambda world, me: Call({"workflow_id": published(world.client, of(world, me), RUNNABLE)})


def execution(of: Callable[[World, Account], Account], *, ended: bool) -> Build:
    """An execution of `of(world, me)`: ended (it ran to its end) or still running."""

    def build(world: World, me: Account) -> Call:
        owner = of(world, me)
        workflow_id = published(world.client, owner, RUNNABLE if ended else SLOW)
        started = run(world.client, owner, workflow_id, wait="true" if ended else "false")
        return Call({"execution_id": started["id"]})

    return build


def own_workflow(**body: Any) -> Build:
    return lambda world, me: Call({"workflow_id": world.workflow(me, **body)})


def own_hooked_workflow(world: World, me: Account) -> Call:
    """A workflow of `me` with a webhook path of its own (active ones may not share one)."""
    return Call({"workflow_id": world.workflow(me, definition=webhook_graph())})


def foreign_workflow(world: World, me: Account) -> Call:
    return Call({"workflow_id": world.workflow(world.stranger())})


def own_run(world: World, me: Account) -> Call:
    return Call({"execution_id": world.run(me)})


def foreign_run(world: World, me: Account) -> Call:
    return Call({"execution_id": world.run(world.stranger())})


def with_body(build: Build, body: Any) -> Build:
    return lambda world, me: Call(build(world, me).params, body)


def version_of(build: Build, **query: str) -> Build:
    """The workflow's version 1 (every workflow has it)."""
    return lambda world, me: Call({**build(world, me).params, "version": "1"}, query=query)


def target_user(world: World, me: Account) -> Call:
    return Call({"user_id": world.stranger().user_id})


def to_stranger(of: Callable[[World, Account], Account], body: dict[str, str]) -> Build:
    """A workflow of `of(world, me)` and a body naming a new account as `userId`."""
    return lambda world, me: Call(
        {"workflow_id": world.workflow(of(world, me))},
        {**body, "userId": world.stranger().user_id},
    )


def shared_share(of: Callable[[World, Account], Account]) -> Build:
    """A workflow of `of(world, me)` shared with a new account, and that account's id."""

    def build(world: World, me: Account) -> Call:
        owner = of(world, me)
        workflow_id = world.workflow(owner)
        user_id = world.stranger().user_id
        share(world.client, owner, workflow_id, user_id, "VIEW")
        return Call({"workflow_id": workflow_id, "user_id": user_id})

    return build


def commented(of: Callable[[World, Account], Account], body: Any = None) -> Build:
    """A workflow of `of(world, me)` with a comment of that user's, and `body`."""

    def build(world: World, me: Account) -> Call:
        author = of(world, me)
        workflow_id = world.workflow(author)
        posted = world.client.post(
            f"{API}/workflows/{workflow_id}/comments", json={"content": "Matrix"}, headers=author
        )
        assert posted.status_code == 201, posted.text
        return Call({"workflow_id": workflow_id, "comment_id": posted.json()["id"]}, body)

    return build


def credential_of(of: Callable[[World, Account], Account], body: Any = None, **query: str) -> Build:
    """A credential of `of(world, me)`, with `body` and `query`."""
    return lambda world, me: Call({"credential_id": world.credential(of(world, me))}, body, query)


def credential_shared(of: Callable[[World, Account], Account]) -> Build:
    """A credential of `of(world, me)` shared with a new account, and the share's id."""

    def build(world: World, me: Account) -> Call:
        owner = of(world, me)
        credential_id = world.credential(owner)
        shared = share_credential(world.client, owner, credential_id, world.stranger().user_id)
        return Call({"credential_id": credential_id, "share_id": shared["id"]})

    return build


def node_of(of: Callable[[World, Account], Account], body: Any = None) -> Build:
    """A private custom node of `of(world, me)`, with `body`."""
    return lambda world, me: Call({"node_id": create_node(world.client, of(world, me))["id"]}, body)


def listed_node(
    of: Callable[[World, Account], Account], visibility: str, body: Any = None
) -> Build:
    """A node of `of(world, me)` with a published version, and `body`."""

    def build(world: World, me: Account) -> Call:
        author = of(world, me)
        made = create_node(world.client, author, visibility=visibility)
        done = world.client.post(f"{API}/nodes/{made['id']}/publish", headers=author)
        assert done.status_code == 200, done.text
        seen = world.client.get(
            f"{API}/nodes/{made['id']}",
            headers={**author, "A2N-Min-Position": str(done.json()["position"])},
        )
        assert seen.status_code == 200, seen.text  # in the read model: a 404 means 'not yours'
        return Call({"node_id": made["id"]}, body)

    return build


def collection_of(of: Callable[[World, Account], Account], body: Any = None) -> Build:
    """A private collection of `of(world, me)` holding the noop node, and `body`."""

    def build(world: World, me: Account) -> Call:
        made = world.client.post(
            f"{API}/node-collections",
            json={"name": "Matrix", "items": ["noop"]},
            headers=of(world, me),
        )
        assert made.status_code == 201, made.text
        return Call({"collection_id": made.json()["id"], "node_id": "noop"}, body)

    return build


def template_of(of: Callable[[World, Account], Account], body: Any = None) -> Build:
    """A private node template of `of(world, me)`, and `body`."""

    def build(world: World, me: Account) -> Call:
        made = world.client.post(
            f"{API}/node-templates",
            json={"nodeType": "noop", "name": "Matrix", "visibility": "PRIVATE"},
            headers=of(world, me),
        )
        assert made.status_code == 201, made.text
        return Call({"template_id": made.json()["id"]}, body)

    return build


def armed(of: Callable[[World, Account], Account]) -> Build:
    """An armed schedule of a workflow of `of(world, me)`, in the read model."""
    return lambda world, me: Call(
        {"schedule_id": schedule_id(scheduled_workflow(world.client, of(world, me)), "tick")}
    )


def myself(world: World, me: Account) -> Account:
    return me


def somebody(world: World, me: Account) -> Account:
    return world.stranger()


CASES: dict[str, Case] = {
    "POST /auth/logout": Case(),
    "GET /me": Case(),
    "PATCH /me": Case(own=lambda w, me: Call(body={"name": "Matrix"})),
    "POST /me/password": Case(
        own=lambda w, me: Call(body={"currentPassword": PASSWORD, "newPassword": PASSWORD + "!"})
    ),
    "GET /me/sessions": Case(),
    "POST /me/2fa/setup": Case(),
    "POST /me/2fa/confirm": Case(
        own=lambda w, me: Call(body={"code": pyotp.TOTP(w.two_factor_secret(me)).now()})
    ),
    "POST /me/2fa/disable": Case(own=lambda w, me: Call(body={"code": w.recovery_code(me)})),
    "DELETE /me/sessions/{session_id:str}": Case(
        own=lambda w, me: Call({"session_id": w.session(me)}),
        foreign=lambda w, me: Call({"session_id": w.session(w.stranger())}),
    ),
    "GET /me/api-keys": Case(),
    "POST /me/oauth/{provider:str}/link": Case(own=lambda w, me: Call({"provider": "test"})),
    "POST /me/api-keys": Case(
        own=lambda w, me: Call(body={"name": "ci", "scopes": ["workflows:read"]})
    ),
    "DELETE /me/api-keys/{key_id:str}": Case(
        own=lambda w, me: Call({"key_id": w.api_key_id(me)}),
        foreign=lambda w, me: Call({"key_id": w.api_key_id(w.stranger())}),
    ),
    "GET /users": Case(role="ADMIN"),
    "GET /users/{user_id:str}": Case(role="ADMIN", own=target_user),
    "POST /users/{user_id:str}/suspend": Case(role="ADMIN", own=target_user),
    "POST /users/{user_id:str}/reactivate": Case(role="ADMIN", own=target_user),
    "PUT /users/{user_id:str}/role": Case(
        role="ADMIN", own=with_body(target_user, {"role": "ADMIN"})
    ),
    "POST /users/{user_id:str}/erase": Case(role="ADMIN", own=target_user),
    "POST /users/invite": Case(
        role="ADMIN",
        own=lambda w, me: Call(body={"email": f"invitee-{uuid.uuid4().hex}@example.com"}),
    ),
    "GET /admin/mail-outbox": Case(role="OWNER"),
    "GET /security-events": Case(role="ADMIN"),
    "POST /security-events/{event_id:str}/resolve": Case(
        role="ADMIN", own=lambda w, me: Call({"event_id": w.security_event()})
    ),
    "POST /workflows": Case(own=lambda w, me: Call(body={"name": "Matrix"})),
    "GET /workflows": Case(),
    "GET /workflows/templates": Case(),
    "GET /workflows/categories": Case(),
    "GET /workflows/tags": Case(),
    "GET /workflows/{workflow_id:str}": Case(own=own_workflow(), foreign=foreign_workflow),
    "PATCH /workflows/{workflow_id:str}": Case(
        own=with_body(own_workflow(), {"name": "Renamed"}),
        foreign=with_body(foreign_workflow, {"name": "Renamed"}),
    ),
    "PUT /workflows/{workflow_id:str}/definition": Case(
        own=with_body(own_workflow(), GRAPH), foreign=with_body(foreign_workflow, GRAPH)
    ),
    "POST /workflows/{workflow_id:str}/activate": Case(
        own=own_hooked_workflow, foreign=foreign_workflow
    ),
    "POST /workflows/{workflow_id:str}/deactivate": Case(
        own=lambda w, me: Call({"workflow_id": activated(w, me)}), foreign=foreign_workflow
    ),
    "POST /workflows/{workflow_id:str}/archive": Case(own=own_workflow(), foreign=foreign_workflow),
    "POST /workflows/{workflow_id:str}/duplicate": Case(
        own=own_workflow(), foreign=foreign_workflow
    ),
    "GET /workflows/{workflow_id:str}/triggers": Case(
        own=own_workflow(definition=GRAPH), foreign=foreign_workflow
    ),
    "GET /workflows/{workflow_id:str}/versions": Case(own=own_workflow(), foreign=foreign_workflow),
    "GET /workflows/{workflow_id:str}/versions/{version:int}": Case(
        own=version_of(own_workflow()), foreign=version_of(foreign_workflow)
    ),
    "GET /workflows/{workflow_id:str}/versions/{version:int}/diff": Case(
        own=version_of(own_workflow(), against="1"),
        foreign=version_of(foreign_workflow, against="1"),
    ),
    "POST /workflows/{workflow_id:str}/versions/{version:int}/publish": Case(
        own=version_of(own_workflow()), foreign=version_of(foreign_workflow)
    ),
    "POST /workflows/{workflow_id:str}/versions/{version:int}/revert": Case(
        own=version_of(own_workflow()), foreign=version_of(foreign_workflow)
    ),
    "GET /workflows/{workflow_id:str}/shares": Case(own=own_workflow(), foreign=foreign_workflow),
    "POST /workflows/{workflow_id:str}/shares": Case(
        own=to_stranger(myself, {"permission": "VIEW"}),
        foreign=to_stranger(somebody, {"permission": "VIEW"}),
    ),
    "DELETE /workflows/{workflow_id:str}/shares/{user_id:str}": Case(
        own=shared_share(myself), foreign=shared_share(somebody)
    ),
    "POST /workflows/{workflow_id:str}/transfer": Case(
        own=to_stranger(myself, {}), foreign=to_stranger(somebody, {})
    ),
    "GET /workflows/{workflow_id:str}/comments": Case(own=own_workflow(), foreign=foreign_workflow),
    "POST /workflows/{workflow_id:str}/comments": Case(
        own=with_body(own_workflow(), {"content": "Matrix"}),
        foreign=with_body(foreign_workflow, {"content": "Matrix"}),
    ),
    "PATCH /workflows/{workflow_id:str}/comments/{comment_id:str}": Case(
        own=commented(myself, {"isResolved": True}),
        foreign=commented(somebody, {"isResolved": True}),
    ),
    "DELETE /workflows/{workflow_id:str}/comments/{comment_id:str}": Case(
        own=commented(myself), foreign=commented(somebody)
    ),
    "POST /workflows/import": Case(own=lambda w, me: Call(body=N8N_WORKFLOW)),
    "GET /workflows/{workflow_id:str}/export": Case(own=own_workflow(), foreign=foreign_workflow),
    "POST /workflows/{workflow_id:str}/webhook-test/listen": Case(
        own=own_hooked_workflow, foreign=foreign_workflow
    ),
    "POST /workflows/{workflow_id:str}/executions": Case(
        own=runnable(myself), foreign=runnable(somebody)
    ),
    "POST /executions/{execution_id:str}/cancel": Case(
        own=execution(myself, ended=False), foreign=execution(somebody, ended=False)
    ),
    "POST /executions/{execution_id:str}/retry": Case(
        own=execution(myself, ended=True), foreign=execution(somebody, ended=True)
    ),
    "GET /executions": Case(),
    "GET /executions/{execution_id:str}": Case(own=own_run, foreign=foreign_run),
    "GET /executions/{execution_id:str}/nodes": Case(own=own_run, foreign=foreign_run),
    "GET /executions/{execution_id:str}/logs": Case(own=own_run, foreign=foreign_run),
    "GET /executions/{execution_id:str}/metrics": Case(own=own_run, foreign=foreign_run),
    "GET /executions/{execution_id:str}/events": Case(own=own_run, foreign=foreign_run),
    "GET /schedules": Case(),
    "GET /schedules/{schedule_id:str}": Case(own=armed(myself), foreign=armed(somebody)),
    "GET /stats/daily": Case(role="ADMIN"),
    "POST /admin/retention/run": Case(role="ADMIN"),
    "GET /admin/health-checks": Case(role="ADMIN"),
    "GET /notifications": Case(),
    "GET /admin/notifications": Case(role="ADMIN"),
    "POST /admin/notifications": Case(
        role="ADMIN",
        own=lambda w, me: Call(body={"title": "Matrix", "body": "b", "channels": ["webhook"]}),
    ),
    "POST /admin/notifications/test": Case(
        role="ADMIN", own=lambda w, me: Call(body={"channel": "webhook"})
    ),
    "GET /admin/settings": Case(role="ADMIN"),
    "GET /admin/settings/{key:str}": Case(
        own=lambda w, me: Call({"key": "log_level"}), role="ADMIN"
    ),
    "GET /admin/settings/{key:str}/history": Case(
        own=lambda w, me: Call({"key": "log_level"}), role="ADMIN"
    ),
    # The value in effect already (the test app's own): other tests see no difference.
    "PUT /admin/settings/{key:str}": Case(
        own=lambda w, me: Call({"key": "webhook_wait"}, body={"value": 30.0}), role="ADMIN"
    ),
    "DELETE /admin/settings/{key:str}": Case(
        own=lambda w, me: Call({"key": "webhook_wait"}), role="ADMIN"
    ),
    "GET /admin/system-logs": Case(role="ADMIN"),
    "GET /admin/projections": Case(role="ADMIN"),
    # A small projector; an unknown name is the 404.
    "POST /admin/projections/{name:str}/rebuild": Case(
        role="ADMIN",
        own=lambda w, me: Call({"name": "operations"}),
        foreign=lambda w, me: Call({"name": "no_such_projector"}),
    ),
    "GET /stats/workflows/{workflow_id:str}": Case(own=own_workflow(), foreign=foreign_workflow),
    "GET /nodes": Case(),
    "GET /nodes/{node_id:str}": Case(own=lambda w, me: Call({"node_id": "http_request"})),
    "POST /nodes": Case(
        own=lambda w, me: Call(
            body={
                "name": node_name(),
                "type": "ACTION",
                "displayName": "Matrix",
                "implementation": WEBHOOK,
            }
        )
    ),
    "PATCH /nodes/{node_id:str}": Case(
        own=node_of(myself, {"icon": "star"}), foreign=node_of(somebody, {"icon": "star"})
    ),
    "POST /nodes/{node_id:str}/publish": Case(own=node_of(myself), foreign=node_of(somebody)),
    "POST /nodes/{node_id:str}/deprecate": Case(own=node_of(myself), foreign=node_of(somebody)),
    "PUT /nodes/{node_id:str}/rating": Case(
        own=listed_node(somebody, "PUBLIC", {"rating": 4}),
        foreign=listed_node(somebody, "PRIVATE", {"rating": 4}),
    ),
    "GET /nodes/{node_id:str}/ratings": Case(
        own=listed_node(myself, "PRIVATE"), foreign=listed_node(somebody, "PRIVATE")
    ),
    "GET /node-collections": Case(),
    "POST /node-collections": Case(own=lambda w, me: Call(body={"name": "Matrix"})),
    "POST /node-collections/{collection_id:str}/items": Case(
        own=collection_of(myself, {"nodeId": "set"}),
        foreign=collection_of(somebody, {"nodeId": "set"}),
    ),
    "DELETE /node-collections/{collection_id:str}/items/{node_id:str}": Case(
        own=collection_of(myself), foreign=collection_of(somebody)
    ),
    "PATCH /node-collections/{collection_id:str}": Case(
        own=collection_of(myself, {"name": "Renamed"}),
        foreign=collection_of(somebody, {"name": "Renamed"}),
    ),
    "DELETE /node-collections/{collection_id:str}": Case(
        own=collection_of(myself), foreign=collection_of(somebody)
    ),
    "GET /node-templates": Case(),
    "PATCH /node-templates/{template_id:str}": Case(
        own=template_of(myself, {"name": "Renamed"}),
        foreign=template_of(somebody, {"name": "Renamed"}),
    ),
    "DELETE /node-templates/{template_id:str}": Case(
        own=template_of(myself), foreign=template_of(somebody)
    ),
    "POST /node-templates": Case(
        own=lambda w, me: Call(body={"nodeType": "noop", "name": "Matrix"})
    ),
    "GET /nodes/{node_id:str}/stats": Case(
        own=listed_node(myself, "PRIVATE"), foreign=listed_node(somebody, "PRIVATE")
    ),
    "POST /credentials": Case(
        own=lambda w, me: Call(body={"name": "M", "type": "API_KEY", "data": {"apiKey": "k"}})
    ),
    "GET /credentials": Case(),
    "GET /credentials/{credential_id:str}": Case(
        own=credential_of(myself), foreign=credential_of(somebody)
    ),
    "PATCH /credentials/{credential_id:str}": Case(
        own=credential_of(myself, {"name": "Renamed"}),
        foreign=credential_of(somebody, {"name": "Renamed"}),
    ),
    "PUT /credentials/{credential_id:str}/data": Case(
        own=credential_of(myself, {"data": {"apiKey": "k2"}}),
        foreign=credential_of(somebody, {"data": {"apiKey": "k2"}}),
    ),
    "DELETE /credentials/{credential_id:str}": Case(
        own=credential_of(myself), foreign=credential_of(somebody)
    ),
    "POST /credentials/{credential_id:str}/validate": Case(
        own=credential_of(myself), foreign=credential_of(somebody)
    ),
    "GET /credentials/{credential_id:str}/shares": Case(
        own=credential_of(myself), foreign=credential_of(somebody)
    ),
    "POST /credentials/{credential_id:str}/shares": Case(
        own=lambda w, me: Call(
            {"credential_id": w.credential(me)},
            {"userId": w.stranger().user_id, "permission": "USE"},
        ),
        foreign=lambda w, me: Call(
            {"credential_id": w.credential(w.stranger())},
            {"userId": w.stranger().user_id, "permission": "USE"},
        ),
    ),
    "DELETE /credentials/{credential_id:str}/shares/{share_id:str}": Case(
        own=credential_shared(myself), foreign=credential_shared(somebody)
    ),
    "GET /credentials/{credential_id:str}/usage": Case(
        own=credential_of(myself), foreign=credential_of(somebody)
    ),
    "GET /credential-templates": Case(),
    "POST /admin/credentials/rotate-key": Case(role="ADMIN"),
    "GET /audit/aggregates/{aggregate_id:str}/events": Case(
        own=lambda w, me: Call({"aggregate_id": w.workflow(me)}),
        foreign=lambda w, me: Call({"aggregate_id": w.workflow(w.stranger())}),
    ),
    "GET /audit/aggregates/{aggregate_id:str}": Case(
        role="ADMIN", own=lambda w, me: Call({"aggregate_id": w.workflow(me)})
    ),
    "GET /audit/events": Case(role="ADMIN"),
    "GET /audit/log": Case(role="ADMIN"),
    "GET /audit/verify": Case(role="ADMIN"),
}


def activated(world: World, me: Account) -> str:
    workflow_id = world.workflow(me, definition=webhook_graph())
    response = world.client.post(f"{API}/workflows/{workflow_id}/activate", headers=me)
    assert response.status_code == 200, response.text
    return workflow_id


PUBLIC_ROUTES = {
    "POST /auth/register",
    "POST /auth/login",
    "POST /auth/login/2fa",
    "GET /auth/oauth/{provider:str}/start",
    "GET /auth/oauth/{provider:str}/callback",
    "POST /auth/refresh",
    "POST /auth/verify-email",
    "POST /auth/password/forgot",
    "POST /auth/password/reset",
    "POST /node-jobs/{callback_id:str}",
}
"""The only routes anyone may call without credentials: signing up and in, and the callback of
ASYNC node jobs, which its signature authenticates (tests/api/test_custom_node_modes.py)."""


def _api_routes() -> dict[str, dict[str, Any]]:
    """Every (method, path) under the API prefix, with its handler's opt."""
    app = create_app(Settings())
    found = {}
    for route in app.routes:
        if not route.path.startswith(API_PREFIX):
            continue
        for handler in getattr(route, "route_handlers", []):
            for method in handler.http_methods - {"OPTIONS", "HEAD"}:
                found[f"{method} {route.path.removeprefix(API_PREFIX)}"] = handler.opt
    return found


ALL_ROUTES = _api_routes()
ROUTES = {name: opt for name, opt in ALL_ROUTES.items() if not opt.get("public")}
ROUTE_NAMES = sorted(ROUTES)


def url_of(route: str, call: Call) -> tuple[str, str]:
    method, path = route.split(" ", 1)
    filled = re.sub(r"\{(\w+):\w+\}", lambda m: call.params[m.group(1)], path)
    return method, API + filled


def send(client: Client, route: str, call: Call, headers: dict[str, str]) -> Any:
    method, url = url_of(route, call)
    return client.request(method, url, json=call.body, headers=headers, params=call.query)


@pytest.fixture(scope="module")
def world(client: Client, owner: Account, runs: ExecutionsApp) -> World:
    return World(client, owner, runs)


def test_only_the_sign_in_routes_are_public() -> None:
    assert {name for name, opt in ALL_ROUTES.items() if opt.get("public")} == PUBLIC_ROUTES


def test_every_route_has_a_case() -> None:
    assert set(ROUTES) - set(CASES) == set(), "add a Case for each new route"
    assert set(CASES) - set(ROUTES) == set(), "remove Cases of routes that are gone"


@pytest.mark.parametrize("route", ROUTE_NAMES)
def test_no_credentials_is_401(client: Client, route: str) -> None:
    params = {
        name: "1" if kind == "int" else str(uuid.uuid4())
        for name, kind in re.findall(r"\{(\w+):(\w+)\}", route)
    }
    response = send(client, route, Call(params), {})
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("route", ROUTE_NAMES)
def test_the_right_caller_gets_2xx(world: World, route: str) -> None:
    case = CASES[route]
    me = world.account(case.role)
    response = send(world.client, route, case.own(world, me), me)
    assert 200 <= response.status_code < 300, response.text


@pytest.mark.parametrize("route", [r for r in ROUTE_NAMES if CASES[r].foreign])
def test_someone_elses_resource_is_404(world: World, route: str) -> None:
    case = CASES[route]
    me = world.account(case.role)
    assert case.foreign is not None
    response = send(world.client, route, case.foreign(world, me), me)
    assert response.status_code == 404, response.text


@pytest.mark.parametrize("route", [r for r in ROUTE_NAMES if CASES[r].role != "USER"])
def test_a_caller_without_the_role_is_403(world: World, route: str) -> None:
    case = CASES[route]
    lesser = world.account("ADMIN" if case.role == "OWNER" else "USER")
    response = send(world.client, route, case.own(world, lesser), lesser)
    assert response.status_code == 403, response.text


@pytest.mark.parametrize(
    "route", [r for r in ROUTE_NAMES if ROUTES[r].get("scope") or ROUTES[r].get("session")]
)
def test_an_api_key_without_the_scope_or_a_session_is_403(world: World, route: str) -> None:
    case = CASES[route]
    me = world.account(case.role)
    needed = ROUTES[route].get("scope")
    # A key with every scope but the needed one; for session-only routes, every scope.
    grantable = ["workflows:read", "workflows:write", "executions:run", "credentials:use"]
    if case.role != "USER":
        grantable.append("admin")
    key = world.api_key(me, [s for s in grantable if s != needed])
    response = send(world.client, route, case.own(world, me), {"X-API-Key": key})
    assert response.status_code == 403, response.text


# -- the operations routes at the root ---------------------------------------------------------

ROOT_PUBLIC = {"GET /health", "GET /ready"}
"""Liveness and readiness: answered to anyone (a load balancer's probes); they name no user's
data. /metrics names every account's workflows: never public."""


def _root_routes() -> dict[str, Any]:
    """Every (method, path) outside the API prefix, the API browser and the webhooks (each
    trigger's own auth, tests/api/test_webhooks.py), with its handler."""
    found = {}
    for route in create_app(Settings()).routes:
        if route.path.startswith((API_PREFIX, "/schema", "/webhook")):
            continue
        for handler in getattr(route, "route_handlers", []):
            for method in handler.http_methods - {"OPTIONS", "HEAD"}:
                found[f"{method} {route.path}"] = handler
    return found


def test_only_liveness_and_readiness_are_public_at_the_root() -> None:
    routes = _root_routes()
    assert set(routes) == ROOT_PUBLIC | {"GET /metrics"}
    assert all(not routes[name].guards for name in ROOT_PUBLIC)
    assert routes["GET /metrics"].guards == [authorize_metrics]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer " + METRICS_TOKEN[::-1]},  # a wrong token of the same length
        {"Authorization": "Bearer " + METRICS_TOKEN + "x"},
        {"Authorization": "Basic " + METRICS_TOKEN},
        {"X-API-Key": "a2n_not-a-key"},
    ],
    ids=["anonymous", "wrong-token", "longer-token", "basic", "bad-api-key"],
)
def test_metrics_without_credentials_is_401(client: Client, headers: dict[str, str]) -> None:
    response = client.get("/metrics", headers=headers)
    problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "a2n_http_requests_total" not in response.text


def test_metrics_for_a_caller_without_the_admin_scope_is_403(world: World) -> None:
    user = world.account("USER")
    problem(world.client.get("/metrics", headers=user), 403)
    admin = world.account("ADMIN")
    everything_but_admin = [
        "workflows:read",
        "workflows:write",
        "executions:run",
        "credentials:use",
    ]
    key = world.api_key(admin, everything_but_admin)
    problem(world.client.get("/metrics", headers={"X-API-Key": key}), 403)
    problem(world.client.get("/metrics", headers={"Authorization": f"Bearer {key}"}), 403)


def test_metrics_answer_the_metrics_token_and_admins(world: World) -> None:
    admin = world.account("ADMIN")
    key = world.api_key(admin, ["admin"])
    for headers in (SCRAPER, admin, world.owner, {"Authorization": f"Bearer {key}"}):
        response = world.client.get("/metrics", headers=headers)
        assert response.status_code == 200, response.text
        assert "a2n_http_requests_total" in response.text


def test_the_metrics_token_opens_nothing_else(client: Client) -> None:
    problem(client.get(f"{API}/me", headers=SCRAPER), 401)
    problem(client.get(f"{API}/admin/settings", headers={"X-API-Key": METRICS_TOKEN}), 401)
