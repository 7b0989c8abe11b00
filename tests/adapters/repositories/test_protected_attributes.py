"""The protected attributes' repository on SQLite and PostgreSQL: found by name, pages
by name with the active filter, the active ones, the unique name."""

from __future__ import annotations

import pytest

from shared.adapters.repositories.uow import SqlTransactions
from shared.db.models import ProtectedAttribute
from shared.db.session import Database
from shared.ports import Duplicate, Transactions


@pytest.fixture
def uow(db: Database) -> Transactions:
    return SqlTransactions(db)


def _add(uow: Transactions, name: str, active: bool = True) -> None:
    with uow(write=True) as tx:
        tx.protected_attributes.add(
            ProtectedAttribute(
                attribute_name=name,
                column_name=name,
                groups=[{"name": "a", "values": ["x"]}],
                thresholds={},
                is_active=active,
            )
        )


def test_by_name_pages_and_active(uow: Transactions) -> None:
    for name, active in (("gender", True), ("age", False), ("region", True)):
        _add(uow, name, active)
    with uow() as tx:
        repo = tx.protected_attributes
        found = repo.get("age")
        assert found is not None and found.groups == [{"name": "a", "values": ["x"]}]
        assert repo.get("nothing") is None
        every = repo.page(1, 2, None)
        assert [a.attribute_name for a in every.items] == ["age", "gender"]
        assert every.total == 3
        assert [a.attribute_name for a in repo.page(2, 2, None).items] == ["region"]
        assert [a.attribute_name for a in repo.page(1, 10, False).items] == ["age"]
        assert repo.page(1, 10, True).total == 2
        assert [a.attribute_name for a in repo.active()] == ["gender", "region"]


def test_the_name_is_unique(uow: Transactions) -> None:
    _add(uow, "gender")
    with pytest.raises(Duplicate):
        _add(uow, "gender")
    with uow() as tx:
        assert tx.protected_attributes.page(1, 10, None).total == 1
