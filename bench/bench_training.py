"""Training overhead benchmark: prints figures, asserts nothing.

Times (a) a bare ``xgboost.train`` on a DMatrix and (b) the library path
``train_model("xgboost", ...)`` with a progress callback and `should_stop` wired, on the
same float32 matrix and the same booster parameters; prints both wall times and the
ratio (target <= 1.3). The library builds a QuantileDMatrix (less memory, faster binning),
so a bare run on a QuantileDMatrix (a2) is printed too: that ratio isolates the
callback/metric overhead. Default data: synthetic 1 M x 50 with ~1 % positives. With
``--real``: generated transactions (1 M rows, 50k users, 5k merchants, 90 days) through
``compute_features`` (takes a few extra minutes).

    .venv/bin/python bench/bench_training.py [--rows 1000000] [--rounds 100] [--real]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def synthetic(rows: int, features: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Float32 matrix whose label depends non-linearly on a few columns (~1 % fraud)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, features), dtype=np.float32)
    logit = (
        1.5 * X[:, 0]
        - 1.0 * X[:, 1] * X[:, 2]
        + 0.8 * np.abs(X[:, 3])
        + 0.5 * np.sin(3 * X[:, 4])
        - 6.9
    )
    y = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float32)
    return np.ascontiguousarray(X), y


def real(rows: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from ml.datagen import GeneratorConfig, generate_transactions
    from ml.features import compute_features

    df = generate_transactions(
        GeneratorConfig(n_rows=rows, n_users=50_000, n_merchants=5_000, days=90)
    )
    result = compute_features(df)
    X = result.frame[result.feature_names].to_numpy(dtype=np.float32)
    y = df["is_fraud"].to_numpy(dtype=np.float32)
    return np.ascontiguousarray(X), y, result.feature_names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--real", action="store_true")
    args = parser.parse_args()

    import xgboost as xgb

    from ml.training import TrainingProgress, train_model

    t0 = time.perf_counter()
    if args.real:
        X, y, names = real(args.rows)
    else:
        X, y = synthetic(args.rows, args.features)
        names = [f"x{i}" for i in range(X.shape[1])]
    print(
        f"data: {X.shape[0]:,} x {X.shape[1]} float32, positives {y.mean():.2%}, "
        f"built in {time.perf_counter() - t0:.1f}s"
    )
    n_val = X.shape[0] // 10
    Xtr, ytr, Xva, yva = X[n_val:], y[n_val:], X[:n_val], y[:n_val]

    pos = float(ytr.sum())
    spw = (ytr.size - pos) / max(pos, 1.0)
    bare_params: dict[str, Any] = {
        "objective": "binary:logistic",
        "eval_metric": "logloss",
        "tree_method": "hist",
        "nthread": args.threads,
        "max_depth": args.depth,
        "eta": 0.1,
        "max_bin": 256,
        "scale_pos_weight": spw,
        "seed": 42,
        "verbosity": 0,
    }
    t0 = time.perf_counter()
    bare = xgb.train(
        bare_params, xgb.DMatrix(Xtr, ytr, nthread=args.threads), args.rounds
    )
    bare_s = time.perf_counter() - t0
    print(f"(a) bare xgboost.train, DMatrix (build included): {bare_s:.1f}s")
    del bare
    t0 = time.perf_counter()
    dq = xgb.QuantileDMatrix(Xtr, ytr, max_bin=256, nthread=args.threads)
    bare = xgb.train(bare_params, dq, args.rounds)
    bare_q = time.perf_counter() - t0
    print(f"(a2) bare xgboost.train, QuantileDMatrix (build included): {bare_q:.1f}s")
    del bare, dq

    reports: list[TrainingProgress] = []
    polls = [0]

    def should_stop() -> bool:
        polls[0] += 1
        return False

    t0 = time.perf_counter()
    model = train_model(
        "xgboost",
        {"n_estimators": args.rounds, "max_depth": args.depth, "learning_rate": 0.1},
        Xtr,
        ytr,
        Xva,
        yva,
        names,
        on_progress=reports.append,
        should_stop=should_stop,
        n_jobs=args.threads,
    )
    lib_s = time.perf_counter() - t0
    last = reports[-1]
    print(
        f"(b) train_model('xgboost'): {lib_s:.1f}s "
        f"({len(reports)} progress reports, {polls[0]} should_stop polls, "
        f"final val_auc {last.val_auc:.4f}, val_loss {last.val_loss:.4f})"
    )
    print(f"ratio (b)/(a): {lib_s / bare_s:.2f}  (target <= 1.3)")
    print(f"ratio (b)/(a2), same matrix type as the library: {lib_s / bare_q:.2f}")
    t0 = time.perf_counter()
    scores = model.predict_scores(Xva)
    print(
        f"predict {Xva.shape[0]:,} rows: {time.perf_counter() - t0:.2f}s, "
        f"mean score {scores.mean():.4f}"
    )


if __name__ == "__main__":
    main()
