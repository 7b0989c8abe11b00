"""A model's performance over time from its logged predictions, per hour or day:
volume, predicted and realised fraud rate, score quantiles, latency, realised metrics
where labels exist and the CBPE estimate (ml.monitoring.performance) beside them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.errors import ValidationFailed, field_error
from shared.services.drift_baselines import monitored_model
from shared.services.monitoring_commands import PerformanceQuery
from shared.services.monitoring_window import resolve_window
from shared.timefmt import iso

if TYPE_CHECKING:
    import numpy.typing as npt

    from shared.ports import FeatureLogReader, Transactions
    from shared.services.drift_baselines import MonitoredModel

GRANULARITY = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
SCORE_QUANTILES = (
    ("p05", 0.05),
    ("p25", 0.25),
    ("p50", 0.5),
    ("p75", 0.75),
    ("p95", 0.95),
)


@dataclass(frozen=True)
class PerformanceSeries:
    model_id: str
    window: str
    window_start: str | None
    window_end: str | None
    granularity: str
    threshold: float
    baseline: dict[str, float | None]  # the training metrics
    buckets: list[dict[str, Any]]


def _floor(value: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + (value - epoch) // step * step


def _finite(value: float) -> float | None:
    import math

    return None if math.isnan(value) else float(value)


def _bucket(
    model: MonitoredModel,
    start: datetime,
    scores: npt.NDArray[Any],
    labels: npt.NDArray[Any],
    latency: npt.NDArray[Any],
) -> dict[str, Any]:
    import numpy as np

    from ml.monitoring import estimated_metrics, realised_metrics

    n = int(scores.size)
    known = ~np.isnan(labels)
    labelled = int(known.sum())
    timed = latency[~np.isnan(latency)]
    out: dict[str, Any] = {
        "start": iso(start),
        "volume": n,
        "labelled_count": labelled,
        "predicted_fraud_rate": float((scores >= model.threshold).mean())
        if n
        else None,
        "realised_fraud_rate": float(labels[known].mean()) if labelled else None,
        "score_quantiles": dict.fromkeys(name for name, _ in SCORE_QUANTILES),
        "latency_p50_ms": None,
        "latency_p99_ms": None,
        "realised": None,
        "estimated": None,
    }
    if n:
        values = np.quantile(scores, [q for _, q in SCORE_QUANTILES])
        out["score_quantiles"] = {
            name: _finite(v)
            for (name, _), v in zip(SCORE_QUANTILES, values, strict=True)
        }
        estimate = estimated_metrics(
            model.probabilities(scores), model.threshold, scores
        )
        out["estimated"] = estimate.to_dict()
    if timed.size:
        p50, p99 = np.quantile(timed, [0.5, 0.99])
        out["latency_p50_ms"], out["latency_p99_ms"] = float(p50), float(p99)
    if labelled:
        realised = realised_metrics(labels[known], scores[known], model.threshold)
        out["realised"] = realised.to_dict()
    return out


class PerformanceService:
    def __init__(self, uow: Transactions, reader: FeatureLogReader) -> None:
        self.uow = uow
        self.reader = reader

    def over_time(self, query: PerformanceQuery) -> PerformanceSeries:
        """Every hour or day of the window (empty ones with volume 0), oldest first."""
        import numpy as np

        if query.granularity not in GRANULARITY:
            raise ValidationFailed(
                "granularity must be hour or day.",
                field_error("granularity", "hour or day"),
            )
        window = resolve_window(query.window, None, query.window_end, default="30d")
        model = monitored_model(self.uow, query.model_id)
        logged = self.reader.window(model.id, window.start, window.end, ())
        step = GRANULARITY[query.granularity]
        first = _floor(window.start, step)
        count = int(-((first - window.end) // step))
        step_ns = step // timedelta(microseconds=1) * 1000
        first_ns = (
            (first - datetime(1970, 1, 1, tzinfo=UTC))
            // timedelta(microseconds=1)
            * 1000
        )
        created = np.asarray(logged.created_at_ns, dtype=np.int64)
        index = (created - first_ns) // step_ns
        order = np.argsort(index, kind="stable")
        bounds = np.searchsorted(index[order], np.arange(count + 1))
        scores = np.asarray(logged.scores, dtype=np.float64)[order]
        labels = np.asarray(logged.labels, dtype=np.float64)[order]
        latency = np.asarray(logged.latency_ms, dtype=np.float64)[order]
        buckets = [
            _bucket(
                model,
                first + i * step,
                scores[bounds[i] : bounds[i + 1]],
                labels[bounds[i] : bounds[i + 1]],
                latency[bounds[i] : bounds[i + 1]],
            )
            for i in range(count)
        ]
        baseline = model.training_metrics()
        return PerformanceSeries(
            model_id=str(model.id),
            window=window.label,
            window_start=iso(window.start),
            window_end=iso(window.end),
            granularity=query.granularity,
            threshold=model.threshold,
            baseline={
                "precision": baseline.precision,
                "recall": baseline.recall,
                "auc": baseline.auc,
            },
            buckets=buckets,
        )
