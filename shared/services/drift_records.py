"""What a drift audit writes to the database beside its row: the drift_metrics rows
(DATA: the overall PSI; FEATURE: each feature's statistics; CONCEPT: the current,
estimated and degradation figures), and the signals the alert rules evaluate."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from shared.db.models import DriftAudit, DriftMetric
from shared.services.alert_rules import Signal
from shared.timefmt import iso

if TYPE_CHECKING:
    from ml.monitoring import ConceptDrift, DataDrift
    from shared.services.drift_baselines import MonitoredModel

RANK = {"NO_DATA": 0, "OK": 0, "WARNING": 1, "CRITICAL": 2}


def metric_rows(
    audit: DriftAudit, data: DataDrift, concept: ConceptDrift
) -> list[DriftMetric]:
    rows: list[DriftMetric] = []

    def add(
        kind: str, feature: str | None, metric: str, value: Any, status: str
    ) -> None:
        if value is None:
            return
        rows.append(
            DriftMetric(
                id=uuid.uuid4(),
                model_id=audit.model_id,
                drift_type=kind,
                feature_name=feature,
                metric_name=metric,
                value=float(value),
                status=status,
                window_start=audit.window_start,
                window_end=audit.window_end,
                computed_at=audit.computed_at,
            )
        )

    add("DATA", None, "overall_psi", data.overall_psi, data.status)
    for f in data.features:
        for metric in ("psi", "ks_statistic", "ks_p", "chi_square_p"):
            add("FEATURE", f.name, metric, getattr(f, metric), f.status)
    if concept.status != "NO_DATA" or concept.labelled_count:
        view = concept.to_dict()
        for metric in (
            "performance_degradation",
            "current_precision",
            "current_recall",
            "current_auc",
        ):
            add("CONCEPT", None, metric, view[metric], concept.status)
        for name, value in concept.estimated.to_dict().items():
            if name != "count":
                add("CONCEPT", None, f"estimated_{name}", value, concept.status)
        add("CONCEPT", None, "labelled_count", concept.labelled_count, concept.status)
    return rows


def drift_signals(
    audit: DriftAudit,
    model: MonitoredModel,
    previous: DriftAudit | None,
    data: DataDrift,
    concept: ConceptDrift,
) -> list[Signal]:
    """What the alert rules see of an audit with data: its status (drift_status), the
    largest feature PSI (feature_drift), the performance degradation (concept_drift)
    and the estimated AUC, else precision (estimated_performance)."""
    if audit.status == "NO_DATA":
        return []
    before = previous.status if previous is not None else "OK"
    drifted = [f.name for f in data.features if f.status in ("WARNING", "CRITICAL")]
    named = ", ".join(drifted[:5]) + (" ..." if len(drifted) > 5 else "")
    what = f"features {named}" if drifted else "model performance"
    where = f"{model.name} {model.version} ({audit.window})"
    details = {
        "audit_id": str(audit.id),
        "window": audit.window,
        "window_start": iso(audit.window_start),
        "window_end": iso(audit.window_end),
        "status": audit.status,
        "previous_status": before,
        "data_drift_status": data.status,
        "overall_psi": data.overall_psi,
        "concept_drift_status": concept.status,
        "performance_degradation": concept.performance_degradation,
        "features": [
            {"name": f.name, "status": f.status, "psi": f.psi}
            for f in data.features
            if f.status in ("WARNING", "CRITICAL")
        ],
        "rows": audit.row_count,
    }
    signals = [
        Signal(
            "drift_status",
            model.id,
            audit.status,
            details,
            f"Drift {audit.status} on {where}: {what}",
        )
    ]
    psis = [(f.psi, f.name) for f in data.features if f.psi is not None]
    if psis:
        psi, name = max(psis)
        signals.append(
            Signal(
                "feature_drift",
                model.id,
                float(psi),
                {"audit_id": str(audit.id), "feature": name, "psi": psi},
                f"Feature drift on {where}: {name} PSI {psi:.3f}",
            )
        )
    if concept.performance_degradation is not None:
        signals.append(
            Signal(
                "concept_drift",
                model.id,
                float(concept.performance_degradation),
                {"audit_id": str(audit.id), "status": concept.status},
                f"Concept drift on {where}: precision degradation "
                f"{concept.performance_degradation:.3f}",
            )
        )
    estimated = concept.estimated
    metric = "auc" if estimated.auc is not None else "precision"
    value = estimated.get(metric)
    if value is not None:
        signals.append(
            Signal(
                "estimated_performance",
                model.id,
                float(value),
                {"audit_id": str(audit.id), "metric": metric, **estimated.to_dict()},
                f"Estimated {metric} {value:.3f} on {where}",
            )
        )
    return signals
