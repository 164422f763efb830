"""The http_request node: one HTTP request per item, answered by `{statusCode, headers, response}`
(or with `emit: body` by the response body's own items).

Requests are built here, not from the worker's client defaults, so nothing of one run (cookies,
auth, headers) reaches another; redirects are followed here too, only to http(s) URLs, with
the cookies the client's jar would add removed. The worker's client refuses destinations the
egress rules forbid (application/egress.py), each redirect's too: the node fails saying why.
A credential (`config.credentials`) is opened for the run's user and sent as its type says
(credential_auth.py). The whole exchange (redirects and body) must finish within the node's
`timeout`, and the body is read no further than the size limit.
"""

from __future__ import annotations

import asyncio
import json
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx

from application.egress import Egress, EgressRefused
from application.executions.nodes.base import (
    MAIN_OUTPUT,
    Item,
    LogLine,
    NodeCall,
    NodeFailure,
    NodeResult,
    RuntimeLimits,
    json_type,
)
from application.executions.nodes.config import ConfigValues, config_failure
from application.executions.nodes.credential_auth import secret_headers, with_credential
from domain.workflows.nodes.actions import DEFAULT_HTTP_TIMEOUT_MS, MAX_HTTP_TIMEOUT_MS

SCHEMES = ("http", "https")
RETRYABLE_STATUSES = frozenset({408, 429})  # "try again later" by definition, though 4xx
DETAIL_CHARACTERS = 1000


def http_client(egress: Egress) -> httpx.AsyncClient:
    """The client a worker should share between node runs: every connection it opens obeys
    `egress` (redirects included), no cookie jar (one workflow's cookies must never reach
    another's requests), no proxy or certificate settings taken from the environment, no
    redirects followed behind the node's back."""
    no_cookies = CookieJar(DefaultCookiePolicy(allowed_domains=[]))
    return httpx.AsyncClient(
        cookies=no_cookies,
        trust_env=False,
        follow_redirects=False,
        transport=egress.async_transport(),
    )


async def http_request(call: NodeCall) -> NodeResult:
    values = ConfigValues(call)
    emit_body = values.raw.get("emit") == "body"
    credential = None
    if isinstance(call.config.get("credentials"), str):
        credential = await call.services.credential(
            call.config["credentials"], node_id=str(call.node["id"])
        )
    secrets = secret_headers(credential)
    output: list[Item] = []
    logs: list[LogLine] = []
    for item in call.items:
        request, timeout = _request(values, item)
        if credential is not None:
            request = with_credential(request, credential)
        try:
            async with asyncio.timeout(timeout):
                answer = await _exchange(
                    call.services.http, request, call.services.limits, logs, secrets
                )
        except (TimeoutError, httpx.TimeoutException):
            raise NodeFailure(
                f"{_where(request)}: no complete answer within {timeout:g} s", retryable=True
            ) from None
        output += body_items(answer["response"]) if emit_body else [answer]
    return NodeResult({MAIN_OUTPUT: output}, logs)


def body_items(content: Any) -> list[Item]:
    """A response body as items (`emit: body`): each element of a JSON array (an element
    that is not an object as `{data}`), a JSON object as it is, no body as one empty item,
    anything else (text, a number) as `{data}`."""
    if isinstance(content, list):
        return [element if isinstance(element, dict) else {"data": element} for element in content]
    if isinstance(content, dict):
        return [content]
    return [{}] if content == "" else [{"data": content}]


def _request(values: ConfigValues, item: Item) -> tuple[httpx.Request, float]:
    """The request for one item, and the seconds it may take in all."""
    url = values.value("url", item)
    try:
        parsed = httpx.URL(url) if isinstance(url, str) else None
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in SCHEMES or not parsed.host:
        raise config_failure(["url"], "must be an http:// or https:// URL")
    timeout_ms = values.value("timeout", item, default=DEFAULT_HTTP_TIMEOUT_MS)
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int | float):
        raise config_failure(["timeout"], "must be a number of milliseconds")
    if not 1 <= timeout_ms <= MAX_HTTP_TIMEOUT_MS:
        raise config_failure(["timeout"], f"must be from 1 to {MAX_HTTP_TIMEOUT_MS} milliseconds")
    timeout = timeout_ms / 1000
    headers = _scalars(values, "headers", item, allow_bool=False)
    query = _scalars(values, "query", item, allow_bool=True)
    body = values.value("body", item)
    request = httpx.Request(
        str(values.raw.get("method", "GET")),
        parsed.copy_merge_params(query) if query else parsed,  # keeps the URL's own query
        headers=headers,
        json=body if "body" in values.raw else None,
        extensions={"timeout": httpx.Timeout(timeout).as_dict()},
    )
    return request, timeout


