"""Built-in credential templates: setup guidance for each type and a few common services.

Templates are reference data shipped with the code (like the node catalog), not an aggregate:
the fields a credential holds are fixed by its type's schema in code, which validates the data
before it is sealed, so a template can only describe and pre-fill, never change the rules.
A template's data and configuration schemas are its type's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.credentials.types import SPECS, CredentialType, TypeSpec


@dataclass(frozen=True)
class CredentialTemplate:
    id: str
    name: str
    description: str
    type: CredentialType
    instructions: str
    provider: str | None = None
    configuration: Mapping[str, Any] = field(default_factory=dict)
    documentation_url: str | None = None
    icon: str | None = None

    @property
    def spec(self) -> TypeSpec:
        return SPECS[self.type]


def _generic(kind: CredentialType, icon: str, instructions: str) -> CredentialTemplate:
    spec = SPECS[kind]
    return CredentialTemplate(
        id=kind.value.lower(),
        name=spec.display_name,
        description=spec.description,
        type=kind,
        instructions=instructions,
        icon=icon,
    )


BUILT_IN_TEMPLATES: tuple[CredentialTemplate, ...] = (
    _generic(
        CredentialType.API_KEY,
        "key",
        "Paste the key as `apiKey`. In the configuration, `in` says whether it travels in a "
        "header or a query parameter and `name` which one (for example X-API-Key).",
    ),
    _generic(
        CredentialType.BASIC_AUTH,
        "user",
        "Give `username` and `password`; requests send them as HTTP Basic authentication.",
    ),
    _generic(
        CredentialType.OAUTH,
        "shield",
        "Register an OAuth 2.0 client with the service and give its `clientId` and "
        "`clientSecret`; set `authUrl`, `tokenUrl` and `scope` in the configuration. Tokens you "
        "already hold go in `accessToken`, `refreshToken` and `tokenExpiresAt`.",
    ),
    _generic(
        CredentialType.BEARER_TOKEN,
        "ticket",
        "Paste the token as `token`; requests send `Authorization: Bearer <token>`.",
    ),
    _generic(
        CredentialType.CERTIFICATE,
        "certificate",
        "Paste the client certificate (PEM, chain allowed) as `certificate` and its private key "
        "as `privateKey` (with `passphrase` if it is encrypted). Validation checks the dates "
        "and that the key belongs to the certificate.",
    ),
    _generic(
        CredentialType.SSH_KEY,
        "terminal",
        "Paste the private key (OpenSSH or PEM) as `privateKey`, with `passphrase` if it has "
        "one; `host`, `port` and `username` go in the configuration.",
    ),
    _generic(
        CredentialType.CUSTOM,
        "braces",
        "Any named values (letters, digits and _; at most 50); nodes and code read them by name.",
    ),
    CredentialTemplate(
        id="stripe",
        name="Stripe",
        description="A Stripe secret or restricted API key.",
        type=CredentialType.BEARER_TOKEN,
        provider="stripe",
        configuration={"baseUrl": "https://api.stripe.com"},
        instructions="In the Stripe Dashboard open Developers > API keys and create a restricted "
        "key with only the permissions your workflows need; paste it as `token`.",
        documentation_url="https://docs.stripe.com/keys",
        icon="stripe",
    ),
    CredentialTemplate(
        id="github",
        name="GitHub",
        description="A GitHub fine-grained personal access token.",
        type=CredentialType.BEARER_TOKEN,
        provider="github",
        configuration={"baseUrl": "https://api.github.com"},
        instructions="In GitHub open Settings > Developer settings > Personal access tokens > "
        "Fine-grained tokens, generate one limited to the repositories and permissions needed, "
        "and paste it as `token`.",
        documentation_url="https://docs.github.com/en/authentication/keeping-your-account-and-"
        "data-secure/managing-your-personal-access-tokens",
        icon="github",
    ),
    CredentialTemplate(
        id="slack",
        name="Slack",
        description="A Slack app's bot token (xoxb-...).",
        type=CredentialType.BEARER_TOKEN,
        provider="slack",
        configuration={"baseUrl": "https://slack.com/api"},
        instructions="Create a Slack app, add the bot token scopes it needs under OAuth & "
        "Permissions, install it to the workspace and paste the Bot User OAuth Token as `token`.",
        documentation_url="https://api.slack.com/authentication/token-types",
        icon="slack",
    ),
    CredentialTemplate(
        id="openai",
        name="OpenAI",
        description="An OpenAI API key.",
        type=CredentialType.BEARER_TOKEN,
        provider="openai",
        configuration={"baseUrl": "https://api.openai.com/v1"},
        instructions="Create a project API key at platform.openai.com > API keys and paste it "
        "as `token`.",
        documentation_url="https://platform.openai.com/docs/api-reference/authentication",
        icon="openai",
    ),
    CredentialTemplate(
        id="google_oauth",
        name="Google (OAuth 2.0)",
        description="A Google Cloud OAuth 2.0 client for Google APIs.",
        type=CredentialType.OAUTH,
        provider="google",
        configuration={
            "grantType": "authorizationCode",
            "authUrl": "https://accounts.google.com/o/oauth2/v2/auth",
            "tokenUrl": "https://oauth2.googleapis.com/token",
        },
        instructions="In Google Cloud Console create an OAuth client ID (Web application) under "
        "APIs & Services > Credentials; give its `clientId` and `clientSecret` and set `scope` "
        "to the APIs your workflows call.",
        documentation_url="https://developers.google.com/identity/protocols/oauth2",
        icon="google",
    ),
)
