"""Progress reporting and cancellation shared by all fitters, with bounded overhead.

Metrics (logloss, AUC) cost a prediction pass, so they are computed on row subsamples
(at most `EVAL_ROWS` per side) and only when at least `MIN_EVAL_INTERVAL_S` passed and
the evaluation time stays under ~`EVAL_BUDGET` of elapsed training time; the last
iteration is always evaluated. `should_stop` is polled every iteration.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_auc_score

from ml.training.model import TrainingCancelled, TrainingProgress

EVAL_ROWS = 20_000
MIN_EVAL_INTERVAL_S = 1.0
REPORT_INTERVAL_S = 0.5
EVAL_BUDGET = 0.05

ScoreFn = Callable[
    [npt.NDArray[Any], int], npt.NDArray[Any]
]  # (X, iterations) -> P(fraud)


def subsample(
    X: npt.NDArray[Any] | None, y: npt.NDArray[Any] | None, seed: int
) -> tuple[npt.NDArray[Any], npt.NDArray[Any]] | None:
    """Up to EVAL_ROWS rows stratified-enough for a metric (all positives kept)."""
    if X is None or y is None or X.shape[0] == 0:
        return None
    labels = np.asarray(y).astype(np.float64)
    if X.shape[0] <= EVAL_ROWS:
        return X, labels
    rng = np.random.default_rng(seed)
    pos = np.flatnonzero(labels == 1)
    neg = np.flatnonzero(labels != 1)
    pos = rng.choice(pos, min(pos.size, EVAL_ROWS // 2), replace=False)
    neg = rng.choice(neg, min(neg.size, EVAL_ROWS - pos.size), replace=False)
    idx = np.sort(np.concatenate([pos, neg]))
    return X[idx], labels[idx]


def logloss(y: npt.NDArray[Any], p: npt.NDArray[Any]) -> float:
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log1p(-q)))


def auc(y: npt.NDArray[Any], p: npt.NDArray[Any]) -> float | None:
    if np.unique(y).size < 2:
        return None
    return float(roc_auc_score(y, p))


class ProgressReporter:
    """Call `step(i)` after each iteration i (1-based); raises TrainingCancelled."""

    def __init__(
        self,
        total: int,
        score: ScoreFn,
        train: tuple[npt.NDArray[Any], npt.NDArray[Any]] | None,
        val: tuple[npt.NDArray[Any], npt.NDArray[Any]] | None,
        on_progress: Callable[[TrainingProgress], None] | None,
        should_stop: Callable[[], bool] | None,
        *,
        with_loss: bool = True,
    ) -> None:
        self.total = total
        self._score = score
        self._train = train
        self._val = val
        self._on_progress = on_progress
        self._should_stop = should_stop
        self._with_loss = with_loss
        self._start = time.perf_counter()
        self._last_report = -1e9
        self._last_eval = -1e9
        self._eval_cost = 0.0
        self.last = TrainingProgress(0, total, None, None, None)

    def check_stop(self) -> None:
        if self._should_stop is not None and self._should_stop():
            raise TrainingCancelled("training cancelled")

    def step(self, iteration: int) -> None:
        self.check_stop()
        if self._on_progress is None:
            return
        now = time.perf_counter()
        final = iteration >= self.total
        every = self.total <= 200
        if not (final or every or now - self._last_report >= REPORT_INTERVAL_S):
            return
        if final or self._eval_due(now):
            self._evaluate(iteration)
        else:
            self.last = TrainingProgress(
                iteration,
                self.total,
                self.last.train_loss,
                self.last.val_loss,
                self.last.val_auc,
            )
        self._last_report = time.perf_counter()
        self._on_progress(self.last)

    def finish(self, iterations: int) -> None:
        """Report the end: `iterations` done, which is also the total once training
        stopped early."""
        if self.last.iteration == iterations == self.total:
            return
        self.total = iterations
        if self._on_progress is not None:
            self._evaluate(iterations)
            self._on_progress(self.last)

    def _eval_due(self, now: float) -> bool:
        if now - self._last_eval < MIN_EVAL_INTERVAL_S:
            return False
        elapsed = now - self._start
        return self._eval_cost <= EVAL_BUDGET * max(elapsed, 1e-9)

    def _evaluate(self, iteration: int) -> None:
        t0 = time.perf_counter()
        train_loss = val_loss = val_auc = None
        if self._train is not None and self._with_loss:
            train_loss = logloss(self._train[1], self._score(self._train[0], iteration))
        if self._val is not None:
            p = self._score(self._val[0], iteration)
            val_loss = logloss(self._val[1], p) if self._with_loss else None
            val_auc = auc(self._val[1], p)
        self.last = TrainingProgress(
            iteration, self.total, train_loss, val_loss, val_auc
        )
        t1 = time.perf_counter()
        self._eval_cost += t1 - t0
        self._last_eval = t1
