"""The packed input vector a prediction is logged with (``predictions.input_vector``):
the model's features as scored, float32 in the model's own feature order, non-finite
values as NaN (what the JSON column stores as null). The feature log reads a window's
not yet mirrored rows from these bytes instead of parsing each row's JSON.

One setting turns it off (``SH_FEATURE_LOG_INPUT_VECTORS``); rows without a vector
(older rows, the setting off, a model whose missing features are not NaN) are read from
their JSON as before, so a window may mix both. ``bench/bench_feature_log.py``
measures the two side by side; ``tests/adapters/feature_log/test_input_vectors.py``
shows they read the same window."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

WIDTH = 4  # bytes a feature: float32


def pack(row: npt.NDArray[np.float32]) -> bytes:
    """One scored row (the model's (1, k) or (k,) float32 input) as bytes."""
    values = np.asarray(row, dtype=np.float32).reshape(-1)
    if not np.isfinite(values).all():
        values = np.where(np.isfinite(values), values, np.float32(np.nan))
    return values.tobytes()


def unpack(
    vectors: Sequence[bytes], layout: Sequence[str], names: Sequence[str]
) -> npt.NDArray[np.float32]:
    """The ``names`` columns (NaN for a name not in ``layout``) of packed rows laid out
    as ``layout``; every vector must be ``len(layout) * WIDTH`` bytes."""
    width = len(layout)
    packed = np.frombuffer(b"".join(vectors), dtype=np.float32).reshape(-1, width)
    position = {name: j for j, name in enumerate(layout)}
    out = np.full((len(vectors), len(names)), np.nan, dtype=np.float32)
    for j, name in enumerate(names):
        at = position.get(name)
        if at is not None:
            out[:, j] = packed[:, at]
    return out


def fits(vector: bytes | None, layout: Sequence[str] | None) -> bool:
    """Whether ``vector`` is a whole row of ``layout``."""
    return (
        vector is not None
        and layout is not None
        and len(layout) > 0
        and len(vector) == len(layout) * WIDTH
    )
