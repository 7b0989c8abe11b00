"""Detection quality of the training defaults, out of time: prints figures, asserts
nothing. Quality figures, not timings, so a loaded machine does not change them.

Generates transactions (ml.datagen), computes the default features (label delay 7d),
and fits XGBoost several ways. Every row of the table is scored on the same test
period, the last 20 % of the time span, except the first, which is what the old
default reported (a random 80/20 split, threshold chosen on its own test rows):

  old, random split        200 trees, class_weight balanced, random test rows
  old, out of time         the same model trained on everything before the gap
  new, balanced            the new pipeline with class_weight balanced
  new defaults, no refit   validation period, early stopping on validation AP, no
                           weighting, calibration and threshold on validation; the
                           model fitted on the rows before validation
  new defaults             the same configuration refitted on the whole training
                           period (fit + validation) with the chosen tree count
  new defaults + search    the same when hyperparameters are omitted (the search)

    .venv/bin/python bench/bench_training_quality.py [--rows 150000] [--days 60]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OLD = {"n_estimators": 200, "class_weight": "balanced", "early_stopping_rounds": 0}


def features(rows: int, days: int, seed: int) -> tuple[Any, Any, Any, list[str]]:
    import pyarrow as pa

    from ml.datagen import GeneratorConfig, generate_transactions
    from ml.features import compute_features
    from ml.training.splits import arrow_timestamps_ns

    df = generate_transactions(
        GeneratorConfig(
            n_rows=rows,
            n_users=max(rows // 15, 100),
            n_merchants=max(rows // 150, 20),
            days=days,
            seed=seed,
        )
    )
    result = compute_features(df)
    names = list(result.feature_names)
    X = result.frame[names].to_numpy(np.float32)
    y = df["is_fraud"].to_numpy(np.float64)
    ts = arrow_timestamps_ns(pa.chunked_array([pa.array(df["timestamp"])]))
    return X, y, ts, names


def old_way(X: Any, y: Any, train: Any, test: Any, names: list[str]) -> dict[str, Any]:
    """The previous default: one fit, threshold by best F1 on the test rows."""
    from ml.training import choose_threshold, evaluate, train_model

    model = train_model("xgboost", OLD, X[train], y[train], None, None, names)
    scores = model.predict_scores(X[test])
    return evaluate(y[test], scores, choose_threshold(y[test], scores))


def row(label: str, m: dict[str, Any], seconds: float) -> dict[str, Any]:
    return {
        "setup": label,
        "auc_roc": round(m["auc_roc"], 4),
        "auc_pr": round(m["auc_pr"], 4),
        "f1_at_threshold": round(m["f1_score"], 4),
        "brier": round(float(m.get("brier_score", float("nan"))), 5),
        "trees": m.get("n_estimators_used"),
        "seconds": round(seconds, 1),
    }


def main() -> None:
    from ml.training.pipeline import FitPlan, fit_and_evaluate
    from ml.training.splits import SplitPlan, make_splits, stratified_split

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=150_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--search-seconds", type=float, default=300.0)
    args = parser.parse_args()

    X, y, ts, names = features(args.rows, args.days, args.seed)
    print(f"{X.shape[0]:,} rows x {X.shape[1]} features, fraud {y.mean():.2%}")
    splits = make_splits(SplitPlan(gap="7d"), ts, y)
    train_all = np.flatnonzero(ts < ts[splits.test].min() - 7 * 86_400 * 10**9)
    rows = []

    t0 = time.perf_counter()
    r_train, r_test = stratified_split(y, 0.8, 42)
    rows.append(
        row(
            "old, random split",
            old_way(X, y, r_train, r_test, names),
            time.perf_counter() - t0,
        )
    )
    t0 = time.perf_counter()
    rows.append(
        row(
            "old, out of time",
            old_way(X, y, train_all, splits.test, names),
            time.perf_counter() - t0,
        )
    )
    for label, params, refit in (
        ("new, balanced", {"class_weight": "balanced"}, True),
        ("new defaults, no refit", {}, False),
        ("new defaults", {}, True),
        ("new defaults + search", None, True),
    ):
        t0 = time.perf_counter()
        plan = FitPlan(
            "xgboost", params, search_seconds=args.search_seconds, refit=refit
        )
        outcome = fit_and_evaluate(plan, X, y, splits, names)
        rows.append(row(label, outcome.metrics, time.perf_counter() - t0))
        if params is None:
            print("search:", json.dumps(outcome.metrics.get("search")))
    width = max(len(r["setup"]) for r in rows)
    print(f"{'setup':<{width}}  auc_roc  auc_pr  f1@thr  brier    trees  seconds")
    for r in rows:
        print(
            f"{r['setup']:<{width}}  {r['auc_roc']:.4f}   {r['auc_pr']:.4f}  "
            f"{r['f1_at_threshold']:.4f}  {r['brier']:.5f}  {r['trees'] or '':>5}  "
            f"{r['seconds']:>6}"
        )
    print(json.dumps({"rows": args.rows, "days": args.days, "results": rows}))


if __name__ == "__main__":
    main()
