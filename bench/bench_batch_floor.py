"""The floor under /predict/batch on this machine: what any implementation of it pays
before it computes a single feature, so the ≥ 50,000 transactions/s target can be set
against what the stack allows here.

Two parts, each over ``--batches`` batches of ``--batch-size`` generated transactions
(the generator and request shape bench_predict.py uses):

- ``http``: a server in its own process, run as the local runtime runs (uvicorn, one
  worker), whose route does only what /predict/batch must do around the scoring: parse
  the body into the route's own request model, validate every transaction with the
  route's own ``TypeAdapter``, derive each prediction id, and answer 10,000 predictions
  of the real shape with orjson. No state, no model, no log.
- ``writes``: the two writes the issue requires of every batch, through the app's own
  fastest paths (``DriverCursor.insert_many``: ``COPY`` on PostgreSQL, multi-row
  inserts on SQLite) on a freshly migrated database: the exactly-once records
  (``online_transactions``) and the prediction log (``predictions``), in one
  transaction each, rows already bound. Wall time and this process's CPU time.

``ceiling_tx_s`` adds the ``http`` wall time to the writes' own CPU time in this
process (the database server's share is assumed to run on the other core, overlapped,
which flatters the ceiling). Run: ``.venv/bin/python bench/bench_batch_floor.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import http_load  # noqa: E402
from bench.scratch import (  # noqa: E402
    add_data_arguments,
    free_port,
    generated,
    scratch_postgres,
)

_PATH = "/floor/batch"
_MODEL = uuid.UUID(int=1)


def _app() -> Any:
    """The route: /predict/batch's handling of the request and the answer, no scoring."""
    from fastapi import FastAPI
    from fastapi.responses import Response

    from functions.api.envelope import ok_json
    from functions.api.routes.predict import _TRANSACTIONS, BatchRequest, _transaction
    from shared.services.predictions import prediction_id

    app = FastAPI()

    def floor(body: Any) -> Response:
        items = [
            _transaction(t) for t in _TRANSACTIONS.validate_python(body.transactions)
        ]
        predictions = [
            {
                "prediction_id": str(prediction_id(_MODEL, str(t["transaction_id"]))),
                "transaction_id": t["transaction_id"],
                "fraud_score": 0.01,
                "is_fraud": False,
                "confidence": 0.98,
                "replayed": False,
            }
            for t in items
        ]
        return ok_json({"count": len(predictions), "predictions": predictions})

    # this module's annotations are strings that FastAPI would resolve in its globals
    floor.__annotations__ = {"body": BatchRequest, "return": Response}
    app.post(_PATH)(floor)
    return app


def _serve(port: int) -> None:
    import uvicorn

    uvicorn.run(_app(), host="127.0.0.1", port=port, log_config=None, access_log=False)


@contextmanager
def _server() -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port)],
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise SystemExit("the floor server did not start")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def _batches(args: argparse.Namespace) -> list[list[dict[str, Any]]]:
    from tests.support.serving import as_request

    df = generated(args).iloc[: args.batches * args.batch_size]
    txns = []
    for row in df.to_dict("records"):
        txn = as_request(row)
        txn.pop("fraud_type", None)
        txn.pop("is_fraud", None)
        txns.append(txn)
    size = args.batch_size
    return [txns[i : i + size] for i in range(0, len(txns), size)]


def _summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
    }


def measure_http(batches: list[list[dict[str, Any]]]) -> dict[str, Any]:
    import orjson

    reqs = [
        http_load.encode_post(_PATH, orjson.dumps({"transactions": b})) for b in batches
    ]
    with _server() as port:
        http_load.sequential(port, reqs[:1])  # the first request imports and warms
        res = http_load.sequential(port, reqs)
    if res.ok != len(reqs):
        raise SystemExit(
            f"floor server answered {res.ok} of {len(reqs)}: {res.error_samples}"
        )
    per_batch = [s * 1000 for s in res.latencies]
    return {
        "part": "http",
        "request_mb": round(len(reqs[0]) / 1e6, 2),
        "per_batch_ms": _summary(per_batch),
        "transactions_per_s": round(sum(map(len, batches)) / res.wall_s),
    }


