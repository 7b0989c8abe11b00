"""Algorithm catalog and hyperparameter validation."""

from __future__ import annotations

import json

import pytest

from ml.training import ALGORITHMS, HyperparameterError, algorithm_catalog
from ml.training import validate_hyperparameters as validate


def test_catalog_lists_four_algorithms_json_ready() -> None:
    catalog = algorithm_catalog()
    json.dumps(catalog)
    assert [a["name"] for a in catalog] == [
        "xgboost",
        "lightgbm",
        "isolation_forest",
        "neural_net",
    ]
    for entry in catalog:
        assert {"name", "title", "description", "supervised", "hyperparameters"} <= set(
            entry
        )
        names = {p["name"] for p in entry["hyperparameters"]}
        assert ALGORITHMS[entry["name"]].iterations_param in names
        for p in entry["hyperparameters"]:
            assert p["type"] in ("int", "float", "categorical", "bool")
            assert {"default", "description", "minimum", "maximum", "choices"} <= set(p)
    assert not ALGORITHMS["isolation_forest"].supervised


def test_defaults_validate_and_are_filled() -> None:
    for name, spec in ALGORITHMS.items():
        full = validate(name, {})
        assert full == {p.name: p.default for p in spec.hyperparameters}
    out = validate(
        "xgboost", {"max_depth": 4, "n_estimators": 50.0, "learning_rate": 0.3}
    )
    assert out["max_depth"] == 4 and out["n_estimators"] == 50 and out["class_weight"]


@pytest.mark.parametrize(
    ("algorithm", "params", "field"),
    [
        ("xgboost", {"max_dept": 3}, "max_dept"),
        ("xgboost", {"max_depth": "6"}, "max_depth"),
        ("xgboost", {"max_depth": 2.5}, "max_depth"),
        ("xgboost", {"max_depth": True}, "max_depth"),
        ("xgboost", {"max_depth": 0}, "max_depth"),
        ("xgboost", {"learning_rate": 5.0}, "learning_rate"),
        ("lightgbm", {"class_weight": "heavy"}, "class_weight"),
        ("isolation_forest", {"contamination": 0.9}, "contamination"),
        ("isolation_forest", {"contamination": "sometimes"}, "contamination"),
        ("isolation_forest", {"bootstrap": 1}, "bootstrap"),
        ("neural_net", {"hidden_layer_sizes": "7,7"}, "hidden_layer_sizes"),
        ("neural_net", {"alpha": float("nan")}, "alpha"),
        ("random_forest", {}, "algorithm"),
    ],
)
def test_errors_name_the_field(
    algorithm: str, params: dict[str, object], field: str
) -> None:
    with pytest.raises(HyperparameterError) as info:
        validate(algorithm, params)
    assert info.value.field == field
    assert field in info.value.message


def test_numeric_param_accepts_listed_literal() -> None:
    assert (
        validate("isolation_forest", {"contamination": "auto"})["contamination"]
        == "auto"
    )
    assert (
        validate("isolation_forest", {"contamination": 0.01})["contamination"] == 0.01
    )
