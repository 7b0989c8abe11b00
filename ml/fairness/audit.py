"""One protected attribute audited over labelled predictions: per-group counts and
rates, the four metrics with their thresholds, status and bootstrap intervals.

Groups with fewer rows than ``min_count`` are reported as ``INSUFFICIENT_DATA`` and
left out of the metrics; with fewer than two groups left the attribute is
``INSUFFICIENT_DATA`` (never a violation). A missing column is ``MISSING_COLUMN``;
no labelled row at all is ``NO_DATA``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ml.fairness.groups import Group, assign_groups
from ml.fairness.metrics import (
    DEFAULT_THRESHOLDS,
    METRICS,
    Level,
    bootstrap_intervals,
    confusion_by_group,
    disparities,
    metric_status,
    rates,
)

OK, WARNING, CRITICAL = "OK", "WARNING", "CRITICAL"
INSUFFICIENT_DATA, MISSING_COLUMN, NO_DATA = (
    "INSUFFICIENT_DATA",
    "MISSING_COLUMN",
    "NO_DATA",
)
_SEVERITY = {OK: 0, WARNING: 1, CRITICAL: 2}
MIN_GROUP_COUNT = 30


@dataclass(frozen=True)
class AuditOptions:
    min_count: int = MIN_GROUP_COUNT  # rows a group needs to be compared
    replicates: int = 1000  # bootstrap replicates; 0: no intervals
    level: float = 0.95  # the intervals' confidence level
    seed: int = 0


@dataclass(frozen=True)
class GroupResult:
    count: int
    positives: int  # labelled 1
    negatives: int  # labelled 0
    selection_rate: float | None
    tpr: float | None  # None: no positive label in the group
    fpr: float | None  # None: no negative label in the group
    status: str  # OK or INSUFFICIENT_DATA


@dataclass(frozen=True)
class MetricResult:
    value: float | None  # None: undefined (no group has the rate)
    ci_low: float | None
    ci_high: float | None
    warning: float
    critical: float
    status: str  # OK, WARNING, CRITICAL or INSUFFICIENT_DATA


@dataclass(frozen=True)
class AttributeAudit:
    attribute: str
    column: str
    status: str
    groups: tuple[str, ...]
    group_breakdown: dict[str, GroupResult] = field(default_factory=dict)
    metrics: dict[str, MetricResult] = field(default_factory=dict)
    unmatched: int = 0  # labelled rows in no configured group


def _number(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def audit_attribute(
    attribute: str,
    column_name: str,
    column: npt.ArrayLike | None,
    groups: Sequence[Group],
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    thresholds: Mapping[str, Level] | None = None,
    options: AuditOptions | None = None,
) -> AttributeAudit:
    """Audit one attribute. ``y_true`` may hold NaN for unlabelled rows (left out);
    ``column`` is None when the data lacks the attribute's column."""
    opts = options or AuditOptions()
    levels = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    names = tuple(g.name for g in groups)
    if column is None:
        return AttributeAudit(attribute, column_name, MISSING_COLUMN, names)
    labels = np.asarray(y_true, dtype=np.float64)
    labelled = ~np.isnan(labels)
    if not labelled.any():
        return AttributeAudit(attribute, column_name, NO_DATA, names)
    codes = assign_groups(column, groups)
    if not labelled.all():
        codes = np.where(labelled, codes, -2)
    confusion = confusion_by_group(
        codes, len(groups), np.nan_to_num(labels), np.asarray(y_pred)
    )
    r = rates(confusion)
    enough = r.count >= opts.min_count
    breakdown = {
        name: GroupResult(
            count=int(r.count[i]),
            positives=int(confusion[i, 2] + confusion[i, 3]),
            negatives=int(confusion[i, 0] + confusion[i, 1]),
            selection_rate=_number(r.selection_rate[i]),
            tpr=_number(r.tpr[i]),
            fpr=_number(r.fpr[i]),
            status=OK if enough[i] else INSUFFICIENT_DATA,
        )
        for i, name in enumerate(names)
    }
    unmatched = int(np.count_nonzero(codes == -1))
    if np.count_nonzero(enough) < 2:
        metrics = {
            m: MetricResult(
                None,
                None,
                None,
                levels[m].warning,
                levels[m].critical,
                INSUFFICIENT_DATA,
            )
            for m in METRICS
        }
        return AttributeAudit(
            attribute,
            column_name,
            INSUFFICIENT_DATA,
            names,
            breakdown,
            metrics,
            unmatched,
        )
    kept = confusion[enough]
    values = disparities(rates(kept))
    intervals = (
        bootstrap_intervals(
            kept, replicates=opts.replicates, level=opts.level, seed=opts.seed
        )
        if opts.replicates > 0
        else {}
    )
    metrics = {}
    for m in METRICS:
        value = _number(float(values[m]))
        low, high = intervals.get(m, (math.nan, math.nan))
        status = (
            INSUFFICIENT_DATA if value is None else metric_status(m, value, levels[m])
        )
        metrics[m] = MetricResult(
            value,
            _number(low),
            _number(high),
            levels[m].warning,
            levels[m].critical,
            status,
        )
    graded = [x.status for x in metrics.values() if x.status in _SEVERITY]
    overall = max(graded, key=_SEVERITY.__getitem__) if graded else INSUFFICIENT_DATA
    return AttributeAudit(
        attribute, column_name, overall, names, breakdown, metrics, unmatched
    )
