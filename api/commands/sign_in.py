"""Sign-in (`/auth/login`, `/auth/login/2fa`) and the caller's two-factor settings (`/me/2fa`).

Both go through `SignIn`, which applies the login lockout: a locked account or address gets 429
with Retry-After before any secret is checked.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from api.auth import PUBLIC, SESSION_ONLY, principal_of
from api.commands.identity import token_response
from api.context import anonymous_caller, check_command_body, current_actor, services
from api.schemas.identity import Accepted, Login, Tokens
from api.schemas.two_factor import (
    CodeBody,
    RecoveryCodesRead,
    SecondFactorLogin,
    SetupBody,
    TwoFactorRequired,
    TwoFactorSetup,
)
from application.caller import Caller
from application.identity.commands import SignedIn
from application.identity.sign_in import SignIn
from application.identity.two_factor import Challenge

AnyRequest = Request[Any, Any, Any]


def sign_in_service(request: AnyRequest) -> SignIn:
    return services(request).sign_in


def signed_in_response(outcome: SignedIn | Challenge) -> Tokens | TwoFactorRequired:
    """Tokens, or the challenge to answer with a second factor first."""
    if isinstance(outcome, Challenge):
        return TwoFactorRequired(challenge=outcome.token, expires_in=outcome.expires_in)
    return token_response(outcome)


class SignInCommands(Controller):
    path = "/auth"
    tags = ["auth"]
    before_request = staticmethod(check_command_body)
    dependencies = {
        "caller": Provide(anonymous_caller, sync_to_thread=False),
        "sign_in": Provide(sign_in_service, sync_to_thread=False),
    }

    @post(
        "/login",
        summary="Sign in: tokens, or a challenge when two-factor sign-in is on",
        opt=PUBLIC,
        status_code=200,
    )
    async def login(
        self,
        data: JSONBody[Login],
        caller: NamedDependency[Caller],
        sign_in: NamedDependency[SignIn],
    ) -> Tokens | TwoFactorRequired:
        return signed_in_response(
            await sign_in.login(caller, email=data.email, password=data.password)
        )

    @post(
        "/login/2fa",
        summary="Second sign-in step: the challenge and a TOTP or recovery code, for tokens",
        opt=PUBLIC,
        status_code=200,
    )
    async def second_factor(
        self,
        data: JSONBody[SecondFactorLogin],
        caller: NamedDependency[Caller],
        sign_in: NamedDependency[SignIn],
    ) -> Tokens:
        return token_response(
            await sign_in.second_factor(caller, challenge=data.challenge, code=data.code)
        )


class TwoFactorCommands(Controller):
    path = "/me/2fa"
    tags = ["me"]
    opt = SESSION_ONLY
    before_request = staticmethod(check_command_body)
    dependencies = {
        "caller": Provide(current_actor, sync_to_thread=False),
        "sign_in": Provide(sign_in_service, sync_to_thread=False),
    }

    @post(
        "/setup",
        summary="Start two-factor set-up: a new TOTP secret (shown only in this response)",
        sync_to_thread=True,
        status_code=200,
    )
    def setup(
        self,
        request: AnyRequest,
        caller: NamedDependency[Caller],
        sign_in: NamedDependency[SignIn],
        data: JSONBody[SetupBody | None] = None,
    ) -> TwoFactorSetup:
        made = sign_in.two_factor.setup(caller, principal_of(request))
        return TwoFactorSetup(
            secret=made.secret, otpauth_uri=made.otpauth_uri, position=made.position
        )

    @post(
        "/confirm",
        summary="Turn two-factor sign-in on with a code; answers the recovery codes, once",
        sync_to_thread=True,
        status_code=200,
    )
    def confirm(
        self,
        request: AnyRequest,
        data: JSONBody[CodeBody],
        caller: NamedDependency[Caller],
        sign_in: NamedDependency[SignIn],
    ) -> RecoveryCodesRead:
        codes = sign_in.two_factor.confirm(caller, principal_of(request), data.code)
        return RecoveryCodesRead(recovery_codes=codes.codes, position=codes.position)

    @post(
        "/disable",
        summary="Turn two-factor sign-in off with a TOTP or recovery code",
        status_code=200,
    )
    async def disable(
        self,
        request: AnyRequest,
        data: JSONBody[CodeBody],
        caller: NamedDependency[Caller],
        sign_in: NamedDependency[SignIn],
    ) -> Accepted:
        recorded = await sign_in.disable_two_factor(caller, principal_of(request), data.code)
        return Accepted(detail="Two-factor sign-in is off.", position=recorded.position)
