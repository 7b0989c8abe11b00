"""GET /models/{id}/evaluation: the test rows stored beside the model (written here
through the service, as training's hand-off does) read back into curves, the
confusion matrix at the model's threshold and precision@k per day; its errors."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest

from ml.training.evaluation import DAY_NS, precision_at_k_per_day
from shared.container import Container
from shared.db.models import MLModel
from shared.services.model_evaluation import EvaluationRows

API = "/api/v1/models"
T0 = int(np.datetime64("2026-05-01T00:00:00", "ns").astype(np.int64))


def _model(ctx: Container, **metrics: Any) -> str:
    model_id = uuid.uuid4()
    with ctx.db.session() as s:
        s.add(
            MLModel(
                id=model_id,
                name="fraud",
                version=f"{uuid.uuid4().hex[:6]}",
                algorithm="xgboost",
                storage_path=f"models/{model_id}/",
                metrics={"auc_roc": 0.9, **metrics},
                details={"threshold": 0.6},
            )
        )
    return str(model_id)


def _rows(n: int = 3000, seed: int = 3) -> EvaluationRows:
    rng = np.random.default_rng(seed)
    label = (rng.random(n) < 0.05).astype(np.int64)
    score = np.clip(label * 0.5 + rng.random(n) * 0.6, 0, 1)
    return EvaluationRows(
        transaction_id=[f"T{i}" for i in range(n)],
        user_id=[f"U{u}" for u in rng.integers(0, 300, n)],
        timestamp=np.sort(T0 + rng.integers(0, 7 * DAY_NS, n)),
        label=label,
        score=score,
    )


def test_stored_rows_come_back_as_the_evaluation(client: Any, ctx: Container) -> None:
    model_id = _model(ctx, threshold=0.55, threshold_source="validation")
    rows = _rows()
    added = ctx.evaluations.store(model_id, rows)
    expected = precision_at_k_per_day(rows.label, rows.score, rows.timestamp, 100)
    assert added["precision_at_100"] == pytest.approx(expected.mean)
    assert set(added) == {"precision_at_100", "user_precision_at_100"}

    back = ctx.evaluations.rows(model_id)
    assert list(back.transaction_id) == list(rows.transaction_id)
    assert np.array_equal(back.timestamp, rows.timestamp)
    assert np.array_equal(back.score, rows.score)

    resp = client.get(f"{API}/{model_id}/evaluation")
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    assert data["threshold"] == 0.55 and data["threshold_source"] == "validation"
    predicted = rows.score >= 0.55
    assert data["confusion_matrix"] == {
        "tn": int((~predicted & (rows.label == 0)).sum()),
        "fp": int((predicted & (rows.label == 0)).sum()),
        "fn": int((~predicted & (rows.label == 1)).sum()),
        "tp": int((predicted & (rows.label == 1)).sum()),
    }
    assert data["rows"] == 3000
    assert len(data["precision_at_k"]["per_day"]) == 7
    assert data["precision_at_k"]["mean"] == pytest.approx(expected.mean)
    assert data["user_precision_at_k"]["mean"] == pytest.approx(
        added["user_precision_at_100"]
    )
    assert sum(data["calibration"]["count"]) == 3000
    assert 2 <= len(data["roc_curve"]["fpr"]) <= 200

    small = client.get(f"{API}/{model_id}/evaluation", params={"k": 5}).json()["data"]
    top5 = precision_at_k_per_day(rows.label, rows.score, rows.timestamp, 5)
    assert small["precision_at_k"]["k"] == 5
    assert [d["precision"] for d in small["precision_at_k"]["per_day"]] == (
        pytest.approx(top5.precision)
    )


def test_threshold_falls_back_to_the_models_details(
    client: Any, ctx: Container
) -> None:
    model_id = _model(ctx)  # an older model: threshold only in details, no source
    ctx.evaluations.store(model_id, _rows(200))
    data = client.get(f"{API}/{model_id}/evaluation").json()["data"]
    assert data["threshold"] == 0.6 and data["threshold_source"] is None


def test_millisecond_datetimes_are_stored_as_instants(ctx: Container) -> None:
    model_id = _model(ctx)
    rows = _rows(100)
    in_ms = rows.timestamp.astype("datetime64[ns]").astype("datetime64[ms]")
    ctx.evaluations.store(
        model_id,
        EvaluationRows(
            rows.transaction_id, rows.user_id, in_ms, rows.label, rows.score
        ),
    )
    back = ctx.evaluations.rows(model_id).timestamp
    assert np.array_equal(back, in_ms.astype("datetime64[ns]").astype(np.int64))
    assert back.min() >= T0


def test_errors(client: Any, ctx: Container) -> None:
    unknown = client.get(f"{API}/{uuid.uuid4()}/evaluation")
    assert unknown.status_code == 404
    assert client.get(f"{API}/not-a-uuid/evaluation").status_code == 404
    older = _model(ctx)
    refused = client.get(f"{API}/{older}/evaluation")
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "NO_EVALUATION"
    assert "trained before evaluations were stored" in error["message"]
    bad_k = client.get(f"{API}/{older}/evaluation", params={"k": 0})
    assert bad_k.status_code == 422
    assert "k" in bad_k.text
