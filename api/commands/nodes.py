"""Custom node commands: create, change (details and new versions), publish, deprecate."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, patch, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from api.auth import needs, principal_of
from api.context import check_command_body, current_actor, etag, expected_revision, services
from api.schemas.nodes import (
    DETAIL_KEYS,
    VERSION_KEYS,
    CreateNode,
    DeprecateNode,
    NodeCommandResult,
    PublishNode,
    RateNode,
    RatingCommandResult,
    UpdateNode,
)
from api.schemas.workflows import set_fields
from application.eventstore import Recorded
from application.nodes.commands import Author, NodeService
from domain.errors import ValidationFailed, Violation
from domain.nodes.definition import NodeDefinition

AnyRequest = Request[Any, Any, Any]


def node_service(request: AnyRequest) -> NodeService:
    return services(request).nodes


def node_author(request: AnyRequest) -> Author:
    return Author(current_actor(request), principal_of(request).is_admin)


def _result(
    recorded: Recorded[NodeDefinition], status: int = 200, *, signing_secret: str | None = None
) -> Response[NodeCommandResult]:
    node = recorded.aggregate
    return Response(
        NodeCommandResult.recorded(node, recorded.position, signing_secret),
        status_code=status,
        headers=etag(recorded.aggregate.version),
    )


class NodeCommands(Controller):
    path = "/nodes"
    tags = ["nodes"]
    opt = needs("workflows:write")
    before_request = staticmethod(check_command_body)
    dependencies = {
        "author": Provide(node_author, sync_to_thread=False),
        "service": Provide(node_service, sync_to_thread=False),
    }

    @post(
        "/",
        summary="Create a custom node type with its first version (a draft until published)",
        sync_to_thread=True,
        status_code=201,
    )
    def create(
        self,
        data: JSONBody[CreateNode],
        author: NamedDependency[Author],
        service: NamedDependency[NodeService],
    ) -> Response[NodeCommandResult]:
        fields = set_fields(data)
        recorded = service.create(
            author,
            name=data.name,
            kind=data.type,
            details={key: fields[key] for key in DETAIL_KEYS if key in fields},
            spec={
                **{key: fields[key] for key in VERSION_KEYS if key in fields},
                "version": data.version,
            },
        )
        return _result(recorded, 201, signing_secret=service.signing_key(recorded.aggregate))

    @patch(
        "/{node_id:str}",
        summary="Change a custom node's details, or add a version (its author or an admin)",
        sync_to_thread=True,
    )
    def update(
        self,
        request: AnyRequest,
        node_id: FromPath[str],
        data: JSONBody[UpdateNode],
        author: NamedDependency[Author],
        service: NamedDependency[NodeService],
    ) -> Response[NodeCommandResult]:
        fields = set_fields(data)
        spec = {key: fields[key] for key in VERSION_KEYS if key in fields}
        if spec and "version" not in spec:
            raise ValidationFailed(
                [Violation("/version", "is required: schemas and runtime change in a new version")]
            )
        details = {key: fields[key] for key in DETAIL_KEYS if key in fields}
        recorded = service.update(
            author, node_id, details, spec or None, expected_revision=expected_revision(request)
        )
        secret = service.signing_key(recorded.aggregate) if spec else None
        return _result(recorded, signing_secret=secret)

    @post(
        "/{node_id:str}/publish",
        summary="Publish a version (the latest unless named): workflows may pin it from now on",
        sync_to_thread=True,
        status_code=200,
    )
    def publish(
        self,
        request: AnyRequest,
        node_id: FromPath[str],
        author: NamedDependency[Author],
        service: NamedDependency[NodeService],
        data: JSONBody[PublishNode | None] = None,
    ) -> Response[NodeCommandResult]:
        version = data.version if data is not None else None
        return _result(
            service.publish(author, node_id, version, expected_revision=expected_revision(request)),
        )

    @post(
        "/{node_id:str}/deprecate",
        summary="Retire a custom node: pinned workflows keep running it, new ones may not use it",
        sync_to_thread=True,
        status_code=200,
    )
    def deprecate(
        self,
        request: AnyRequest,
        node_id: FromPath[str],
        author: NamedDependency[Author],
        service: NamedDependency[NodeService],
        data: JSONBody[DeprecateNode | None] = None,
    ) -> Response[NodeCommandResult]:
        body = data or DeprecateNode()
        return _result(
            service.deprecate(
                author,
                node_id,
                replacement=body.replacement,
                reason=body.reason,
                expected_revision=expected_revision(request),
            ),
        )

    @put(
        "/{node_id:str}/rating",
        summary="Rate a published node (1 to 5, with a review); again revises your rating",
        description="One rating per user and node; authors do not rate their own nodes (409). "
        "201 when this made your rating, 200 when it revised it.",
        sync_to_thread=True,
    )
    def rate(
        self,
        node_id: FromPath[str],
        data: JSONBody[RateNode],
        author: NamedDependency[Author],
        service: NamedDependency[NodeService],
    ) -> Response[RatingCommandResult]:
        recorded, created = service.rate(author, node_id, rating=data.rating, review=data.review)
        return Response(
            RatingCommandResult.recorded(recorded.aggregate, recorded.position, data.review),
            status_code=201 if created else 200,
            headers=etag(recorded.aggregate.version),
        )
