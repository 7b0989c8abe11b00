"""The protected attributes' use cases on both databases: configuring one name from
many requests at once creates it once and leaves the last configuration; a bad one
writes nothing."""

from __future__ import annotations

import threading

import pytest

from shared.adapters.repositories.uow import SqlTransactions
from shared.db.session import Database
from shared.errors import ValidationFailed
from shared.services.fairness import ProtectedAttributes
from shared.services.fairness_commands import (
    AttributeQuery,
    ConfigureAttribute,
    GroupConfig,
    LevelConfig,
)


def _command(column: str) -> ConfigureAttribute:
    return ConfigureAttribute(
        attribute_name="gender",
        column_name=column,
        groups=(GroupConfig("f", ("F",)), GroupConfig("m", ("M",))),
    )


def test_racing_configurations_create_once(db: Database) -> None:
    service = ProtectedAttributes(SqlTransactions(db))
    start = threading.Barrier(4)
    created: list[bool] = []
    failures: list[BaseException] = []

    def configure(i: int) -> None:
        start.wait()
        try:
            created.append(service.configure(_command(f"c{i}")).created)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=configure, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert sorted(created) == [False, False, False, True]
    listed = service.list_attributes(AttributeQuery())
    assert listed.total == 1
    assert listed.items[0].column_name in {"c0", "c1", "c2", "c3"}


def test_a_bad_configuration_writes_nothing(db: Database) -> None:
    service = ProtectedAttributes(SqlTransactions(db))
    bad = ConfigureAttribute(
        attribute_name="age",
        column_name="age",
        groups=(GroupConfig("a", low=0, high=30), GroupConfig("b", low=20)),
        thresholds={"unknown": LevelConfig(0.1, 0.2)},
    )
    with pytest.raises(ValidationFailed) as raised:
        service.configure(bad)
    fields = [d["field"] for d in raised.value.details]
    assert fields == ["groups.1.min", "thresholds.unknown"]
    assert service.list_attributes(AttributeQuery()).total == 0
    assert service.active() == []