def _scalars(values: ConfigValues, name: str, item: Item, *, allow_bool: bool) -> dict[str, Any]:
    """Header or query values: strings, numbers (and booleans for query values)."""
    evaluated = values.value(name, item, default={})
    if not isinstance(evaluated, dict):
        raise config_failure([name], f"must be an object, not {json_type(evaluated)}")
    for key, value in evaluated.items():
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not (isinstance(value, str) or number or (allow_bool and isinstance(value, bool))):
            raise config_failure(
                [name, key], f"must be a string or a number, not {json_type(value)}"
            )
    return {
        key: value if isinstance(value, str | bool) else str(value)
        for key, value in evaluated.items()
    }


async def _exchange(
    client: httpx.AsyncClient,
    request: httpx.Request,
    limits: RuntimeLimits,
    logs: list[LogLine],
    secrets: frozenset[str] = frozenset(),
) -> Item:
    """Send `request`, follow its redirects, read the final answer; fail on an error status.
    The `secrets` headers (a credential's) never follow a redirect to another origin."""
    first = request
    for _ in range(limits.http_max_redirects + 1):
        response = await _send(client, request)
        try:
            follow = response.next_request
            if follow is None:
                body = await read_body(response, limits.http_max_response_bytes)
                return _answer(request, response, body, logs)
        finally:
            await response.aclose()
        if follow.url.scheme not in SCHEMES:
            raise NodeFailure(f"{_where(request)} redirected to a non-http(s) URL; not followed")
        if "cookie" not in first.headers:
            follow.headers.pop("cookie", None)
        if (follow.url.scheme, follow.url.host, follow.url.port) != (
            first.url.scheme,
            first.url.host,
            first.url.port,
        ):
            for name in secrets:
                follow.headers.pop(name, None)
        request = follow
    raise NodeFailure(f"{_where(first)}: more than {limits.http_max_redirects} redirects")


async def _send(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    try:
        return await client.send(request, stream=True, follow_redirects=False)
    except httpx.TimeoutException:
        raise
    except EgressRefused as refused:
        raise NodeFailure(f"{_where(request)}: {refused.message}") from None
    except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as error:
        raise NodeFailure(f"{_where(request)}: {_reason(error)}", retryable=True) from None
    except httpx.HTTPError as error:
        raise NodeFailure(f"{_where(request)}: {_reason(error)}") from None


async def read_body(response: httpx.Response, limit: int) -> bytes:
    """A streamed response's body, failing the node once it grows past `limit` bytes."""
    declared = response.headers.get("content-length", "")
    too_large = NodeFailure(
        f"{_where(response.request)}: the response is larger than {limit} bytes",
        details={"statusCode": response.status_code},
    )
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > limit:
                raise too_large
    except (httpx.NetworkError, httpx.RemoteProtocolError) as error:
        raise NodeFailure(f"{_where(response.request)}: {_reason(error)}", retryable=True) from None
    except httpx.DecodingError as error:
        raise NodeFailure(f"{_where(response.request)}: {_reason(error)}") from None
    return bytes(body)


def _answer(
    request: httpx.Request, response: httpx.Response, body: bytes, logs: list[LogLine]
) -> Item:
    content = _content(response, body, logs)
    status = response.status_code
    if status >= 400:
        retryable = status >= 500 or status in RETRYABLE_STATUSES
        details: dict[str, Any] = {"statusCode": status, "response": _excerpt(content)}
        if "retry-after" in response.headers:
            details["retryAfter"] = response.headers["retry-after"]
        raise NodeFailure(
            f"{_where(request)} answered {status} {response.reason_phrase}".rstrip(),
            retryable=retryable,
            details=details,
        )
    return {"statusCode": status, "headers": dict(response.headers.items()), "response": content}


def _content(response: httpx.Response, body: bytes, logs: list[LogLine]) -> Any:
    """Parsed JSON when the response says it is JSON, else the text."""
    media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    text = _text(response, body)
    if body and media_type.endswith(("/json", "+json")):
        try:
            return json.loads(text)
        except (ValueError, RecursionError):  # malformed, or nested too deeply to read
            logs.append(
                LogLine(
                    "WARN",
                    f"{_where(response.request)}: the JSON response does not parse; kept as text",
                )
            )
    return text


def _text(response: httpx.Response, body: bytes) -> str:
    try:
        return body.decode(response.charset_encoding or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def _excerpt(content: Any) -> Any:
    text = content if isinstance(content, str) else json.dumps(content)
    return content if len(text) <= DETAIL_CHARACTERS else text[:DETAIL_CHARACTERS] + "…"


def _where(request: httpx.Request) -> str:
    """The request for messages: method and URL without user info, query or fragment (where
    tokens often travel)."""
    url = request.url
    return f"{request.method} {url.scheme}://{url.netloc.decode('ascii')}{url.path}"


def _reason(error: httpx.HTTPError) -> str:
    return str(error) or type(error).__name__
