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

A transform may carry ``"calibration"``, applied to the [0, 1] score last (see
`calibrate`); a transform without one scores as before.
"""

from __future__ import annotations

import math
from bisect import bisect_right
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
        out: Float64Array = np.clip(values, 0.0, 1.0)
    elif kind == "logistic":
        sign = float(transform.get("sign", 1.0))
        center = float(transform["center"])
        scale = float(transform["scale"])
        z = (sign * values - center) / scale
        out = 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic
    else:
        raise ValueError(f"unknown score transform kind {kind!r}")
    calibration = transform.get("calibration")
    return calibrate(out, calibration) if calibration else out


def score_transform_one(raw: float, transform: Mapping[str, Any]) -> float:
    """``apply_score_transform`` of one raw value, in plain floats: the scoring path's
    form (numpy on a one-element array cost more than the formula). Equal to the array
    form (tested; the logistic's tanh may differ from numpy's in the last bit)."""
    kind = transform.get("kind", "probability")
    if kind == "probability":
        score = min(max(raw, 0.0), 1.0)
    elif kind == "logistic":
        sign = float(transform.get("sign", 1.0))
        z = (sign * raw - float(transform["center"])) / float(transform["scale"])
        score = 0.5 * (1.0 + math.tanh(0.5 * z))
    else:
        raise ValueError(f"unknown score transform kind {kind!r}")
    calibration = transform.get("calibration")
    return calibrate_one(score, calibration) if calibration else score


def uncalibrated(transform: Mapping[str, Any]) -> dict[str, Any]:
    """The transform without its calibration: the raw model's score."""
    return {k: v for k, v in transform.items() if k != "calibration"}


# A calibrated score keeps this share of the raw score, so that scores tied by an
# isotonic step keep their order (ranking metrics and top-k alerts stay the raw model's).
TIE_BREAK = 1e-6


def calibrate(scores: Float64Array, calibration: Mapping[str, Any]) -> Float64Array:
    """Calibrated probabilities of [0, 1] scores. isotonic: piecewise-linear through the
    stored points ``x`` -> ``y``; platt: ``logistic(a * logit(score) + b)``."""
    method = calibration["method"]
    if method == "isotonic":
        fitted = np.interp(scores, calibration["x"], calibration["y"])
        out: Float64Array = (1.0 - TIE_BREAK) * fitted + TIE_BREAK * scores
        return out
    if method == "platt":
        p = np.clip(scores, _EPS, 1.0 - _EPS)
        z = float(calibration["a"]) * np.log(p / (1.0 - p)) + float(calibration["b"])
        out = 0.5 * (1.0 + np.tanh(0.5 * z))
        return out
    raise ValueError(f"unknown calibration method {method!r}")


def calibrate_one(score: float, calibration: Mapping[str, Any]) -> float:
    """`calibrate` of one score in plain floats (the single-transaction path)."""
    method = calibration["method"]
    if method == "isotonic":
        xs, ys = calibration["x"], calibration["y"]
        j = bisect_right(xs, score) - 1
        if j < 0:
            fitted = float(ys[0])
        elif j >= len(xs) - 1:
            fitted = float(ys[-1])
        else:
            slope = (ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j])
            fitted = slope * (score - xs[j]) + ys[j]
        return (1.0 - TIE_BREAK) * fitted + TIE_BREAK * score
    if method == "platt":
        p = min(max(score, _EPS), 1.0 - _EPS)
        z = float(calibration["a"]) * math.log(p / (1.0 - p)) + float(calibration["b"])
        return 0.5 * (1.0 + math.tanh(0.5 * z))
    raise ValueError(f"unknown calibration method {method!r}")


_EPS = 1e-7


def decision_threshold(
    transform: Mapping[str, Any],
    threshold: float,
    protected: Mapping[str, Any] | None,
) -> float:
    """The threshold a score is compared with: the group's own when the transform
    carries ``"group_thresholds": {"column": c, "thresholds": {str(value): t}}`` (a
    threshold_optimizer mitigation) and ``protected`` gives the row's value of ``c``;
    the global ``threshold`` otherwise (attribute absent, or a group not seen)."""
    groups = transform.get("group_thresholds")
    if not groups or not protected:
        return threshold
    column = groups.get("column")
    if column not in protected or protected[column] is None:
        return threshold
    value = groups.get("thresholds", {}).get(str(protected[column]))
    return threshold if value is None else float(value)
