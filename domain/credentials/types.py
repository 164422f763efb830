"""Credential types and the JSON Schema of each one's fields.

A credential has two parts: its **data** (the secret fields, sealed before they are stored, never
shown again) and its **configuration** (plain settings that say how to use the secret, such as the
header an API key goes in). Each type fixes the shape of both, so data is checked before it is
encrypted and a node knows what it gets. Violations name fields (JSON pointers), never values.

OAUTH is spelled as the spec's node catalog spells it (`"types": ["API_KEY", "OAUTH",
"BASIC_AUTH"]`), so node types and credentials agree on names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

from jsonschema import Draft202012Validator

from domain.errors import Violation
from domain.workflows.nodes.schema import (
    DRAFT,
    config,
    pointer_of,
    schema_violations,
    validator,
)

MAX_DATA_BYTES = 32 * 1024
"""Largest data (as compact JSON) one credential may hold: a certificate chain fits."""
MAX_CONFIGURATION_BYTES = 16 * 1024
"""Also the bound of a credential's metadata and validation rules."""
MAX_PEM_LENGTH = 16 * 1024
MAX_SECRET_LENGTH = 8 * 1024
MAX_CUSTOM_FIELDS = 50
CUSTOM_FIELD_NAME = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
_NAME = re.compile(CUSTOM_FIELD_NAME)
_FIELD_NAME_RULE = "is not a field name: up to 64 letters, digits and _, starting with a letter"


class CredentialType(StrEnum):
    API_KEY = "API_KEY"
    BASIC_AUTH = "BASIC_AUTH"
    OAUTH = "OAUTH"
    BEARER_TOKEN = "BEARER_TOKEN"  # noqa: S105 - a type name, not a token
    CERTIFICATE = "CERTIFICATE"
    SSH_KEY = "SSH_KEY"
    CUSTOM = "CUSTOM"


def _secret(description: str, max_length: int = MAX_SECRET_LENGTH) -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": max_length,
        "description": description,
        "writeOnly": True,
    }


def _plain(description: str, max_length: int = 1024) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_length, "description": description}


_URL = {"type": "string", "format": "http-url", "maxLength": 2048}


@dataclass(frozen=True)
class TypeSpec:
    """One credential type: what its data and configuration hold."""

    type: CredentialType
    display_name: str
    description: str
    data_schema: Mapping[str, Any] = field(compare=False)
    configuration_schema: Mapping[str, Any] = field(compare=False)

    @cached_property
    def _data_checker(self) -> Draft202012Validator:
        return validator(self.data_schema)

    @cached_property
    def _configuration_checker(self) -> Draft202012Validator:
        return validator(self.configuration_schema)

    def data_violations(self, data: Any) -> list[Violation]:
        """How `data` breaks this type's data schema, pointing under `/data`."""
        if isinstance(data, Mapping) and json_size(data) > MAX_DATA_BYTES:
            return [Violation("/data", f"is larger than {MAX_DATA_BYTES} bytes as JSON")]
        names = self.data_schema.get("propertyNames")
        if isinstance(data, Mapping) and names is not None:
            # The schema's own message would not say which name, nor what a name may be.
            bad = [Violation(pointer_of([n]), _FIELD_NAME_RULE) for n in data if not _NAME.match(n)]
            if bad:
                return [v.under("/data") for v in bad]
        return [v.under("/data") for v in schema_violations(self._data_checker, data)]

    def configuration_violations(self, configuration: Any) -> list[Violation]:
        """How `configuration` breaks this type's configuration schema (under `/configuration`)."""
        if (
            isinstance(configuration, Mapping)
            and json_size(configuration) > MAX_CONFIGURATION_BYTES
        ):
            return [
                Violation(
                    "/configuration", f"is larger than {MAX_CONFIGURATION_BYTES} bytes as JSON"
                )
            ]
        checker = self._configuration_checker
        return [v.under("/configuration") for v in schema_violations(checker, configuration)]


