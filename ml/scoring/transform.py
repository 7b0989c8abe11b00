"""Map a model's raw output to a fraud score in [0, 1].

Shared by `TrainedModel.predict_scores` (native) and `OnnxScorer` (ONNX) so both apply
the very same arithmetic; the promotion gate compares them.

A transform is a JSON-ready dict:

- ``{"kind": "probability", "output": 1, "column": 1}``: classifiers; the positive-class
  column of the probability tensor, used as is.
- ``{"kind": "logistic", "output": 1, "column": 0, "sign": -1.0, "center": c,
  "scale": s}``: anomaly detectors; ``1 / (1 + exp(-(sign * raw - center) / scale))``,
  monotone in the anomaly score.

``output`` is the index of the ONNX session output to read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

Float64Array = npt.NDArray[np.float64]


def apply_score_transform(
    raw: npt.NDArray[Any], transform: Mapping[str, Any]
) -> Float64Array:
    """Select the transform's column of `raw` (1-D or 2-D) and map it to [0, 1], float64."""
    values = np.asarray(raw)
    if values.ndim == 2:
        values = values[:, int(transform.get("column", 0))]
    values = values.astype(np.float64, copy=False)
    kind = transform.get("kind", "probability")
    if kind == "probability":
        clipped: Float64Array = np.clip(values, 0.0, 1.0)
        return clipped
    if kind == "logistic":
        sign = float(transform.get("sign", 1.0))
        center = float(transform["center"])
        scale = float(transform["scale"])
        z = (sign * values - center) / scale
        out: Float64Array = 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic
        return out
    raise ValueError(f"unknown score transform kind {kind!r}")


def score_transform_one(raw: float, transform: Mapping[str, Any]) -> float:
    """``apply_score_transform`` of one raw value, in plain floats: the scoring path's
    form (numpy on a one-element array cost more than the formula). Equal to the array
    form (tested; the logistic's tanh may differ from numpy's in the last bit)."""
    kind = transform.get("kind", "probability")
    if kind == "probability":
        return min(max(raw, 0.0), 1.0)
    if kind == "logistic":
        sign = float(transform.get("sign", 1.0))
        z = (sign * raw - float(transform["center"])) / float(transform["scale"])
        return 0.5 * (1.0 + math.tanh(0.5 * z))
    raise ValueError(f"unknown score transform kind {kind!r}")
