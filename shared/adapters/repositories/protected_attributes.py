"""Protected attributes' configurations."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.adapters.repositories.paging import paginate
from shared.db.models import ProtectedAttribute
from shared.ports import Page


class SqlProtectedAttributeRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def get(self, attribute_name: str) -> ProtectedAttribute | None:
        return self.s.scalar(
            select(ProtectedAttribute).where(
                ProtectedAttribute.attribute_name == attribute_name
            )
        )

    def add(self, attribute: ProtectedAttribute) -> None:
        self.s.add(attribute)

    def page(
        self, page: int, page_size: int, active: bool | None
    ) -> Page[ProtectedAttribute]:
        query = select(ProtectedAttribute).order_by(ProtectedAttribute.attribute_name)
        if active is not None:
            query = query.where(ProtectedAttribute.is_active.is_(active))
        return paginate(self.s, query, page, page_size)

    def active(self) -> list[ProtectedAttribute]:
        return list(
            self.s.scalars(
                select(ProtectedAttribute)
                .where(ProtectedAttribute.is_active.is_(True))
                .order_by(ProtectedAttribute.attribute_name)
            )
        )
