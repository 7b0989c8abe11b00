"""A small HTTP/1.1 load generator for the benchmarks (client and server share the cores,
so it is kept cheap): asyncio streams on uvloop, keep-alive connections, request bytes
encoded before the clock starts, answers parsed no further than the status line and
Content-Length (chunked bodies are read too). Measures, asserts nothing.

- :func:`open_loop`: requests at a constant arrival rate whatever the server does;
  latency counts from each request's *scheduled* send time when it went out late, so
  queueing shows (no coordinated omission). The event loop's timers fire up to a
  millisecond late (uvloop here: a median 0.22 ms, p99 0.8 ms, measured), which
  counted the client's own timer as server latency; so the client wakes a
  millisecond early, and a request sent ahead of its time counts from when it was
  sent. ``Result.send_late`` keeps how late each request went out. Idle keep-alive
  connections are reused, new ones opened when all are busy (up to
  ``max_connections``).
- :func:`closed_loop`: ``concurrency`` connections, each sending its next request as
  soon as the previous answer is in, for a fixed time.
- :func:`sequential`: one connection, one request after another.

Used by ``bench/bench_predict.py``; can be imported by other HTTP benchmarks.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


def encode_post(path: str, body: bytes, host: str = "127.0.0.1") -> bytes:
    """The bytes of one keep-alive ``POST path`` with a JSON body."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


def encode_get(path: str, host: str = "127.0.0.1") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode("ascii")


class Connection:
    """One keep-alive HTTP/1.1 connection: write a request, read one answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.closed = False

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send ``raw`` and return (status, body)."""
        self.writer.write(raw)
        reader = self.reader
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lower.index(b"\r\n", at + 17)
            length = int(lower[at + 17 : end])
            body = await reader.readexactly(length) if length else b""
        elif b"\r\ntransfer-encoding: chunked" in lower:
            body = await self._chunked()
        else:  # no framing: the body runs to the end of the connection
            body = await reader.read()
            self.closed = True
        if b"\r\nconnection: close" in lower:
            self.closed = True
        return status, body

    async def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")  # no trailers expected
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size + 2))
            parts[-1] = parts[-1][:-2]

    def close(self) -> None:
        self.closed = True
        self.writer.close()


@dataclass
class Result:
    """What a run saw. Latencies in seconds, in completion order."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int | str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    client_cpu_s: float = 0.0
    connections_opened: int = 0
    stale_retries: int = 0
    """Requests re-sent on a new connection because the server had closed the idle
    keep-alive one (uvicorn closes them after 5 s idle) before reading them."""
    sent: int = 0
    send_late: list[float] = field(default_factory=list)
    """Open loop: seconds each request went out after its scheduled time (negative:
    ahead of it)."""
    bodies: list[bytes] = field(default_factory=list)
    """Answers kept when ``keep`` says so (for the caller to inspect)."""

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if s == 200)

    @property
    def errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if s != 200)

    def note(self, status: int | str, body: bytes | str) -> None:
        self.statuses[status] += 1
        if status != 200 and len(self.error_samples) < 5:
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            self.error_samples.append(f"{status}: {text[:300]}")


async def exchange(
    conn: Connection | None, raw: bytes, host: str, port: int, res: Result
) -> tuple[Connection, int, bytes]:
    """Send ``raw`` on ``conn`` (a new connection when None or closed). When a reused
    connection turns out closed by the server before it read anything (EOF, no byte
    of an answer), the request was not processed: send it again on a new one."""
    reused = conn is not None and not conn.closed and not conn.reader.at_eof()
    if not reused:
        if conn is not None:
            conn.close()
        conn = await Connection.open(host, port)
        res.connections_opened += 1
    assert conn is not None
    try:
        status, body = await conn.request(raw)
    except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
        partial = getattr(exc, "partial", b"")
        if not reused or partial:
            conn.close()
            raise
        conn.close()
        res.stale_retries += 1
        conn = await Connection.open(host, port)
        res.connections_opened += 1
        status, body = await conn.request(raw)
    return conn, status, body


async def timed_exchange(
    conn: Connection | None,
    raw: bytes,
    host: str,
    port: int,
    res: Result,
    *,
    started: float,
    timeout: float,
    keep: Keep | None,
) -> Connection | None:
    """``exchange`` with its bookkeeping: the latency from ``started`` (the send time,
    or the scheduled time in the open loop), the status, the kept body. A failed
    request is noted, its connection closed, and None returned."""
    try:
        async with asyncio.timeout(timeout):
            conn, status, body = await exchange(conn, raw, host, port, res)
    except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
        res.note(type(exc).__name__, repr(exc))
        if conn is not None:
            conn.close()
        return None
    res.latencies.append(time.perf_counter() - started)
    res.note(status, body)
    if keep is not None and keep(status, body):
        res.bodies.append(body)
    return conn


def cpu_self() -> float:
    """User + system CPU seconds of this process (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on uvloop (the cheaper loop), or asyncio's own when absent."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


Keep = Callable[[int, bytes], bool]
_TIMER_SLACK = 0.001  # how late the event loop's timers may fire


async def _open_loop(
    host: str,
    port: int,
    requests: Sequence[bytes],
    rate: float,
    max_connections: int,
    warm_connections: int,
    timeout: float,
    keep: Keep | None,
) -> Result:
    res = Result()
    idle: list[Connection] = []
    for _ in range(warm_connections):
        idle.append(await Connection.open(host, port))
        res.connections_opened += 1
    slots = asyncio.Semaphore(max_connections)
    loop = asyncio.get_running_loop()
    clock = time.perf_counter
    last_done = 0.0

    async def one(raw: bytes, scheduled: float) -> None:
        nonlocal last_done
        async with slots:
            sent = clock()
            res.send_late.append(sent - scheduled)
            conn = None
            while idle and conn is None:  # most recently used first
                conn = idle.pop()
                if conn.reader.at_eof():  # closed by the server while idle
                    conn.close()
                    conn = None
            conn = await timed_exchange(
                conn,
                raw,
                host,
                port,
                res,
                started=min(sent, scheduled),
                timeout=timeout,
                keep=keep,
            )
            if conn is None:
                return
            last_done = clock()
            if conn.closed:
                conn.close()
            else:
                idle.append(conn)

    cpu0 = cpu_self()
    start = clock()
    tasks = []
    interval = 1.0 / rate
    for i, raw in enumerate(requests):
        scheduled = start + i * interval
        delay = scheduled - clock() - _TIMER_SLACK
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(one(raw, scheduled)))
        res.sent += 1
    await asyncio.gather(*tasks)
    res.wall_s = (last_done or clock()) - start
    res.client_cpu_s = cpu_self() - cpu0
    for conn in idle:
        conn.close()
    return res


