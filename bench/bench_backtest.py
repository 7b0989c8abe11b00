"""Backtest benchmark: prints figures, asserts nothing.

A model is trained on a small generated feature set (XGBoost, `--trees` trees), then the
backtest job (`Backtests.run_job`, as the activity runs it: read the dataset, batch
features with history, ONNX scoring, the scores' Parquet written) scores a generated
data set of `--rows` transactions (default 1 M), once over every row and once over the
last `--window-days` days. Figures: wall time, transactions per second, and the ratio to
`compute_features` on the same rows timed alternately in the same run (the floor: the
job reads, computes those features, scores and writes), which stays comparable on a
loaded machine.

    .venv/bin/python bench/bench_backtest.py [--rows 1000000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scratch import add_data_arguments, generated  # noqa: E402


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
    use(ctx)  # default launcher: NoLauncher, the jobs run here
    return ctx


def ingest(ctx: Any, tmp: Path, df: Any, name: str) -> str:
    from shared.services.upload_spool import Upload

    src = tmp / f"{name}.parquet"
    df.to_parquet(src, index=False)
    ds = ctx.datasets.create(
        name, None, Upload(src, f"{name}.parquet", None, src.stat().st_size)
    )
    return str(ds["id"])


def register_model(ctx: Any, tmp: Path, trees: int) -> str:
    """A model trained on a 50k-row feature set, registered with its ONNX export."""
    import pyarrow.parquet as pq

    from ml.datagen import GeneratorConfig, generate_transactions
    from ml.training import train_model
    from ml.training.onnx_export import to_onnx
    from shared.adapters.blobs.local_copy import local_file
    from shared.db.models import FeatureSet, MLModel
    from shared.services.feature_commands import ComputeCommand

    train_df = generate_transactions(
        GeneratorConfig(n_rows=50_000, n_users=5_000, n_merchants=500, days=30, seed=7)
    )
    dataset_id = ingest(ctx, tmp, train_df, "bench-train")
    job = ctx.features.request_compute(ComputeCommand(dataset_id=dataset_id))
    done = ctx.features.run_job(job.job_id)
    fs_id = uuid.UUID(done["feature_set_id"])
    with ctx.db.session() as s:
        fs = s.get(FeatureSet, fs_id)
        names = [f["name"] for f in fs.features]
        path = fs.storage_path
    with local_file(ctx.blobs, path) as local:
        table = pq.read_table(local, columns=[*names, "is_fraud"])
    X = np.column_stack(
        [table.column(n).to_numpy().astype(np.float32, copy=False) for n in names]
    )
    y = table.column("is_fraud").to_numpy().astype(np.float32)
    model = train_model(
        "xgboost",
        {"n_estimators": trees, "max_depth": 6},
        X,
        y,
        None,
        None,
        names,
    )
    model_id = uuid.uuid4()
    ctx.blobs.put_bytes(f"models/{model_id}/model.onnx", to_onnx(model))
    with ctx.db.session() as s:
        s.add(
            MLModel(
                id=model_id,
                name="bench",
                version="1.0",
                algorithm="xgboost",
                storage_path=f"models/{model_id}/",
                metrics={},
                feature_set_id=fs_id,
                details={
                    "threshold": 0.5,
                    "features": names,
                    "score_transform": model.score_transform,
                },
            )
        )
    return str(model_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_data_arguments(parser)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--window-days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    import pandas as pd

    from ml.features import compute_features
    from shared.services.backtest import BacktestCommand

    with tempfile.TemporaryDirectory(prefix="sh-bench-backtest-") as name:
        tmp = Path(name)
        ctx = build_context(tmp)
        t0 = time.perf_counter()
        model_id = register_model(ctx, tmp, args.trees)
        print(
            f"model ({args.trees} trees) trained and registered: "
            f"{time.perf_counter() - t0:.1f}s"
        )
        t0 = time.perf_counter()
        df = generated(args)
        end = pd.Timestamp(df["timestamp"].max())
        dataset_id = ingest(ctx, tmp, df, "bench-score")
        print(f"datagen + ingest {args.rows:,} rows: {time.perf_counter() - t0:.1f}s")
        start = (end - pd.Timedelta(days=args.window_days)).to_pydatetime()
        runs = {"every row": None, f"last {args.window_days} days": start}
        for _ in range(args.repeat):
            # the floor: the batch features alone, on the frame already in memory
            t0 = time.perf_counter()
            compute_features(df)
            floor = time.perf_counter() - t0
            print(f"compute_features alone (the floor): {floor:.2f}s")
            for label, window_start in runs.items():
                cmd = BacktestCommand(model_id, dataset_id, window_start)
                job = ctx.backtests.request(cmd)
                t0 = time.perf_counter()
                result = ctx.backtests.run_job(job["job_id"])
                wall = time.perf_counter() - t0
                if result["status"] != "COMPLETED":
                    raise SystemExit(f"backtest failed: {result}")
                total = result["rows_scored"] + result["rows_history"]
                print(
                    f"{label}: {wall:.2f}s, {result['rows_scored']:,} scored "
                    f"({total:,} read): {total / wall:,.0f} transactions/s read, "
                    f"{result['rows_scored'] / wall:,.0f} scored/s; "
                    f"{wall / floor:.2f}x the floor"
                )


if __name__ == "__main__":
    main()
