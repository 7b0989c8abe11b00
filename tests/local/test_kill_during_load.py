"""kill -9 of the local server in the middle of concurrent /predict load loses no
acknowledged prediction.

A checkout that got a 200 from /predict has a prediction: after the server is killed
(SIGKILL: no shutdown code runs) and restarted on the same data, every acknowledged
transaction has its row in ``predictions`` (with the prediction id it was answered),
the online state's exactly-once records (``online_transactions``) name exactly the
transactions the log holds, a retry of an acknowledged transaction answers the same
prediction as a replay, and labels by transaction id find every one of them. A replay
of a transaction whose log row is missing (as a server before this guarantee left
them) writes the row.

The kill comes once enough answers are in (a counter, not a clock), while client
threads still have requests in flight; the server runs on SQLite (its file in the
data dir) and on PostgreSQL.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support import services
from tests.support.local_server import API, LocalServer
from tests.support.serving import as_request, generated, serve

HISTORY = 2500  # rows the model is trained on
LIVE = 2000  # live transactions available to the load (each sent at most once)
CLIENTS = 8  # concurrent client threads, one keep-alive connection each
KILL_AFTER = 300  # SIGKILL once this many 200s came back
DAMAGED = 5  # acknowledged predictions whose log rows are removed before the restart


@dataclass
class Load:
    """What the clients saw: the prediction id of every acknowledged transaction."""

    acked: dict[str, str] = field(default_factory=dict)
    sent: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    enough: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)


def _client(port: int, feed: Iterator[dict[str, Any]], load: Load) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"}
    try:
        while not load.stop.is_set():
            with load.lock:
                txn = next(feed, None)
                if txn is None:
                    return
                load.sent.add(txn["transaction_id"])
            try:
                conn.request(
                    "POST",
                    f"{API}/predict",
                    json.dumps({"transaction": txn}),
                    headers,
                )
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException):
                with load.lock:
                    load.transport_errors += 1
                return  # the server is gone (or the answer was cut): stop this client
            with load.lock:
                load.statuses[resp.status] += 1
                if resp.status != 200:  # not what this test is about: stop the load
                    load.error_samples.append(body[:500].decode(errors="replace"))
                    load.stop.set()
                    return
                data = json.loads(body)["data"]
                load.acked[data["transaction_id"]] = data["prediction_id"]
                if len(load.acked) >= KILL_AFTER:
                    load.enough.set()
    finally:
        conn.close()


def _kill_under_load(server: LocalServer, live: list[dict[str, Any]]) -> Load:
    """Drive ``CLIENTS`` concurrent clients; SIGKILL the server at ``KILL_AFTER``
    acknowledged predictions; return once every client has stopped."""
    load = Load()
    feed = iter(live)
    threads = [
        threading.Thread(target=_client, args=(server.port, feed, load), daemon=True)
        for _ in range(CLIENTS)
    ]
    for t in threads:
        t.start()
    try:
        while not load.enough.wait(0.05):
            if not any(t.is_alive() for t in threads):
                raise AssertionError(
                    f"the load ended with {len(load.acked)} answers, "
                    f"{dict(load.statuses)}: {load.error_samples[:2]}\n{server.tail()}"
                )
        code = server.kill()
    finally:
        load.stop.set()
        for t in threads:
            t.join(60)
    assert code == -9, f"server exit code {code}, not SIGKILL:\n{server.tail()}"
    return load


def _state(server: LocalServer, load: Load) -> dict[str, Any]:
    """What the database holds about the transactions the clients sent."""
    logged = server.logged(load.sent)
    online = server.applied_online(load.sent)
    return {
        "acked": len(load.acked),
        "online_records": len(online),
        "logged": len(logged),
        "acked_not_logged": sorted(set(load.acked) - set(logged)),
        "acked_not_in_online_state": sorted(set(load.acked) - online),
        "online_not_logged": sorted(online - set(logged)),
        "logged_not_online": sorted(set(logged) - online),
        "logged_twice": sorted(t for t, ids in logged.items() if len(ids) > 1),
        "logged_with_another_id": sorted(
            t for t, ids in logged.items() if t in load.acked and ids != [load.acked[t]]
        ),
    }


def _problems(state: dict[str, Any]) -> dict[str, Any]:
    """The non-empty lists of ``state`` as counts and first ids: what must be empty."""
    return {
        k: {"count": len(v), "first": v[:5]}
        for k, v in state.items()
        if isinstance(v, list) and v
    }


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalServer]:
    if request.param == "sqlite":
        srv = LocalServer(tmp_path / "data")
        try:
            yield srv
        finally:
            srv.kill()
        return
    with services.postgres_database() as url:
        srv = LocalServer(tmp_path / "data", url)
        try:
            yield srv
        finally:  # before its database is dropped
            srv.kill()


@pytest.mark.slow
def test_a_kill_during_load_loses_no_acknowledged_prediction(
    server: LocalServer,
) -> None:
    df = generated(HISTORY + LIVE)
    live = [as_request(r) for r in df.iloc[HISTORY:].to_dict("records")]
    for txn in live:
        txn.pop("fraud_type", None)  # the generator's label detail
    server.start()
    with server.client() as client:
        serve(client, df.iloc[:HISTORY])

    load = _kill_under_load(server, live)
    assert set(load.statuses) == {200}, load.statuses  # nothing but 200s before it
    assert len(load.sent) < len(live), "the load ran out before the kill"

    # with the server dead: what it committed before it died
    at_kill = _state(server, load)
    # a server from before the guarantee lost log rows; a replay must write them
    damaged = sorted(set(load.acked) & set(server.logged(load.acked)))[:DAMAGED]
    server.query("DELETE FROM predictions WHERE transaction_id IN :ids", ids=damaged)

    server.start()  # the same data dir and database
    after_restart = _state(server, load)
    for key in ("acked_not_logged", "online_not_logged"):  # removed, not lost
        after_restart[key] = [t for t in after_restart[key] if t not in damaged]

    retried: dict[str, Any] = {}
    with server.client() as client:
        by_id = {t["transaction_id"]: t for t in live}
        for tid, pid in sorted(load.acked.items()):
            resp = client.post(f"{API}/predict", json={"transaction": by_id[tid]})
            data = resp.json().get("data") or {}
            if (resp.status_code, data.get("replayed"), data.get("prediction_id")) != (
                200,
                True,
                pid,
            ):
                retried[tid] = {"status": resp.status_code, **data}
        after_retries = _state(server, load)
        labels = [{"transaction_id": tid, "label": False} for tid in sorted(load.acked)]
        resp = client.post(f"{API}/predictions/labels", json={"labels": labels})
        assert resp.status_code == 200, resp.text
        labelled = resp.json()["data"]

    report = {
        "sent": len(load.sent),
        "acked": len(load.acked),
        "cut_off_by_the_kill": load.transport_errors,
        "at_kill": _problems(at_kill),
        "after_restart": _problems(after_restart),
        "retries_not_the_same_replay": {
            "count": len(retried),
            "first": list(retried.values())[:3],
        },
        "after_retries": _problems(after_retries),
        "damaged_still_missing": sorted(
            set(damaged) & set(after_retries["acked_not_logged"])
        ),
        "labels_unmatched": len(labelled["unmatched_transaction_ids"]),
        "labels_updated": labelled["updated"],
    }
    print(json.dumps(report, indent=1))  # shown by pytest -s or on failure
    assert not _problems(at_kill), report
    assert not _problems(after_restart), report
    assert not retried, report
    assert not _problems(after_retries), report
    assert labelled["unmatched_transaction_ids"] == [], report
    assert labelled["updated"] == len(load.acked), report
