"""Sign-in through an OpenID Connect provider: `start` redirects there, `callback` signs in;
a signed-in user links a provider account with `me/oauth/{provider}/link`, then the same callback.

The browser key of an attempt (see `application.identity.oauth_login`) travels in an HttpOnly,
SameSite=Lax cookie scoped to the provider's callback path: Lax so it comes along on the
provider's top-level redirect back, HttpOnly so page scripts never see it, Secure when
A2N_PUBLIC_URL is https.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Redirect

from api.auth import PUBLIC, SESSION_ONLY, principal_of
from api.commands.sign_in import signed_in_response
from api.context import anonymous_caller, check_command_body, services
from api.problems import problem
from api.schemas.identity import Tokens
from api.schemas.two_factor import TwoFactorRequired
from application.caller import Caller
from application.identity.oauth import OAuthError
from application.identity.oauth_login import ATTEMPT_TTL, OAuthLogin, ProviderUnavailable

AnyRequest = Request[Any, Any, Any]
COOKIE = "a2n_oauth"
CALLBACK = "oauth_callback"
NO_STORE = {"Cache-Control": "no-store"}


class ProviderRedirect(msgspec.Struct):
    url: str
    """Open this in the browser that sent the request (it holds the cookie the callback needs)."""


def oauth_login(request: AnyRequest) -> OAuthLogin:
    return services(request).oauth


def redirect_uri(request: AnyRequest, provider: str) -> str:
    """The callback URL as the provider must send the browser back to it (register it there)."""
    base = services(request).settings.base_url
    return base + request.app.route_reverse(CALLBACK, provider=provider)


def browser_key_cookie(request: AnyRequest, provider: str, value: str, max_age: int) -> Cookie:
    uri = urlsplit(redirect_uri(request, provider))
    return Cookie(
        key=COOKIE,
        value=value,
        path=uri.path,
        max_age=max_age,
        httponly=True,
        secure=uri.scheme == "https",
        samesite="lax",
    )


def on_oauth_error(request: AnyRequest, exc: OAuthError) -> Response[Any]:
    return problem(
        request, 400, f"Signing in through the provider failed: {exc.message}.", kind="oauth-failed"
    )


def on_provider_unavailable(request: AnyRequest, exc: ProviderUnavailable) -> Response[Any]:
    return problem(
        request,
        502,
        f"The sign-in provider cannot be used right now: {exc}. Try again later.",
        kind="provider-unavailable",
    )


class OAuthCommands(Controller):
    path = "/auth/oauth"
    tags = ["auth"]
    dependencies = {
        "caller": Provide(anonymous_caller, sync_to_thread=False),
        "login": Provide(oauth_login, sync_to_thread=False),
    }
    exception_handlers = {
        OAuthError: on_oauth_error,
        ProviderUnavailable: on_provider_unavailable,
    }

    @get(
        "/{provider:str}/start",
        summary="Sign in through a provider: redirects to its sign-in page",
        opt=PUBLIC,
        sync_to_thread=True,
        status_code=302,
    )
    def start(
        self, request: AnyRequest, provider: FromPath[str], login: NamedDependency[OAuthLogin]
    ) -> Redirect:
        started = login.start(provider, redirect_uri(request, provider))
        return Redirect(
            started.url,
            status_code=302,
            headers=NO_STORE,
            cookies=[browser_key_cookie(request, provider, started.browser_key, ATTEMPT_TTL)],
        )

    @get(
        "/{provider:str}/callback",
        name=CALLBACK,
        summary="Where the provider sends the browser back: signs in (access and refresh tokens)",
        opt=PUBLIC,
        sync_to_thread=True,
        status_code=200,
    )
    def callback(
        self,
        request: AnyRequest,
        provider: FromPath[str],
        caller: NamedDependency[Caller],
        login: NamedDependency[OAuthLogin],
        oauth_state: Annotated[str | None, QueryParameter(name="state")] = None,
        code: FromQuery[str | None] = None,
        error: FromQuery[str | None] = None,
    ) -> Response[Tokens | TwoFactorRequired]:
        signed = login.finish(
            caller,
            provider,
            state=oauth_state,
            code=code,
            error=error,
            browser_key=request.cookies.get(COOKIE),
        )
        return Response(
            signed_in_response(signed),
            headers=NO_STORE,
            cookies=[browser_key_cookie(request, provider, "", 0)],
        )


class OAuthLinkCommands(Controller):
    path = "/me/oauth"
    tags = ["me"]
    opt = SESSION_ONLY
    before_request = staticmethod(check_command_body)
    dependencies = {"login": Provide(oauth_login, sync_to_thread=False)}
    exception_handlers = {ProviderUnavailable: on_provider_unavailable}

    @post(
        "/{provider:str}/link",
        summary="Link a provider account to yours: open the returned URL in this browser",
        sync_to_thread=True,
        status_code=200,
    )
    def link(
        self, request: AnyRequest, provider: FromPath[str], login: NamedDependency[OAuthLogin]
    ) -> Response[ProviderRedirect]:
        principal = principal_of(request)
        started = login.start(
            provider, redirect_uri(request, provider), linking_user=principal.user_id
        )
        return Response(
            ProviderRedirect(url=started.url),
            headers=NO_STORE,
            cookies=[browser_key_cookie(request, provider, started.browser_key, ATTEMPT_TTL)],
        )
