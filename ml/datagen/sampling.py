"""Vectorised sampling helpers shared by the generator modules.

Everything works on whole numpy arrays so that a million rows cost a handful
of array passes instead of a Python loop per row or per episode.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MS_PER_SECOND = 1_000
MS_PER_HOUR = 3_600_000
MS_PER_DAY = 86_400_000


def normalised(weights: Sequence[float] | FloatArray) -> FloatArray:
    """Weights as probabilities; raises on an all-zero vector (a table bug)."""
    w = np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    if total <= 0.0:
        raise ValueError("weights must have a positive sum")
    return w / total


def weights_by_label(labels: Sequence[str], weights: Mapping[str, float]) -> FloatArray:
    """Dense weight vector in ``labels`` order from a sparse label->weight map."""
    return np.array([weights.get(label, 0.0) for label in labels], dtype=np.float64)


def codes_of(labels: Sequence[str], wanted: Sequence[str]) -> IntArray:
    """Integer codes of ``wanted`` labels within ``labels``."""
    index = {label: i for i, label in enumerate(labels)}
    return np.array([index[w] for w in wanted], dtype=np.int64)


def sample_codes(
    rng: np.random.Generator, weights: Sequence[float] | FloatArray, size: int
) -> IntArray:
    """Draw ``size`` codes from one categorical distribution (inverse CDF)."""
    cdf = np.cumsum(normalised(weights))
    cdf[-1] = 1.0
    codes = np.searchsorted(cdf, rng.random(size), side="right")
    return np.minimum(codes, len(cdf) - 1).astype(np.int64)


def sample_codes_by_group(
    rng: np.random.Generator, weight_table: FloatArray, groups: IntArray
) -> IntArray:
    """Draw one code per row from the categorical of that row's group.

    ``weight_table`` is (n_groups, n_codes). Shifting each group's CDF by its
    group index lets a single ``searchsorted`` serve all groups at once.
    """
    n_groups, n_codes = weight_table.shape
    cdf = np.cumsum(weight_table / weight_table.sum(axis=1, keepdims=True), axis=1)
    cdf[:, -1] = 1.0
    shifted = (cdf + np.arange(n_groups, dtype=np.float64)[:, None]).ravel()
    u = rng.random(len(groups)) + groups
    flat = np.searchsorted(shifted, u, side="right")
    codes: IntArray = np.minimum(flat - groups * n_codes, n_codes - 1).astype(np.int64)
    return codes


def sample_excluding(
    rng: np.random.Generator, weights: FloatArray, excluded: BoolArray
) -> IntArray:
    """Per row, a weighted draw among codes not masked out in ``excluded``.

    ``excluded`` is (n_rows, n_codes). Gumbel-max sampling keeps this exact and
    loop-free; rows with nothing allowed fall back to the unmasked draw.
    """
    with np.errstate(divide="ignore"):
        log_w = np.log(np.asarray(weights, dtype=np.float64))
    scores = log_w[None, :] + rng.gumbel(size=excluded.shape)
    masked = np.where(excluded, -np.inf, scores)
    best = np.argmax(masked, axis=1)
    nothing_left = np.isneginf(masked.max(axis=1, initial=-np.inf))
    chosen: IntArray = np.where(nothing_left, np.argmax(scores, axis=1), best).astype(
        np.int64
    )
    return chosen


def choose_without_replacement(
    rng: np.random.Generator, weights: FloatArray, k: int
) -> IntArray:
    """Indices of ``k`` distinct items drawn proportionally to ``weights``.

    Efraimidis-Spirakis keys (log u / w) with a partial sort: O(n), no loop.
    Returns fewer than ``k`` if fewer items have positive weight.
    """
    positive = int(np.count_nonzero(weights > 0))
    k = min(k, positive)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    with np.errstate(divide="ignore"):
        keys = np.log(rng.random(len(weights))) / weights
    keys[weights <= 0] = -np.inf
    top = np.argpartition(-keys, k - 1)[:k]
    return np.sort(top).astype(np.int64)


def episode_index(sizes: IntArray) -> IntArray:
    """Episode number of every row when episodes of ``sizes`` rows are stacked."""
    return np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)


def cumsum_within(values: npt.NDArray[np.int64], sizes: IntArray) -> IntArray:
    """Running sum of ``values`` restarting at each episode boundary."""
    total = np.cumsum(values)
    ends = np.cumsum(sizes)
    before = np.concatenate(([0], total[ends[:-1] - 1])) if len(sizes) else total
    within: IntArray = (total - np.repeat(before, sizes)).astype(np.int64)
    return within


def split_budget(
    rng: np.random.Generator,
    budget: int,
    draw_sizes: Callable[[np.random.Generator, int], IntArray],
    min_size: int,
) -> IntArray:
    """Episode sizes that add up to exactly ``budget`` rows.

    Drawing enough sizes in one go (each is at least ``min_size``) and trimming
    the last episode keeps the fraud row count exact for a given config.
    """
    if budget <= 0:
        return np.empty(0, dtype=np.int64)
    sizes = draw_sizes(rng, budget // max(min_size, 1) + 1)
    total = np.cumsum(sizes)
    n = int(np.searchsorted(total, budget)) + 1
    sizes = sizes[:n].copy()
    sizes[-1] -= int(total[n - 1]) - budget
    if n > 1 and sizes[-1] < min_size:
        sizes[-2] += sizes[-1]
        sizes = sizes[:-1]
    return sizes
