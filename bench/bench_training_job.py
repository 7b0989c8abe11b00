"""Training job overhead benchmark: prints figures, asserts nothing.

Claim: an end-to-end XGBoost training job on 1 M rows of computed features takes
<= 1.3x the wall time of a bare ``xgboost.train`` with the same parameters on the same
matrix, both measured in the same run.

Builds an embedded Container (SQLite file DB, local blob store, NoLauncher) in a temp
dir, generates transactions, ingests them as a dataset and computes a feature set through
the services (not timed). Then times:

(A) ``TrainingService.run(job_id)``: the whole activity body (load the feature set
    Parquet, split, train, evaluate, ONNX export and parity check, register the model);
(B) bare ``xgboost.train`` calls with the parameters ``ml.training.boosting.fit_xgboost``
    passes, on the same rows as the job's two fits (the fit rows, then the refit on the
    whole training period: same columns, same split, same seed), QuantileDMatrix builds
    included, as the job builds them. B runs before and after A.

The job's phases are timed by thin wrappers around the functions it calls (microseconds
of overhead). Prints a final JSON line.

    .venv/bin/python bench/bench_training_job.py [--rows 1000000] [--rounds 100]
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SEED = 42  # TrainingService.start's default config seed
N_JOBS = 2  # train_model's default n_jobs, which the service does not override


@contextmanager
def phase_timers(phases: dict[str, float]) -> Iterator[None]:
    """Time the job's phases by wrapping the module attributes it looks up at call time."""
    import xgboost as xgb

    import ml.training.onnx_export as onnx_mod
    import ml.training.pipeline as pipeline_mod
    import ml.training.splits as splits_mod
    from shared.services.training_handoff import ModelHandOff
    from shared.services.training_run import TrainingRun

    patches: list[tuple[Any, str, Any]] = [
        (TrainingRun, "_load", "load"),
        (splits_mod, "stratified_split", "split"),
        (pipeline_mod, "train_model", "train_model"),
        (xgb, "train", "xgboost.train (inside train_model)"),
        (pipeline_mod, "choose_threshold", "evaluate"),
        (pipeline_mod, "evaluate", "evaluate"),
        (onnx_mod, "to_onnx", "onnx_export"),
        (onnx_mod, "onnx_max_abs_diff", "onnx_parity"),
        (ModelHandOff, "register", "register"),
    ]
    saved: list[tuple[Any, str, Any]] = []

    def timed(fn: Callable[..., Any], label: str) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                phases[label] = phases.get(label, 0.0) + time.perf_counter() - t0

        return wrapper

    for owner, name, label in patches:
        original = getattr(owner, name)
        saved.append((owner, name, original))
        setattr(owner, name, timed(original, label))
    try:
        yield
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)


def build_context(tmp: Path) -> Any:
    from shared.adapters.blobs.factory import make_blob_store
    from shared.config import Settings
    from shared.container import Container, use
    from shared.db.migrate import upgrade
    from shared.db.session import Database

    settings = Settings(data_dir=tmp / "data", log_json=False, run_migrations=False)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    upgrade(url)
    ctx = Container(
        settings=settings, db=Database(url), blobs=make_blob_store(settings)
    )
    use(ctx)  # default launcher: NoLauncher, jobs wait for us to run them
    return ctx


def make_feature_set(ctx: Any, tmp: Path, rows: int) -> str:
    from ml.datagen import GeneratorConfig, generate_transactions
    from shared.services.feature_commands import ComputeCommand
    from shared.services.upload_spool import Upload

    t0 = time.perf_counter()
    df = generate_transactions(
        GeneratorConfig(n_rows=rows, n_users=50_000, n_merchants=5_000, days=90, seed=1)
    )
    src = tmp / "tx.parquet"
    df.to_parquet(src, index=False)
    del df
    print(f"datagen {rows:,} rows + parquet: {time.perf_counter() - t0:.1f}s")

    t0 = time.perf_counter()
    ds = ctx.datasets.create(
        "bench-tx", None, Upload(src, "tx.parquet", None, src.stat().st_size)
    )
    print(f"dataset ingest: {time.perf_counter() - t0:.1f}s")

    t0 = time.perf_counter()
    features = ctx.features
    job = features.request_compute(ComputeCommand(dataset_id=ds["id"]))
    result = features.run_job(job.job_id)
    if result.get("status") != "COMPLETED":
        raise SystemExit(f"feature job did not complete: {result}")
    print(
        f"feature compute job: {time.perf_counter() - t0:.1f}s "
        f"({result['row_count']:,} rows x {result['feature_count']} features)"
    )
    return str(result["feature_set_id"])


def load_training_matrix(
    ctx: Any, fs_id: str, target: str, train_fraction: float
) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[str]]:
    """The rows of the job's two fits, (X, y) each: the fit rows, then the whole
    training period; same columns, order, dtype and split (outside timing)."""
    import pyarrow.parquet as pq

    from ml.training.splits import SplitPlan, make_splits
    from shared.adapters.blobs.local_copy import local_file
    from shared.services.training_request import ready_feature_set

    fs = ready_feature_set(ctx.uow, fs_id)
    names = [f["name"] for f in fs.features or []]
    with local_file(ctx.blobs, fs.storage_path or "") as path:
        table = pq.read_table(path, columns=[*names, target])
    X = np.column_stack(
        [table.column(n).to_numpy().astype(np.float32, copy=False) for n in names]
    )
    y = np.asarray(table.column(target).to_numpy(zero_copy_only=False), np.float64)
    plan = SplitPlan(kind="random", train_fraction=train_fraction, seed=SEED)
    splits = make_splits(plan, None, y)
    return [(X[rows], y[rows]) for rows in (splits.fit, splits.train)], names


