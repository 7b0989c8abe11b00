"""The gates a retraining's challenger must pass to replace the champion, in the order
they are reported; the first that fails decides.

- baselines: the challenger's metrics against the active baselines of the challenger,
  of the champion it was retrained from and of the model in production (the registry
  checks the first and the last on promotion).
- onnx_parity: the ONNX export within ``ONNX_TOLERANCE`` of the native model.
- bias: the challenger's bias audit is not CRITICAL (no audit yet: passes).
- champion_comparison: on the same holdout, the challenger's average precision is at
  most ``max_ap_drop`` below the champion's (``SH_RETRAINING_MAX_AP_DROP``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from shared.services import promotion_gates
from shared.services.promotion_gates import ONNX_TOLERANCE, check_baselines

if TYPE_CHECKING:
    from shared.db.models import Baseline, MLModel

ALL_PASSED = "all_gates_passed"


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    value: Any
    threshold: Any
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def baselines_gate(model: MLModel, baselines: list[Baseline]) -> Gate:
    checks = check_baselines(model, baselines)
    failed = [c for c in checks if not c["passed"]]
    message = (
        "no active baselines"
        if not checks
        else "; ".join(
            f"{c['metric']} {c['value']} is not {c['operator']} {c['threshold']}"
            for c in failed
        )
        or f"{len(checks)} baseline(s) met"
    )
    return Gate("baselines", not failed, checks, None, message)


def onnx_gate(model: MLModel) -> Gate:
    diff = (model.details or {}).get("onnx_max_abs_diff")
    passed = diff is not None and float(diff) <= ONNX_TOLERANCE
    message = (
        "the ONNX export agrees with the native model"
        if passed
        else f"the ONNX export differs from the native model by {diff}"
    )
    return Gate("onnx_parity", passed, diff, ONNX_TOLERANCE, message)


def bias_gate(model: MLModel) -> Gate:
    """The registry's bias gate (``promotion_gates.bias_gate``), reported as a gate
    of the retraining job: a CRITICAL audit fails, none passes."""
    verdict = promotion_gates.bias_gate(model)
    status = ((model.details or {}).get("bias_audit") or {}).get("status")
    return Gate("bias", verdict.passed, status, "not CRITICAL", verdict.detail)


def champion_gate(
    champion: dict[str, Any], challenger: dict[str, Any], max_ap_drop: float
) -> Gate:
    """Average precision on the shared holdout: the challenger may trail by at most
    ``max_ap_drop``."""
    ours, theirs = challenger.get("auc_pr"), champion.get("auc_pr")
    if ours is None or theirs is None:
        return Gate(
            "champion_comparison",
            False,
            None,
            max_ap_drop,
            "the holdout has a single class: the models cannot be compared",
        )
    drop = float(theirs) - float(ours)
    passed = drop <= max_ap_drop
    verdict = "within" if passed else "beyond"
    return Gate(
        "champion_comparison",
        passed,
        {"champion_auc_pr": theirs, "challenger_auc_pr": ours, "ap_drop": drop},
        max_ap_drop,
        f"average precision {ours:.4f} against the champion's {theirs:.4f}: "
        f"{verdict} the allowed drop of {max_ap_drop}",
    )


def evaluate_gates(
    challenger: MLModel,
    baselines: list[Baseline],
    champion_metrics: dict[str, Any],
    challenger_metrics: dict[str, Any],
    max_ap_drop: float,
) -> list[Gate]:
    return [
        baselines_gate(challenger, baselines),
        onnx_gate(challenger),
        bias_gate(challenger),
        champion_gate(champion_metrics, challenger_metrics, max_ap_drop),
    ]


def decided_by(gates: list[Gate]) -> str:
    """The first gate that failed, or ``all_gates_passed``."""
    return next((g.name for g in gates if not g.passed), ALL_PASSED)
