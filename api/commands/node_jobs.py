"""The callback of ASYNC webhook node runs: the node's service POSTs its result here.

Public (a node service holds no A2N credentials): the request must be signed with the custom
node's signing key, like A2N's requests to the service (see application/nodes/jobs.py).
"""

from __future__ import annotations

from typing import Any

import msgspec
from anyio import to_thread
from litestar import Request, Response, post
from litestar.params import FromPath

from api.auth import PUBLIC
from api.context import check_command_body, services
from api.openapi import problem_response
from api.problems import problem
from application.nodes.jobs import CallbackRefused
from application.nodes.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER

AnyRequest = Request[Any, Any, Any]


@post(
    "/node-jobs/{callback_id:str}",
    opt=PUBLIC,
    before_request=check_command_body,
    status_code=202,
    summary="Deliver the result of an ASYNC webhook node's job (signed by the node's service)",
    description='The body is the node\'s result: a list of items, {"items": [...]} or '
    '{"outputs": {handle: [...]}}. Signed: X-A2N-Timestamp (Unix seconds) and X-A2N-Signature '
    "(sha256= and the hex HMAC-SHA256 of <timestamp>.<raw body> under the node's signing key).",
    tags=["nodes"],
    responses={
        401: problem_response(401, "The signature or timestamp is missing or wrong."),
        404: problem_response(404, "No node run waits for this callback (or it expired)."),
        409: problem_response(409, "This callback was answered already."),
    },
)
async def node_job_callback(request: AnyRequest, callback_id: FromPath[str]) -> Response[Any]:
    body = await request.body()
    try:
        msgspec.json.decode(body)
    except msgspec.DecodeError:
        return problem(request, 400, "The body must be JSON: the node's result.")
    jobs = services(request).node_jobs
    try:
        await to_thread.run_sync(
            jobs.complete,
            callback_id,
            body,
            request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(SIGNATURE_HEADER),
        )
    except CallbackRefused as refused:
        return problem(request, refused.status, refused.message)
    return Response({"accepted": True}, status_code=202)
