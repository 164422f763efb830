"""NodeRating: one user's rating of one custom node, 1 to 5 stars with an optional review.

Its id is derived from the node and the user, so a user has at most one rating per node: rating
again revises it. Averages and counts are projected. The review is its author's personal data:
the application seals it with the author's data key (`seal`), so the events hold only
ciphertext and erasing the author makes it unreadable, as with workflow comments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eventsourcing.domain import event

from domain.aggregate import Aggregate
from domain.errors import ValidationFailed, Violation
from domain.text import text_rule, text_violations

MAX_REVIEW_LENGTH = 5_000

Seal = Callable[[str], str]
"""Turns the review into what the events store (the author's sealed text)."""


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
        cls,
        *,
        rating_id: str,
        node_id: str,
        user_id: str,
        rating: Any,
        review: Any,
        seal: Seal,
    ) -> NodeRating:
        stars, text = checked_rating(rating, review)
        return cls._create(
            cls.Rated,
            id=rating_id,
            node_id=node_id,
            user_id=user_id,
            rating=stars,
            review=None if text is None else seal(text),
        )

    def revise(self, rating: Any, review: Any, seal: Seal, current_review: str | None) -> None:
        """Rate again; the same stars and review (`current_review` is the stored one, opened)
        record nothing."""
        stars, text = checked_rating(rating, review)
        if (stars, text) != (self.rating, current_review):
            self._revised(
                rating=stars,
                review=None if text is None else seal(text),
                previous={"rating": self.rating},
            )

    @event(Revised)
    def _revised(self, rating: int, review: str | None, previous: dict[str, Any]) -> None:
        self.rating = rating
        self.review = review
