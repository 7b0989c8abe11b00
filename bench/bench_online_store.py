"""Online feature store benchmark: prints figures, asserts nothing.

Generates the benchmark data set, backfills the store with all but the last
`--online` rows (``OnlineFeatureStore.backfill``), then times ``store.process()`` on
the remaining rows in order (state read, compute, state update, exactly-once record),
on a SQLite file database and on a scratch PostgreSQL database (127.0.0.1:5432, user
postgres; created, migrated and dropped here).

    .venv/bin/python bench/bench_online_store.py [--rows 1000000] [--online 20000]
        [--db sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scratch import add_data_arguments, generated, scratch_postgres  # noqa: E402


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "median": round(statistics.median(values), 1),
        "p90": round(_percentile(values, 0.90), 1),
        "p99": round(_percentile(values, 0.99), 1),
        "max": round(max(values), 1),
    }


@contextmanager
def _sqlite_url() -> Iterator[str]:
    from shared.db.migrate import upgrade

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        yield url


@contextmanager
def _postgres_url() -> Iterator[str]:
    from shared.db.migrate import upgrade

    with scratch_postgres() as url:
        upgrade(url)
        yield url


def _state_bytes(db: Any) -> dict[str, Any]:
    from sqlalchemy import func, select

    from shared.db.models import FeatureEntitySnapshot

    table = FeatureEntitySnapshot.__table__
    size = func.length(table.c.state)
    with db.engine.connect() as conn:
        rows, total, biggest = conn.execute(
            select(func.count(), func.sum(size), func.max(size))
        ).one()
    return {"rows": rows, "total_mb": round((total or 0) / 1e6, 1), "max": biggest}


def _run(url: str, df: Any, n_online: int) -> dict[str, Any]:
    from ml.features import OnlineFeatureEngine
    from shared.db.session import Database
    from shared.services.online_features import OnlineFeatureStore

    db = Database(url)
    try:
        roles = tuple(df.columns)
        store = OnlineFeatureStore(db, OnlineFeatureEngine(None, roles), roles)
        history, live = df.iloc[:-n_online], df.iloc[-n_online:]
        start = time.perf_counter()
        entities = store.backfill(history)
        backfill_s = time.perf_counter() - start
        after_backfill = _state_bytes(db)
        records = live.drop(columns=["is_fraud"]).to_dict("records")
        timings: list[float] = []
        start = time.perf_counter()
        for txn in records:
            t0 = time.perf_counter_ns()
            store.process(txn)
            timings.append((time.perf_counter_ns() - t0) / 1e3)
        replay_s = time.perf_counter() - start
        return {
            "history_rows": len(history),
            "entities": entities,
            "backfill_s": round(backfill_s, 1),
            "process_us": _summary(timings),
            "replay_s": round(replay_s, 1),
            "state_bytes_after_backfill": after_backfill,
            "state_bytes_after_replay": _state_bytes(db),
        }
    finally:
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(parser)
    parser.add_argument("--online", type=int, default=20_000)
    parser.add_argument("--db", default="sqlite,postgresql")
    args = parser.parse_args()

    from shared.services import online_features  # noqa: F401  (loaded before timing)

    start = time.perf_counter()
    df = generated(args)
    print(f"generated {len(df):,} rows in {time.perf_counter() - start:.1f} s")
    for name in args.db.split(","):
        urls = {"sqlite": _sqlite_url, "postgresql": _postgres_url}
        with urls[name]() as url:
            print(f"{name}:", json.dumps(_run(url, df, args.online)), flush=True)


if __name__ == "__main__":
    main()
