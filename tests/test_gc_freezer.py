"""The scoring worker's garbage-collector freezer: what is alive frozen each round, and
a cycle that died while frozen reclaimed by the periodic full pass."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from ml.features import OnlineFeatureEngine
from shared.gc_freezer import GcFreezer
from tests.support.serving import as_request, generated


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector can free it


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_a_round_freezes_what_is_alive() -> None:
    gc.unfreeze()
    kept = [object() for _ in range(10)]
    GcFreezer(interval=1, full_every=3600).tick(now=0.0)
    assert gc.get_freeze_count() > len(kept)
    assert not any(x is kept for x in gc.get_objects())  # out of every generation


def _dead_frozen_cycle(full_every: float) -> tuple[GcFreezer, weakref.ref[_Node]]:
    """A freezer whose last full pass was at time 0, and a reference cycle frozen
    while alive and dropped since (only a full pass can free it)."""
    freezer = GcFreezer(interval=1, full_every=full_every)
    freezer._last_full = 0.0
    node = _Node()
    ref = weakref.ref(node)
    gc.freeze()
    del node
    return freezer, ref


@pytest.mark.slow
def test_the_full_pass_reclaims_a_cycle_that_died_while_frozen() -> None:
    freezer, ref = _dead_frozen_cycle(full_every=100)
    freezer.tick(now=50.0)  # a normal round: the frozen cycle stays
    assert ref() is not None
    freezer.tick(now=150.0)  # the full pass
    assert ref() is None
    assert gc.get_freeze_count() > 0  # and what is alive is frozen again


@pytest.mark.slow
def test_no_full_pass_when_it_is_turned_off() -> None:
    freezer, ref = _dead_frozen_cycle(full_every=0)
    freezer.tick(now=10**9)  # any time later: still only freezing
    assert ref() is not None
    gc.unfreeze()
    gc.collect()
    assert ref() is None


def _features(history: list[dict[str, Any]], freezer: GcFreezer | None) -> list[Any]:
    engine = OnlineFeatureEngine()
    states: dict[Any, Any] = {}
    out = []
    for i, txn in enumerate(history):
        keys = engine.entity_keys(txn)
        features, updated = engine.process(txn, {k: states.get(k) for k in keys})
        states.update(updated)
        out.append(features)
        if freezer is not None and i % 50 == 0:  # states frozen while still in use
            freezer.tick(now=float(i))
    return out


def test_frozen_states_score_as_unfrozen_ones() -> None:
    """SH_GC_FREEZE_SECONDS on or off: the same features from the same states."""
    history = [as_request(r) for r in generated(1500).to_dict("records")]
    gc.unfreeze()
    plain = _features(history, None)
    frozen = _features(history, GcFreezer(interval=1, full_every=400))
    assert frozen == plain


def test_the_collector_pause_nests_and_restores_the_collector() -> None:
    from shared.gc_freezer import collector_paused

    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # only the outermost block re-enables it
    assert gc.isenabled()
    with collector_paused(enabled=False):
        assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("a failing backfill")
    assert gc.isenabled()


def test_a_backfill_builds_the_same_states_with_the_collector_paused() -> None:
    """SH_BACKFILL_GC_PAUSE's equivalence: the pause changes the time, not the states."""
    from ml.features import FeatureConfig, backfill_states
    from ml.features.online import state_to_json
    from shared.gc_freezer import collector_paused

    df = generated(3000)

    def states() -> dict[Any, bytes]:
        built = backfill_states(df, FeatureConfig())
        return {key: state_to_json(s) for key, s in built.items()}

    plain = states()
    with collector_paused():
        paused = states()
    assert len(plain) > 100 and paused == plain
