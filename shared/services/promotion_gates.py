"""The gates a model passes on its way to production, each answering which gate decided.

The registry's promotion raises on the first failed gate; the retraining service can call
the same functions to report why a candidate was not promoted. A model without a bias
audit (trained before the audit existed, or no active protected attribute) passes the
bias gate: only a stored CRITICAL audit refuses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.db.models import Baseline, MLModel

ONNX_TOLERANCE = 1e-4
CRITICAL = "CRITICAL"

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "gte": lambda v, t: v >= t,
    "lte": lambda v, t: v <= t,
    "eq": lambda v, t: v == t,
}


@dataclass(frozen=True)
class GateResult:
    passed: bool
    gate: str
    detail: str
    failures: list[dict[str, Any]] = field(default_factory=list)
    """Field-level details of what failed (envelope details of the 409)."""


def onnx_gate(model: MLModel) -> GateResult:
    diff = (model.details or {}).get("onnx_max_abs_diff")
    if diff is None or float(diff) > ONNX_TOLERANCE:
        return GateResult(
            False,
            "onnx",
            f"The ONNX export differs from the native model by {diff} "
            f"(> {ONNX_TOLERANCE}); it cannot serve /predict and cannot be promoted.",
        )
    return GateResult(True, "onnx", f"ONNX matches the native model ({diff}).")


def check_baselines(model: MLModel, baselines: list[Baseline]) -> list[dict[str, Any]]:
    out = []
    for b in baselines:
        value = (model.metrics or {}).get(b.metric_name)
        passed = value is not None and OPERATORS[b.operator](float(value), b.threshold)
        out.append(
            {
                "metric": b.metric_name,
                "operator": b.operator,
                "threshold": b.threshold,
                "value": value,
                "passed": passed,
            }
        )
    return out


def baseline_gate(model: MLModel, baselines: list[Baseline]) -> GateResult:
    failed = [c for c in check_baselines(model, baselines) if not c["passed"]]
    if failed:
        return GateResult(
            False,
            "baselines",
            "The model misses active baselines; pass override_baselines with a reason "
            "to promote it anyway.",
            [
                {
                    "field": f"metrics.{c['metric']}",
                    "message": f"{c['value']} is not {c['operator']} {c['threshold']}",
                }
                for c in failed
            ],
        )
    return GateResult(True, "baselines", f"{len(baselines)} active baselines met.")


def critical_findings(audit: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(attribute, metric) pairs whose status is CRITICAL in a stored bias audit."""
    found: list[tuple[str, str]] = []
    for entry in audit.get("attributes") or []:
        name = str(entry.get("attribute"))
        metrics = entry.get("metrics") or {}
        for metric, result in metrics.items():
            status = result.get("status") if isinstance(result, Mapping) else None
            if status == CRITICAL:
                found.append((name, str(metric)))
        if entry.get("status") == CRITICAL and not any(a == name for a, _ in found):
            found.append((name, "status"))
    return found


def bias_gate(model: MLModel) -> GateResult:
    audit = (model.details or {}).get("bias_audit")
    if not isinstance(audit, Mapping):
        return GateResult(True, "bias", "No bias audit stored with the model.")
    status = audit.get("status")
    if status != CRITICAL:
        return GateResult(True, "bias", f"Pre-deployment bias audit is {status}.")
    findings = critical_findings(audit)
    named = ", ".join(f"{a}.{m}" for a, m in findings) or "overall status"
    return GateResult(
        False,
        "bias",
        f"The pre-deployment bias audit is CRITICAL ({named}); pass override_bias "
        "with a reason to promote it anyway.",
        [
            {
                "field": f"bias_audit.{attribute}.{metric}",
                "message": f"{metric} is CRITICAL for {attribute}",
            }
            for attribute, metric in findings
        ]
        or [{"field": "bias_audit.status", "message": "CRITICAL"}],
    )
