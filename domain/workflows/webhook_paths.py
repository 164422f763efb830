"""Webhook paths: the pattern a webhook trigger listens on, and which pattern a request matches.

A pattern is segments separated by `/`: static ones (letters, digits and - _ . ~) and, after the
first, parameters `:name` that match any one segment of a request path and hand it to the run as
`params.name`. The first segment is always static, so the routes a request may match are found
by that segment alone (one index lookup) before their patterns are compared.

Patterns that differ only in their parameters' names (`orders/:id`, `orders/:number`) are the
same route, of `shape` `orders/:`: a workflow, and the active workflows together, answer each
shape and method once. Patterns that overlap without being the same (`orders/new` and
`orders/:id`) may coexist: the more specific one wins, comparing segment by segment from the
left, where a static segment beats a parameter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

MAX_PATH_LENGTH = 200
PARAM_MARK = ":"
_STATIC = re.compile(r"[A-Za-z0-9_.~-]+")
_PARAM = re.compile(r":[A-Za-z_][A-Za-z0-9_]{0,63}")

T = TypeVar("T")


@dataclass(frozen=True)
class WebhookPath:
    """A valid pattern, split into its segments."""

    text: str
    segments: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> WebhookPath | None:
        """The pattern `text` spells, or None when it is not one (a leading or doubled slash,
        a parameter first, two parameters of one name, a character outside the alphabet)."""
        if not text or len(text) > MAX_PATH_LENGTH:
            return None
        segments = tuple(text.split("/"))
        if _STATIC.fullmatch(segments[0]) is None:
            return None
        names = [s for s in segments[1:] if s.startswith(PARAM_MARK)]
        if len(set(names)) != len(names):
            return None
        if not all(_STATIC.fullmatch(s) or _PARAM.fullmatch(s) for s in segments[1:]):
            return None
        return cls(text, segments)

    @property
    def first(self) -> str:
        return self.segments[0]

    @property
    def shape(self) -> str:
        """The pattern with its parameters' names left out: what two routes may not share."""
        return "/".join(PARAM_MARK if _is_param(s) else s for s in self.segments)

    @property
    def specificity(self) -> tuple[int, ...]:
        """Sorts more specific patterns first: 0 for each static segment, 1 for a parameter."""
        return tuple(int(_is_param(s)) for s in self.segments)

    def match(self, segments: Sequence[str]) -> dict[str, str] | None:
        """The parameters this pattern takes from a request's path segments; None when the
        path is not one of this pattern's."""
        if len(segments) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for mine, given in zip(self.segments, segments, strict=True):
            if _is_param(mine):
                params[mine[1:]] = given
            elif mine != given:
                return None
        return params


def _is_param(segment: str) -> bool:
    return segment.startswith(PARAM_MARK)


def is_webhook_path(text: str) -> bool:
    return WebhookPath.parse(text) is not None


def request_segments(path: str) -> tuple[str, ...] | None:
    """The segments of a request's path after /webhook/ (slashes at either end ignored); None
    for an empty path or one with an empty segment, which no pattern matches."""
    segments = tuple(path.strip("/").split("/"))
    return None if any(not s for s in segments) else segments


@dataclass(frozen=True)
class Candidate(Generic[T]):
    """A route one of whose patterns a request might match: `target` is what it leads to."""

    target: T
    path: WebhookPath
    methods: tuple[str, ...]


@dataclass(frozen=True)
class Resolution(Generic[T]):
    """Which candidate answers a request: `found` with the `params` it took, or nothing; then
    `allowed` lists the methods the path answers (empty: the path is unknown, 404; else 405)."""

    found: T | None
    params: dict[str, str] = field(default_factory=dict)
    allowed: tuple[str, ...] = ()


def resolve(
    candidates: Iterable[Candidate[T]], method: str, segments: Sequence[str]
) -> Resolution[T]:
    """The most specific candidate whose pattern matches the path and that answers `method`;
    among equally specific ones, the first given."""
    best: tuple[tuple[int, ...], Candidate[T], dict[str, str]] | None = None
    allowed: set[str] = set()
    for candidate in candidates:
        params = candidate.path.match(segments)
        if params is None:
            continue
        allowed.update(candidate.methods)
        if method in candidate.methods and (best is None or candidate.path.specificity < best[0]):
            best = (candidate.path.specificity, candidate, params)
    if best is None:
        return Resolution(None, allowed=tuple(sorted(allowed)))
    return Resolution(best[1].target, best[2])
