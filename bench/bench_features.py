"""Feature computation benchmark: prints figures, asserts nothing.

Batch: all feature groups on a generated data set (default 1 M transactions, 50k
users, 5k merchants, 90 days), run in a fresh child process so its peak RSS is
the computation's own (plus the parquet it reads). Online: backfill states up to
the last `--online` transactions, then time compute+update one transaction at a
time (pure in-process part), and separately the JSON round trip of the states a
transaction touches (what the database read/write adds on top).

    .venv/bin/python bench/bench_features.py [--rows 1000000] [--online 20000]
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scratch import add_data_arguments, generated  # noqa: E402


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB on Linux


def _batch_child(path: str) -> None:
    import pandas as pd

    from ml.features import compute_features

    df = pd.read_parquet(path)
    rss_input = _peak_rss_gb()
    start = time.perf_counter()
    result = compute_features(df)
    wall = time.perf_counter() - start
    print(
        json.dumps(
            {
                "rows": len(df),
                "features": len(result.feature_names),
                "wall_s": round(wall, 2),
                "peak_rss_gb": round(_peak_rss_gb(), 2),
                "rss_after_read_gb": round(rss_input, 2),
            }
        )
    )


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 1),
        "p99": round(_percentile(values, 0.99), 1),
    }


def _online(df: Any, n_online: int) -> dict[str, Any]:
    """First half of the live rows with states kept in memory (the pure part);
    second half with each touched state written to and read back from JSON, as
    the database round trip does (timed separately)."""
    from ml.features import (
        OnlineFeatureEngine,
        backfill_states,
        state_from_json,
        state_to_json,
    )
    from shared.gc_freezer import collector_paused

    history, live = df.iloc[:-n_online], df.iloc[-n_online:]
    start = time.perf_counter()
    with collector_paused():  # as promotion's backfill runs it (SH_BACKFILL_GC_PAUSE)
        states = backfill_states(df, as_of=live["timestamp"].iloc[0])
    backfill_s = time.perf_counter() - start
    # A scoring process holds only the states it just read from the database; here
    # all 100k+ states live in memory, so keep the cyclic GC from rescanning them.
    gc.collect()
    gc.freeze()
    engine = OnlineFeatureEngine(available_roles=df.columns)
    records = live.drop(columns=["is_fraud"]).to_dict("records")
    half = len(records) // 2
    in_memory_us: list[float] = []
    with_json_us: list[float] = []
    json_us: list[float] = []
    state_bytes: list[float] = []
    for i, txn in enumerate(records):
        keys = engine.entity_keys(txn)
        current = {key: states.get(key) for key in keys}
        t0 = time.perf_counter_ns()
        _, updated = engine.process(txn, current)
        t1 = time.perf_counter_ns()
        if i < half:
            in_memory_us.append((t1 - t0) / 1e3)
            states.update(updated)
            continue
        texts = [state_to_json(state) for state in updated.values()]
        restored = {k: state_from_json(t) for k, t in zip(updated, texts, strict=True)}
        t2 = time.perf_counter_ns()
        states.update(restored)
        with_json_us.append((t1 - t0) / 1e3)
        json_us.append((t2 - t1) / 1e3)
        state_bytes.extend(float(len(t)) for t in texts)
    merchants = [len(v["ts"]) for k, v in states.items() if k[0] == "merchant"]
    return {
        "history_rows": len(history),
        "backfill_s": round(backfill_s, 2),
        "entities": len(states),
        "merchant_events_max": max(merchants, default=0),
        "compute_update_us_states_in_memory": _summary(in_memory_us),
        "compute_update_us_after_json_load": _summary(with_json_us),
        "json_write_read_us": _summary(json_us),
        "state_json_bytes": _summary(state_bytes),
        "transactions_timed": len(records),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(parser)
    parser.add_argument("--online", type=int, default=20_000)
    parser.add_argument("--batch-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.batch_child:
        _batch_child(args.batch_child)
        return

    start = time.perf_counter()
    df = generated(args)
    print(f"generated {len(df):,} rows in {time.perf_counter() - start:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "transactions.parquet")
        df.to_parquet(path)
        child = subprocess.run(
            [sys.executable, __file__, "--batch-child", path],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
    batch = json.loads(child.stdout.strip().splitlines()[-1])
    print("batch :", json.dumps(batch))
    print("online:", json.dumps(_online(df, args.online)))


if __name__ == "__main__":
    main()
