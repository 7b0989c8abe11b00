"""The registry service: versions per name guarded by the (name, version) constraint,
and the one answer to "which model is in production"."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session

import shared.services.registry as registry_module
from shared.adapters.repositories.uow import SqlTransactions
from shared.db.models import MLModel
from shared.db.session import Database
from shared.ports import Duplicate, ModelRepository
from shared.services.registry import ModelRegistry, NewModel, production_model


def _new(name: str = "fraud") -> NewModel:
    model_id = uuid.uuid4()
    return NewModel(
        id=model_id,
        name=name,
        algorithm="xgboost",
        hyperparameters={},
        metrics={"auc_roc": 0.9},
        storage_path=f"models/{model_id}/",
        feature_set_id=None,
        details={"onnx_max_abs_diff": 0.0},
    )


def test_versions_count_up_per_name(db: Database) -> None:
    registry = ModelRegistry(SqlTransactions(db))
    assert [registry.register(_new()) for _ in range(3)] == ["1.0", "2.0", "3.0"]
    assert registry.register(_new("other")) == "1.0"


def test_a_deleted_version_is_not_given_again(db: Database) -> None:
    registry = ModelRegistry(SqlTransactions(db))
    first, second = _new(), _new()
    registry.register(first)
    registry.register(second)
    with db.session(write=True) as s:
        s.execute(delete(MLModel).where(MLModel.id == first.id))
    assert registry.register(_new()) == "3.0"


def test_a_version_taken_meanwhile_is_retried_once(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = ModelRegistry(SqlTransactions(db))
    registry.register(_new())
    real = registry_module.next_version
    calls: list[str] = []

    def racing(models: ModelRepository, name: str) -> str:
        calls.append(name)
        return "1.0" if len(calls) == 1 else real(models, name)

    monkeypatch.setattr(registry_module, "next_version", racing)
    assert registry.register(_new()) == "2.0"
    assert len(calls) == 2

    monkeypatch.setattr(registry_module, "next_version", lambda models, name: "1.0")
    with pytest.raises(Duplicate):
        registry.register(_new())


def test_registration_and_its_companion_write_are_one_transaction(
    db: Database,
) -> None:
    registry = ModelRegistry(SqlTransactions(db))
    new = _new()

    def broken(s: Session) -> None:
        raise RuntimeError("the job row is gone")

    with pytest.raises(RuntimeError):
        registry.register(new, also=broken)
    assert not registry.is_registered(new.id)


def test_the_production_model(db: Database) -> None:
    changed: list[bool] = []
    registry = ModelRegistry(
        SqlTransactions(db), on_change=lambda: changed.append(True)
    )
    first, second = _new(), _new()
    registry.register(first)
    registry.register(second)
    uow = SqlTransactions(db)
    with uow() as tx:
        assert tx.models.production_id() is None
    registry.promote(str(first.id), "production", "first")
    registry.promote(str(second.id), "production", "better")
    with uow() as tx:
        assert tx.models.production_id() == second.id
        assert tx.models.production_id("fraud") == second.id
        assert tx.models.production_id("unknown") is None
        current = production_model(tx.models)
        assert current is not None and current.version == "2.0"
    assert changed == [True, True]
    registry.rollback(str(second.id), "regression")
    found = registry.production("fraud")
    assert found is not None and found.id == first.id
