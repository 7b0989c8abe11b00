"""What the Functions host sees when it indexes function_app.py."""

from __future__ import annotations

import json
from pathlib import Path

import azure.functions as func
import pytest

from tests.support.fresh_process import loaded_after

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "sklearn", "xgboost", "lightgbm", "shap", "pyarrow", "sqlalchemy")


@pytest.mark.slow
def test_import_is_light() -> None:
    """Cold start indexes the whole app: it must not drag in the ML stack (how long the
    import takes is measured by bench/bench_import.py, not asserted here)."""
    assert loaded_after("import function_app", HEAVY) == []


def test_declared_functions_are_what_the_host_indexes() -> None:
    import function_app

    # the worker indexes the module-level FunctionRegister, as it does on Azure
    assert isinstance(function_app.app, func.FunctionRegister)
    functions = {f.get_function_name(): f for f in function_app.app.get_functions()}
    http = functions["http_app_func"]
    # get_raw_bindings() is the JSON the Python worker hands the host at indexing time
    bindings = [json.loads(b) for b in http.get_raw_bindings()]
    trigger = next(b for b in bindings if b["type"] == "httpTrigger")
    assert trigger["direction"] == "IN"
    assert trigger["route"] == "/{*route}"
    assert trigger["authLevel"] == "ANONYMOUS"
    assert {m.upper() for m in trigger["methods"]} >= {
        "GET",
        "POST",
        "DELETE",
        "PUT",
        "PATCH",
    }
    assert any(b["type"] == "http" and b["direction"] == "OUT" for b in bindings)


def test_host_json_route_prefix_matches_the_api() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensions"]["http"]["routePrefix"] == "api"
    from functions.api.app import API_PREFIX

    assert API_PREFIX == "/api/v1"


def test_openapi_documents_every_dataset_endpoint() -> None:
    from functions.api.app import create_app

    paths = create_app().openapi()["paths"]
    expected = {
        ("/api/v1/datasets", "get"),
        ("/api/v1/datasets", "post"),
        ("/api/v1/datasets/{dataset_id}", "get"),
        ("/api/v1/datasets/{dataset_id}", "delete"),
        ("/api/v1/datasets/{dataset_id}/schema", "get"),
        ("/api/v1/datasets/{dataset_id}/preview", "get"),
        ("/api/v1/datasets/{dataset_id}/versions", "post"),
        ("/api/v1/health", "get"),
    }
    documented = {(p, m) for p, ops in paths.items() for m in ops}
    assert expected <= documented
    upload = paths["/api/v1/datasets"]["post"]["requestBody"]["content"]
    assert "file" in upload["multipart/form-data"]["schema"]["properties"]


def test_local_settings_example_documents_every_setting() -> None:
    from shared.config import Settings

    example = json.loads((ROOT / "local.settings.example.json").read_text())
    values = example["Values"]
    for name in Settings.model_fields:
        assert f"SH_{name.upper()}" in values, name
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
