"""NodeRating: one user's rating of one custom node, 1 to 5 stars with an optional review.

Its id is derived from the node and the user (application/nodes/commands.py), so a user has at
most one rating per node: rating again revises it. Averages and counts are projected.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import event

from domain.aggregate import Aggregate
from domain.errors import ValidationFailed, Violation
from domain.text import text_rule
from domain.workflows.definition import text_violations

MAX_REVIEW_LENGTH = 5_000


def checked_rating(rating: Any, review: Any) -> tuple[int, str | None]:
    """The rating and review as stored, or ValidationFailed naming what is wrong."""
    violations: list[Violation] = []
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        violations.append(Violation("/rating", "must be a whole number of stars from 1 to 5"))
    text, problem = text_rule(MAX_REVIEW_LENGTH)(review)
    if problem is None and text is not None:
        violations += [v.under("/review") for v in text_violations(text, 0)]
    elif problem is not None:
        violations.append(Violation("/review", problem))
    if violations:
        raise ValidationFailed(violations)
    return rating, text


class NodeRating(Aggregate):
    class Rated(Aggregate.Created):
        node_id: str
        user_id: str
        rating: int
        review: str | None

    class Revised(Aggregate.Event):
        rating: int
        review: str | None
        previous: dict[str, Any]

    @event(Rated)
    def __init__(self, node_id: str, user_id: str, rating: int, review: str | None) -> None:
        self.node_id = node_id
        self.user_id = user_id
        self.rating = rating
        self.review = review

    @classmethod
    def rate(
        cls, *, rating_id: str, node_id: str, user_id: str, rating: Any, review: Any
    ) -> NodeRating:
        stars, text = checked_rating(rating, review)
        return cls._create(
            cls.Rated, id=rating_id, node_id=node_id, user_id=user_id, rating=stars, review=text
        )

    def revise(self, rating: Any, review: Any) -> None:
        """Rate again; the same stars and review record nothing."""
        stars, text = checked_rating(rating, review)
        if (stars, text) != (self.rating, self.review):
            self._revised(
                rating=stars,
                review=text,
                previous={"rating": self.rating, "review": self.review},
            )

    @event(Revised)
    def _revised(self, rating: int, review: str | None, previous: dict[str, Any]) -> None:
        self.rating = rating
        self.review = review
