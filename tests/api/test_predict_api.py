"""Inference end to end through the API on both stacks: a model trained and promoted
through the API, online features equal to batch, exactly-once state, explanations that
add up, the prediction log, labels, batch scoring and bad input."""

from __future__ import annotations

import io
import math
import threading
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from ml.explain import generic_reason
from ml.features import FeatureConfig, compute_features
from ml.scoring.transform import score_transform_one
from shared.container import Container
from shared.db.models import OnlineTransaction, Prediction
from tests.support.data import upload
from tests.support.jobs import wait_for_job
from tests.support.serving import API, as_request, generated, promote, serve, train

HISTORY = 4000


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return generated(5000)


@pytest.fixture(scope="module")
def batch_features(transactions: pd.DataFrame) -> pd.DataFrame:
    return compute_features(transactions, FeatureConfig()).frame.set_index(
        "transaction_id"
    )


def _live(
    transactions: pd.DataFrame, n: int, start: int = HISTORY
) -> list[dict[str, Any]]:
    rows = transactions.iloc[start : start + n].to_dict("records")
    return [as_request(r) for r in rows]


def _count(ctx: Container, model: Any) -> int:
    with ctx.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _logged(ctx: Container) -> dict[str, Prediction]:
    with ctx.db.session() as s:
        return {p.transaction_id: p for p in s.scalars(select(Prediction))}


def _assert_vector_is_the_scored_input(scorer: Any, row: Prediction) -> None:
    """The packed input vector is the model's input as scored: its features in its
    order as float32, what the JSON column holds (null as NaN)."""
    assert row.input_vector is not None
    vector = np.frombuffer(row.input_vector, dtype=np.float32)
    np.testing.assert_array_equal(vector, scorer.matrix([row.input_features])[0])


def _assert_logged_features_equal_batch(
    logged: dict[str, Prediction], batch_features: pd.DataFrame
) -> None:
    """The features each prediction was made with are the batch computation's over
    the whole history, to 1e-6 (point in time, online equals batch)."""
    online = pd.DataFrame.from_dict(
        {t: p.input_features for t, p in logged.items()}, orient="index"
    )
    want = batch_features.loc[online.index, online.columns]
    assert np.nanmax(np.abs(online.to_numpy() - want.to_numpy())) <= 1e-6


def test_without_a_production_model_predict_says_what_to_do(client: Any) -> None:
    txn = {
        "transaction_id": "T1",
        "amount": 5,
        "user_id": "U1",
        "timestamp": "2026-01-01T00:00:00Z",
    }
    resp = client.post(f"{API}/predict", json={"transaction": txn})
    assert resp.status_code == 409
    error = resp.json()["error"]
    assert error["code"] == "NO_PRODUCTION_MODEL" and "promote" in error["message"]


@pytest.mark.slow
def test_predict_uses_online_features_equal_to_batch_and_logs_each_once(
    client: Any,
    ctx: Container,
    runtime: Any,
    transactions: pd.DataFrame,
    batch_features: pd.DataFrame,
) -> None:
    model_id = serve(client, transactions.iloc[:HISTORY])
    live = _live(transactions, 300)
    answers = []
    for txn in live:
        resp = client.post(f"{API}/predict", json={"transaction": txn})
        assert resp.status_code == 200, resp.text
        answers.append(resp.json()["data"])
    first = answers[0]
    assert first["model_id"] == model_id and first["model_version"] == "1.0"
    assert 0.0 <= first["fraud_score"] <= 1.0 and 0.5 <= first["confidence"] <= 1.0
    assert first["is_fraud"] == (first["fraud_score"] >= first["threshold"])
    assert first["latency_ms"] > 0 and first["explanation"] is None

    # every prediction logged once, with the features the online path computed, which
    # equal the batch computation over the whole history (point in time)
    logged = _logged(ctx)
    assert len(logged) == len(live)
    _assert_logged_features_equal_batch(logged, batch_features)
    # and the score is the ONNX model's on those features
    scorer = ctx.predictor.models.resolve(model_id).scorer
    for answer in answers[:20]:
        row = logged[answer["transaction_id"]]
        assert answer["fraud_score"] == pytest.approx(
            scorer.score_one(row.input_features), abs=1e-7
        )
        assert answer["prediction_id"] == str(row.id)
        _assert_vector_is_the_scored_input(scorer, row)

    # a retry changes no state and returns the same prediction
    store = ctx.predictor.models.resolve(model_id).store
    keys = store.engine.entity_keys(live[-1])
    before = store.states(keys)
    again = client.post(f"{API}/predict", json={"transaction": live[-1]}).json()["data"]
    assert again["replayed"] and not answers[-1]["replayed"]
    for field in ("prediction_id", "fraud_score", "is_fraud", "confidence"):
        assert again[field] == answers[-1][field]
    assert store.states(keys) == before
    assert len(_logged(ctx)) == len(live)

    # health shows this worker's online cache: the scored entities, warmed or not
    worker = client.get(f"{API}/health").json()["data"]["worker"]
    (cache,) = worker["online_cache"]
    assert cache["namespace"] == store.namespace
    assert cache["entities"] == store.cached_entities >= len(keys)
    assert cache["capacity"] == 100_000 and cache["warming"] in (True, False)


