"""Mitigation with Fairlearn reduces the disparity of a biased model on held-out rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ml.fairness.mitigation import (
    EXPONENTIATED_GRADIENT,
    THRESHOLD_OPTIMIZER,
    MitigationPlan,
    apply_group_thresholds,
    mitigate,
)


def _biased(n: int, seed: int) -> dict[str, Any]:
    """Equal fraud rates in both groups; group B's scores (and a feature) run higher."""
    rng = np.random.default_rng(seed)
    group = np.where(rng.random(n) < 0.5, "A", "B")
    y = (rng.random(n) < 0.1).astype(np.int64)
    shift = np.where(group == "B", 1.2, 0.0)
    signal = y * 1.5 + rng.normal(size=n) + shift
    scores = 1.0 / (1.0 + np.exp(-(signal - 2.0)))
    X = np.column_stack([signal, rng.normal(size=n), shift])
    return {"group": group, "y": y, "scores": scores, "X": X}


@pytest.mark.parametrize("constraint", ["demographic_parity", "equalized_odds"])
def test_threshold_optimizer_reduces_the_disparity(constraint: str) -> None:
    val, test = _biased(8000, 1), _biased(8000, 2)
    result = mitigate(
        MitigationPlan(THRESHOLD_OPTIMIZER, constraint, "segment"),
        threshold=0.4,
        y_val=val["y"],
        val_scores=val["scores"],
        val_groups=val["group"],
        y_test=test["y"],
        test_scores=test["scores"],
        test_groups=test["group"],
    )
    metric = f"{'demographic_parity' if constraint.startswith('demo') else 'equalized_odds'}_diff"
    plain, mitigated = result.plain[metric], result.mitigated[metric]
    assert plain is not None and mitigated is not None
    assert mitigated < plain / 2, (plain, mitigated)
    assert set(result.group_thresholds) == {"A", "B"}
    assert result.group_thresholds["B"] > result.group_thresholds["A"]
    for report in (result.plain, result.mitigated):
        assert {
            "auc_roc",
            "precision",
            "recall",
            "demographic_parity_diff",
            "equalized_odds_diff",
            "disparate_impact",
            "fpr_parity_diff",
        } <= set(report)


def test_unknown_group_falls_back_to_the_global_threshold() -> None:
    decisions = apply_group_thresholds(
        [0.5, 0.5, 0.5], ["A", "B", "C"], {"A": 0.6, "B": 0.4}, 0.45
    )
    assert decisions.tolist() == [0, 1, 1]


def test_exponentiated_gradient_reduces_demographic_parity() -> None:
    train, test = _biased(6000, 3), _biased(4000, 4)
    result = mitigate(
        MitigationPlan(EXPONENTIATED_GRADIENT, "demographic_parity", "segment"),
        threshold=0.4,
        y_val=train["y"],
        val_scores=train["scores"],
        val_groups=train["group"],
        y_test=test["y"],
        test_scores=test["scores"],
        test_groups=test["group"],
        X_fit=train["X"],
        y_fit=train["y"],
        fit_groups=train["group"],
        X_test=test["X"],
    )
    plain = result.plain["demographic_parity_diff"]
    mitigated = result.mitigated["demographic_parity_diff"]
    assert plain is not None and mitigated is not None
    assert mitigated < plain / 2, (plain, mitigated)
    assert result.group_thresholds == {}
