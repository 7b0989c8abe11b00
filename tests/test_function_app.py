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


def test_timer_functions_declare_their_schedules_from_the_settings() -> None:
    """The binding the host schedules (and the local runtime reads): NCRONTAB with
    seconds, the schedule monitored across restarts, no run at every start."""
    import function_app
    from shared.config import Settings

    defaults = Settings()
    expected = {
        "drift_audit_24h": defaults.drift_schedule_24h,
        "drift_audit_7d": defaults.drift_schedule_7d,
        "feature_log_export": defaults.feature_log_export_schedule,
        "bias_audit_24h": defaults.bias_audit_schedule,
        "operational_alerts": defaults.operational_alerts_schedule,
    }
    assert expected == {
        "drift_audit_24h": "0 5 * * * *",
        "drift_audit_7d": "0 15 2 * * *",
        "feature_log_export": "0 */2 * * * *",
        "operational_alerts": "30 */5 * * * *",
        "bias_audit_24h": "0 30 3 * * *",
    }
    functions = {f.get_function_name(): f for f in _index(function_app.app)}
    for name, schedule in expected.items():
        bindings = [json.loads(b) for b in functions[name].get_raw_bindings()]
        assert bindings == [
            {
                "direction": "IN",
                "type": "timerTrigger",
                "name": "timer",
                "schedule": schedule,
                "runOnStartup": False,
                "useMonitor": True,
            }
        ]


def test_timer_schedules_follow_their_settings(tmp_path: Path) -> None:
    from functions.timers import blueprint
    from tests.conftest import make_settings

    settings = make_settings(
        tmp_path,
        drift_schedule_24h="0 */10 * * * *",
        bias_audit_schedule="0 0 4 * * *",
    )
    app = func.FunctionApp()
    app.register_functions(blueprint(settings))
    declared = {
        f.get_function_name(): json.loads(f.get_raw_bindings()[0])["schedule"]
        for f in app.get_functions()
    }
    assert declared["drift_audit_24h"] == "0 */10 * * * *"
    assert declared["bias_audit_24h"] == "0 0 4 * * *"


def _index(app: func.FunctionApp) -> list[func.Function]:
    """``get_functions()`` again: it refuses a second call unless its memo is cleared."""
    memo = app.functions_bindings
    app.functions_bindings = None
    try:
        return app.get_functions()
    finally:
        app.functions_bindings = memo


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
