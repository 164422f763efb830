"""Node collection and template commands: create, change and delete collections, add and
remove their items; create, change and delete templates."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from api.auth import needs
from api.commands.nodes import node_author
from api.context import check_command_body, etag, expected_revision, services
from api.schemas.nodes import (
    AddCollectionItem,
    CollectionCommandResult,
    CreateCollection,
    CreateTemplate,
    TemplateCommandResult,
    UpdateCollection,
    UpdateTemplate,
)
from api.schemas.workflows import set_fields
from application.eventstore import Recorded
from application.nodes.commands import Author
from application.nodes.marketplace import Marketplace
from domain.nodes.collection import NodeCollection
from domain.nodes.template import NodeTemplate

AnyRequest = Request[Any, Any, Any]


def marketplace(request: AnyRequest) -> Marketplace:
    return services(request).marketplace


DEPENDENCIES = {
    "author": Provide(node_author, sync_to_thread=False),
    "market": Provide(marketplace, sync_to_thread=False),
}


def _collection(
    recorded: Recorded[NodeCollection], status: int = 200
) -> Response[CollectionCommandResult]:
    return Response(
        CollectionCommandResult.recorded(recorded.aggregate, recorded.position),
        status_code=status,
        headers=etag(recorded.aggregate.version),
    )


def _template(
    recorded: Recorded[NodeTemplate], status: int = 200
) -> Response[TemplateCommandResult]:
    return Response(
        TemplateCommandResult.recorded(recorded.aggregate, recorded.position),
        status_code=status,
        headers=etag(recorded.aggregate.version),
    )


class NodeCollectionCommands(Controller):
    path = "/node-collections"
    tags = ["nodes"]
    opt = needs("workflows:write")
    before_request = staticmethod(check_command_body)
    dependencies = DEPENDENCIES

    @post(
        "/",
        summary="Create a collection of node types, in order",
        sync_to_thread=True,
        status_code=201,
    )
    def create(
        self,
        data: JSONBody[CreateCollection],
        author: NamedDependency[Author],
        market: NamedDependency[Marketplace],
    ) -> Response[CollectionCommandResult]:
        recorded = market.create_collection(
            author,
            name=data.name,
            description=data.description,
            visibility=data.visibility,
            items=data.items,
        )
        return _collection(recorded, 201)

    @patch(
        "/{collection_id:str}",
        summary="Rename, describe, share or reorder a collection (its owner or an admin)",
        sync_to_thread=True,
    )
    def change(
        self,
        request: AnyRequest,
        collection_id: FromPath[str],
        data: JSONBody[UpdateCollection],
        author: NamedDependency[Author],
        market: NamedDependency[Marketplace],
    ) -> Response[CollectionCommandResult]:
        return _collection(
            market.change_collection(
                author,
                collection_id,
                set_fields(data),
                expected_revision=expected_revision(request),
            )
        )

    @delete(
        "/{collection_id:str}",
        summary="Delete a collection (its owner or an admin)",
        sync_to_thread=True,
        status_code=200,
    )
    def delete_collection(
        self,
        request: AnyRequest,
        collection_id: FromPath[str],
        author: NamedDependency[Author],
        market: NamedDependency[Marketplace],
    ) -> Response[CollectionCommandResult]:
        return _collection(
            market.delete_collection(
                author, collection_id, expected_revision=expected_revision(request)
            )
        )

    @post(
        "/{collection_id:str}/items",
        summary="Add a node type to a collection (its owner or an admin)",
        sync_to_thread=True,
        status_code=200,
    )
    def add(
        self,
        request: AnyRequest,
        collection_id: FromPath[str],
        data: JSONBody[AddCollectionItem],
        author: NamedDependency[Author],
        market: NamedDependency[Marketplace],
    ) -> Response[CollectionCommandResult]:
        return _collection(
            market.add_item(
                author,
                collection_id,
                data.node_id,
                data.position,
                expected_revision=expected_revision(request),
            )
        )

    @delete(
        "/{collection_id:str}/items/{node_id:str}",
        summary="Take a node type out of a collection (its owner or an admin)",
        sync_to_thread=True,
        status_code=200,
    )
    def remove(
        self,
        request: AnyRequest,
        collection_id: FromPath[str],
        node_id: FromPath[str],
        author: NamedDependency[Author],
        market: NamedDependency[Marketplace],
    ) -> Response[CollectionCommandResult]:
        return _collection(
            market.remove_item(
                author, collection_id, node_id, expected_revision=expected_revision(request)
            )
        )


class NodeTemplateCommands(Controller):
    path = "/node-templates"
    tags = ["nodes"]
    opt = needs("workflows:write")
    before_request = staticmethod(check_command_body)
    dependencies = DEPENDENCIES

    @post(
        "/",
        summary="Create a node template: a node type with a config ready to use",
        sync_to_thread=True,
        status_code=201,
    )
    def create(
        self,
        data: JSONBody[CreateTemplate],
        author: NamedDependency[Author],
        market: NamedDependency[Marketplace],
    ) -> Response[TemplateCommandResult]:
        recorded = market.create_template(
            author,
            node_type=data.node_type,
            name=data.name,
            description=data.description,
            visibility=data.visibility,
            config=data.config,
            tags=data.tags,
        )
        return _template(recorded, 201)

    @patch(
        "/{template_id:str}",
        summary="Change a node template (its owner or an admin)",
        sync_to_thread=True,
    )
    def change(
        self,
        request: AnyRequest,
        template_id: FromPath[str],
        data: JSONBody[UpdateTemplate],
        author: NamedDependency[Author],
        market: NamedDependency[Marketplace],
    ) -> Response[TemplateCommandResult]:
        return _template(
            market.change_template(
                author, template_id, set_fields(data), expected_revision=expected_revision(request)
            )
        )

    @delete(
        "/{template_id:str}",
        summary="Delete a node template (its owner or an admin)",
        sync_to_thread=True,
        status_code=200,
    )
    def delete_template(
        self,
        request: AnyRequest,
        template_id: FromPath[str],
        author: NamedDependency[Author],
        market: NamedDependency[Marketplace],
    ) -> Response[TemplateCommandResult]:
        return _template(
            market.delete_template(
                author, template_id, expected_revision=expected_revision(request)
            )
        )