def bare_params(hyper: dict[str, Any], y_train: np.ndarray) -> dict[str, Any]:
    """Exactly the booster parameters fit_xgboost builds."""
    from ml.training.algorithms import validate_hyperparameters
    from ml.training.boosting import _pos_weight

    p = validate_hyperparameters("xgboost", hyper)
    return {
        "objective": "binary:logistic",
        "eval_metric": "aucpr",
        "tree_method": "hist",
        "nthread": N_JOBS,
        "seed": SEED,
        "max_depth": p["max_depth"],
        "eta": p["learning_rate"],
        "subsample": p["subsample"],
        "colsample_bytree": p["colsample_bytree"],
        "min_child_weight": p["min_child_weight"],
        "gamma": p["gamma"],
        "lambda": p["reg_lambda"],
        "alpha": p["reg_alpha"],
        "max_bin": p["max_bin"],
        "scale_pos_weight": _pos_weight(y_train, p),
        "verbosity": 0,
    }


def run_bare(
    fits: list[tuple[np.ndarray, np.ndarray]], params: dict[str, Any], rounds: int
) -> float:
    import xgboost as xgb

    elapsed = 0.0
    for X, y in fits:
        t0 = time.perf_counter()
        dtrain = xgb.QuantileDMatrix(
            X, label=y, max_bin=params["max_bin"], nthread=N_JOBS
        )
        booster = xgb.train(params, dtrain, num_boost_round=rounds, verbose_eval=False)
        elapsed += time.perf_counter() - t0
        del booster, dtrain
    return elapsed


def run_job(ctx: Any, fs_id: str, hyper: dict[str, Any]) -> tuple[float, dict]:
    from shared.services.training import COMPLETED
    from shared.services.training_command import StartTraining

    started = ctx.training.start(
        StartTraining(
            name="bench",
            feature_set_id=fs_id,
            algorithm="xgboost",
            hyperparameters=hyper,
            train_test_split=0.8,
        )
    )
    phases: dict[str, float] = {}
    with phase_timers(phases):
        t0 = time.perf_counter()
        result = ctx.training.run(started.job_id)
        elapsed = time.perf_counter() - t0
    job = ctx.training.get(started.job_id)
    if job["status"] != COMPLETED:
        raise SystemExit(f"training job ended {job['status']}: {result} {job}")
    phases["other (indexing, checks, predict, db writes)"] = elapsed - sum(
        v for k, v in phases.items() if k not in ("xgboost.train (inside train_model)",)
    )
    auc = job["metrics"].get("auc_roc")
    print(
        f"(A) TrainingService.run (end-to-end job): {elapsed:.1f}s, "
        f"status {job['status']}, model {job['model_id']}, test auc {auc}"
    )
    for label, seconds in phases.items():
        print(f"    {label:<48} {seconds:7.2f}s")
    return elapsed, {k: round(v, 3) for k, v in phases.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--depth", type=int, default=6)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    hyper = {
        "n_estimators": args.rounds,
        "max_depth": args.depth,
        "learning_rate": 0.1,
        "early_stopping_rounds": 0,  # both sides train every round
    }
    with tempfile.TemporaryDirectory(prefix="sh-bench-job-") as tmpdir:
        tmp = Path(tmpdir)
        ctx = build_context(tmp)
        try:
            fs_id = make_feature_set(ctx, tmp, args.rows)
            fits, names = load_training_matrix(ctx, fs_id, "is_fraud", 0.8)
            X, y = fits[0]
            params = bare_params(hyper, y)
            print(
                f"training matrix: {X.shape[0]:,} x {X.shape[1]} float32, "
                f"positives {y.mean():.2%}, scale_pos_weight "
                f"{params['scale_pos_weight']:.1f}"
            )
            bare_before = run_bare(fits, params, args.rounds)
            print(f"(B1) bare xgboost.train, before A: {bare_before:.1f}s")
            job_s, phases = run_job(ctx, fs_id, hyper)
            bare_after = run_bare(fits, params, args.rounds)
            print(f"(B2) bare xgboost.train, after A:  {bare_after:.1f}s")
        finally:
            from shared.container import use

            use(None)
            ctx.db.dispose()

    bare_mean = (bare_before + bare_after) / 2
    ratio = job_s / bare_mean
    print(
        f"ratio A / mean(B1, B2): {ratio:.2f}  (target <= 1.3); "
        f"vs B1 {job_s / bare_before:.2f}, vs B2 {job_s / bare_after:.2f}"
    )
    print(
        json.dumps(
            {
                "rows": args.rows,
                "train_rows": int(X.shape[0]),
                "features": len(names),
                "rounds": args.rounds,
                "job_wall_s": round(job_s, 3),
                "bare_wall_s": round(bare_mean, 3),
                "bare_before_s": round(bare_before, 3),
                "bare_after_s": round(bare_after, 3),
                "ratio": round(ratio, 3),
                "ratio_vs_before": round(job_s / bare_before, 3),
                "ratio_vs_after": round(job_s / bare_after, 3),
                "target": 1.3,
                "job_phases_s": phases,
            }
        )
    )


if __name__ == "__main__":
    main()
