"""A stored drift audit's result JSON shaped as the API shows it."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from shared.errors import NotFound
from shared.timefmt import iso

if TYPE_CHECKING:
    from shared.db.models import DriftAudit, DriftMetric

FEATURE_STATISTICS = ("psi", "ks_statistic", "ks_p", "chi_square_p")
CONCEPT_KEYS = (
    "status",
    "source",
    "performance_degradation",
    "baseline_precision",
    "current_precision",
    "baseline_recall",
    "current_recall",
    "baseline_auc",
    "current_auc",
    "labelled_count",
    "estimated",
    "realised",
    "estimation_error",
)


def parse_uuid(value: str | uuid.UUID, what: str) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise NotFound(f"{what} {value!r} not found.") from None


def drift_view(
    result: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(data_drift, concept_drift) as the spec shows them: per feature its status and
    statistics (PSI for every feature, KS where numeric, chi-square p where
    categorical; null where not computed)."""
    data = result["data_drift"]
    features = [
        {
            "name": f["name"],
            "kind": f["kind"],
            **{k: f.get(k) for k in FEATURE_STATISTICS},
            "status": f["status"],
        }
        for f in data["features"]
    ]
    concept = result.get("concept_drift")
    return (
        {
            "overall_psi": data["overall_psi"],
            "status": data["status"],
            "rows": data["rows"],
            "features": features,
        },
        None if concept is None else {k: concept.get(k) for k in CONCEPT_KEYS},
    )


def _shares(counts: list[int]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def _history(
    rows: list[tuple[DriftAudit, DriftMetric]],
) -> dict[str, list[dict[str, Any]]]:
    """Per feature, one point per audit: its statistics and status, oldest first."""
    points: dict[str, dict[uuid.UUID, dict[str, Any]]] = defaultdict(dict)
    for audit, metric in rows:
        name = metric.feature_name or ""
        point = points[name].setdefault(
            audit.id,
            {
                "audit_id": str(audit.id),
                "computed_at": iso(audit.computed_at),
                "window_start": iso(audit.window_start),
                "window_end": iso(audit.window_end),
                "status": metric.status,
                **dict.fromkeys(FEATURE_STATISTICS),
            },
        )
        point[metric.metric_name] = metric.value
    return {name: list(by_audit.values()) for name, by_audit in points.items()}


def feature_views(
    result: dict[str, Any],
    feature: str | None,
    history: list[tuple[DriftAudit, DriftMetric]],
) -> list[dict[str, Any]]:
    by_feature = _history(history)
    out = []
    for f in result["data_drift"]["features"]:
        if feature is not None and f["name"] != feature:
            continue
        out.append(
            {
                "name": f["name"],
                "kind": f["kind"],
                "status": f["status"],
                **{k: f.get(k) for k in FEATURE_STATISTICS},
                "bins": f["bin_labels"],
                "baseline_counts": f["baseline_counts"],
                "current_counts": f["current_counts"],
                "baseline_shares": _shares(f["baseline_counts"]),
                "current_shares": _shares(f["current_counts"]),
                "baseline_quantiles": f["baseline_quantiles"],
                "current_quantiles": f["current_quantiles"],
                "baseline_missing_rate": f["baseline_missing_rate"],
                "current_missing_rate": f["current_missing_rate"],
                "history": by_feature.get(f["name"], []),
            }
        )
    return out
