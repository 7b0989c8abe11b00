"""Bounded page/page_size handling shared by every list endpoint.

Light to import (SQLAlchemy only inside ``paginate``): the HTTP app's dependencies take
the bounds from here, and the Functions host indexes that app without SQLAlchemy."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from shared.errors import ValidationFailed

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlalchemy.orm import Session

T = TypeVar("T")
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# Far past any real listing, and small enough that the row offset it asks for stays a
# 64-bit integer (SQLite raises OverflowError on larger ones: a 500, not a 422).
MAX_PAGE = 1_000_000


@dataclass(frozen=True)
class PageRequest:
    """Which page of a listing: 1-based ``page``, ``page_size`` items on each."""

    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    page: int
    page_size: int
    total: int

    @property
    def meta(self) -> dict[str, int]:
        return {
            "page": self.page,
            "page_size": self.page_size,
            "total": self.total,
            "total_pages": math.ceil(self.total / self.page_size) if self.total else 0,
        }


def check_page(page: int, page_size: int) -> None:
    details = []
    if not 1 <= page <= MAX_PAGE:
        details.append(
            {"field": "page", "message": f"must be between 1 and {MAX_PAGE:,}"}
        )
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        details.append(
            {"field": "page_size", "message": f"must be between 1 and {MAX_PAGE_SIZE}"}
        )
    if details:
        raise ValidationFailed("Invalid pagination parameters.", details)


def paginate(
    session: Session, query: Select[Any], page: int, page_size: int
) -> Page[Any]:
    from sqlalchemy import func, select

    check_page(page, page_size)
    total = session.scalar(
        select(func.count()).select_from(query.order_by(None).subquery())
    )
    rows = session.scalars(query.limit(page_size).offset((page - 1) * page_size)).all()
    return Page(list(rows), page, page_size, int(total or 0))
