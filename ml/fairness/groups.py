"""Named groups of a protected attribute: categorical values or numeric bins, checked
and assigned to rows as integer codes (``-1`` where a row falls in no group)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Codes = npt.NDArray[np.int64]


@dataclass(frozen=True)
class CategoricalGroup:
    """Rows whose value is one of ``values``."""

    name: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class NumericBin:
    """Rows whose value lies in ``[low, high)``; ``None`` leaves that side open."""

    name: str
    low: float | None = None
    high: float | None = None

    def bounds(self) -> tuple[float, float]:
        low = -math.inf if self.low is None else float(self.low)
        high = math.inf if self.high is None else float(self.high)
        return low, high


Group = CategoricalGroup | NumericBin


@dataclass(frozen=True)
class GroupProblem:
    """What is wrong with a group configuration: ``index`` is the group's position,
    ``field`` the field within it."""

    index: int
    field: str
    message: str


def check_groups(groups: Sequence[Group]) -> list[GroupProblem]:
    """Every problem of a configuration: none, mixed kinds, duplicate names, a value in
    two groups, an empty or reversed bin, overlapping bins."""
    if not groups:
        return [GroupProblem(-1, "", "at least one group is required")]
    problems: list[GroupProblem] = []
    if len({type(g) for g in groups}) > 1:
        problems.append(GroupProblem(-1, "", "groups are all categorical or all bins"))
        return problems
    seen: dict[str, int] = {}
    for i, g in enumerate(groups):
        if g.name in seen:
            problems.append(
                GroupProblem(i, "name", f"duplicate of group {seen[g.name]}'s name")
            )
        seen.setdefault(g.name, i)
    if isinstance(groups[0], CategoricalGroup):
        problems += _check_values(
            [g for g in groups if isinstance(g, CategoricalGroup)]
        )
    else:
        problems += _check_bins([g for g in groups if isinstance(g, NumericBin)])
    return problems


def _check_values(groups: Sequence[CategoricalGroup]) -> list[GroupProblem]:
    problems: list[GroupProblem] = []
    owner: dict[Any, int] = {}
    for i, g in enumerate(groups):
        if not g.values:
            problems.append(GroupProblem(i, "values", "at least one value is required"))
        for v in g.values:
            key = (type(v) is str, v)
            if key in owner:
                problems.append(
                    GroupProblem(i, "values", f"{v!r} is also in group {owner[key]}")
                )
            owner.setdefault(key, i)
    return problems


def _check_bins(bins: Sequence[NumericBin]) -> list[GroupProblem]:
    problems: list[GroupProblem] = []
    spans = [b.bounds() for b in bins]
    for i, (low, high) in enumerate(spans):
        if not low < high:
            problems.append(GroupProblem(i, "high", "high must be greater than low"))
    order = sorted(range(len(bins)), key=lambda i: spans[i])
    for a, b in zip(order, order[1:], strict=False):
        if spans[b][0] < spans[a][1]:
            problems.append(
                GroupProblem(b, "low", f"the bin overlaps group {a} ({bins[a].name})")
            )
    return problems


def assign_groups(column: npt.ArrayLike, groups: Sequence[Group]) -> Codes:
    """Each row's group index; ``-1`` for a value in no group (and for NaN or None)."""
    values = np.asarray(column)
    codes = np.full(values.shape[0], -1, dtype=np.int64)
    if groups and isinstance(groups[0], NumericBin):
        numbers = _as_float(values)
        for i, g in enumerate(groups):
            if isinstance(g, NumericBin):
                low, high = g.bounds()
                codes[(numbers >= low) & (numbers < high)] = i
        return codes
    for i, g in enumerate(groups):
        for v in g.values if isinstance(g, CategoricalGroup) else ():
            hit = _equal(values, v)
            if hit is not None:
                codes[hit] = i
    return codes


def _as_float(values: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """The values as numbers: numbers, and text that reads as one; the rest NaN."""
    try:
        return values.astype(np.float64, copy=False)
    except (TypeError, ValueError):
        pass
    out = np.full(values.shape[0], np.nan)
    for i, v in enumerate(values.tolist()):
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            continue
    return out


def _equal(values: npt.NDArray[Any], v: Any) -> npt.NDArray[np.bool_] | None:
    """``values == v`` with no cross-type surprises: a text column matches text values,
    a numeric column numeric ones, an object column either."""
    kind = values.dtype.kind
    if kind in "US":
        return values == v if isinstance(v, str) else None
    if kind in "fiub":
        number = isinstance(v, int | float) and not isinstance(v, bool)
        return values == v if number else None
    hit: npt.NDArray[np.bool_] = values == v
    return hit
