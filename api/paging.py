"""Query parameters every list route takes: page size and the opaque cursor of the next page."""

from __future__ import annotations

from typing import Annotated

from litestar.params import QueryParameter

from application.pagination import MAX_LIMIT

Limit = Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, QueryParameter(max_length=512)]
