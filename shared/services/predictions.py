"""Scoring transactions (spec section 5): online features, ONNX score, decision,
optional SHAP explanation, and a prediction log entry for each new prediction.

Exactly once per transaction id: the online feature store applies a transaction id once
and gives its stored features back on a retry, so a retried request returns the same
prediction (same id, score and decision) and logs nothing new. The prediction id is
derived from the model and the transaction id for that reason.

A new prediction is scored and its log row written inside the database transaction that
applies the transaction to the online state: the state, the score and the row commit
together or not at all, and the answer leaves only after the commit.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.errors import ValidationFailed

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from shared.db.session import Database
    from shared.ports import BlobStore
    from shared.services.online_features import BatchFeatures, OnlineFeatures
    from shared.services.prediction_log import PredictionLog, PredictionRecord
    from shared.services.serving_models import ModelServer, ServingModel

MAX_BATCH = 10_000
DEFAULT_TOP_K = 5


def confidence(score: float, threshold: float) -> float:
    """How clear-cut the decision is, from 0.5 (score at the threshold) to 1.0 (score
    at 0 or 1): the score's distance from the threshold, relative to the room on that
    side of it."""
    if score >= threshold:
        room = 1.0 - threshold
        return 1.0 if room <= 0 else 0.5 + 0.5 * min(1.0, (score - threshold) / room)
    return 0.5 + 0.5 * min(1.0, (threshold - score) / threshold)


def prediction_id(model_id: uuid.UUID, transaction_id: str) -> uuid.UUID:
    """Stable per (model, transaction): a retried request gets the same id back."""
    return uuid.uuid5(model_id, transaction_id)


class _LogWith:
    """The log row of one new prediction, written with its transaction: inside its
    database transaction, or (PostgreSQL's one-call path) in the statement applying it
    (an ``InsertWith`` of the online store). ``score`` gives the row."""

    def __init__(
        self, log: PredictionLog, score: Callable[[OnlineFeatures], PredictionRecord]
    ) -> None:
        self.log = log
        self.score = score

    def __call__(self, online: OnlineFeatures, conn: Connection, /) -> None:
        self.log.write(conn, [self.score(online)])

    def insert_for(self, online: OnlineFeatures, /) -> tuple[str, list[Any]]:
        return self.log.insert_for([self.score(online)])


def _feature_error(exc: Exception, prefix: str) -> ValidationFailed:
    field = getattr(exc, "field", None) or ""
    return ValidationFailed(
        str(exc),
        [{"field": f"{prefix}.{field}" if field else prefix, "message": str(exc)}],
    )


class Predictor:
    """The scoring service of one worker: shared by the HTTP routes, benches and tests."""

    def __init__(
        self, db: Database, blobs: BlobStore, models: ModelServer, log: PredictionLog
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.models = models
        self.log = log

    # -- one transaction -----------------------------------------------------------------

    def predict(
        self,
        transaction: Mapping[str, Any],
        model_id: str | None = None,
        *,
        explain: bool = False,
        top_k: int = DEFAULT_TOP_K,
        protected: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``protected``: the request's protected attributes, logged with a new
        prediction for bias audits; never features, never in the answer."""
        from ml.features import FeatureInputError

        started = time.perf_counter()
        model = self.models.resolve(model_id)
        answers: list[tuple[dict[str, Any], PredictionRecord]] = []

        def score(online: OnlineFeatures) -> PredictionRecord:
            answers.append(
                self._answer(model, online, started, explain, top_k, protected)
            )
            if protected:
                answers[-1][1].protected_values = dict(protected)
            return answers[-1][1]

        try:
            online = model.store.process(transaction, _LogWith(self.log, score))
        except FeatureInputError as exc:
            raise _feature_error(exc, "transaction") from None
        if online.replayed:  # nothing was applied: the first answer, given again
            answers.append(
                self._answer(model, online, started, explain, top_k, protected)
            )
            self.log.repair([answers[-1][1]])
        else:
            self.log.committed(1)
        return answers[-1][0]

    def _answer(
        self,
        model: ServingModel,
        online: OnlineFeatures,
        started: float,
        explain: bool,
        top_k: int,
        protected: Mapping[str, Any] | None = None,
    ) -> tuple[dict[str, Any], PredictionRecord]:
        """The answer to one transaction and its log row."""
        row = model.scorer.matrix([online.features])
        score = model.scorer.score_single(row)
        explanation = self._explain(model, row, top_k) if explain else None
        pid = prediction_id(model.id, online.transaction_id)
        result = {
            **self._decision(
                model,
                online.transaction_id,
                online.replayed,
                score,
                pid,
                model.decision_threshold(protected),
            ),
            **_model_fields(model),
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
            "explanation": explanation,
        }
        record = self._record(
            model,
            online.transaction_id,
            online.features,
            pid,
            result,
            explanation,
            datetime.now(UTC),
            result["latency_ms"],
            self.log.vector(row, model.scorer.missing_value),
        )
        return result, record

    def _explain(self, model: ServingModel, row: Any, top_k: int) -> dict[str, Any]:
        from ml.explain import top_features

        explainer = model.explainer(self.blobs)
        exp = explainer.explain(row)
        top = top_features(model.feature_names, row[0], exp.contributions[0], top_k)
        return {
            "top_features": top,
            "base_value": float(exp.base_value),
            "raw_score": float(exp.raw[0]),
            "output": exp.output,
            "method": _METHOD.get(model.algorithm, "SHAP"),
        }

    @staticmethod
    def _decision(
        model: ServingModel,
        transaction_id: str,
        replayed: bool,
        score: float,
        pid: uuid.UUID,
        threshold: float | None = None,
    ) -> dict[str, Any]:
        """What a prediction says about one transaction, single or in a batch."""
        cut = model.threshold if threshold is None else threshold
        return {
            "prediction_id": str(pid),
            "transaction_id": transaction_id,
            "fraud_score": score,
            "is_fraud": score >= cut,
            "confidence": round(confidence(score, cut), 4),
            "replayed": replayed,
        }

    @staticmethod
    def _record(
        model: ServingModel,
        transaction_id: str,
        features: dict[str, float],
        pid: uuid.UUID,
        decision: Mapping[str, Any],
        explanation: dict[str, Any] | None,
        now: datetime,
        latency_ms: float,
        input_vector: bytes | None,
    ) -> PredictionRecord:
        """The prediction log's row for a new prediction."""
        from shared.services.prediction_log import PredictionRecord

        return PredictionRecord(
            id=pid,
            created_at=now,
            model_id=model.id,
            transaction_id=transaction_id,
            input_features=features,
            fraud_score=decision["fraud_score"],
            is_fraud=decision["is_fraud"],
            explanation=explanation,
            latency_ms=latency_ms,
            input_vector=input_vector,
        )

    # -- many transactions ---------------------------------------------------------------

    def predict_batch(
        self,
        transactions: Sequence[Mapping[str, Any]],
        model_id: str | None = None,
        protected: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> dict[str, Any]:
        """All or nothing: a bad item refuses the whole batch (422 naming each bad
        index) before any state is written; otherwise every item is scored, in order.
        ``protected``: per transaction, its protected attributes (logged only)."""
        started = time.perf_counter()
        model = self.models.resolve(model_id)
        return self._predict_batch(model, transactions, started, protected)

    def _predict_batch(
        self,
        model: ServingModel,
        transactions: Sequence[Mapping[str, Any]],
        started: float,
        protected: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> dict[str, Any]:
        from ml.features import FeatureInputError

        scored: list[tuple[list[dict[str, Any]], list[PredictionRecord]]] = []

        def score_and_log(batch: BatchFeatures, conn: Connection) -> None:
            scored.append(self._batch_answer(model, batch, started, protected))
            records = scored[-1][1]
            if protected:
                for record, values in zip(records, protected, strict=False):
                    if values:
                        record.protected_values = dict(values)
            self.log.write(
                conn,
                [
                    record
                    for record, again in zip(records, batch.replayed, strict=True)
                    if not again
                ],
            )

        try:
            online = model.store.process_many(list(transactions), score_and_log)
        except FeatureInputError as exc:
            raise _feature_error(exc, "transactions") from None
        if not scored:  # an empty batch: nothing was applied
            scored.append(self._batch_answer(model, online, started, protected))
        results, records = scored[-1]
        replays = [
            r for r, again in zip(records, online.replayed, strict=True) if again
        ]
        if replays:
            self.log.repair(replays)
        self.log.committed(len(records) - len(replays))
        return {
            **_model_fields(model),
            "count": len(results),
            "flagged": sum(1 for r in results if r["is_fraud"]),
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
            "predictions": results,
        }

    def _batch_answer(
        self,
        model: ServingModel,
        online: BatchFeatures,
        started: float,
        protected: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> tuple[list[dict[str, Any]], list[PredictionRecord]]:
        """A batch's answers, in its order, and their log rows."""
        import numpy as np

        inputs = model.scorer.matrix_of_columns(online.names, online.values)
        scores = model.scorer.score(inputs) if len(online) else np.zeros(0)
        missing = model.scorer.missing_value
        latency = round((time.perf_counter() - started) * 1000, 3)
        per_item = latency / max(len(online), 1)
        tids, replayed = online.transaction_ids, online.replayed
        pids = [prediction_id(model.id, tid) for tid in tids]
        given = list(protected or [])
        cuts = [
            model.decision_threshold(given[i] if i < len(given) else None)
            for i in range(len(tids))
        ]
        results = [
            self._decision(model, *item)
            for item in zip(tids, replayed, scores.tolist(), pids, cuts, strict=True)
        ]
        now = datetime.now(UTC)
        names = online.names
        records = [
            self._record(
                model,
                tid,
                dict(zip(names, row, strict=True)),
                pid,
                decision,
                None,
                now,
                per_item,
                self.log.vector(scored, missing),
            )
            for tid, row, scored, decision, pid in zip(
                tids, online.rows, inputs, results, pids, strict=True
            )
        ]
        return results, records

    # -- labels --------------------------------------------------------------------------

    def label(self, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Record actual outcomes: ``actual_label`` on the logged predictions (for
        performance monitoring) and the label of each transaction (named, or reached
        through a prediction id) in the online state of every feature configuration
        that scored it, loaded in this worker or not, where the fraud-rate features use
        it once the label delay has passed. The state lives in the database: every
        worker's next read of those entities sees the label (their caches hold a
        state only for the row version they last read)."""
        from shared.services.prediction_log import label_predictions

        result = label_predictions(self.db, items)
        labels = result.transaction_labels
        stores = self.models.stores_recording(list(labels))
        online = sum(
            store.apply_label(tid, label)
            for tid, label in labels.items()
            for store in stores
        )
        return {
            "updated": result.updated,
            "online_state_updated": online,
            "unmatched_prediction_ids": [
                str(p) for p in result.unmatched_prediction_ids
            ],
            "unmatched_transaction_ids": list(result.unmatched_transaction_ids),
        }


def _model_fields(model: ServingModel) -> dict[str, Any]:
    return {
        "threshold": model.threshold,
        "model_id": str(model.id),
        "model_name": model.name,
        "model_version": model.version,
    }


_METHOD = {
    "xgboost": "TreeSHAP (xgboost pred_contribs)",
    "lightgbm": "TreeSHAP (lightgbm pred_contrib)",
    "isolation_forest": "TreeSHAP (shap.TreeExplainer)",
    "neural_net": "KernelSHAP (shap.KernelExplainer)",
}
