"""The in-process state cache and key locks both SQL adapters wrap."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ml.features.online import EntityKey, State

LOCK_STRIPES = 1024


@dataclass(slots=True)
class Cached:
    gen: int
    seq: int
    state: State


class StateCache:
    """Decoded states of recently used entities (LRU). Entries are only trusted when
    their ``(gen, seq)`` matches the row's head, so several workers can share a table."""

    def __init__(self, max_entities: int) -> None:
        self._max = max_entities
        self._items: OrderedDict[EntityKey, Cached] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: EntityKey) -> Cached | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: EntityKey, gen: int, seq: int, state: State) -> None:
        self.put_many(((key, gen, seq, state),))

    def add(self, key: EntityKey, gen: int, seq: int, state: State) -> bool:
        """``put`` unless the key is cached already (what scoring cached is newer), or
        the cache is full; True if added."""
        with self._lock:
            if key in self._items or len(self._items) >= self._max:
                return False
            self._items[key] = Cached(gen, seq, state)
            self._items.move_to_end(key, last=False)  # first to go, after the used
            return True

    @property
    def capacity(self) -> int:
        return self._max

    def keys(self) -> list[EntityKey]:
        with self._lock:
            return list(self._items)

    def put_many(self, items: Iterable[tuple[EntityKey, int, int, State]]) -> None:
        """``put`` of many entries under one hold of the lock (a batch has thousands)."""
        with self._lock:
            entries = self._items
            for key, gen, seq, state in items:
                entries[key] = Cached(gen, seq, state)
                entries.move_to_end(key)
            while len(entries) > self._max:
                entries.popitem(last=False)

    def evict(self, keys: Iterable[EntityKey]) -> None:
        with self._lock:
            for key in keys:
                self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class KeyLocks:
    """Striped in-process locks: a cached state is modified in place, so two threads of
    one worker must not apply transactions of the same entity at once."""

    def __init__(self, stripes: int = LOCK_STRIPES) -> None:
        self._locks = [threading.Lock() for _ in range(stripes)]

    @contextmanager
    def hold(self, keys: Iterable[EntityKey]) -> Iterator[None]:
        stripes = sorted({hash(key) % len(self._locks) for key in keys})
        for i in stripes:
            self._locks[i].acquire()
        try:
            yield
        finally:
            for i in reversed(stripes):
                self._locks[i].release()