def test_explanations_add_up_to_the_raw_score_and_read_well(
    client: Any, ctx: Container, runtime: Any, transactions: pd.DataFrame
) -> None:
    serve(client, transactions.iloc[:HISTORY])
    for txn in _live(transactions, 5):
        resp = client.post(
            f"{API}/predict/explain", json={"transaction": txn, "top_k": 100}
        )
        assert resp.status_code == 200, resp.text
        data = resp.json()["data"]
        exp = data["explanation"]
        total = exp["base_value"] + sum(f["contribution"] for f in exp["top_features"])
        assert total == pytest.approx(exp["raw_score"], abs=1e-4)
        assert exp["output"] == "log_odds"
        # the served score is the raw model's probability through its calibration
        model = client.get(f"{API}/models/{data['model_id']}").json()["data"]
        probability = 1 / (1 + math.exp(-exp["raw_score"]))
        calibrated = score_transform_one(
            probability, model["details"]["score_transform"]
        )
        assert calibrated == pytest.approx(data["fraud_score"], abs=1e-4)
        contributions = [abs(f["contribution"]) for f in exp["top_features"]]
        assert contributions == sorted(contributions, reverse=True)
        for item in exp["top_features"]:  # a sentence written for that feature
            assert item["reason"] != generic_reason(item["feature"], item["value"])
    top3 = client.post(
        f"{API}/predict/explain",
        json={"transaction": _live(transactions, 1, HISTORY + 10)[0], "top_k": 3},
    ).json()["data"]["explanation"]["top_features"]
    assert len(top3) == 3
    logged = _logged(ctx)
    assert all(p.explanation is not None for p in logged.values())


@pytest.mark.slow
def test_batch_scores_in_order_all_or_nothing(
    client: Any,
    ctx: Container,
    runtime: Any,
    transactions: pd.DataFrame,
    batch_features: pd.DataFrame,
) -> None:
    serve(client, transactions.iloc[:HISTORY])
    live = _live(transactions, 1000)
    records = _count(ctx, OnlineTransaction)

    bad = [dict(t) for t in live[:10]]
    bad[3]["amount"] = -5
    del bad[7]["user_id"]
    resp = client.post(f"{API}/predict/batch", json={"transactions": bad})
    assert resp.status_code == 422
    fields = {d["field"] for d in resp.json()["error"]["details"]}
    assert fields == {"transactions.3.amount", "transactions.7.user_id"}
    assert "3, 7" in resp.json()["error"]["message"]
    assert _count(ctx, OnlineTransaction) == records  # nothing written

    resp = client.post(f"{API}/predict/batch", json={"transactions": live})
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    assert data["count"] == 1000
    ids = [p["transaction_id"] for p in data["predictions"]]
    assert ids == [t["transaction_id"] for t in live]
    logged = _logged(ctx)
    assert len(logged) == 1000
    _assert_logged_features_equal_batch(logged, batch_features)
    # the batch's scores are the model's on the logged features by name, as /predict
    # scores them (the batch selects the model's columns from the feature matrix)
    scorer = ctx.predictor.models.resolve(data["model_id"]).scorer
    for p in data["predictions"]:
        row = logged[p["transaction_id"]]
        assert p["fraud_score"] == pytest.approx(row.fraud_score)
        assert p["fraud_score"] == pytest.approx(
            scorer.score_one(row.input_features), abs=1e-7
        )
        _assert_vector_is_the_scored_input(scorer, row)
    # the same batch again is all replays: same answers, nothing new logged
    again = client.post(f"{API}/predict/batch", json={"transactions": live[:100]})
    assert all(p["replayed"] for p in again.json()["data"]["predictions"])
    assert len(_logged(ctx)) == 1000

    too_many = client.post(
        f"{API}/predict/batch", json={"transactions": [live[0]] * 10_001}
    )
    assert too_many.status_code == 413


