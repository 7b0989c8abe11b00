"""One page of a listing query, with the listing's total."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from shared.ports import Page


def paginate(
    session: Session, query: Select[Any], page: int, page_size: int
) -> Page[Any]:
    total = session.scalar(
        select(func.count()).select_from(query.order_by(None).subquery())
    )
    rows = session.scalars(query.limit(page_size).offset((page - 1) * page_size)).all()
    return Page(list(rows), page, page_size, int(total or 0))
