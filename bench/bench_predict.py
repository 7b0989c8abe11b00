"""Inference benchmark over HTTP: prints figures, asserts nothing.

Starts the local runtime (``python -m local``) as a subprocess on a scratch data dir,
per database: a SQLite file in that dir, or a scratch PostgreSQL database
(127.0.0.1:5432, user postgres; created and dropped here). Generates transactions,
uploads all but the last ``--live`` rows, computes features, trains XGBoost
(n_estimators 200, max_depth 6), promotes it and waits for the online backfill, all
through the API. Then plays the live rows, in time order and each transaction id once,
against the server with a small keep-alive asyncio client (``bench/http_load.py``):

- the timed scenarios start once the server has settled: its prediction log written
  out and its online cache warm-up over (``settle_s``; ``/health`` reports both);
- predict_200rps: open loop, constant arrival at ``--rate``/s for ``--seconds``;
  latency from each request's scheduled send time, or from its send when the client
  sent it early (queueing counts; ``send_late_ms``: how late requests went out);
- predict_max: closed loop, ``--concurrency`` connections for ``--seconds``; then the
  server is stopped with SIGINT, the ``predictions``
  table is counted against the OK answers so far, and the server restarted;
- batch: ``--batches`` sequential POSTs of ``--batch-size`` transactions;
- explain_warm: once the server has settled again after the batches (``drain_s``),
  20 warm-up, then ``--explain`` sequential /predict/explain calls;
- cold_start: 3 x (stop, spawn, poll /predict every 5 ms until the first 200).

Each scenario prints one JSON line: client latencies in ms (p50/p90/p99/max, measured
by the client), requests, errors, achieved rate, the server's own ``latency_ms``, and
the CPU used over the scenario by the server process, this process (the load
generator), PostgreSQL (if used), and anything else on the machine (``other_cores``:
other jobs skew the figures). A final line counts the logged predictions again.

    .venv/bin/python bench/bench_predict.py [--rows 200000] [--live 120000]
        [--seconds 20] [--concurrency 16] [--rate 200] [--batches 5]
        [--batch-size 10000] [--explain 300] [--db sqlite[,postgresql]]
        [--workers 1]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import http_load  # noqa: E402  (bench/ is on the path only from here on)
from scratch import (  # noqa: E402
    add_data_arguments,
    free_port,
    generated,
    scratch_postgres,
)

PY = sys.executable
API = "/api/v1"
HYPERPARAMETERS = {"n_estimators": 200, "max_depth": 6}
WARMUP = 20
COLD_REPEATS = 3
CLK_TCK = os.sysconf("SC_CLK_TCK")


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


# -- the server process ----------------------------------------------------------------


class Server:
    """``python -m local`` on one data dir; restartable; stderr kept in a file."""

    def __init__(
        self, data_dir: Path, database_url: str | None, workers: int = 1
    ) -> None:
        self.data_dir = data_dir
        self.workers = workers
        self.log_path = data_dir / "server.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SH_")}
        env |= {
            "SH_DATA_DIR": str(data_dir),
            "SH_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        if database_url:
            env["SH_DATABASE_URL"] = database_url
        self.env = env
        self.postgres = bool(database_url and database_url.startswith("postgresql"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0

    def spawn(self) -> float:
        """Start the process; returns the perf_counter just before Popen."""
        assert self.proc is None
        self.port = free_port()
        self.starts += 1
        with self.log_path.open("ab") as logf:
            logf.write(f"---- start #{self.starts} port {self.port}\n".encode())
            logf.flush()
            t0 = time.perf_counter()
            command = [PY, "-m", "local", "--port", str(self.port)]
            if self.workers > 1:
                command += ["--workers", str(self.workers)]
            self.proc = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # our Ctrl-C reaches it through stop() only
            )
        return t0

    def wait_healthy(self, timeout: float = 180.0) -> float:
        t0 = time.perf_counter()
        deadline = t0 + timeout
        while time.perf_counter() < deadline:
            self._check_alive()
            try:
                status, _ = http_get(self.port, f"{API}/health", timeout=5)
                if status == 200:
                    return time.perf_counter() - t0
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not healthy after {timeout} s\n{self.tail()}")

    def start(self) -> float:
        t0 = self.spawn()
        self.wait_healthy()
        return time.perf_counter() - t0

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            code = self.proc.returncode
            self.proc = None
            raise RuntimeError(f"server exited with {code}\n{self.tail()}")

    def cpu_s(self) -> float:
        """User + system CPU seconds of the server: its process and, with
        ``--workers``, its worker processes (all threads)."""
        if self.proc is None:
            return 0.0
        return sum(proc_cpu(self.proc.pid, tree=True).values())

    def stop(self, timeout: float = 120.0) -> dict[str, Any]:
        """SIGINT (uvicorn's graceful shutdown, which flushes the prediction log), wait
        for the exit; SIGKILL only past ``timeout``."""
        if self.proc is None:
            return {}
        proc, self.proc = self.proc, None
        t0 = time.perf_counter()
        killed = False
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                killed = True
        return {
            "exit_code": proc.returncode,
            "stop_s": round(time.perf_counter() - t0, 2),
            "killed": killed,
        }

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def log_summary(self) -> dict[str, Any]:
        """What the server wrote to stderr (it logs at WARNING and above): lines by
        level, the exceptions of tracebacks, and the first lines."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return {}
        lines = [ln for ln in text.splitlines() if not ln.startswith("---- start")]
        levels: dict[str, int] = {}
        exceptions: dict[str, int] = {}
        for ln in lines:
            level = "other"
            try:
                rec = json.loads(ln)
                level = str(rec.get("level") or rec.get("levelname") or "other")
            except ValueError:
                if ln.startswith("Traceback"):
                    level = "traceback"
                elif (
                    ln[:1].isalpha()
                    and ":" not in ln[:1]
                    and ("Error" in ln or "Exception" in ln or "Interrupt" in ln)
                ):
                    exceptions[ln[:200]] = exceptions.get(ln[:200], 0) + 1
            levels[level] = levels.get(level, 0) + 1
        return {
            "lines": len(lines),
            "by_level": levels,
            "exceptions": exceptions,
            "first_lines": [ln[:400] for ln in lines[:12]],
        }


def http_get(port: int, path: str, timeout: float = 10) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# -- setup through the API -------------------------------------------------------------


def wait_settled(port: int, workers: int = 1, timeout: float = 300.0) -> float:
    """Seconds until the server is in its steady state: its prediction log has nothing
    pending (a latency scenario does not share the CPU with writing out the previous
    scenario's backlog) and no online cache is warming (a deployed worker warms once,
    after it loads a model; the cold-start scenario measures a worker that has not).
    A worker that has no model loaded yet is not settled: its warm-up is still to
    come (``warm_up`` sends every worker requests first). Each worker answers for
    itself (a new connection per poll reaches any of them): settled when the last
    answer of each of ``workers`` workers says so, three settled answers in a row."""
    t0 = time.perf_counter()
    settled = 0
    quiet_by_pid: dict[int, bool] = {}
    while time.perf_counter() - t0 < timeout:
        status, body = http_get(port, f"{API}/health")
        worker = orjson.loads(body)["data"]["worker"]
        log = worker.get("prediction_log") or {}
        caches = worker.get("online_cache") or ()
        warming = not caches or any(c["warming"] for c in caches)
        quiet = status == 200 and log.get("pending", 0) == 0 and not warming
        quiet_by_pid[worker["pid"]] = quiet
        settled = settled + 1 if quiet else 0
        if settled >= 3 and len(quiet_by_pid) >= workers and all(quiet_by_pid.values()):
            return round(time.perf_counter() - t0, 2)
        time.sleep(0.2)
    raise RuntimeError(
        "the server did not settle (prediction log, cache warm-up, or a worker that "
        f"never loaded the model: {quiet_by_pid})"
    )


def _wait_job(client: Any, url: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        resp = client.get(url)
        resp.raise_for_status()
        seen = resp.json()["data"]
        if seen["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            if seen["status"] != "COMPLETED":
                raise RuntimeError(f"job {url} ended {seen}")
            return seen
        time.sleep(0.2)
    raise RuntimeError(f"job {url} not finished after {timeout} s: {seen}")


def put_in_production(port: int, history: Any) -> dict[str, Any]:
    """Upload, features, training, promotion; returns timings and the model id."""
    import httpx

    timings: dict[str, Any] = {}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}{API}", timeout=600) as c:
        t0 = time.perf_counter()
        buf = io.BytesIO()
        history.to_parquet(buf, index=False)
        resp = c.post(
            "/datasets",
            data={"name": "bench-predict"},
            files={"file": ("tx.parquet", buf.getvalue(), "application/octet-stream")},
        )
        if resp.status_code != 201:
            raise RuntimeError(f"upload: {resp.status_code} {resp.text}")
        dataset_id = resp.json()["data"]["id"]
        timings["upload_s"] = round(time.perf_counter() - t0, 1)

        t0 = time.perf_counter()
        job = c.post("/features/compute", json={"dataset_id": dataset_id})
        job.raise_for_status()
        done = _wait_job(c, f"/features/jobs/{job.json()['data']['job_id']}", 1800)
        fs_id = done["feature_set_id"]
        timings["features_s"] = round(time.perf_counter() - t0, 1)

        t0 = time.perf_counter()
        body = {
            "name": "bench-predict",
            "feature_set_id": fs_id,
            "algorithm": "xgboost",
            "hyperparameters": HYPERPARAMETERS,
        }
        resp = c.post("/training/jobs", json=body)
        if resp.status_code != 202:
            raise RuntimeError(f"training: {resp.status_code} {resp.text}")
        done = _wait_job(c, f"/training/jobs/{resp.json()['data']['job_id']}", 3600)
        model_id = done["model_id"]
        timings["training_s"] = round(time.perf_counter() - t0, 1)

        t0 = time.perf_counter()
        resp = c.post(
            f"/models/{model_id}/promote",
            json={"stage": "production", "reason": "bench"},
        )
        if resp.status_code != 200:
            raise RuntimeError(f"promote: {resp.status_code} {resp.text}")
        backfill = resp.json()["data"]["online_backfill_job_id"]
        _wait_job(c, f"/jobs/{backfill}", 1800)
        timings["promote_backfill_s"] = round(time.perf_counter() - t0, 1)
        timings["model_id"] = model_id
    return timings


# -- live transactions -----------------------------------------------------------------


class Feed:
    """The live transactions in time order, each handed out once."""

    def __init__(self, live: Any) -> None:
        from tests.support.serving import as_request

        self.items: list[dict[str, Any]] = []
        for row in live.to_dict("records"):
            txn = as_request(row)
            txn.pop("fraud_type", None)  # the generator's label detail
            self.items.append(txn)
        self.pos = 0

    @property
    def left(self) -> int:
        return len(self.items) - self.pos

    def peek(self, n: int) -> list[dict[str, Any]]:
        return self.items[self.pos : self.pos + n]

    def take(self, n: int) -> list[dict[str, Any]]:
        out = self.peek(n)
        self.pos += len(out)
        return out

    def skip(self, n: int) -> None:
        self.pos += n


def predict_requests(
    txns: Sequence[dict[str, Any]], path: str = "/predict"
) -> list[bytes]:
    extra = {"top_k": 5} if path.endswith("explain") else {}
    return [
        http_load.encode_post(f"{API}{path}", orjson.dumps({"transaction": t} | extra))
        for t in txns
    ]


class Ledger:
    """Predictions the server said it made (OK, not a replay): what the log must hold."""

    def __init__(self) -> None:
        self.expected = 0
        self.replayed = 0

    def singles(self, bodies: Sequence[bytes]) -> list[float]:
        """Count OK single answers; return their server-side latency_ms."""
        server_ms = []
        for body in bodies:
            data = orjson.loads(body)["data"]
            if data["replayed"]:
                self.replayed += 1
            else:
                self.expected += 1
            server_ms.append(float(data["latency_ms"]))
        return server_ms

    def batch(self, body: bytes) -> None:
        self.expected += body.count(b'"replayed":false')
        self.replayed += body.count(b'"replayed":true')


def count_log(database_url: str) -> dict[str, Any]:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows, distinct = conn.execute(
                text("SELECT count(*), count(DISTINCT transaction_id) FROM predictions")
            ).one()
    finally:
        engine.dispose()
    return {"logged_rows": rows, "distinct_transaction_ids": distinct}


def spool_state(data_dir: Path) -> dict[str, Any]:
    spool = data_dir / "prediction-spool"
    if not spool.exists():
        return {"spool_files": 0}
    files = [p for p in spool.rglob("*") if p.is_file()]
    lines = sum(p.read_bytes().count(b"\n") for p in files)
    return {"spool_files": len(files), "spool_lines": lines}


# -- CPU accounting --------------------------------------------------------------------


def machine_busy_s() -> float:
    """CPU seconds all cores spent busy (not idle, not iowait) since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK


def _proc_stats() -> Iterator[tuple[int, str, list[str]]]:
    """(pid, command name, the stat fields after the name) of every process."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, _, rest = text.partition(" (")[2].rpartition(")")
        yield int(stat.parent.name), name, rest.split()


def proc_cpu(root: int, tree: bool = False) -> dict[int, float]:
    """CPU seconds by pid of process ``root`` and, with ``tree``, its descendants."""
    stats = {pid: fields for pid, _, fields in _proc_stats()}
    pids = {root}
    if tree:
        children: dict[int, list[int]] = {}
        for pid, fields in stats.items():
            children.setdefault(int(fields[1]), []).append(pid)
        todo = [root]
        while todo:
            for child in children.get(todo.pop(), []):
                pids.add(child)
                todo.append(child)
    return {
        pid: (int(stats[pid][11]) + int(stats[pid][12])) / CLK_TCK
        for pid in pids
        if pid in stats
    }


def postgres_cpu() -> dict[int, float]:
    """CPU seconds of every process named postgres on the machine, by pid."""
    return {
        pid: (int(fields[11]) + int(fields[12])) / CLK_TCK
        for pid, name, fields in _proc_stats()
        if name == "postgres"
    }


class Meter:
    """CPU used during one scenario: the server process, the machine as a whole, and
    (PostgreSQL runs) the postgres processes (backends that exited meanwhile are
    missed, so a lower bound)."""

    def __init__(self, server: Server, postgres: bool) -> None:
        self.server = server
        self.postgres = postgres
        self.server0 = server.cpu_s()
        self.machine0 = machine_busy_s()
        self.pg0 = postgres_cpu() if postgres else {}

    def done(self) -> dict[str, float]:
        out = {
            "server_cpu_s": self.server.cpu_s() - self.server0,
            "machine_busy_cpu_s": machine_busy_s() - self.machine0,
        }
        if self.postgres:
            after = postgres_cpu()
            out["postgres_cpu_s"] = sum(
                v - self.pg0.get(pid, 0.0) for pid, v in after.items()
            )
        return out


# -- scenarios -------------------------------------------------------------------------


def _figures(
    name: str, res: http_load.Result, cpu: dict[str, float], n_items: int | None = None
) -> dict[str, Any]:
    n = res.sent
    wall = res.wall_s or float("nan")
    server_cpu = cpu["server_cpu_s"]
    out: dict[str, Any] = {
        "scenario": name,
        "requests": n,
        "ok": res.ok,
        "errors": res.errors,
        "latency_ms": http_load.percentiles_ms(res.latencies),
        "wall_s": round(res.wall_s, 2),
        "achieved_rps": round(res.ok / wall, 1),
        "server_cpu_s": round(server_cpu, 2),
        "server_cores": round(server_cpu / wall, 2),
        "client_cpu_s": round(res.client_cpu_s, 2),
        "client_cores": round(res.client_cpu_s / wall, 3),
        "client_cpu_us_per_request": round(res.client_cpu_s / max(n, 1) * 1e6, 1),
        "machine_busy_cores": round(cpu["machine_busy_cpu_s"] / wall, 2),
        "connections_opened": res.connections_opened,
    }
    if "postgres_cpu_s" in cpu:
        out["postgres_cpu_s"] = round(cpu["postgres_cpu_s"], 2)
        out["postgres_cores"] = round(cpu["postgres_cpu_s"] / wall, 2)
    # whatever else ran on the machine meanwhile (other jobs; kernel work not charged
    # to a process): worth a look before trusting the figures
    other = (
        cpu["machine_busy_cpu_s"]
        - server_cpu
        - res.client_cpu_s
        - cpu.get("postgres_cpu_s", 0.0)
    )
    out["other_cores"] = round(other / wall, 2)
    if n_items is not None:
        out["server_cpu_ms_per_item"] = round(server_cpu / max(n_items, 1) * 1e3, 3)
    else:
        out["server_cpu_ms_per_request"] = round(server_cpu / max(n, 1) * 1e3, 3)
    if res.stale_retries:
        out["stale_keepalive_retries"] = res.stale_retries
    if res.errors:
        out["statuses"] = {str(k): v for k, v in res.statuses.items()}
        out["error_samples"] = res.error_samples
    return out


def _server_ms(values: list[float]) -> dict[str, float]:
    return http_load.percentiles_ms([v / 1000 for v in values])


def _keep_ok(status: int, _body: bytes) -> bool:
    return status == 200


def warm_up(server: Server, feed: Feed, ledger: Ledger) -> dict[str, Any]:
    """``WARMUP`` requests, on four connections per worker so that every worker (the
    kernel spreads connections) loads the model and starts warming its cache."""
    reqs = predict_requests(feed.take(WARMUP))
    parts = min(len(reqs), 4 * server.workers) if server.workers > 1 else 1
    results = [
        http_load.sequential(server.port, reqs[i::parts], keep=_keep_ok)
        for i in range(parts)
    ]
    first = results[0]
    server_ms = [ms for res in results for ms in ledger.singles(res.bodies)]
    return {
        "warmup_requests": sum(res.sent for res in results),
        "warmup_errors": sum(res.errors for res in results),
        "warmup_first_ms": (
            round(first.latencies[0] * 1000, 1) if first.latencies else None
        ),
        "warmup_first_server_ms": server_ms[0] if server_ms else None,
    }


def scenario_open_loop(
    server: Server, feed: Feed, ledger: Ledger, rate: float, seconds: float
) -> dict[str, Any]:
    reqs = predict_requests(feed.take(int(rate * seconds)))
    meter = Meter(server, server.postgres)
    res = http_load.open_loop(server.port, reqs, rate, keep=_keep_ok)
    out = _figures("predict_200rps", res, meter.done())
    out["offered_rps"] = rate
    out["send_late_ms"] = http_load.percentiles_ms(res.send_late)
    out["server_latency_ms"] = _server_ms(ledger.singles(res.bodies))
    return out


def scenario_closed_loop(
    server: Server,
    feed: Feed,
    ledger: Ledger,
    budget: int,
    concurrency: int,
    seconds: float,
) -> dict[str, Any]:
    reqs = predict_requests(feed.peek(budget))
    meter = Meter(server, server.postgres)
    res = http_load.closed_loop(server.port, reqs, concurrency, seconds, keep=_keep_ok)
    feed.skip(res.sent)
    out = _figures("predict_max", res, meter.done())
    out["concurrency"] = concurrency
    out["ran_out_of_rows"] = res.sent >= budget
    out["server_latency_ms"] = _server_ms(ledger.singles(res.bodies))
    return out


def scenario_batch(
    server: Server, feed: Feed, ledger: Ledger, batches: int, size: int
) -> dict[str, Any]:
    reqs = [
        http_load.encode_post(
            f"{API}/predict/batch", orjson.dumps({"transactions": feed.take(size)})
        )
        for _ in range(batches)
    ]
    meter = Meter(server, server.postgres)
    res = http_load.sequential(server.port, reqs, keep=_keep_ok)
    total = size * res.ok
    out = _figures("batch", res, meter.done(), n_items=size * batches)
    server_ms = []
    for body in res.bodies:
        ledger.batch(body)
        server_ms.append(orjson.loads(body)["data"]["latency_ms"])
    out |= {
        "batch_size": size,
        "transactions": total,
        "transactions_per_s": round(total / res.wall_s, 1) if res.wall_s else None,
        "per_batch_ms": [round(v * 1000, 1) for v in res.latencies],
        "per_batch_server_ms": [round(v, 1) for v in server_ms],
        "request_mb": round(len(reqs[0]) / 1e6, 2) if reqs else 0,
    }
    return out


def scenario_explain(
    server: Server, feed: Feed, ledger: Ledger, n: int
) -> dict[str, Any]:
    warm = http_load.sequential(
        server.port,
        predict_requests(feed.take(WARMUP), "/predict/explain"),
        keep=_keep_ok,
    )
    warm_server = ledger.singles(warm.bodies)
    reqs = predict_requests(feed.take(n), "/predict/explain")
    meter = Meter(server, server.postgres)
    res = http_load.sequential(server.port, reqs, keep=_keep_ok)
    out = _figures("explain_warm", res, meter.done())
    out["server_latency_ms"] = _server_ms(ledger.singles(res.bodies))
    out["warmup_errors"] = warm.errors
    out["warmup_first_ms"] = (
        round(warm.latencies[0] * 1000, 1) if warm.latencies else None
    )
    out["warmup_first_server_ms"] = warm_server[0] if warm_server else None
    if res.bodies:
        expl = orjson.loads(res.bodies[-1])["data"]["explanation"]
        out["method"] = expl.get("method")
        out["top_features_returned"] = len(expl.get("top_features", []))
    return out


def _first_predict(server: Server, raw: bytes, t0: float) -> dict[str, Any]:
    """Poll until the first 200 of /predict: a new connection every 5 ms while refused;
    a non-200 answer is retried with the same transaction (a retry is safe)."""
    listen_s = None
    attempts = refused = 0
    others: dict[str, int] = {}
    deadline = time.perf_counter() + 300
    while time.perf_counter() < deadline:
        server._check_alive()
        attempts += 1
        try:
            with socket.create_connection(("127.0.0.1", server.port), 30) as sock:
                if listen_s is None:
                    listen_s = time.perf_counter() - t0
                sock.sendall(raw)
                status, body = _read_answer(sock)
        except ConnectionRefusedError:
            refused += 1
            time.sleep(0.005)
            continue
        if status == 200:
            done = time.perf_counter() - t0
            data = orjson.loads(body)["data"]
            return {
                "spawn_to_first_predict_s": round(done, 3),
                "spawn_to_accept_s": round(listen_s, 3) if listen_s else None,
                "server_first_latency_ms": data["latency_ms"],
                "replayed": data["replayed"],
                "refused_polls": refused,
                "non_200_before": others,
            }
        others[str(status)] = others.get(str(status), 0) + 1
        time.sleep(0.005)
    raise RuntimeError(f"no 200 from /predict after 300 s\n{server.tail()}")


def _read_answer(sock: socket.socket) -> tuple[int, bytes]:
    f = sock.makefile("rb")
    status = int(f.readline().split()[1])
    length = 0
    while (line := f.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, f.read(length)


def scenario_cold_start(
    server: Server, feed: Feed, ledger: Ledger, repeats: int
) -> dict[str, Any]:
    runs = []
    client_cpu0 = http_load.cpu_self()
    for _ in range(repeats):
        server.stop()
        raw = predict_requests(feed.take(1))[0]
        t0 = server.spawn()
        first = _first_predict(server, raw, t0)
        first["server_cpu_s_to_first_predict"] = round(server.cpu_s(), 2)
        if first["replayed"]:
            ledger.replayed += 1
        else:
            ledger.expected += 1
        runs.append(first)
    times = [r["spawn_to_first_predict_s"] for r in runs]
    return {
        "scenario": "cold_start",
        "runs": runs,
        "spawn_to_first_predict_s": times,
        "median_s": round(statistics.median(times), 3),
        "client_cpu_s": round(http_load.cpu_self() - client_cpu0, 2),
    }


def log_check(
    label: str, server: Server, database_url: str, ledger: Ledger
) -> dict[str, Any]:
    """Stop the server (it flushes its log), then count the predictions table."""
    stop = server.stop()
    counted = count_log(database_url)
    return {
        "check": label,
        "ok_responses_new": ledger.expected,
        "ok_responses_replayed": ledger.replayed,
        **counted,
        "missing": ledger.expected - counted["logged_rows"],
        **spool_state(server.data_dir),
        "server_stop": stop,
    }


# -- one database ----------------------------------------------------------------------


@contextmanager
def scratch_database(kind: str, data_dir: Path) -> Iterator[tuple[str, str | None]]:
    """(URL to count rows with, SH_DATABASE_URL for the server or None)."""
    if kind == "sqlite":
        yield f"sqlite:///{data_dir / 'shadow_hubble.db'}", None
        return
    if kind != "postgresql":
        raise SystemExit(f"unknown --db {kind!r} (sqlite, postgresql)")
    with scratch_postgres("sh_bench_predict") as url:
        yield url, url


def run_db(kind: str, df: Any, args: argparse.Namespace) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="sh_bench_predict_"))
    try:
        with scratch_database(kind, data_dir) as (count_url, server_url):
            server = Server(data_dir, server_url, args.workers)
            try:
                _run_server(kind, server, df, count_url, args)
            finally:  # stopped before its database is dropped
                server.stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _run_server(
    kind: str, server: Server, df: Any, count_url: str, args: argparse.Namespace
) -> None:
    started_s = server.start()
    history, live = df.iloc[: -args.live], df.iloc[-args.live :]
    setup = put_in_production(server.port, history)
    t0 = time.perf_counter()
    feed = Feed(live)
    emit(
        {
            "setup": kind,
            "server_start_s": round(started_s, 2),
            "history_rows": len(history),
            "live_rows": len(live),
            **setup,
            "encode_live_s": round(time.perf_counter() - t0, 1),
        }
    )
    _scenarios(kind, server, feed, count_url, args)
    emit({"db": kind, "server_log": server.log_summary()})


def _scenarios(
    kind: str, server: Server, feed: Feed, count_url: str, args: argparse.Namespace
) -> None:
    ledger = Ledger()
    open_n = int(args.rate * args.seconds)
    fixed = 2 * WARMUP + open_n + WARMUP + args.explain + COLD_REPEATS
    spare = feed.left - fixed
    batch_size = max(1, min(args.batch_size, spare // 2 // max(args.batches, 1)))
    budget = spare - batch_size * args.batches
    if spare <= 0 or budget < args.concurrency:
        raise SystemExit(f"--live {feed.left} is too small for these scenarios")

    def show(record: dict[str, Any]) -> None:
        emit({"db": kind, **record})

    warmed = warm_up(server, feed, ledger)
    settle_s = wait_settled(server.port, server.workers)
    show({"scenario": "warmup", **warmed, "settle_s": settle_s})
    show(scenario_open_loop(server, feed, ledger, args.rate, args.seconds))
    show(
        scenario_closed_loop(
            server, feed, ledger, budget, args.concurrency, args.seconds
        )
    )
    show(log_check("after predict_max", server, count_url, ledger))
    restart_s = server.start()
    show(
        {
            "scenario": "restart",
            "restart_to_healthy_s": round(restart_s, 2),
            **warm_up(server, feed, ledger),
            "settle_s": wait_settled(server.port, server.workers),
        }
    )
    show(scenario_batch(server, feed, ledger, args.batches, batch_size))
    drained_s = wait_settled(server.port, server.workers)
    show({**scenario_explain(server, feed, ledger, args.explain), "drain_s": drained_s})
    show(scenario_cold_start(server, feed, ledger, COLD_REPEATS))
    show(log_check("final", server, count_url, ledger))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(parser, rows=200_000, users=20_000, merchants=2_000, days=60)
    parser.add_argument("--live", type=int, default=120_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--explain", type=int, default=300)
    parser.add_argument("--db", default="sqlite")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes (python -m local --workers N); 1: not passed",
    )
    args = parser.parse_args()
    if not 0 < args.live < args.rows:
        raise SystemExit("--live must be between 0 and --rows")

    t0 = time.perf_counter()
    df = generated(args)
    emit({"generated_rows": len(df), "generate_s": round(time.perf_counter() - t0, 1)})
    for kind in args.db.split(","):
        run_db(kind.strip(), df, args)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # everything was stopped and removed on the way out
        print("interrupted", file=sys.stderr)
        sys.exit(130)