BAD_TRANSACTIONS = [
    ({"amount": "12.5"}, "transaction.amount"),
    ({"amount": -1}, "transaction.amount"),
    ({"amount": None}, "transaction.amount"),
    ({"timestamp": "yesterday"}, "transaction.timestamp"),
    ({"user_id": 42}, "transaction.user_id"),
    ({"transaction_id": ""}, "transaction.transaction_id"),
]


def test_bad_input_is_refused_with_field_details(
    client: Any, ctx: Container, runtime: Any, transactions: pd.DataFrame
) -> None:
    serve(client, transactions.iloc[:HISTORY])
    good = _live(transactions, 1)[0]
    for change, field in BAD_TRANSACTIONS:
        resp = client.post(f"{API}/predict", json={"transaction": {**good, **change}})
        assert resp.status_code == 422, (change, resp.text)
        assert field in {d["field"] for d in resp.json()["error"]["details"]}, change
    for missing in ("transaction_id", "amount", "timestamp", "user_id"):
        txn = {k: v for k, v in good.items() if k != missing}
        resp = client.post(f"{API}/predict", json={"transaction": txn})
        assert resp.status_code == 422
        assert resp.json()["error"]["details"][0]["field"] == f"transaction.{missing}"
    for literal in ("NaN", "Infinity"):
        body = (
            '{"transaction": {"transaction_id": "X", "user_id": "U", '
            f'"timestamp": "2026-02-01T00:00:00Z", "amount": {literal}}}}}'
        )
        resp = client.post(
            f"{API}/predict", content=body, headers={"content-type": "application/json"}
        )
        assert resp.status_code == 422, literal
    unknown = client.post(
        f"{API}/predict",
        json={"transaction": good, "model_id": "00000000-0000-0000-0000-000000000000"},
    )
    assert unknown.status_code == 404
    assert (
        client.post(
            f"{API}/predict", json={"transaction": good, "model_id": "nope"}
        ).status_code
        == 404
    )
    assert _count(ctx, OnlineTransaction) == 0  # none of that touched the state
    # values never seen in training score normally
    novel = {
        **good,
        "location": "AQ",
        "device_type": "smart-fridge",
        "device_id": "new",
    }
    resp = client.post(f"{API}/predict", json={"transaction": novel})
    assert resp.status_code == 200 and 0 <= resp.json()["data"]["fraud_score"] <= 1


@pytest.mark.slow
def test_labels_fill_actual_label_and_the_online_state(
    client: Any, ctx: Container, runtime: Any, transactions: pd.DataFrame
) -> None:
    model_id = serve(client, transactions.iloc[:HISTORY])
    live = _live(transactions, 20)
    answers = [
        client.post(f"{API}/predict", json={"transaction": t}).json()["data"]
        for t in live
    ]
    labels = [
        {"transaction_id": live[0]["transaction_id"], "label": True},
        {"prediction_id": answers[1]["prediction_id"], "label": False},
        {"transaction_id": "never-scored", "label": True},
    ]
    resp = client.post(f"{API}/predictions/labels", json={"labels": labels})
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    assert data["updated"] == 2 and data["unmatched_transaction_ids"] == [
        "never-scored"
    ]
    # the prediction id's transaction too
    assert data["online_state_updated"] == 2
    logged = _logged(ctx)
    assert logged[live[0]["transaction_id"]].actual_label is True
    assert logged[live[1]["transaction_id"]].actual_label is False
    assert logged[live[2]["transaction_id"]].actual_label is None
    store = ctx.predictor.models.resolve(model_id).store
    merchant = ("merchant", live[0]["merchant_id"])
    state = store.states([merchant])[merchant]
    assert state["lab"][state["tid"].index(live[0]["transaction_id"])] == 1
    bad = client.post(f"{API}/predictions/labels", json={"labels": [{"label": 1}]})
    assert bad.status_code == 422