SPECS: dict[CredentialType, TypeSpec] = {
    spec.type: spec
    for spec in (
        TypeSpec(
            CredentialType.API_KEY,
            "API key",
            "A key sent in a header or query parameter.",
            config({"apiKey": _secret("The key")}, ("apiKey",)),
            config(
                {
                    "in": {"enum": ["header", "query"], "default": "header"},
                    "name": _plain("Header or query parameter name", 100),
                    "baseUrl": _URL,
                }
            ),
        ),
        TypeSpec(
            CredentialType.BASIC_AUTH,
            "Basic auth",
            "A user name and password (HTTP Basic authentication).",
            config(
                {"username": _plain("User name"), "password": _secret("Password")},
                ("username", "password"),
            ),
            config({"baseUrl": _URL}),
        ),
        TypeSpec(
            CredentialType.OAUTH,
            "OAuth 2.0",
            "An OAuth 2.0 client, and the tokens it was granted.",
            config(
                {
                    "clientId": _plain("Client id"),
                    "clientSecret": _secret("Client secret"),
                    "accessToken": _secret("Access token"),
                    "refreshToken": _secret("Refresh token"),
                    "tokenExpiresAt": {
                        "type": "string",
                        "format": "date-time",
                        "description": "When the access token expires",
                    },
                },
                ("clientId", "clientSecret"),
            ),
            config(
                {
                    "grantType": {
                        "enum": ["authorizationCode", "clientCredentials"],
                        "default": "authorizationCode",
                    },
                    "authUrl": _URL,
                    "tokenUrl": _URL,
                    "scope": _plain("Scopes, space-separated", 2048),
                }
            ),
        ),
        TypeSpec(
            CredentialType.BEARER_TOKEN,
            "Bearer token",
            "A token sent as Authorization: Bearer <token>.",
            config({"token": _secret("The token")}, ("token",)),
            config({"baseUrl": _URL}),
        ),
        TypeSpec(
            CredentialType.CERTIFICATE,
            "Client certificate",
            "A PEM X.509 certificate with its private key, for mutual TLS.",
            config(
                {
                    "certificate": _plain("PEM certificate (chain)", MAX_PEM_LENGTH),
                    "privateKey": _secret("PEM private key", MAX_PEM_LENGTH),
                    "passphrase": _secret("Passphrase of the private key"),
                    "caCertificates": _plain("PEM certificates to trust", MAX_PEM_LENGTH),
                },
                ("certificate",),
            ),
            config({}),
        ),
        TypeSpec(
            CredentialType.SSH_KEY,
            "SSH key",
            "An SSH private key (OpenSSH or PEM format).",
            config(
                {
                    "privateKey": _secret("Private key", MAX_PEM_LENGTH),
                    "passphrase": _secret("Passphrase of the private key"),
                },
                ("privateKey",),
            ),
            config(
                {
                    "host": _plain("Host name or address", 255),
                    "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 22},
                    "username": _plain("User name", 255),
                }
            ),
        ),
        TypeSpec(
            CredentialType.CUSTOM,
            "Custom",
            "Any named secret values a node or code step reads by name.",
            {
                "$schema": DRAFT,
                "type": "object",
                "minProperties": 1,
                "maxProperties": MAX_CUSTOM_FIELDS,
                "propertyNames": {"pattern": CUSTOM_FIELD_NAME},
                "additionalProperties": {
                    "anyOf": [
                        {"type": "string", "maxLength": MAX_SECRET_LENGTH, "writeOnly": True},
                        {"type": "number"},
                        {"type": "boolean"},
                    ]
                },
            },
            {"$schema": DRAFT, "type": "object"},
        ),
    )
}


def spec_of(kind: str) -> TypeSpec | None:
    """The type named `kind`, if there is one."""
    return SPECS.get(CredentialType(kind)) if kind in CredentialType.__members__ else None


def json_size(value: Mapping[str, Any]) -> int:
    """Bytes of `value` as compact JSON (what bounds how large an event grows)."""
    return len(json.dumps(value, separators=(",", ":"), default=str).encode())
