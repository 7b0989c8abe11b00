"""Logged features: the time to read one model's window of logged predictions back as
columns, through the Parquet mirror, on SQLite and on PostgreSQL.

Logs ``--rows`` predictions of ``--features`` features for one model (straight through
the prediction log's adapter, 200 a second of ``created_at``), labels the oldest
``--labelled`` share, exports them (timed: rows a second), then times ``window()`` for the
whole window, the databases taking turns, ``--runs`` times each: once with everything
mirrored, once with the last ``--tail-minutes`` not exported yet (read from the table),
those rows read from their packed input vectors and, in turn, from their JSON
(``SH_FEATURE_LOG_INPUT_VECTORS`` off).

    .venv/bin/python bench/bench_feature_log.py [--rows 1000000] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scratch import scratch_postgres  # noqa: E402

T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
RATE = 200  # predictions a second of created_at
CHUNK = 10_000


@contextmanager
def _url(kind: str, tmp: Path) -> Iterator[str]:
    from shared.db.migrate import upgrade

    if kind == "sqlite":
        url = f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        yield url
    else:
        with scratch_postgres("sh_bench_flog") as url:
            upgrade(url)
            yield url


def _names(args: argparse.Namespace) -> list[str]:
    return [f"feature_{j:02d}" for j in range(args.features)]


def _log(db: Any, model_id: uuid.UUID, args: argparse.Namespace) -> float:
    """Log the predictions; seconds taken."""
    from shared.adapters.feature_log.vectors import pack
    from shared.adapters.prediction_log.sql import SqlPredictionTable

    names = _names(args)
    table = SqlPredictionTable(db)
    rng = np.random.default_rng(1)
    step = timedelta(seconds=1 / RATE)
    began = time.perf_counter()
    for first in range(0, args.rows, CHUNK):
        n = min(CHUNK, args.rows - first)
        values = rng.normal(size=(n, args.features)).round(6)
        vectors = values.astype(np.float32)
        scores = rng.random(n)
        rows = [
            {
                "id": uuid.uuid4(),
                "created_at": T0 + step * (first + i),
                "model_id": model_id,
                "transaction_id": f"T{first + i}",
                "input_features": dict(zip(names, values[i].tolist(), strict=True)),
                "input_vector": pack(vectors[i]),
                "fraud_score": float(scores[i]),
                "is_fraud": bool(scores[i] > 0.5),
                "explanation": None,
                "latency_ms": 3.5,
            }
            for i in range(n)
        ]
        with db.writing(), db.engine.begin() as conn:
            table.write(conn, rows)
    return time.perf_counter() - began


def _label(db: Any, model_id: uuid.UUID, args: argparse.Namespace) -> None:
    from sqlalchemy import text, update

    from shared.adapters.feature_log.rows import TABLE

    until = T0 + timedelta(seconds=args.rows * args.labelled / RATE)
    with db.writing(), db.engine.begin() as conn:
        conn.execute(
            update(TABLE)
            .where(TABLE.c.model_id == model_id, TABLE.c.created_at < until)
            .values(actual_label=TABLE.c.fraud_score > 0.9)
        )
    if db.engine.dialect.name == "postgresql":  # what autovacuum does to old rows
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM ANALYZE predictions"))


class Side:
    """One database with its logged model, its mirror and a second, lagging one."""

    def __init__(self, kind: str, url: str, tmp: Path, args: argparse.Namespace):
        from shared.adapters.blobs.local import LocalBlobStore
        from shared.adapters.feature_log.parquet_segments import (
            ParquetSegmentFeatureLog,
        )
        from shared.adapters.repositories.uow import SqlTransactions
        from shared.db.models import MLModel
        from shared.db.session import Database

        self.kind = kind
        self.db = Database(url)
        self.model_id = uuid.uuid4()
        with self.db.session(write=True) as s:
            s.add(
                MLModel(
                    id=self.model_id,
                    name="bench",
                    version="1",
                    algorithm="xgboost",
                    storage_path="models/bench",
                    status="PRODUCTION",
                    details={"features": _names(args)},
                )
            )
        self.log_s = _log(self.db, self.model_id, args)
        _label(self.db, self.model_id, args)
        self.mirror = ParquetSegmentFeatureLog(
            self.db,
            SqlTransactions(self.db),
            LocalBlobStore(tmp / kind),
            lag=timedelta(0),
        )
        # the same ledger and segments, the rows not exported read from their JSON
        self.json_mirror = ParquetSegmentFeatureLog(
            self.db,
            SqlTransactions(self.db),
            LocalBlobStore(tmp / kind),
            lag=timedelta(0),
            input_vectors=False,
        )
        self.end = T0 + timedelta(seconds=args.rows / RATE + 1)
        self.tail_end = self.end - timedelta(minutes=args.tail_minutes)
        began = time.perf_counter()
        self.exported = self.mirror.export(self.tail_end)
        self.export_s = time.perf_counter() - began
        self.names = _names(args)

    def export_tail(self) -> tuple[int, float]:
        began = time.perf_counter()
        rows = self.mirror.export(self.end)
        return rows, time.perf_counter() - began

    def read(self, vectors: bool = True) -> tuple[float, int]:
        mirror = self.mirror if vectors else self.json_mirror
        began = time.perf_counter()
        window = mirror.window(self.model_id, T0, self.end, self.names)
        return time.perf_counter() - began, window.rows


def _summary(times: list[float]) -> str:
    return (
        f"median {statistics.median(times):.3f} s "
        f"(min {min(times):.3f}, max {max(times):.3f}, n={len(times)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--labelled", type=float, default=0.3)
    parser.add_argument("--tail-minutes", type=float, default=5.0)
    parser.add_argument("--only", choices=["sqlite", "postgresql"], default=None)
    args = parser.parse_args()
    kinds = [args.only] if args.only else ["sqlite", "postgresql"]
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        sides = []
        for kind in kinds:
            url = stack.enter_context(_url(kind, tmp))
            side = Side(kind, url, tmp, args)
            print(
                f"{kind}: logged {args.rows} rows x {args.features} features in "
                f"{side.log_s:.1f} s; first export {side.exported} rows in "
                f"{side.export_s:.1f} s ({side.exported / side.export_s:,.0f} rows/s)",
                flush=True,
            )
            sides.append(side)
        results: dict[str, list[float]] = {}
        for case in ("tail", "mirrored"):  # the databases and readers take turns
            for _ in range(args.runs):
                for side in sides:
                    for vectors in (True, False) if case == "tail" else (True,):
                        seconds, rows = side.read(vectors)
                        assert rows == args.rows, rows
                        label = f"{side.kind} {case}" + (
                            "" if case != "tail" else " vectors" if vectors else " JSON"
                        )
                        results.setdefault(label, []).append(seconds)
            if case == "tail":
                for side in sides:
                    rows, seconds = side.export_tail()
                    print(
                        f"{side.kind}: export of the last {args.tail_minutes:g} min "
                        f"({rows} rows) {seconds:.2f} s",
                        flush=True,
                    )
        tail = args.rows - sides[0].exported
        print(
            f"window() of {args.rows} rows x {args.features} features (noisy machine):"
        )
        for name, times in results.items():
            note = f" ({tail} rows from the table)" if "tail" in name else ""
            print(f"  {name:<28} {_summary(times)}{note}")
        for side in sides:
            json_s = statistics.median(results[f"{side.kind} tail JSON"])
            vec_s = statistics.median(results[f"{side.kind} tail vectors"])
            print(
                f"  {side.kind}: tail read with JSON / with vectors = {json_s / vec_s:.2f}"
            )
        for side in sides:
            side.db.dispose()


if __name__ == "__main__":
    main()
