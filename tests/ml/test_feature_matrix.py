"""Model input from feature dicts: the model's order, missing values as NaN."""

from __future__ import annotations

import math

import numpy as np

from ml.scoring.matrix import feature_matrix


def test_rows_in_the_models_order_with_unused_names_ignored() -> None:
    rows = [{"b": 2.0, "a": 1.0, "unused": 9.0}, {"a": 3.5, "b": -4.0, "unused": 0.0}]
    got = feature_matrix(["b", "a"], rows)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [[2.0, 1.0], [-4.0, 3.5]])


def test_absent_names_and_none_become_the_missing_value() -> None:
    rows = [{"a": 1.0, "b": 2.0}, {"a": None, "b": 5.0}, {"b": 7.0}]
    got = feature_matrix(["a", "b"], rows)
    assert math.isnan(got[1, 0]) and math.isnan(got[2, 0])
    np.testing.assert_array_equal(got[:, 1], [2.0, 5.0, 7.0])
    filled = feature_matrix(["a", "b"], rows, missing_value=-1.0)
    np.testing.assert_array_equal(filled[:, 0], [1.0, -1.0, -1.0])


def test_one_feature_and_no_rows() -> None:
    np.testing.assert_array_equal(feature_matrix(["a"], [{"a": 3.0}]), [[3.0]])
    assert feature_matrix(["a", "b"], []).shape == (0, 2)
