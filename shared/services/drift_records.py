"""What a drift audit writes to the database beside its row: the drift_metrics rows
(DATA: the overall PSI; FEATURE: each feature's statistics; CONCEPT: the current,
estimated and degradation figures) and, on a status rise, a DRIFT alert."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from shared.db.models import Alert, DriftAudit, DriftMetric
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


def status_alert(
    audit: DriftAudit,
    model: MonitoredModel,
    previous: DriftAudit | None,
    data: DataDrift,
    concept: ConceptDrift,
) -> Alert | None:
    """A DRIFT alert when the status rose to WARNING or CRITICAL since the previous
    audit with data of that model and window (none before counts as OK)."""
    before = previous.status if previous is not None else "OK"
    if RANK[audit.status] == 0 or RANK[audit.status] <= RANK.get(before, 0):
        return None
    drifted = [f.name for f in data.features if f.status in ("WARNING", "CRITICAL")]
    named = ", ".join(drifted[:5]) + (" ..." if len(drifted) > 5 else "")
    what = f"features {named}" if drifted else "model performance"
    return Alert(
        id=uuid.uuid4(),
        model_id=model.id,
        alert_type="DRIFT",
        severity=audit.status,
        title=(
            f"Drift {audit.status} on {model.name} {model.version} "
            f"({audit.window}): {what}"
        )[:255],
        details={
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
        },
        status="ACTIVE",
    )
