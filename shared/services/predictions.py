"""Scoring transactions (spec section 5): online features, ONNX score, decision,
optional SHAP explanation, and a prediction log entry for each new prediction.

Exactly once per transaction id: the online feature store applies a transaction id once
and gives its stored features back on a retry, so a retried request returns the same
prediction (same id, score and decision) and logs nothing new. The prediction id is
derived from the model and the transaction id for that reason.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.errors import ValidationFailed

if TYPE_CHECKING:
    from shared.bootstrap import AppContext
    from shared.services.online_features import OnlineFeatures
    from shared.services.prediction_log import PredictionLog
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


def _feature_error(exc: Exception, prefix: str) -> ValidationFailed:
    field = getattr(exc, "field", None) or ""
    return ValidationFailed(
        str(exc),
        [{"field": f"{prefix}.{field}" if field else prefix, "message": str(exc)}],
    )


class Predictor:
    """The scoring service of one worker: shared by the HTTP routes, benches and tests."""

    def __init__(
        self, ctx: AppContext, models: ModelServer, log: PredictionLog
    ) -> None:
        self.ctx = ctx
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
    ) -> dict[str, Any]:
        from ml.features import FeatureInputError

        started = time.perf_counter()
        model = self.models.resolve(model_id)
        try:
            online = model.store.process(transaction)
        except FeatureInputError as exc:
            raise _feature_error(exc, "transaction") from None
        row = model.scorer.matrix([online.features])
        score = float(model.scorer.score(row)[0])
        explanation = self._explain(model, row, top_k) if explain else None
        result = self._result(model, online, score, explanation, started)
        if not online.replayed:
            self._log(model, online, result, explanation)
        return result

    def _explain(self, model: ServingModel, row: Any, top_k: int) -> dict[str, Any]:
        from ml.explain import top_features

        explainer = model.explainer(self.ctx.blobs)
        exp = explainer.explain(row)
        top = top_features(model.feature_names, row[0], exp.contributions[0], top_k)
        return {
            "top_features": top,
            "base_value": float(exp.base_value),
            "raw_score": float(exp.raw[0]),
            "output": exp.output,
            "method": _METHOD.get(model.algorithm, "SHAP"),
        }

    def _result(
        self,
        model: ServingModel,
        online: OnlineFeatures,
        score: float,
        explanation: dict[str, Any] | None,
        started: float,
    ) -> dict[str, Any]:
        return {
            "prediction_id": str(prediction_id(model.id, online.transaction_id)),
            "transaction_id": online.transaction_id,
            "fraud_score": score,
            "is_fraud": score >= model.threshold,
            "confidence": round(confidence(score, model.threshold), 4),
            "threshold": model.threshold,
            "model_id": str(model.id),
            "model_name": model.name,
            "model_version": model.version,
            "replayed": online.replayed,
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
            "explanation": explanation,
        }

    def _log(
        self,
        model: ServingModel,
        online: OnlineFeatures,
        result: Mapping[str, Any],
        explanation: dict[str, Any] | None,
    ) -> None:
        from shared.services.prediction_log import PredictionRecord

        self.log.record(
            PredictionRecord(
                id=prediction_id(model.id, online.transaction_id),
                created_at=datetime.now(UTC),
                model_id=model.id,
                transaction_id=online.transaction_id,
                input_features=online.features,
                fraud_score=result["fraud_score"],
                is_fraud=result["is_fraud"],
                explanation=explanation,
                latency_ms=result["latency_ms"],
            )
        )

    # -- many transactions ---------------------------------------------------------------

    def predict_batch(
        self, transactions: Sequence[Mapping[str, Any]], model_id: str | None = None
    ) -> dict[str, Any]:
        """All or nothing: a bad item refuses the whole batch (422 naming each bad
        index) before any state is written; otherwise every item is scored, in order."""
        import numpy as np

        from ml.features import FeatureInputError
        from shared.services.prediction_log import PredictionRecord

        started = time.perf_counter()
        model = self.models.resolve(model_id)
        try:
            online = model.store.process_many(list(transactions))
        except FeatureInputError as exc:
            raise _feature_error(exc, "transactions") from None
        scores = (
            model.scorer.score(model.scorer.matrix([o.features for o in online]))
            if online
            else np.zeros(0)
        )
        latency = round((time.perf_counter() - started) * 1000, 3)
        per_item = latency / max(len(online), 1)
        results = []
        records = []
        now = datetime.now(UTC)
        for item, score in zip(online, scores.tolist(), strict=True):
            pid = prediction_id(model.id, item.transaction_id)
            is_fraud = score >= model.threshold
            results.append(
                {
                    "prediction_id": str(pid),
                    "transaction_id": item.transaction_id,
                    "fraud_score": score,
                    "is_fraud": is_fraud,
                    "confidence": round(confidence(score, model.threshold), 4),
                    "replayed": item.replayed,
                }
            )
            if not item.replayed:
                records.append(
                    PredictionRecord(
                        id=pid,
                        created_at=now,
                        model_id=model.id,
                        transaction_id=item.transaction_id,
                        input_features=item.features,
                        fraud_score=score,
                        is_fraud=is_fraud,
                        explanation=None,
                        latency_ms=per_item,
                    )
                )
        self.log.record_many(records)
        return {
            "model_id": str(model.id),
            "model_name": model.name,
            "model_version": model.version,
            "threshold": model.threshold,
            "count": len(results),
            "flagged": sum(1 for r in results if r["is_fraud"]),
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
            "predictions": results,
        }

    # -- labels --------------------------------------------------------------------------

    def label(self, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Record actual outcomes: ``actual_label`` on the logged predictions (for
        performance monitoring) and, for transaction ids, the label in the online state,
        where the merchant fraud-rate features use it once the label delay has passed."""
        from shared.services.prediction_log import label_predictions

        result = label_predictions(self.ctx.db, self.log, items)
        online = 0
        stores = self._label_stores()
        for item in items:
            tid = item.get("transaction_id")
            if tid is None:
                continue
            for store in stores:
                online += store.apply_label(str(tid), item["label"])
        return {
            "updated": result.updated,
            "online_state_updated": online,
            "unmatched_prediction_ids": [
                str(p) for p in result.unmatched_prediction_ids
            ],
            "unmatched_transaction_ids": list(result.unmatched_transaction_ids),
        }

    def _label_stores(self) -> list[Any]:
        try:
            self.models.production()
        except Exception:  # no production model: label the stores already loaded
            pass
        return self.models.stores()


_METHOD = {
    "xgboost": "TreeSHAP (xgboost pred_contribs)",
    "lightgbm": "TreeSHAP (lightgbm pred_contrib)",
    "isolation_forest": "TreeSHAP (shap.TreeExplainer)",
    "neural_net": "KernelSHAP (shap.KernelExplainer)",
}
