"""Bounded page/page_size handling shared by every list endpoint."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from shared.errors import ValidationFailed

T = TypeVar("T")
MAX_PAGE_SIZE = 100


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
    if page < 1:
        details.append({"field": "page", "message": "must be 1 or more"})
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        details.append(
            {"field": "page_size", "message": f"must be between 1 and {MAX_PAGE_SIZE}"}
        )
    if details:
        raise ValidationFailed("Invalid pagination parameters.", details)


def paginate(
    session: Session, query: Select[Any], page: int, page_size: int
) -> Page[Any]:
    check_page(page, page_size)
    total = session.scalar(
        select(func.count()).select_from(query.order_by(None).subquery())
    )
    rows = session.scalars(query.limit(page_size).offset((page - 1) * page_size)).all()
    return Page(list(rows), page, page_size, int(total or 0))
