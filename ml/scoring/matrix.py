"""Model input from feature dictionaries, in a model's feature order."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt


def feature_matrix(
    feature_names: Sequence[str],
    rows: Sequence[Mapping[str, float | None]],
    missing_value: float = math.nan,
) -> npt.NDArray[np.float32]:
    """An (n, n_features) float32 matrix; absent names and None become
    ``missing_value``, names the model does not use are ignored."""
    out = np.empty((len(rows), len(feature_names)), np.float32)
    for i, row in enumerate(rows):
        out[i] = [
            missing_value if (v := row.get(name)) is None else v
            for name in feature_names
        ]
    return out
