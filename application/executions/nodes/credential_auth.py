"""How an http_request node sends a credential: the header or query parameter each type uses.

A credential whose configuration names a `baseUrl` goes only to URLs under it, so a workflow
cannot send someone's key to a host of its choosing. The secret values never appear in a
message: failures name the credential and the URL (without its query), nothing else.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import httpx

from application.executions.nodes.base import NodeFailure

DEFAULT_KEY_HEADER = "X-API-Key"
DEFAULT_KEY_PARAMETER = "api_key"


def with_credential(request: httpx.Request, credential: Mapping[str, Any]) -> httpx.Request:
    """`request` carrying the credential; NodeFailure when this credential may not go there
    or is of a kind HTTP requests do not use."""
    name = str(credential.get("name", credential.get("id", "?")))
    configuration: Mapping[str, Any] = credential.get("configuration") or {}
    data: Mapping[str, Any] = credential.get("data") or {}
    base = configuration.get("baseUrl")
    if isinstance(base, str) and base and not _under(request.url, httpx.URL(base)):
        raise NodeFailure(f"credential {name!r} may only be sent to URLs under {base}")
    kind = credential.get("type")
    if kind == "API_KEY":
        key = str(data["apiKey"])
        if configuration.get("in") == "query":
            parameter = str(configuration.get("name") or DEFAULT_KEY_PARAMETER)
            return _rebuilt(request, url=request.url.copy_merge_params({parameter: key}))
        request.headers[str(configuration.get("name") or DEFAULT_KEY_HEADER)] = key
    elif kind == "BASIC_AUTH":
        pair = f"{data['username']}:{data['password']}".encode()
        request.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    elif kind == "BEARER_TOKEN":
        request.headers["Authorization"] = f"Bearer {data['token']}"
    elif kind == "OAUTH":
        token = data.get("accessToken")
        if not token:
            raise NodeFailure(f"credential {name!r} holds no access token yet")
        request.headers["Authorization"] = f"Bearer {token}"
    else:
        raise NodeFailure(
            f"credential {name!r} is a {kind} credential; HTTP requests use API_KEY, "
            "BASIC_AUTH, BEARER_TOKEN or OAUTH"
        )
    return request


def secret_headers(credential: Mapping[str, Any] | None) -> frozenset[str]:
    """Headers (lower case) that carry the credential, to drop on a redirect to another host."""
    if credential is None:
        return frozenset()
    configuration: Mapping[str, Any] = credential.get("configuration") or {}
    if credential.get("type") == "API_KEY":
        if configuration.get("in") == "query":
            return frozenset()
        return frozenset({str(configuration.get("name") or DEFAULT_KEY_HEADER).lower()})
    return frozenset({"authorization"})


def _under(url: httpx.URL, base: httpx.URL) -> bool:
    same_origin = (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port)
    prefix = base.path if base.path.endswith("/") else base.path + "/"
    return same_origin and (url.path == base.path or url.path.startswith(prefix))


def _rebuilt(request: httpx.Request, *, url: httpx.URL) -> httpx.Request:
    return httpx.Request(
        request.method,
        url,
        headers=request.headers,
        content=request.content,
        extensions=request.extensions,
    )