def _rows(batch: list[dict[str, Any]], names: list[str]) -> tuple[list[Any], ...]:
    """The records and log rows of one batch, as the app builds them (unbound), with
    the default feature set's names."""
    now = datetime.now(UTC)
    features = [0.25 * j for j in range(len(names))]
    records, log = [], []
    for t in batch:
        tid = str(t["transaction_id"])
        keys = [["user", t["user_id"]], ["merchant", t.get("merchant_id")]]
        records.append(
            ("bench", tid, datetime.fromisoformat(t["timestamp"]), keys, features, now)
        )
        log.append(
            (
                uuid.uuid4(),
                now,
                None,
                tid,
                dict(zip(names, features, strict=True)),
                0.01,
                False,
                0.05,
            )  # fmt: skip
        )
    return records, log


_RECORD_COLUMNS = (
    "namespace",
    "transaction_id",
    "event_time",
    "entity_keys",
    "features",
    "created_at",
)
_LOG_COLUMNS = (
    "id",
    "created_at",
    "model_id",
    "transaction_id",
    "input_features",
    "fraud_score",
    "is_fraud",
    "latency_ms",
)


def _write_all(
    url: str, batches: list[list[dict[str, Any]]], names: list[str]
) -> dict[str, Any]:
    from sqlalchemy import Table

    from shared.db.driver import DriverCursor, DriverSQL
    from shared.db.models import OnlineTransaction, Prediction
    from shared.db.session import Database

    db = Database(url)
    txn = cast(Table, OnlineTransaction.__table__)
    pred = cast(Table, Prediction.__table__)
    sql = DriverSQL(db.engine.dialect, (txn, pred))
    walls, cpus = [], []
    by_table: dict[str, list[float]] = {txn.name: [], pred.name: []}
    try:
        for batch in batches:
            records, log = _rows(batch, names)
            bound = []
            for table, columns, rows in (
                (txn, _RECORD_COLUMNS, records),
                (pred, _LOG_COLUMNS, log),
            ):
                binds = [sql.bind(table, c) for c in columns]
                bound.append(
                    (
                        table,
                        columns,
                        [
                            tuple(b(v) for b, v in zip(binds, r, strict=True))
                            for r in rows
                        ],
                    )
                )
            wall0, cpu0 = time.perf_counter(), time.process_time()
            for table, columns, rows in bound:
                cpu = time.process_time()
                with db.engine.begin() as conn:
                    DriverCursor(conn, sql).insert_many(table, columns, rows)
                by_table[table.name].append((time.process_time() - cpu) * 1000)
            walls.append((time.perf_counter() - wall0) * 1000)
            cpus.append((time.process_time() - cpu0) * 1000)
    finally:
        db.dispose()
    return {
        "wall_ms": _summary(walls),
        "cpu_ms": _summary(cpus),
        "cpu_ms_by_table": {
            name: round(statistics.median(v), 1) for name, v in by_table.items()
        },
    }


@contextmanager
def _database(kind: str) -> Iterator[str]:
    from shared.db.migrate import upgrade

    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/floor.db"
            upgrade(url)
            yield url
    else:
        with scratch_postgres("sh_floor") as url:
            upgrade(url)
            yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser, rows=60_000)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve)
        return
    from ml.features import OnlineFeatureEngine

    names = OnlineFeatureEngine().feature_names
    batches = _batches(args)
    http = measure_http(batches)
    print(json.dumps(http), flush=True)
    for kind in args.db.split(","):
        with _database(kind) as url:
            writes = _write_all(url, batches, names)
        floor_ms = http["per_batch_ms"]["median"] + writes["cpu_ms"]["median"]
        print(
            json.dumps(
                {
                    "part": "writes",
                    "db": kind,
                    **writes,
                    "ceiling_tx_s": round(args.batch_size / floor_ms * 1000),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
