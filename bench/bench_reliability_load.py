"""Reliability under steady load: /predict at a fixed rate for a long time, with a
PASS/FAIL line per criterion.

Per database (``--backend sqlite|postgresql|both``): starts the local runtime
(``python -m local``) on a scratch data dir (SQLite in it, or a scratch PostgreSQL
database on 127.0.0.1:5432, created and dropped here), puts an XGBoost model in
production through the API (``bench_predict.put_in_production``) trained on the first
``--history`` generated rows, then plays the rows after them, in time order and each
transaction id once, open loop (``bench/http_load.py``: each request at its scheduled
time, so a slow server shows as latency, not as a lower rate):

1. warm-up: ``--warmup`` seconds at ``--rate``; then wait until the server has settled
   (prediction log drained, online cache warm; ``bench_predict.wait_settled``) and take
   the server's RSS (the process and its ``--workers`` children) as the start figure;
2. the run: ``--duration`` seconds at ``--rate``, the RSS sampled every few seconds;
   the end figure right after the last answer;
3. the log check, with the server still running: every transaction id answered 200
   (warm-up included) must have its row in ``predictions`` now, since an answer is
   only sent once its row is committed; then the server is stopped (SIGINT) and the
   table counted again, for reference. (A log row written just after its answer
   shows as missing here only when the count comes before the writer's next batch;
   ``tests/local/test_kill_during_load.py`` kills the server to tell them apart.)

Criteria: no answer but 200 (and no transport error); every acknowledged prediction
logged; RSS growth from start to end under ``--max-rss-growth`` (5 %). The exit code
is 1 when any criterion failed. The data set is sized so that the live traffic meets
entities the history already has (``--users``, ``--merchants``), and the history
spans more than the longest feature window (30 days: 150,000 of about 276,000 rows
over 120 days), so the online state starts at its steady size: RSS that grows then is
a leak, not the windows filling up.

    .venv/bin/python bench/bench_reliability_load.py [--backend both] [--rate 200]
        [--duration 600] [--warmup 30] [--history 150000] [--workers 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import http_load  # noqa: E402  (bench/ is on the path only from here on)
from bench_predict import (  # noqa: E402
    Feed,
    Server,
    _proc_stats,
    predict_requests,
    put_in_production,
    scratch_database,
    wait_settled,
)

PAGE = os.sysconf("SC_PAGE_SIZE")
RSS_EVERY_S = 5.0


# -- the server's memory ---------------------------------------------------------------


def rss_bytes(root: int) -> int:
    """Resident memory of process ``root`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for pid, _, fields in _proc_stats():
        children.setdefault(int(fields[1]), []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError):
            pass  # exited meanwhile
    return total


class RssSampler(threading.Thread):
    """RSS of the server every ``RSS_EVERY_S`` seconds while the run lasts."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[int] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(RSS_EVERY_S):
            self.samples.append(rss_bytes(self.pid))


def mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


# -- what the clients were told --------------------------------------------------------


@dataclass
class Acks:
    """The transaction id of every 200 (a new prediction) and of every replay."""

    new: list[str] = field(default_factory=list)
    replayed: int = 0

    def keep(self, status: int, body: bytes) -> bool:
        """``http_load``'s ``keep`` hook: note the answer, keep no body."""
        if status == 200:
            data = orjson.loads(body)["data"]
            if data["replayed"]:
                self.replayed += 1
            else:
                self.new.append(data["transaction_id"])
        return False


def logged_ids(database_url: str) -> tuple[set[str], int]:
    """(distinct transaction ids in ``predictions``, rows)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            tids = conn.execute(text("SELECT transaction_id FROM predictions")).all()
    finally:
        engine.dispose()
    return {str(t) for (t,) in tids}, len(tids)


# -- one backend -----------------------------------------------------------------------


def run_backend(kind: str, df: Any, args: argparse.Namespace) -> list[bool]:
    """Everything above on one database; returns the criteria's outcomes."""
    data_dir = Path(tempfile.mkdtemp(prefix="sh_bench_reliability_"))
    try:
        with scratch_database(kind, data_dir) as (count_url, server_url):
            server = Server(data_dir, server_url, args.workers)
            try:
                return _run(kind, server, df, count_url, args)
            finally:  # stopped before its database is dropped
                server.stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _run(
    kind: str, server: Server, df: Any, count_url: str, args: argparse.Namespace
) -> list[bool]:
    say = _printer(kind)
    server.start()
    setup = put_in_production(server.port, df.iloc[: args.history])
    feed = Feed(df.iloc[args.history :])
    say(f"setup: {setup}, {feed.left:,} live transactions")
    assert server.proc is not None
    pid = server.proc.pid
    acks = Acks()

    warmup_s = min(args.warmup, args.duration)
    warm = _load(server, feed, args.rate, warmup_s, acks)
    settle_s = wait_settled(server.port, server.workers)
    rss_start = rss_bytes(pid)
    say(
        f"warm-up: {warm.sent:,} requests in {warmup_s:g} s, {warm.errors} errors, "
        f"settled after {settle_s} s; server RSS {mib(rss_start)}"
    )

    sampler = RssSampler(pid)
    sampler.start()
    load_before = os.getloadavg()[0]
    res = _load(server, feed, args.rate, args.duration, acks)
    rss_end = rss_bytes(pid)
    sampler.done.set()
    say(
        f"machine load average (1 min) {load_before:.1f} before the run, "
        f"{os.getloadavg()[0]:.1f} after it, on {os.cpu_count()} cores "
        "(other jobs skew the latencies)"
    )
    lat = http_load.percentiles_ms(res.latencies)
    late = http_load.percentiles_ms(res.send_late)
    say(
        f"run: {res.sent:,} requests sent at {args.rate:g}/s for {args.duration:g} s "
        f"(achieved {res.ok / max(res.wall_s, 1e-9):.1f}/s over {res.wall_s:.1f} s), "
        f"{res.ok:,} answered 200"
    )
    statuses = {str(k): v for k, v in (res.statuses + warm.statuses).items()}
    say(f"answers by status (warm-up and run): {statuses}")
    for sample in (warm.error_samples + res.error_samples)[:3]:
        say(f"  error sample: {sample}")
    say(
        f"latency (client, from the scheduled send time): p50 {lat.get('p50')} ms, "
        f"p99 {lat.get('p99')} ms, max {lat.get('max')} ms; the client sent late by "
        f"p99 {late.get('p99')} ms"
    )

    logged, rows = logged_ids(count_url)
    missing = sorted(set(acks.new) - logged)
    say(
        f"predictions logged while the server runs: {len(set(acks.new) & logged):,} "
        f"of {len(acks.new):,} acknowledged ({len(missing):,} missing"
        f"{', e.g. ' + ', '.join(missing[:3]) if missing else ''}); {rows:,} rows, "
        f"{acks.replayed} replayed answers"
    )
    stopped = server.stop()
    logged_after, rows_after = logged_ids(count_url)
    say(
        f"after a graceful stop ({stopped}): "
        f"{len(set(acks.new) & logged_after):,} of {len(acks.new):,} logged, "
        f"{rows_after:,} rows"
    )

    samples = ", ".join(mib(s) for s in _spread(sampler.samples, 8))
    growth = (rss_end - rss_start) / rss_start * 100
    say(
        f"server RSS: start {mib(rss_start)}, end {mib(rss_end)}, growth "
        f"{growth:+.2f} %, peak {mib(max(sampler.samples + [rss_end]))}; "
        f"during the run: {samples}"
    )
    log = server.log_summary()
    say(f"server log (WARNING and up): {log.get('by_level')} {log.get('exceptions')}")

    errors = res.errors + warm.errors
    return [
        _criterion(say, "zero errors", errors == 0, f"{errors} non-200 answers"),
        _criterion(
            say,
            "every acknowledged prediction logged",
            not missing and bool(acks.new),
            f"{len(missing)} of {len(acks.new)} missing",
        ),
        _criterion(
            say,
            f"RSS growth < {args.max_rss_growth:g} %",
            growth < args.max_rss_growth,
            f"{growth:+.2f} %",
        ),
    ]


def _load(
    server: Server, feed: Feed, rate: float, seconds: float, acks: Acks
) -> http_load.Result:
    n = int(rate * seconds)
    if feed.left < n:
        raise SystemExit(f"{feed.left} live rows left, {n} needed")
    return http_load.open_loop(
        server.port, predict_requests(feed.take(n)), rate, keep=acks.keep
    )


def _spread(values: Sequence[int], n: int) -> list[int]:
    """Up to ``n`` values evenly spread over ``values``, the last one included."""
    if len(values) <= n:
        return list(values)
    step = (len(values) - 1) / (n - 1)
    return [values[round(i * step)] for i in range(n)]


def _printer(kind: str) -> Any:
    def say(line: str) -> None:
        print(f"[{kind}] {line}", flush=True)

    return say


def _criterion(say: Any, name: str, passed: bool, figure: str) -> bool:
    say(f"{'PASS' if passed else 'FAIL'}: {name} ({figure})")
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backend", choices=("sqlite", "postgresql", "both"), default="both"
    )
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds")
    parser.add_argument("--max-rss-growth", type=float, default=5.0, help="percent")
    parser.add_argument("--history", type=int, default=150_000, help="training rows")
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--merchants", type=int, default=200)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    args = parser.parse_args()

    from scratch import generated

    live = int(args.rate * (min(args.warmup, args.duration) + args.duration)) + 1
    args.rows = args.history + live
    t0 = time.perf_counter()
    df = generated(args)
    print(f"generated {len(df):,} rows in {time.perf_counter() - t0:.1f} s", flush=True)
    kinds = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    outcomes = {kind: run_backend(kind, df, args) for kind in kinds}
    for kind, passed in outcomes.items():
        print(f"[{kind}] {'PASS' if all(passed) else 'FAIL'} overall", flush=True)
    return 0 if all(all(p) for p in outcomes.values()) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the server was stopped and its data removed on the way
        print("interrupted", file=sys.stderr)
        sys.exit(130)