def open_loop(
    port: int,
    requests: Sequence[bytes],
    rate: float,
    *,
    host: str = "127.0.0.1",
    max_connections: int = 512,
    warm_connections: int = 8,
    timeout: float = 60.0,
    keep: Keep | None = None,
) -> Result:
    """Send ``requests`` at ``rate`` per second, each at its scheduled time."""
    return run(
        _open_loop(
            host,
            port,
            requests,
            rate,
            max_connections,
            warm_connections,
            timeout,
            keep,
        )
    )


async def _closed_loop(
    host: str,
    port: int,
    requests: Iterable[bytes],
    concurrency: int,
    seconds: float,
    timeout: float,
    keep: Keep | None,
) -> Result:
    res = Result()
    source: Iterator[bytes] = iter(requests)
    conns = [await Connection.open(host, port) for _ in range(concurrency)]
    res.connections_opened = concurrency
    clock = time.perf_counter
    deadline = 0.0

    async def worker(conn: Connection) -> None:
        while clock() < deadline:
            raw = next(source, None)
            if raw is None:
                break
            res.sent += 1
            done = await timed_exchange(
                conn, raw, host, port, res, started=clock(), timeout=timeout, keep=keep
            )
            conn = done or conn  # a failed one is closed: exchange opens a new one
        conn.close()

    cpu0 = cpu_self()
    start = clock()
    deadline = start + seconds
    await asyncio.gather(*(worker(c) for c in conns))
    res.wall_s = clock() - start
    res.client_cpu_s = cpu_self() - cpu0
    return res


def closed_loop(
    port: int,
    requests: Iterable[bytes],
    concurrency: int,
    seconds: float,
    *,
    host: str = "127.0.0.1",
    timeout: float = 60.0,
    keep: Keep | None = None,
) -> Result:
    """``concurrency`` keep-alive connections sending back to back for ``seconds``
    (or until ``requests`` runs out); each request is taken from ``requests`` once."""
    return run(_closed_loop(host, port, requests, concurrency, seconds, timeout, keep))


async def _sequential(
    host: str,
    port: int,
    requests: Iterable[bytes],
    timeout: float,
    keep: Keep | None,
) -> Result:
    res = Result()
    conn = await Connection.open(host, port)
    res.connections_opened = 1
    clock = time.perf_counter
    cpu0 = cpu_self()
    start = clock()
    for raw in requests:
        res.sent += 1
        done = await timed_exchange(
            conn, raw, host, port, res, started=clock(), timeout=timeout, keep=keep
        )
        conn = done or conn  # a failed one is closed: exchange opens a new one
    res.wall_s = clock() - start
    res.client_cpu_s = cpu_self() - cpu0
    conn.close()
    return res


def sequential(
    port: int,
    requests: Iterable[bytes],
    *,
    host: str = "127.0.0.1",
    timeout: float = 300.0,
    keep: Keep | None = None,
) -> Result:
    """One connection, one request at a time."""
    return run(_sequential(host, port, requests, timeout, keep))


def percentiles_ms(latencies: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99 and max of latencies given in seconds, in milliseconds."""
    if not latencies:
        return {}
    ordered = sorted(latencies)
    n = len(ordered)

    def at(q: float) -> float:
        return round(ordered[min(n - 1, int(q * n))] * 1000, 2)

    return {
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "max": round(ordered[-1] * 1000, 2),
    }
