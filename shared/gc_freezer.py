"""Keeps the garbage collector's full passes off the scoring path.

A scoring worker caches tens of thousands of entity states (dicts and lists), and every
full (generation 2) collection walks all of them while holding the GIL: 120-170 ms on
this project's 2-core machine, several times a minute under load (seen with
``gc.callbacks`` in the server of ``bench/bench_predict.py``). Those pauses were the
latency tails of /predict and /predict/explain.

So every ``interval`` seconds everything alive is frozen (``gc.freeze()``, constant
time): moved to the permanent generation, which collections skip, so they only ever see
the last interval's objects. Frozen objects are still freed by reference counting when
dropped (the states have no cycles); a reference cycle frozen while young, or alive at
a freeze and dead later, escapes until the full pass: once every ``full_every`` seconds
everything is unfrozen and collected (one long pause an hour instead of several a
minute; 0: never). That pause is measured: 180 ms with 126,000 entity states cached
(834,000 tracked objects) on the fastest machine this project has run on.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

FULL_EVERY_S = 3600.0


class GcFreezer:
    def __init__(self, interval: float, full_every: float = FULL_EVERY_S) -> None:
        self.interval = interval
        self.full_every = full_every
        self._last_full = time.monotonic()
        self._thread: threading.Thread | None = None

    def tick(self, now: float | None = None) -> None:
        """One round: everything alive frozen (no collection first: a young
        collection walks every element of the states cached since the last round,
        tens of milliseconds); a full collection of everything when it is due."""
        now = time.monotonic() if now is None else now
        if self.full_every > 0 and now - self._last_full >= self.full_every:
            self._last_full = now
            gc.unfreeze()
            found = gc.collect()
            log.info("full garbage collection: %d unreachable objects", found)
        gc.freeze()

    def start(self) -> None:
        """Freeze what is alive now (the loaded app and model), collect the young
        generation less often (scoring allocates many short-lived objects and no
        cycles worth chasing per request), then freeze every ``interval``."""
        if self._thread is None and self.interval > 0:
            gc.freeze()
            gc.set_threshold(20_000, 20, 20)
            self._thread = threading.Thread(
                target=self._run, name="gc-freezer", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:  # a daemon thread: it ends with the process
            time.sleep(self.interval)
            self.tick()


# the collector is per process, and so is its freezer
_process_freezer: GcFreezer | None = None
_lock = threading.Lock()


def start_gc_freezer(interval: float, full_every: float = FULL_EVERY_S) -> None:
    """Start this process's freezer once (``SH_GC_FREEZE_SECONDS``; 0: off)."""
    global _process_freezer
    with _lock:
        if _process_freezer is None and interval > 0:
            _process_freezer = GcFreezer(interval, full_every)
            _process_freezer.start()


_pauses = 0
_enabled_before = False
_pause_lock = threading.Lock()


@contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic collection inside (a /predict/batch): scoring 10,000 transactions
    allocates millions of objects, most alive until the answer is sent, and the young
    collections walked them again and again (measured: a batch's online state update
    took 1.1-1.3 s with the collector off against 1.3-2.0 s on, see
    ``bench/bench_predict.py``). Nested and concurrent pauses count: the collector is
    back, as it was before the first, when the last one ends."""
    global _pauses, _enabled_before
    with _pause_lock:
        if _pauses == 0:
            _enabled_before = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _enabled_before:
                gc.enable()
