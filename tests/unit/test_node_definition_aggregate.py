"""The NodeDefinition aggregate without a database: versions in semver order, each fixed once
recorded, publishing, deprecation and who may use which version."""

from __future__ import annotations

import pytest

from domain.errors import InvalidState, UnknownPart, ValidationFailed
from domain.nodes.definition import NodeDefinition
from domain.nodes.spec import SemVer, is_image_reference

WEBHOOK = {"runtime": "WEBHOOK", "url": "https://nodes.example.com/run"}


def new_node(**details: object) -> NodeDefinition:
    return NodeDefinition.create(
        node_id="0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f60",
        author_id="author",
        name="acme.greet",
        kind="ACTION",
        details={"display_name": "Greet", **details},
        spec={"version": "1.0.0", "implementation": WEBHOOK},
    )


@pytest.mark.parametrize(
    "ordered",
    [
        ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2"],
        ["1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "2.0.0"],
    ],
)
def test_semantic_versions_order_by_precedence(ordered: list[str]) -> None:
    parsed = [SemVer.parse(v) for v in ordered]
    assert all(p is not None for p in parsed)
    assert sorted(parsed, key=lambda p: p or SemVer(0, 0, 0)) == parsed
    assert [str(p) for p in parsed] == ordered


@pytest.mark.parametrize("text", ["1", "1.0", "01.0.0", "1.0.0+build", "v1.0.0", "1.0.0-", 1])
def test_malformed_versions_are_not_versions(text: object) -> None:
    assert SemVer.parse(text) is None


def test_a_version_once_recorded_never_changes() -> None:
    node = new_node()
    first = dict(node.versions["1.0.0"])
    node.publish()
    added = node.add_version({"version": "1.1.0", "outputs": ["yes", "no"]})
    assert added["implementation"] == first["implementation"]
    assert node.versions["1.0.0"] == first
    assert node.latest["version"] == "1.1.0"
    with pytest.raises(ValidationFailed, match="higher than the latest"):
        node.add_version({"version": "1.0.9"})
    assert set(node.published) == {"1.0.0"}


def test_only_published_versions_are_usable_and_private_ones_by_their_author() -> None:
    node = new_node()
    assert node.usable_version("1.0.0", "author") is None
    node.publish("1.0.0")
    assert node.usable_version("1.0.0", "author") is not None
    assert node.usable_version("1.0.0", "someone") is None
    assert not node.visible_to("someone", is_admin=False)
    assert node.visible_to("someone", is_admin=True)
    node.change_details({"visibility": "PUBLIC"})
    assert node.usable_version("1.0.0", "someone") is not None
    assert node.visible_to("someone", is_admin=False)
    with pytest.raises(UnknownPart):
        node.publish("3.0.0")


def test_publishing_twice_or_unchanged_details_record_nothing() -> None:
    node = new_node()
    node.publish()
    node.change_details({"display_name": "Greet"})
    pending = len(node.pending_events)
    node.publish("1.0.0")
    assert len(node.pending_events) == pending


def test_a_deprecated_node_takes_no_new_versions_but_keeps_its_old_ones() -> None:
    node = new_node()
    node.publish()
    node.deprecate("acme.greet2", "superseded")
    assert node.is_deprecated
    assert node.usable_version("1.0.0", "author") is not None
    for command in (node.publish, lambda: node.add_version({"version": "2.0.0"})):
        with pytest.raises(InvalidState):
            command()
    with pytest.raises(InvalidState):
        node.deprecate(None, None)


def test_a_node_cannot_replace_itself() -> None:
    with pytest.raises(ValidationFailed):
        new_node().deprecate("acme.greet", None)


@pytest.mark.parametrize(
    "image",
    [
        "busybox",
        "acme/greet:1.0",
        "ghcr.io/acme/greet:1",
        "localhost:5000/team/greet:v2-rc.1",
        "registry.example.com:443/a_b/c__d/e-f",
        "acme/greet@sha256:" + "0" * 64,
        "acme/greet:1.0@sha256:" + "a" * 64,
    ],
)
def test_docker_versions_take_image_references_as_docker_reads_them(image: str) -> None:
    assert is_image_reference(image)


@pytest.mark.parametrize(
    "image",
    [
        "UPPER CASE",
        "acme/Greet",
        "acme//greet",
        "acme/greet:",
        "acme/greet:-1",
        "acme/greet:a:b",
        "acme___greet",
        "-acme",
        "acme/greet@sha256:abc",
        "acme/greet@sha256:" + "g" * 64,
        "a" * 256,
        "acme/greet:" + "1" * 129,
        "acme/greet\n",
        5,
        None,
    ],
)
def test_docker_versions_refuse_what_is_no_image_reference(image: object) -> None:
    assert not is_image_reference(image)
