"""Auditing one protected attribute: groups from values or bins, statuses, the data
cases (missing column, no labels, small groups)."""

from __future__ import annotations

import numpy as np
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

from ml.fairness import (
    CategoricalGroup,
    Level,
    NumericBin,
    assign_groups,
    audit_attribute,
    check_groups,
)
from ml.fairness.audit import AuditOptions

AGE = (
    NumericBin("18-25", 18, 26),
    NumericBin("26-45", 26, 46),
    NumericBin("46+", 46, None),
)
GENDER = (CategoricalGroup("female", ("F", "female")), CategoricalGroup("male", ("M",)))


def test_numeric_bins_are_half_open_and_skip_nan() -> None:
    codes = assign_groups(np.array([17, 18, 25.9, 26, 45, 46, 99, np.nan]), AGE)
    assert codes.tolist() == [-1, 0, 0, 1, 1, 2, 2, -1]


def test_numbers_in_an_object_or_text_column() -> None:
    codes = assign_groups(np.array([30, None, "x", 50.0, "20"], dtype=object), AGE)
    assert codes.tolist() == [1, -1, -1, 2, 0]
    assert assign_groups(np.array(["30", "19.5"]), AGE).tolist() == [1, 0]
    assert assign_groups(np.array([30, None], dtype=object), AGE).tolist() == [1, -1]


def test_categorical_values() -> None:
    column = np.array(["F", "M", "female", "other", "M"])
    assert assign_groups(column, GENDER).tolist() == [0, 1, 0, -1, 1]
    mixed = np.array(["F", 1, None, "M"], dtype=object)
    groups = (CategoricalGroup("a", ("F", 1)), CategoricalGroup("b", ("M",)))
    assert assign_groups(mixed, groups).tolist() == [0, 0, -1, 1]
    assert assign_groups(np.array([1, 2, 1]), groups).tolist() == [0, -1, 0]


@pytest.mark.parametrize(
    ("groups", "index", "field"),
    [
        ((), -1, ""),
        ((NumericBin("a", 0, 10), NumericBin("b", 5, 20)), 1, "low"),
        ((NumericBin("a", None, 10), NumericBin("b", None, 5)), 0, "low"),
        ((NumericBin("a", 10, 10),), 0, "high"),
        ((CategoricalGroup("a", ("x",)), CategoricalGroup("a", ("y",))), 1, "name"),
        ((CategoricalGroup("a", ("x",)), CategoricalGroup("b", ("x",))), 1, "values"),
        ((CategoricalGroup("a", ()),), 0, "values"),
        ((CategoricalGroup("a", ("x",)), NumericBin("b", 0, 1)), -1, ""),
    ],
)
def test_bad_group_configurations(
    groups: tuple[CategoricalGroup | NumericBin, ...], index: int, field: str
) -> None:
    problems = check_groups(groups)
    assert problems, groups
    assert (problems[0].index, problems[0].field) == (index, field)


def test_touching_bins_are_fine() -> None:
    assert check_groups(AGE) == []
    assert check_groups(GENDER) == []


def _data(n: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n).astype(float)
    y = (rng.random(n) < 0.1).astype(float)
    bias = np.where(age < 26, 0.5, 0.1)
    p = np.where(rng.random(n) < 0.7, y, rng.random(n) < bias).astype(int)
    return age, y, p


def test_audit_equals_fairlearn_and_grades() -> None:
    age, y, p = _data()
    audit = audit_attribute("age_group", "age", age, AGE, y, p)
    codes = assign_groups(age, AGE)
    dp = demographic_parity_difference(y, p, sensitive_features=codes)
    eo = equalized_odds_difference(y, p, sensitive_features=codes)
    assert audit.metrics["demographic_parity_diff"].value == pytest.approx(
        dp, abs=1e-12
    )
    assert audit.metrics["equalized_odds_diff"].value == pytest.approx(eo, abs=1e-12)
    assert audit.groups == ("18-25", "26-45", "46+")
    assert sum(g.count for g in audit.group_breakdown.values()) == age.size
    assert audit.status == "CRITICAL"  # the young group is selected far more
    di = audit.metrics["disparate_impact"]
    assert di.status == "CRITICAL" and di.warning == 0.8
    assert di.ci_low is not None and di.ci_high is not None
    assert di.ci_low <= di.value <= di.ci_high  # type: ignore[operator]


def test_configured_thresholds_change_the_status() -> None:
    age, y, p = _data()
    lax = {m: Level(0.99, 1.0) for m in ("demographic_parity_diff", "fpr_parity_diff")}
    lax |= {"equalized_odds_diff": Level(0.99, 1.0), "disparate_impact": Level(0, 0)}
    audit = audit_attribute("age_group", "age", age, AGE, y, p, lax)
    assert audit.status == "OK"
    assert audit.metrics["disparate_impact"].critical == 0


def test_unlabelled_rows_are_left_out() -> None:
    age, y, p = _data()
    y[::2] = np.nan
    audit = audit_attribute("age_group", "age", age, AGE, y, p)
    assert sum(g.count for g in audit.group_breakdown.values()) == age.size // 2
    assert audit.unmatched == 0


def test_missing_column_and_no_data() -> None:
    age, y, p = _data(100)
    assert audit_attribute("a", "age", None, AGE, y, p).status == "MISSING_COLUMN"
    unlabelled = np.full(age.size, np.nan)
    assert audit_attribute("a", "age", age, AGE, unlabelled, p).status == "NO_DATA"


def test_small_groups_are_insufficient_not_violations() -> None:
    age, y, p = _data(3000)
    age[age < 26] = 30  # leave only a few in the youngest bin
    age[:5] = 20
    audit = audit_attribute("a", "age", age, AGE, y, p, options=AuditOptions(50))
    assert audit.group_breakdown["18-25"].status == "INSUFFICIENT_DATA"
    assert audit.group_breakdown["26-45"].status == "OK"
    assert audit.status != "INSUFFICIENT_DATA"
    kept = age >= 26
    codes = assign_groups(age[kept], AGE)
    dp = demographic_parity_difference(y[kept], p[kept], sensitive_features=codes)
    assert audit.metrics["demographic_parity_diff"].value == pytest.approx(
        dp, abs=1e-12
    )
    one_left = audit_attribute("a", "age", np.full(3000, 30.0), AGE, y, p)
    assert one_left.status == "INSUFFICIENT_DATA"
    assert one_left.metrics["disparate_impact"].value is None


def test_rows_in_no_group_are_counted_apart() -> None:
    age, y, p = _data(1000)
    age[:10] = 5
    audit = audit_attribute(
        "a", "age", age, AGE, y, p, options=AuditOptions(replicates=0)
    )
    assert audit.unmatched == 10
    assert audit.metrics["demographic_parity_diff"].ci_low is None
