"""Protected attributes through the HTTP API: configured by name (created, then
replaced), listed, retired; every kind of bad configuration is a 422 naming its field
and writes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from ml.fairness import DEFAULT_THRESHOLDS, METRICS, CategoricalGroup, NumericBin
from shared.container import Container

API = "/api/v1/bias/protected-attributes"

AGE = {
    "attribute_name": "age_group",
    "column_name": "age",
    "groups": [
        {"name": "18-25", "min": 18, "max": 26},
        {"name": "26-45", "min": 26, "max": 46},
        {"name": "46+", "min": 46},
    ],
    "thresholds": {"disparate_impact": {"warning": 0.8, "critical": 0.5}},
}
GENDER = {
    "attribute_name": "gender",
    "column_name": "gender",
    "groups": [
        {"name": "female", "values": ["F", "female"]},
        {"name": "male", "values": ["M", "male"]},
    ],
}


def _post(client: TestClient, body: dict[str, Any]) -> Any:
    return client.post(API, json=body)


def test_create_list_update_retire(client: TestClient, ctx: Container) -> None:
    created = _post(client, AGE)
    assert created.status_code == 200, created.text
    data = created.json()["data"]
    assert data["created"] is True and data["is_active"] is True
    assert data["kind"] == "numeric"
    assert data["groups"][2] == {"name": "46+", "values": None, "min": 46, "max": None}
    assert data["thresholds"]["disparate_impact"] == {"warning": 0.8, "critical": 0.5}
    default = DEFAULT_THRESHOLDS["demographic_parity_diff"]
    assert data["thresholds"]["demographic_parity_diff"] == {
        "warning": default.warning,
        "critical": default.critical,
    }
    assert set(data["thresholds"]) == set(METRICS)
    assert _post(client, GENDER).json()["data"]["kind"] == "categorical"

    listed = client.get(API).json()
    assert [a["attribute_name"] for a in listed["data"]] == ["age_group", "gender"]
    assert listed["meta"]["pagination"]["total"] == 2

    replaced = _post(client, {**AGE, "column_name": "customer_age", "thresholds": {}})
    body = replaced.json()["data"]
    assert body["created"] is False and body["id"] == data["id"]
    assert body["column_name"] == "customer_age"
    assert body["thresholds"]["disparate_impact"]["critical"] == 0.6  # default again

    retired = client.delete(f"{API}/age_group")
    assert retired.status_code == 200
    assert retired.json()["data"]["is_active"] is False
    assert client.delete(f"{API}/age_group").status_code == 200  # retiring again
    active = client.get(API, params={"active": "true"}).json()["data"]
    assert [a["attribute_name"] for a in active] == ["gender"]
    gone = client.get(API, params={"active": "false"}).json()["data"]
    assert [a["attribute_name"] for a in gone] == ["age_group"]

    specs = ctx.protected_attributes.active()
    assert [s.attribute_name for s in specs] == ["gender"]
    assert specs[0].groups[0] == CategoricalGroup("female", ("F", "female"))
    reactivated = _post(client, {**AGE, "is_active": True}).json()["data"]
    assert reactivated["is_active"] is True
    specs = {s.attribute_name: s for s in ctx.protected_attributes.active()}
    assert specs["age_group"].groups[2] == NumericBin("46+", 46, None)
    assert specs["age_group"].thresholds["disparate_impact"].critical == 0.5


def test_retiring_an_unknown_attribute_is_404(client: TestClient) -> None:
    answer = client.delete(f"{API}/nothing")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "NOT_FOUND"


def _with_groups(*groups: dict[str, Any]) -> dict[str, Any]:
    return {**AGE, "groups": list(groups)}


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("empty column", {**AGE, "column_name": ""}, "column_name"),
    ("blank column", {**AGE, "column_name": "   "}, "column_name"),
    ("no column", {k: v for k, v in AGE.items() if k != "column_name"}, "column_name"),
    ("no groups", {**AGE, "groups": []}, "groups"),
    (
        "overlapping bins",
        _with_groups({"name": "a", "min": 18, "max": 30}, {"name": "b", "min": 25}),
        "groups.1.min",
    ),
    (
        "open bins overlapping",
        _with_groups({"name": "a", "max": 30}, {"name": "b", "max": 20}),
        "groups.0.min",
    ),
    ("empty bin", _with_groups({"name": "a", "min": 5, "max": 5}), "groups.0.max"),
    (
        "duplicate names",
        _with_groups({"name": "a", "max": 5}, {"name": "a", "min": 5}),
        "groups.1.name",
    ),
    (
        "a value in two groups",
        _with_groups({"name": "a", "values": ["x"]}, {"name": "b", "values": ["x"]}),
        "groups.1.values",
    ),
    (
        "mixed kinds",
        _with_groups({"name": "a", "values": ["x"]}, {"name": "b", "min": 5}),
        "groups",
    ),
    ("neither values nor bounds", _with_groups({"name": "a"}), "groups.0"),
    (
        "both values and bounds",
        _with_groups({"name": "a", "values": ["x"], "min": 1}),
        "groups.0",
    ),
    ("empty values", _with_groups({"name": "a", "values": []}), "groups.0.values"),
    (
        "unknown metric",
        {**AGE, "thresholds": {"accuracy": {"warning": 0.1, "critical": 0.2}}},
        "thresholds.accuracy",
    ),
    (
        "critical on the wrong side",
        {**AGE, "thresholds": {"disparate_impact": {"warning": 0.6, "critical": 0.8}}},
        "thresholds.disparate_impact.critical",
    ),
    (
        "difference critical below warning",
        {**AGE, "thresholds": {"fpr_parity_diff": {"warning": 0.2, "critical": 0.1}}},
        "thresholds.fpr_parity_diff.critical",
    ),
    (
        "out of range",
        {**AGE, "thresholds": {"fpr_parity_diff": {"warning": 0.2, "critical": 2}}},
        "thresholds.fpr_parity_diff.critical",
    ),
    ("bad name", {**AGE, "attribute_name": "a b"}, "attribute_name"),
    ("active as text", {**AGE, "is_active": "yes"}, "is_active"),
    ("unknown field", {**AGE, "colour": "red"}, "colour"),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD, ids=[b[0] for b in BAD])
def test_bad_configuration_is_422_naming_the_field(
    client: TestClient, case: str, body: dict[str, Any], field: str
) -> None:
    answer = _post(client, body)
    assert answer.status_code == 422, answer.text
    fields = [d["field"] for d in answer.json()["error"]["details"]]
    assert any(f == field or f.startswith(f"{field}.") for f in fields), (case, fields)
    assert client.get(API).json()["data"] == []  # nothing written


def test_metric_names_match_ml() -> None:
    from typing import get_args

    from functions.api.schemas_bias import ThresholdsIn
    from shared.services.fairness_commands import MetricName

    assert set(get_args(MetricName)) == set(METRICS)
    assert set(ThresholdsIn.model_fields) == set(METRICS)