@pytest.mark.slow
def test_promotion_swaps_the_model_without_failing_a_request(
    client: Any, ctx: Container, runtime: Any, transactions: pd.DataFrame
) -> None:
    first = serve(client, transactions.iloc[:HISTORY])
    model = client.get(f"{API}/models/{first}").json()["data"]
    feature_set_id = model["feature_set_id"]
    second = train(client, feature_set_id, "lightgbm")
    live = _live(transactions, 1000)
    seen: list[tuple[int, str]] = []
    stop = threading.Event()

    def hammer() -> None:
        for txn in live:
            if stop.is_set():
                break
            resp = client.post(f"{API}/predict", json={"transaction": txn})
            seen.append(
                (resp.status_code, resp.json().get("data", {}).get("model_id", ""))
            )

    def wait_until(condition: Any) -> None:
        deadline = time.monotonic() + 60
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)

    worker = threading.Thread(target=hammer)
    worker.start()
    wait_until(lambda: len(seen) >= 50)
    promote(client, second)
    wait_until(lambda: sum(m == second for _, m in seen) >= 50 or not worker.is_alive())
    stop.set()
    worker.join(timeout=60)
    assert seen and all(code == 200 for code, _ in seen), seen[:5]
    models = [m for _, m in seen]
    assert models[0] == first and models[-1] == second
    switched = models.index(second)
    assert set(models[switched:]) == {second}, "never back to the old model"


@pytest.mark.slow
def test_each_answer_is_sent_only_once_its_prediction_is_stored(
    client: Any, ctx: Container, runtime: Any, transactions: pd.DataFrame
) -> None:
    """The log row commits with the online state: when an answer arrives, its row is
    already in ``predictions`` (a crash after it cannot lose it); a batch's too."""
    serve(client, transactions.iloc[:HISTORY])
    live = _live(transactions, 30)
    for n, txn in enumerate(live[:20], 1):
        answer = client.post(f"{API}/predict", json={"transaction": txn})
        assert answer.status_code == 200, answer.text
        assert _count(ctx, Prediction) == n
        assert _count(ctx, OnlineTransaction) == n
    resp = client.post(f"{API}/predict/batch", json={"transactions": live[20:]})
    assert resp.status_code == 200, resp.text
    assert _count(ctx, Prediction) == len(live)
    assert set(_logged(ctx)) == {t["transaction_id"] for t in live}


