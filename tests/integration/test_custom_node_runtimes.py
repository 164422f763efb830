"""A WEBHOOK node obeys the egress rules: without A2N_EGRESS_ALLOW opening loopback, its call to
a service on 127.0.0.1 is refused before any connection (the service never hears of it)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from application.caller import Caller
from application.crypto import KeyRing
from application.egress import Egress
from application.eventstore import event_store_env
from application.executions.nodes import RUNTIMES, NodeFailure, http_client
from application.identity.personal_data import PersonalData
from application.nodes.app import NodesApp
from application.nodes.commands import Author, NodeService
from application.nodes.runtimes import NodeRuntimes
from application.nodes.types import CustomNodeTypes
from domain.egress import EgressPolicy
from tests.node_calls import Services, node_call

SECRET_KEY = b"k" * 32


def test_a_webhook_node_to_a_refused_address_never_connects(
    fresh_database_url: str, caller: Caller
) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    app = NodesApp(env=event_store_env(fresh_database_url))
    try:
        unused: ConnectionPool[Any] = ConnectionPool(fresh_database_url, open=False)
        service = NodeService(
            app, SECRET_KEY, PersonalData(KeyRing.parse(KeyRing.generate()), unused)
        )
        author = Author(caller, is_admin=False)
        node = service.create(
            author,
            name="acme.remote",
            kind="ACTION",
            details={"display_name": "Remote"},
            spec={
                "version": "1.0.0",
                "implementation": {"runtime": "WEBHOOK", "url": f"http://127.0.0.1:{port}/run"},
            },
        ).aggregate
        service.publish(author, node.id, None)
        runtimes = NodeRuntimes(RUNTIMES, CustomNodeTypes(app), SECRET_KEY)

        async def main() -> Any:
            async with http_client(Egress(EgressPolicy.parse(""))) as http:
                call = node_call("acme.remote@1.0.0", {}, [{}], services=Services(http))
                return await runtimes["acme.remote@1.0.0"].run(call)

        with pytest.raises(NodeFailure) as refused:
            asyncio.run(main())
    finally:
        app.close()
    assert "refused: 127.0.0.1 is a loopback address" in refused.value.message
    assert not refused.value.retryable
    with pytest.raises(TimeoutError):
        listener.accept()  # nobody ever connected
    listener.close()
