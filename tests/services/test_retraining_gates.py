"""The gates between a retraining's challenger and production, one by one, and the
first that fails deciding."""

from __future__ import annotations

from typing import Any

import pytest

from shared.db.models import Baseline, MLModel
from shared.services.retraining_gates import (
    ALL_PASSED,
    bias_gate,
    champion_gate,
    decided_by,
    evaluate_gates,
)

GOOD = {"auc_pr": 0.60, "auc_roc": 0.9}


def _model(**details: Any) -> MLModel:
    return MLModel(
        name="fraud",
        metrics={"auc_roc": 0.9, "recall": 0.5},
        details={"onnx_max_abs_diff": 1e-6, **details},
    )


def test_a_sound_challenger_passes_every_gate_in_order() -> None:
    gates = evaluate_gates(_model(), [], GOOD, GOOD, 0.01)
    assert [g.name for g in gates] == [
        "baselines",
        "onnx_parity",
        "bias",
        "champion_comparison",
    ]
    assert all(g.passed for g in gates) and decided_by(gates) == ALL_PASSED


def test_the_first_failing_gate_decides() -> None:
    baseline = Baseline(metric_name="recall", threshold=0.8, operator="gte")
    model = _model(onnx_max_abs_diff=0.5, bias_audit={"status": "CRITICAL"})
    gates = evaluate_gates(model, [baseline], GOOD, GOOD, 0.01)
    assert [g.passed for g in gates] == [False, False, False, True]
    assert decided_by(gates) == "baselines"
    assert "recall 0.5 is not gte 0.8" in gates[0].message
    assert decided_by(gates[1:]) == "onnx_parity"


@pytest.mark.parametrize(
    ("audit", "passed"),
    [
        (None, True),
        ({"status": "OK"}, True),
        ({"status": "WARNING"}, True),
        ({"status": "CRITICAL"}, False),
    ],
)
def test_the_bias_gate_fails_a_critical_audit_only(
    audit: dict[str, Any] | None, passed: bool
) -> None:
    model = _model() if audit is None else _model(bias_audit=audit)
    assert bias_gate(model).passed is passed


def test_the_champion_gate_allows_a_small_drop_of_average_precision() -> None:
    assert champion_gate(GOOD, {"auc_pr": 0.595}, 0.01).passed
    worse = champion_gate(GOOD, {"auc_pr": 0.58}, 0.01)
    assert not worse.passed
    assert worse.value["ap_drop"] == pytest.approx(0.02)
    assert champion_gate(GOOD, {"auc_pr": 0.7}, 0.0).passed
    # no fraud in the holdout: nothing to compare, nothing promoted blindly
    assert not champion_gate({"auc_pr": None}, {"auc_pr": None}, 0.01).passed