def test_a_failure_while_scoring_stores_nothing_and_the_retry_applies_it(
    client: Any,
    ctx: Container,
    runtime: Any,
    transactions: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """State, score, explanation and log row succeed or fail together: an explanation
    that fails leaves the transaction unapplied and unlogged, and the retry scores it
    as new, with the features it would have had."""
    from shared.services.prediction_log import PredictionLog
    from shared.services.serving_models import ServingModel

    serve(client, transactions.iloc[:HISTORY])
    txn = _live(transactions, 1)[0]
    real = ServingModel.explainer

    def broken(self: ServingModel, blobs: Any) -> Any:
        raise RuntimeError("explainer failed")

    monkeypatch.setattr(ServingModel, "explainer", broken)
    body = {"transaction": txn}
    assert client.post(f"{API}/predict/explain", json=body).status_code == 500
    assert _count(ctx, OnlineTransaction) == 0
    assert _count(ctx, Prediction) == 0

    monkeypatch.setattr(ServingModel, "explainer", real)
    retry = client.post(f"{API}/predict/explain", json=body)
    assert retry.status_code == 200, retry.text
    assert retry.json()["data"]["replayed"] is False
    assert _count(ctx, OnlineTransaction) == 1
    assert _count(ctx, Prediction) == 1

    # a batch whose scoring fails stores none of its transactions either
    live = _live(transactions, 5, start=HISTORY + 10)

    def failing_write(self: PredictionLog, conn: Any, records: Any) -> None:
        raise RuntimeError("log write failed")

    monkeypatch.setattr(PredictionLog, "write", failing_write)
    resp = client.post(f"{API}/predict/batch", json={"transactions": live})
    assert resp.status_code == 500
    assert _count(ctx, OnlineTransaction) == 1
    assert _count(ctx, Prediction) == 1


@pytest.mark.slow
def test_a_replay_whose_log_row_is_missing_restores_it(
    client: Any, ctx: Container, runtime: Any, transactions: pd.DataFrame
) -> None:
    """A prediction acknowledged but not logged (by a version that logged after
    answering): its retry answers the same prediction and writes the missing row, so
    its label then finds it."""
    serve(client, transactions.iloc[:HISTORY])
    live = _live(transactions, 3)
    first = [
        client.post(f"{API}/predict", json={"transaction": t}).json()["data"]
        for t in live[:2]
    ]
    batch = client.post(f"{API}/predict/batch", json={"transactions": live[2:]})
    first += batch.json()["data"]["predictions"]
    with ctx.db.session(write=True) as s:
        s.execute(Prediction.__table__.delete())

    again = client.post(f"{API}/predict", json={"transaction": live[0]}).json()["data"]
    assert again["replayed"] is True
    assert again["prediction_id"] == first[0]["prediction_id"]
    assert again["fraud_score"] == first[0]["fraud_score"]
    replays = client.post(f"{API}/predict/batch", json={"transactions": live[1:]})
    assert all(p["replayed"] for p in replays.json()["data"]["predictions"])
    logged = _logged(ctx)
    assert set(logged) == {t["transaction_id"] for t in live}
    assert {str(p.id) for p in logged.values()} == {p["prediction_id"] for p in first}

    labels = [{"transaction_id": t["transaction_id"], "label": True} for t in live]
    result = client.post(f"{API}/predictions/labels", json={"labels": labels})
    assert result.json()["data"]["unmatched_transaction_ids"] == []
    # a second replay adds nothing
    client.post(f"{API}/predict", json={"transaction": live[0]})
    assert _count(ctx, Prediction) == len(live)


@pytest.mark.slow
def test_a_promotion_keeps_the_live_online_state_unless_told_to_replace_it(
    client: Any,
    ctx: Container,
    runtime: Any,
    transactions: pd.DataFrame,
    batch_features: pd.DataFrame,
) -> None:
    """A new model of the same feature configuration continues from the state the
    live transactions built (its features still equal batch over the whole history);
    online_state "replace" rebuilds it from the training data."""
    first = serve(client, transactions.iloc[:HISTORY])
    feature_set_id = client.get(f"{API}/models/{first}").json()["data"][
        "feature_set_id"
    ]
    second = train(client, feature_set_id, "lightgbm")
    live = _live(transactions, 400)
    for txn in live[:200]:
        assert (
            client.post(f"{API}/predict", json={"transaction": txn}).status_code == 200
        )

    kept = promote(client, second)["backfill"]["result"]
    assert kept["kept_live_state"] is True and "replace" in kept["reason"]
    for txn in live[200:]:
        resp = client.post(f"{API}/predict", json={"transaction": txn})
        assert resp.status_code == 200 and resp.json()["data"]["model_id"] == second
    logged = _logged(ctx)
    assert len(logged) == len(live)
    _assert_logged_features_equal_batch(logged, batch_features)

    store = ctx.predictor.models.resolve(second).store
    assert store.is_live()
    resp = client.post(
        f"{API}/models/{second}/rollback",
        json={"reason": "test", "online_state": "replace"},
    )
    assert resp.status_code == 200, resp.text
    job_id = resp.json()["data"]["online_backfill_job_id"]
    replaced = wait_for_job(client, f"{API}/jobs/{job_id}")["result"]
    assert replaced["kept_live_state"] is False and replaced["entities"] > 0
    assert not store.is_live()


@pytest.mark.slow
def test_labels_reach_every_feature_configuration_that_scored_the_transaction(
    client: Any, ctx: Container, runtime: Any, transactions: pd.DataFrame
) -> None:
    """Also one that the worker receiving the label has not loaded: a shadow model's
    with other windows, scored in another worker (here: before a restart)."""
    history = transactions.iloc[:HISTORY]
    production = serve(client, history)
    buf = io.BytesIO()
    history.to_parquet(buf, index=False)
    resp = upload(client, name="tx2", content=buf.getvalue(), filename="tx2.parquet")
    body = {"dataset_id": resp.json()["data"]["id"], "config": {"windows": ["1h"]}}
    job = client.post(f"{API}/features/compute", json=body).json()["data"]
    done = wait_for_job(client, f"{API}/features/jobs/{job['job_id']}")
    shadow = train(client, str(done["feature_set_id"]), name="shadow")
    txn = _live(transactions, 1)[0]
    for model_id in (production, shadow):
        scored = client.post(
            f"{API}/predict", json={"model_id": model_id, "transaction": txn}
        )
        assert scored.status_code == 200, scored.text
    ctx.close()  # a fresh scoring service: no store loaded

    label = {"transaction_id": txn["transaction_id"], "label": True}
    resp = client.post(f"{API}/predictions/labels", json={"labels": [label]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["online_state_updated"] == 2
    merchant = ("merchant", txn["merchant_id"])
    for model_id in (production, shadow):
        store = ctx.predictor.models.resolve(model_id).store
        state = store.states([merchant])[merchant]
        assert state["lab"][state["tid"].index(txn["transaction_id"])] == 1
