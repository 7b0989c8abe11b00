"""Concept drift: realised metrics on labelled predictions, and CBPE estimates without labels.

CBPE (NannyML's confidence-based performance estimation): with calibrated probabilities p
and the model's decision "fraud if score >= threshold", the expected confusion counts are
TP = sum p [flagged], FP = sum (1 - p) [flagged], FN = sum p [not flagged], giving
estimated precision and recall. Estimated ROC AUC, as NannyML computes it: rank by score,
take the cumulative expected TP and FP as the curve's points, and integrate; tied scores
form one point, as in scikit-learn's ``roc_curve``.

The calibrator is isotonic regression fitted on a held-out split at training time, kept
with the model as its knots (``Calibrator.to_dict``) and applied by linear interpolation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ml.monitoring.drift import Status

METRICS = ("precision", "recall", "auc")
Source = Literal["realised", "estimated"]


@dataclass(frozen=True)
class Metrics:
    """Precision, recall and ROC AUC (None where undefined) over `count` predictions."""

    count: int
    precision: float | None
    recall: float | None
    auc: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def get(self, name: str) -> float | None:
        value: float | None = getattr(self, name)
        return value


@dataclass(frozen=True)
class Calibrator:
    """A monotone map from model scores to probabilities (isotonic knots)."""

    x: tuple[float, ...]
    y: tuple[float, ...]

    def apply(self, scores: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return np.interp(np.asarray(scores, dtype=np.float64), self.x, self.y)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "isotonic", "x": list(self.x), "y": list(self.y)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibrator:
        if data.get("kind") != "isotonic" or len(data["x"]) != len(data["y"]):
            raise ValueError("an isotonic calibrator's knots expected")
        if not data["x"]:
            raise ValueError("a calibrator needs at least one knot")
        return cls(tuple(map(float, data["x"])), tuple(map(float, data["y"])))


def fit_calibrator(scores: npt.ArrayLike, labels: npt.ArrayLike) -> Calibrator:
    """Isotonic calibration of held-out scores against their 0/1 labels."""
    from sklearn.isotonic import IsotonicRegression  # see the package docstring

    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    if s.size == 0 or s.size != y.size:
        raise ValueError("as many labels as scores, at least one, expected")
    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y)
    x = np.asarray(model.X_thresholds_, dtype=np.float64)
    fitted = np.asarray(model.y_thresholds_, dtype=np.float64)
    return Calibrator(tuple(map(float, x)), tuple(map(float, fitted)))


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def realised_metrics(
    labels: npt.ArrayLike, scores: npt.ArrayLike, threshold: float
) -> Metrics:
    """Metrics of the rule "fraud if score >= threshold" against 0/1 labels."""
    from sklearn.metrics import roc_auc_score  # see the package docstring

    y = np.asarray(labels).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.size != s.size:
        raise ValueError("as many labels as scores expected")
    flagged = s >= threshold
    tp = float(np.count_nonzero(flagged & y))
    auc = float(roc_auc_score(y, s)) if 0 < y.sum() < y.size else None
    return Metrics(
        count=int(y.size),
        precision=_ratio(tp, float(np.count_nonzero(flagged))),
        recall=_ratio(tp, float(np.count_nonzero(y))),
        auc=auc,
    )


def estimated_auc(
    probabilities: npt.ArrayLike, scores: npt.ArrayLike | None = None
) -> float | None:
    """CBPE's ROC AUC: expected TP and FP counts over every threshold on `scores`
    (default: the probabilities themselves)."""
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    s = p if scores is None else np.asarray(scores, dtype=np.float64).ravel()
    if p.size != s.size:
        raise ValueError("as many probabilities as scores expected")
    if s.size == 0:
        return None
    order = np.argsort(-s, kind="stable")
    s, p = s[order], p[order]
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tps = np.r_[0.0, np.cumsum(p)[last]]
    fps = np.r_[0.0, (last + 1) - tps[1:]]
    if tps[-1] <= 0 or fps[-1] <= 0:
        return None
    return float(np.trapezoid(tps / tps[-1], fps / fps[-1]))


def estimated_metrics(
    probabilities: npt.ArrayLike,
    threshold: float,
    scores: npt.ArrayLike | None = None,
) -> Metrics:
    """CBPE estimate from calibrated probabilities; the decision (score >= threshold)
    is on `scores` when given (the model's raw output), else on the probabilities."""
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    s = p if scores is None else np.asarray(scores, dtype=np.float64).ravel()
    if p.size != s.size:
        raise ValueError("as many probabilities as scores expected")
    flagged = s >= threshold
    tp = float(p[flagged].sum())
    fp = float(np.count_nonzero(flagged)) - tp
    fn = float(p[~flagged].sum())
    return Metrics(
        count=int(p.size),
        precision=_ratio(tp, tp + fp),
        recall=_ratio(tp, tp + fn),
        auc=estimated_auc(p, s),
    )


@dataclass(frozen=True)
class ConceptThresholds:
    """Status by the largest drop of a metric below its training value."""

    drop_warning: float = 0.05
    drop_critical: float = 0.10
    min_labelled: int = 100  # below this, the status follows the estimate

    def __post_init__(self) -> None:
        if not 0 <= self.drop_warning <= self.drop_critical:
            raise ValueError("0 <= drop_warning <= drop_critical expected")
        if self.min_labelled < 1:
            raise ValueError("min_labelled >= 1 expected")


@dataclass(frozen=True)
class ConceptDrift:
    """A window's performance: the training baseline, the CBPE estimate over every
    prediction, realised metrics over the labelled ones, and how far the estimate on
    those same labelled rows was off (estimate minus realised)."""

    status: Status
    source: Source  # which current metrics set the status
    labelled_count: int
    baseline: Metrics
    estimated: Metrics
    realised: Metrics | None
    estimation_error: dict[str, float | None]
    performance_degradation: float | None  # current minus baseline precision

    @property
    def current(self) -> Metrics:
        return (
            self.realised
            if self.source == "realised" and self.realised
            else self.estimated
        )

    def to_dict(self) -> dict[str, Any]:
        current = self.current
        out: dict[str, Any] = {
            "status": self.status,
            "source": self.source,
            "performance_degradation": self.performance_degradation,
            "labelled_count": self.labelled_count,
        }
        for name in METRICS:
            out[f"baseline_{name}"] = self.baseline.get(name)
            out[f"current_{name}"] = current.get(name)
        out["estimated"] = self.estimated.to_dict()
        out["realised"] = None if self.realised is None else self.realised.to_dict()
        out["estimation_error"] = dict(self.estimation_error)
        return out


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def concept_drift(
    baseline: Metrics,
    scores: npt.ArrayLike,
    probabilities: npt.ArrayLike,
    labels: npt.ArrayLike,
    threshold: float,
    thresholds: ConceptThresholds = ConceptThresholds(),  # noqa: B008 (frozen)
) -> ConceptDrift:
    """A window's concept drift; `labels` is 0/1, NaN where no label has arrived."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    if not s.size == p.size == y.size:
        raise ValueError("scores, probabilities and labels differ in length")
    estimated = estimated_metrics(p, threshold, s)
    known = ~np.isnan(y)
    labelled = int(np.count_nonzero(known))
    realised = realised_metrics(y[known], s[known], threshold) if labelled else None
    error: dict[str, float | None] = dict.fromkeys(METRICS)
    if realised is not None:
        on_labelled = estimated_metrics(p[known], threshold, s[known])
        error = {m: _difference(on_labelled.get(m), realised.get(m)) for m in METRICS}
    source: Source = (
        "realised" if realised and labelled >= thresholds.min_labelled else "estimated"
    )
    current = realised if source == "realised" and realised else estimated
    drops = [
        d
        for m in METRICS
        if (d := _difference(baseline.get(m), current.get(m))) is not None
    ]
    status: Status = "NO_DATA"
    if s.size and drops:
        worst = max(drops)
        status = (
            "CRITICAL"
            if worst >= thresholds.drop_critical
            else "WARNING"
            if worst >= thresholds.drop_warning
            else "OK"
        )
    return ConceptDrift(
        status=status,
        source=source,
        labelled_count=labelled,
        baseline=baseline,
        estimated=estimated,
        realised=realised,
        estimation_error=error,
        performance_degradation=_difference(current.precision, baseline.precision),
    )
