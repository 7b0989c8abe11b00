"""What a bias audit stores and answers: its result JSON, its bias_metrics rows (one
per attribute and defined metric, ``group_values`` holding the per-group rates), the
summary kept with a trained model, the API view, and on a status rise a BIAS alert."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from shared.db.models import Alert, BiasAudit, BiasMetric
from shared.timefmt import iso

if TYPE_CHECKING:
    from ml.fairness import AttributeAudit

RANK = {"OK": 0, "WARNING": 1, "CRITICAL": 2}
RATES = ("fpr", "tpr", "selection_rate", "count")


def overall_status(attributes: Sequence[dict[str, Any]], rows: int) -> str:
    """The worst graded status (OK, WARNING, CRITICAL) of the attributes; without
    one: NO_DATA when no labelled row was read, the attributes' common status when
    they share it (MISSING_COLUMN, INSUFFICIENT_DATA), else INSUFFICIENT_DATA."""
    graded = [str(a["status"]) for a in attributes if a["status"] in RANK]
    if graded:
        return max(graded, key=RANK.__getitem__)
    if rows == 0:
        return "NO_DATA"
    statuses = {str(a["status"]) for a in attributes}
    if not statuses:
        return "NO_ATTRIBUTES"
    return statuses.pop() if len(statuses) == 1 else "INSUFFICIENT_DATA"


def attribute_result(audit: AttributeAudit) -> dict[str, Any]:
    return {
        "attribute": audit.attribute,
        "column": audit.column,
        "status": audit.status,
        "groups": list(audit.groups),
        "unmatched": audit.unmatched,
        "group_breakdown": {g: asdict(r) for g, r in audit.group_breakdown.items()},
        "metrics": {m: asdict(r) for m, r in audit.metrics.items()},
    }


def metric_rows(audit: BiasAudit, result: dict[str, Any]) -> list[BiasMetric]:
    """One row per attribute and metric with a value (undefined ones have none)."""
    rows = []
    for a in result["attributes"]:
        groups = {
            g: {k: r.get(k) for k in RATES}
            for g, r in (a.get("group_breakdown") or {}).items()
        }
        for name, m in (a.get("metrics") or {}).items():
            if m["value"] is None:
                continue
            rows.append(
                BiasMetric(
                    id=uuid.uuid4(),
                    model_id=audit.model_id,
                    audit_id=audit.id,
                    protected_attribute=a["attribute"],
                    metric_name=name,
                    group_values={
                        "groups": groups,
                        "ci_low": m["ci_low"],
                        "ci_high": m["ci_high"],
                        "warning": m["warning"],
                        "critical": m["critical"],
                    },
                    overall_value=float(m["value"]),
                    status=m["status"],
                    computed_at=audit.computed_at,
                )
            )
    return rows


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """``model.details["bias_audit"]``: what the promotion gate reads."""
    return {
        "audit_id": result["audit_id"],
        "status": result["status"],
        "computed_at": result["computed_at"],
        "attributes": [
            {
                "attribute": a["attribute"],
                "status": a["status"],
                "metrics": {
                    name: {"value": m["value"], "status": m["status"]}
                    for name, m in (a.get("metrics") or {}).items()
                },
            }
            for a in result["attributes"]
        ],
    }


def error_summary(reason: str, computed_at: str | None) -> dict[str, Any]:
    """The summary of a training-time audit that could not run."""
    return {
        "audit_id": None,
        "status": "ERROR",
        "computed_at": computed_at,
        "error": reason,
        "attributes": [],
    }


def attribute_views(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The spec's ``protected_attributes``: per attribute its groups, the metrics
    with a value, its status and per group the rates and count."""
    return [
        {
            "attribute": a["attribute"],
            "groups": a["groups"],
            "metrics": {
                name: m["value"]
                for name, m in (a.get("metrics") or {}).items()
                if m["value"] is not None
            },
            "status": a["status"],
            "group_breakdown": {
                g: {k: r.get(k) for k in RATES}
                for g, r in (a.get("group_breakdown") or {}).items()
            },
        }
        for a in result["attributes"]
    ]


def status_alert(
    audit: BiasAudit,
    model_name: str,
    model_version: str,
    previous: BiasAudit | None,
    result: dict[str, Any],
) -> Alert | None:
    """A BIAS alert when the status rose to WARNING or CRITICAL since the previous
    audit with data of that model and source (none before counts as OK); severity
    the new status; details name each attribute and metric beyond its threshold."""
    before = previous.status if previous is not None else "OK"
    if RANK.get(audit.status, 0) == 0 or RANK[audit.status] <= RANK.get(before, 0):
        return None
    violations = [
        {
            "attribute": a["attribute"],
            "metric": name,
            "value": m["value"],
            "warning": m["warning"],
            "critical": m["critical"],
            "status": m["status"],
        }
        for a in result["attributes"]
        for name, m in (a.get("metrics") or {}).items()
        if m["status"] in ("WARNING", "CRITICAL")
    ]
    named = ", ".join(f"{v['attribute']} {v['metric']}" for v in violations[:3])
    more = " ..." if len(violations) > 3 else ""
    return Alert(
        id=uuid.uuid4(),
        model_id=audit.model_id,
        alert_type="BIAS",
        severity=audit.status,
        title=(
            f"Bias {audit.status} on {model_name} {model_version} "
            f"({audit.source}): {named}{more}"
        )[:255],
        details={
            "audit_id": str(audit.id),
            "source": audit.source,
            "window": audit.window,
            "window_start": iso(audit.window_start),
            "window_end": iso(audit.window_end),
            "status": audit.status,
            "previous_status": before,
            "violations": violations,
            "rows": audit.row_count,
        },
        status="ACTIVE",
    )


def render_report(result: dict[str, Any]) -> str:
    """The audit's self-contained HTML report."""
    from ml.fairness import report

    source = str(result["source"])
    if result.get("window"):
        source += f" ({result['window']}: {result['window_start']} to "
        source += f"{result['window_end']})"
    details = {
        "Model": f"{result['model_name']} {result['model_version']}",
        "Model id": str(result["model_id"]),
        "Source": source,
        "Decision threshold": f"{result['threshold']:.4g}",
        "Labelled rows": str(result["rows"]),
        "Minimum group count": str(result["min_group_count"]),
        "Computed at": str(result["computed_at"]),
        "Status": str(result["status"]),
    }
    return report.render_report(result, details)
