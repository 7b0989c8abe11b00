"""The bias audits' repository on SQLite and PostgreSQL: an audit stored with its
metrics rows, the latest of a model (by source, with data), the labelled predictions
of a window with their protected values, the production models, and the cascade
when a model is deleted."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete

from shared.adapters.repositories.uow import SqlTransactions
from shared.db.models import BiasAudit, BiasMetric, MLModel, Prediction
from shared.db.session import Database
from shared.ports import Transactions

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def uow(db: Database) -> Transactions:
    return SqlTransactions(db)


def _model(uow: Transactions, status: str = "TRAINED", name: str = "m") -> uuid.UUID:
    model_id = uuid.uuid4()
    with uow(write=True) as tx:
        tx.models.add(
            MLModel(
                id=model_id,
                name=f"{name}-{model_id.hex[:6]}",
                version="1.0",
                algorithm="xgboost",
                storage_path="",
                status=status,
            )
        )
    return model_id


def _audit(
    uow: Transactions,
    model_id: uuid.UUID,
    source: str,
    status: str,
    minutes: int,
    metrics: int = 2,
) -> uuid.UUID:
    audit_id = uuid.uuid4()
    at = T0 + timedelta(minutes=minutes)
    audit = BiasAudit(
        id=audit_id,
        model_id=model_id,
        source=source,
        window="24h" if source == "predictions" else None,
        window_start=at - timedelta(hours=24) if source == "predictions" else None,
        window_end=at if source == "predictions" else None,
        status=status,
        row_count=10,
        computed_at=at,
        result_path=f"bias/{audit_id}/result.json",
        report_path=f"bias/{audit_id}/report.html",
    )
    rows = [
        BiasMetric(
            model_id=model_id,
            audit_id=audit_id,
            protected_attribute="gender",
            metric_name=f"metric_{i}",
            group_values={"groups": {"f": {"count": 3, "fpr": None}}},
            overall_value=0.1 * i,
            status="OK",
            computed_at=at,
        )
        for i in range(metrics)
    ]
    with uow(write=True) as tx:
        tx.bias.add_audit(audit, rows)
    return audit_id


def test_audits_with_their_metrics_and_the_latest(uow: Transactions) -> None:
    model_id, other = _model(uow), _model(uow)
    first = _audit(uow, model_id, "test_set", "OK", 0)
    second = _audit(uow, model_id, "predictions", "WARNING", 5)
    third = _audit(uow, model_id, "predictions", "NO_DATA", 10, metrics=0)
    _audit(uow, other, "predictions", "CRITICAL", 20)
    with uow() as tx:
        found = tx.bias.get_audit(second)
        assert found is not None
        assert (found.source, found.window, found.status) == (
            "predictions",
            "24h",
            "WARNING",
        )
        assert found.computed_at == T0 + timedelta(minutes=5)
        assert tx.bias.get_audit(uuid.uuid4()) is None

        def latest(*args: object) -> uuid.UUID | None:
            a = tx.bias.latest_audit(model_id, *args)  # type: ignore[arg-type]
            return None if a is None else a.id

        assert latest() == third
        assert latest("test_set") == first
        assert latest("predictions") == third
        assert latest("predictions", True) == second
        assert tx.bias.latest_audit(uuid.uuid4()) is None

        rows = tx.bias.metrics(second)
        assert [m.metric_name for m in rows] == ["metric_0", "metric_1"]
        assert rows[0].group_values == {"groups": {"f": {"count": 3, "fpr": None}}}
        assert tx.bias.metrics(third) == []


def test_labelled_predictions_of_a_window(uow: Transactions) -> None:
    model_id, other = _model(uow), _model(uow)

    def add(
        model: uuid.UUID,
        minutes: int,
        label: bool | None,
        protected: dict[str, object] | None,
        flagged: bool = True,
    ) -> None:
        with uow(write=True) as tx:
            tx.session.add(  # type: ignore[attr-defined]
                Prediction(
                    id=uuid.uuid4(),
                    created_at=T0 + timedelta(minutes=minutes),
                    model_id=model,
                    input_features={"amount": 1.0},
                    fraud_score=0.9,
                    is_fraud=flagged,
                    actual_label=label,
                    protected_values=protected,
                )
            )

    add(model_id, 1, True, {"gender": "female", "age": 31})
    add(model_id, 2, False, None, flagged=False)
    add(model_id, 3, None, {"gender": "male"})  # not labelled
    add(model_id, 60, True, {"gender": "male"})  # at the end: outside
    add(model_id, -1, True, {"gender": "male"})  # before the start
    add(other, 2, True, {"gender": "male"})
    with uow() as tx:
        found = tx.bias.labelled_predictions(model_id, T0, T0 + timedelta(minutes=60))
    assert found.decisions == [True, False]
    assert found.labels == [True, False]
    assert found.protected == [{"gender": "female", "age": 31}, None]


def test_production_models_and_the_cascade(uow: Transactions, db: Database) -> None:
    live = _model(uow, "PRODUCTION", "a")
    _model(uow, "STAGING", "b")
    with uow() as tx:
        assert tx.bias.production_model_ids() == [live]
    audit_id = _audit(uow, live, "test_set", "OK", 0)
    with db.session() as s:
        s.execute(delete(MLModel).where(MLModel.id == live))
    with uow() as tx:
        assert tx.bias.get_audit(audit_id) is None
        assert tx.bias.metrics(audit_id) == []
