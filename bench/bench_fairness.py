"""Fairness audit benchmark: prints figures, asserts the values agree.

`--rows` labelled predictions (default 1 M) with two protected attributes: gender (two
groups, text values) and age (numbers binned into three named groups). Timed
alternately in the same run, `--repeat` times each:

- ours: ``ml.fairness.audit_attribute`` for both attributes from the raw columns
  (grouping, per-group counts and rates, the four metrics, statuses and 1,000-replicate
  bootstrap intervals);
- Fairlearn: ``MetricFrame`` (selection rate, TPR, FPR) plus
  ``demographic_parity_difference`` and ``equalized_odds_difference`` for both
  attributes, given the age groups already binned (its binning is not timed).

Prints the best and median time of each, and the ratio of the medians.

    .venv/bin/python bench/bench_fairness.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.fairness import (  # noqa: E402
    AttributeAudit,
    CategoricalGroup,
    NumericBin,
    assign_groups,
    audit_attribute,
)

GENDER = (CategoricalGroup("female", ("F",)), CategoricalGroup("male", ("M",)))
AGE = (
    NumericBin("18-25", 18, 26),
    NumericBin("26-45", 26, 46),
    NumericBin("46+", 46, None),
)


def data(rows: int, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    gender = np.where(rng.random(rows) < 0.5, "F", "M")
    age = rng.integers(18, 90, rows).astype(np.float64)
    y = (rng.random(rows) < 0.05).astype(np.int64)
    lean = np.where(age < 26, 0.08, 0.03) + np.where(gender == "F", 0.01, 0.0)
    p = np.where(rng.random(rows) < 0.8, y, rng.random(rows) < lean).astype(np.int64)
    names = np.array([g.name for g in AGE], dtype=object)
    return {
        "gender": gender,
        "age": age,
        "age_group": names[assign_groups(age, AGE)],  # Fairlearn's input
        "y": y,
        "p": p,
    }


def ours(d: dict[str, Any]) -> list[AttributeAudit]:
    return [
        audit_attribute("gender", "gender", d["gender"], GENDER, d["y"], d["p"]),
        audit_attribute("age_group", "age", d["age"], AGE, d["y"], d["p"]),
    ]


def fairlearn(d: dict[str, Any]) -> list[dict[str, Any]]:
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    out = []
    for column in ("gender", "age_group"):
        g = d[column]
        frame = MetricFrame(
            metrics={
                "selection_rate": selection_rate,
                "tpr": true_positive_rate,
                "fpr": false_positive_rate,
            },
            y_true=d["y"],
            y_pred=d["p"],
            sensitive_features=g,
        )
        out.append(
            {
                "by_group": frame.by_group,
                "dp": demographic_parity_difference(
                    d["y"], d["p"], sensitive_features=g
                ),
                "eo": equalized_odds_difference(d["y"], d["p"], sensitive_features=g),
            }
        )
    return out


def check(a: list[AttributeAudit], f: list[dict[str, Any]]) -> None:
    gender_labels = {"female": "F", "male": "M"}
    for audit, theirs in zip(a, f, strict=True):
        dp = audit.metrics["demographic_parity_diff"].value
        eo = audit.metrics["equalized_odds_diff"].value
        assert dp is not None and abs(dp - theirs["dp"]) <= 1e-12, (dp, theirs["dp"])
        assert eo is not None and abs(eo - theirs["eo"]) <= 1e-12, (eo, theirs["eo"])
        for name, group in audit.group_breakdown.items():
            row = theirs["by_group"].loc[gender_labels.get(name, name)]
            for rate in ("selection_rate", "tpr", "fpr"):
                value = getattr(group, rate)
                assert value is not None and abs(value - row[rate]) <= 1e-12, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    d = data(args.rows)
    check(ours(d), fairlearn(d))  # warm both, and compare
    times: dict[str, list[float]] = {"ours": [], "fairlearn": []}
    for _ in range(args.repeat):
        for name, run in (("ours", ours), ("fairlearn", fairlearn)):
            start = time.perf_counter()
            run(d)
            times[name].append(time.perf_counter() - start)
    print(f"rows: {args.rows:,}, attributes: gender (2 groups), age (3 bins)")
    for name, t in times.items():
        print(
            f"{name:>10}: best {min(t):.3f} s, median {statistics.median(t):.3f} s "
            f"over {len(t)} runs"
        )
    ratio = statistics.median(times["fairlearn"]) / statistics.median(times["ours"])
    print(f"Fairlearn / ours (medians): {ratio:.1f}x; values equal to 1e-12")


if __name__ == "__main__":
    main()
