"""Model input from feature dictionaries or columns, in a model's feature order."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import chain
from operator import itemgetter

import numpy as np
import numpy.typing as npt


def feature_matrix(
    feature_names: Sequence[str],
    rows: Sequence[Mapping[str, float | None]],
    missing_value: float = math.nan,
) -> npt.NDArray[np.float32]:
    """An (n, n_features) float32 matrix; absent names and None become
    ``missing_value``, names the model does not use are ignored."""
    if len(feature_names) > 1:
        # the common case, every name present with a number: read in C (half the
        # time of the loop below for a batch of 10,000)
        try:
            return np.fromiter(
                chain.from_iterable(map(itemgetter(*feature_names), rows)),
                dtype=np.float32,
                count=len(rows) * len(feature_names),
            ).reshape(len(rows), len(feature_names))
        except (KeyError, TypeError, ValueError):
            pass  # an absent name or a None: filled in one by one
    out = np.empty((len(rows), len(feature_names)), np.float32)
    for i, row in enumerate(rows):
        out[i] = [
            missing_value if (v := row.get(name)) is None else v
            for name in feature_names
        ]
    return out


def select_columns(
    feature_names: Sequence[str],
    names: Sequence[str],
    values: npt.NDArray[np.float64],
    missing_value: float = math.nan,
) -> npt.NDArray[np.float32]:
    """An (n, n_features) float32 matrix from ``values``, whose columns are ``names``:
    ``feature_names``' columns in their order, absent names as ``missing_value`` (as
    ``feature_matrix`` does for rows given by name)."""
    at = {name: j for j, name in enumerate(names)}
    out = np.full((values.shape[0], len(feature_names)), missing_value, np.float32)
    for j, name in enumerate(feature_names):
        column = at.get(name)
        if column is not None:
            out[:, j] = values[:, column]
    return out
