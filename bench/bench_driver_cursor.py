"""The DB-driver cursor bypass measured apart (``SH_DB_DRIVER_CURSOR``, shared/db/driver.py):
prints figures, asserts nothing.

Two workloads, each run with the bypass on and off in alternating rounds on the same
database (a SQLite file, and a scratch PostgreSQL database on 127.0.0.1:5432):

- small transactions shaped like a scored one: a keyed read that misses, a one-row
  insert and the read again, in one transaction on the scoring path's engine
  (``Database.online_engine``: asynchronous commits on PostgreSQL), microseconds per
  transaction;
- bulk: ``insert_many`` of ``--bulk`` rows in one transaction (COPY on PostgreSQL with
  the bypass, executemany without; multi-row statements on SQLite either way).

    .venv/bin/python bench/bench_driver_cursor.py [--db sqlite,postgresql]
        [--transactions 3000] [--bulk 10000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scratch import scratch_postgres  # noqa: E402


@contextmanager
def _url(kind: str) -> Iterator[str]:
    from shared.db.migrate import upgrade

    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            upgrade(url)
            yield url
    else:
        with scratch_postgres() as url:
            upgrade(url)
            yield url


def _rows(sql: Any, table: Any, namespace: str, n: int) -> list[tuple[Any, ...]]:
    now = datetime.now(UTC)
    values = {
        "namespace": namespace,
        "event_time": now,
        "entity_keys": [["user", "u1"], ["merchant", "m1"]],
        "features": {"amount": 12.5, "hour": 15.0, "velocity_24h": 3.0},
        "created_at": now,
    }
    columns = [c.name for c in table.columns]
    binds = [sql.bind(table, c) for c in columns]
    return [
        tuple(
            bind(f"t{i}" if c == "transaction_id" else values[c])
            for c, bind in zip(columns, binds, strict=True)
        )
        for i in range(n)
    ]


def _small(db: Any, sql: Any, table: Any, direct: bool, n: int) -> float:
    """Microseconds per small transaction (median)."""
    from shared.db.driver import DIRECT, DriverCursor

    engine = db.online_engine.execution_options(**{DIRECT: direct})
    columns = [c.name for c in table.columns]
    insert = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ("
        + ", ".join(f":{c}" for c in columns)
        + ")"
    )
    read = (
        f"SELECT features FROM {table.name} "
        "WHERE namespace = :namespace AND transaction_id = :transaction_id"
    )
    namespace = uuid.uuid4().hex
    rows = _rows(sql, table, namespace, n)
    key = columns.index("transaction_id")
    times = []
    for row in rows:
        params = dict(zip(columns, row, strict=True))
        keyed = {"namespace": namespace, "transaction_id": row[key]}
        t0 = time.perf_counter()
        with db.writing(), engine.begin() as conn:
            cursor = DriverCursor(conn, sql)
            cursor.execute(read, keyed).fetchall()
            cursor.execute(insert, params)
            cursor.execute(read, keyed).fetchall()
        times.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(times)


def _bulk(db: Any, sql: Any, table: Any, direct: bool, n: int) -> float:
    """Milliseconds for one ``insert_many`` of n rows, committed."""
    from shared.db.driver import DIRECT, DriverCursor

    engine = db.online_engine.execution_options(**{DIRECT: direct})
    rows = _rows(sql, table, uuid.uuid4().hex, n)
    columns = [c.name for c in table.columns]
    t0 = time.perf_counter()
    with db.writing(), engine.begin() as conn:
        DriverCursor(conn, sql).insert_many(table, columns, rows)
    return (time.perf_counter() - t0) * 1e3


def _run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    from shared.db.driver import DriverSQL
    from shared.db.models import OnlineTransaction
    from shared.db.session import Database

    db = Database(url)
    table = OnlineTransaction.__table__
    sql = DriverSQL(db.engine.dialect, [table])
    figures: dict[str, dict[str, list[float]]] = {
        "small_us": {"on": [], "off": []},
        "bulk_ms": {"on": [], "off": []},
    }
    try:
        _small(db, sql, table, True, 200)  # warm both paths
        _small(db, sql, table, False, 200)
        for r in range(args.rounds):
            order = ("on", "off") if r % 2 == 0 else ("off", "on")
            for mode in order:
                direct = mode == "on"
                figures["small_us"][mode].append(
                    _small(db, sql, table, direct, args.transactions)
                )
                figures["bulk_ms"][mode].append(
                    _bulk(db, sql, table, direct, args.bulk)
                )
    finally:
        db.dispose()
    out: dict[str, Any] = {}
    for name, modes in figures.items():
        on, off = statistics.median(modes["on"]), statistics.median(modes["off"])
        out[name] = {
            "on": round(on, 1),
            "off": round(off, 1),
            "off_over_on": round(off / on, 2),
            "rounds_on": [round(v, 1) for v in modes["on"]],
            "rounds_off": [round(v, 1) for v in modes["off"]],
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--transactions", type=int, default=3000)
    parser.add_argument("--bulk", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for kind in args.db.split(","):
        with _url(kind) as url:
            print(json.dumps({"db": kind, **_run(url, args)}), flush=True)


if __name__ == "__main__":
    main()
