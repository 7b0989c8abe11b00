"""Fit a probability calibration on validation scores.

The rule: isotonic regression when the validation set holds at least
`MIN_ISOTONIC_POSITIVES` frauds, Platt scaling (a logistic on the score's log-odds)
below that, where isotonic steps would follow the noise of a few positives. No
calibration when validation has a single class, or when Platt finds no increasing fit.
The result is a JSON-ready dict stored in the model's score transform and applied by
`ml.scoring.transform.calibrate` on every scoring path.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

MIN_ISOTONIC_POSITIVES = 100
MAX_POINTS = 1000


def fit_calibration(
    scores: npt.NDArray[Any], y: npt.NDArray[Any]
) -> dict[str, Any] | None:
    """A calibration of `scores` (in [0, 1]) to P(fraud), or None (see module doc)."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(y, dtype=np.float64).ravel()
    positives = int(labels.sum())
    if positives == 0 or positives == labels.size:
        return None
    if positives >= MIN_ISOTONIC_POSITIVES:
        return _isotonic(s, labels, positives)
    return _platt(s, labels, positives)


def _isotonic(
    s: npt.NDArray[np.float64], y: npt.NDArray[np.float64], pos: int
) -> dict[str, Any]:
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y)
    xs = np.asarray(iso.X_thresholds_, dtype=np.float64)
    ys = np.asarray(iso.y_thresholds_, dtype=np.float64)
    if xs.size > MAX_POINTS:  # a subset of a monotone curve's points stays monotone
        keep = np.unique(np.linspace(0, xs.size - 1, MAX_POINTS).round().astype(int))
        xs, ys = xs[keep], ys[keep]
    return {
        "method": "isotonic",
        "x": [float(v) for v in xs],
        "y": [float(v) for v in ys],
        "validation_positives": pos,
    }


def _platt(
    s: npt.NDArray[np.float64], y: npt.NDArray[np.float64], pos: int
) -> dict[str, Any] | None:
    from sklearn.linear_model import LogisticRegression

    p = np.clip(s, 1e-7, 1.0 - 1e-7)
    logit = np.log(p / (1.0 - p)).reshape(-1, 1)
    fitted = LogisticRegression(C=1e4).fit(logit, y.astype(np.int64))
    a, b = float(fitted.coef_[0, 0]), float(fitted.intercept_[0])
    if not a > 0:
        return None
    return {"method": "platt", "a": a, "b": b, "validation_positives": pos}
