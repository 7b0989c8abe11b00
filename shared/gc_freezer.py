"""Keeps the garbage collector's full passes off the scoring path (SH_GC_FREEZE_SECONDS),
and off the online state's bulk rebuild (SH_BACKFILL_GC_PAUSE, ``collector_paused``).

A scoring worker caches tens of thousands of entity states, and every full collection
walks all of them while holding the GIL. So every ``interval`` seconds everything alive
is frozen (``gc.freeze()``, constant time): collections skip it and see only the last
interval's objects. Frozen objects are still freed by reference counting; a cycle that
dies while frozen waits for the full pass, once every ``full_every`` seconds (0: never).
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


@contextmanager
def collector_paused(enabled: bool = True) -> Iterator[None]:
    """No collection inside (when ``enabled``); the collector's own state after. Nested
    and concurrent uses are safe: it is re-enabled only by the outermost one."""
    global _paused
    if not enabled:
        yield
        return
    with _lock:
        if _paused == 0:
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _lock:
            _paused -= 1
            if _paused == 0:
                gc.enable()


_paused = 0  # how many collector_paused() blocks are open in this process

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
