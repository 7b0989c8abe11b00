"""The OpenAPI document is true: schemathesis runs every operation it declares, with
every check (status codes, content types, response schemas and headers, schema-valid
data accepted and invalid data refused, no 500s, Allow on 405s ...), and the
interactive docs work offline.

Each operation is its own test (``test_operation[POST /api/v1/predict]``), bounded and
derandomised: the same cases on every run. ``scripts/fuzz_api.py`` runs many more.
The app runs in-process on a throwaway SQLite database, with a dataset, a feature set and
a model in production made first, so that the operations on existing resources are
reached: path parameters are drawn from the generated values and the real ids alike.

Known defects in routes other work is fixing are listed in ``KNOWN_DEFECTS``: a case
whose every failure matches one xfails with its reason; any other failure fails.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup

from shared.adapters.blobs.factory import make_blob_store
from shared.config import Settings
from shared.container import Container, use
from shared.db.session import Database

API = "/api/v1"
# per operation, fuzzing phase (the examples and coverage phases come on top)
EXAMPLES = int(os.environ.get("SH_CONTRACT_EXAMPLES", "20"))


def _app() -> Any:
    from functions.api.app import create_asgi_app

    return create_asgi_app(gateway_secret="")


# Loaded at import: schemathesis makes one test per operation from it. The document
# needs no database; the requests do, and find it through the context set below.
# 413 refuses a body as surely as 422 does: a batch over its limit is schema-invalid
# (maxItems) and refused before its items are read.
_REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422"]
_REJECTIONS += ["428", "429", "5xx"]  # the rest of schemathesis' defaults
schema = schemathesis.openapi.from_asgi(
    f"{API}/openapi.json",
    _app(),
    config=SchemathesisConfig.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": _REJECTIONS}}}
    ),
)

# Real ids by path template, filled by the seeding fixture.
EXISTING: dict[str, dict[str, str]] = {}


@schema.hook
def flatmap_path_parameters(
    context: Any, path_parameters: dict[str, Any]
) -> st.SearchStrategy[dict[str, Any]]:
    """Sometimes the generated ids, sometimes ids that exist."""
    path = context.operation.path if context.operation is not None else ""
    if not path_parameters:
        return st.just(path_parameters)
    real = {
        name: EXISTING[path][name]
        for name in path_parameters
        if name in EXISTING.get(path, {})
    }
    if not real:
        return st.just(path_parameters)
    return st.sampled_from([path_parameters, {**path_parameters, **real}])


@pytest.fixture(scope="module", autouse=True)
def contract_ctx(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[Container]:
    root = tmp_path_factory.mktemp("contract")
    shutil.copyfile(sqlite_template, root / "test.db")
    db = Database(f"sqlite:///{root / 'test.db'}")
    app_settings = Settings(data_dir=root / "data", log_json=False, max_upload_mb=5)
    context = Container(
        settings=app_settings, db=db, blobs=make_blob_store(app_settings)
    )
    use(context)
    _seed(context)
    yield context
    context.close()
    use(None)
    db.dispose()
    EXISTING.clear()


def _seed(context: Container) -> None:
    """A dataset, its feature set, a model trained on it and put in production, as a
    user gets there; then the runtime stops, so that what the fuzzer starts stays put."""
    from local.runtime import LocalRuntime
    from tests.support.data import upload
    from tests.support.jobs import wait_for_job
    from tests.support.serving import generated, promote, train

    runtime = LocalRuntime(context, poll_interval=0.1)
    runtime.start()
    try:
        with TestClient(_app(), raise_server_exceptions=False) as client:
            buf = io.BytesIO()
            generated(n_rows=1500).to_parquet(buf, index=False)
            created = upload(
                client, name="tx", content=buf.getvalue(), filename="tx.parquet"
            )
            dataset_id = created.json()["data"]["id"]
            job = client.post(
                f"{API}/features/compute", json={"dataset_id": dataset_id}
            ).json()["data"]
            done = wait_for_job(client, f"{API}/features/jobs/{job['job_id']}")
            feature_set_id = str(done["feature_set_id"])
            model_id = train(client, feature_set_id)
            details = client.get(f"{API}/models/{model_id}").json()["data"]["details"]
            bias_audit_id = details["bias_audit"]["audit_id"]
            training = client.get(f"{API}/training/jobs").json()["data"][0]
            backfill = promote(client, model_id)["online_backfill_job_id"]
            audit = client.post(
                f"{API}/monitoring/drift/compute", json={"model_id": model_id}
            ).json()["data"]
            wait_for_job(client, f"{API}/monitoring/drift/jobs/{audit['job_id']}")
    finally:
        runtime.stop()
    # jobs the fuzzer starts stay PENDING (the stopped engine's launcher would refuse
    # them: a workflow reaching a real dataset's feature computation got a 500)
    from shared.adapters.launcher import NoLauncher

    context.launcher = NoLauncher()
    dataset = {"dataset_id": dataset_id}
    model = {"model_id": model_id}
    EXISTING.update(
        {
            "/api/v1/datasets/{dataset_id}": dataset,
            "/api/v1/datasets/{dataset_id}/schema": dataset,
            "/api/v1/datasets/{dataset_id}/preview": dataset,
            "/api/v1/datasets/{dataset_id}/versions": dataset,
            "/api/v1/features/sets/{feature_set_id}": {
                "feature_set_id": feature_set_id
            },
            "/api/v1/features/sets/{feature_set_id}/preview": {
                "feature_set_id": feature_set_id
            },
            "/api/v1/features/jobs/{job_id}": {"job_id": job["job_id"]},
            "/api/v1/jobs/{job_id}": {"job_id": backfill},
            "/api/v1/jobs/{job_id}/cancel": {"job_id": backfill},
            "/api/v1/training/jobs/{job_id}": {"job_id": training["job_id"]},
            "/api/v1/monitoring/drift/jobs/{job_id}": {"job_id": audit["job_id"]},
            "/api/v1/monitoring/drift/reports/{audit_id}": {
                "audit_id": audit["job_id"]
            },
            "/api/v1/training/jobs/{job_id}/cancel": {"job_id": training["job_id"]},
            "/api/v1/bias/reports/{audit_id}": {"audit_id": bias_audit_id},
            **{
                f"/api/v1/models/{{model_id}}{tail}": model
                for tail in (
                    "",
                    "/metrics",
                    "/transitions",
                    "/baselines",
                    "/promote",
                    "/rollback",
                    "/evaluation",
                    "/score",
                )
            },
        }
    )


# -- known defects in routes owned elsewhere ------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One failure as the predicates see it."""

    operation: str
    check: str  # the failure's class: RejectedPositiveData, AcceptedNegativeData, ...
    status: int
    body: Any  # the request body sent, as generated (None for multipart)
    answer: Any  # the response body, parsed

    @property
    def fields(self) -> set[str]:
        """The fields an error answer names."""
        error = self.answer.get("error") if isinstance(self.answer, dict) else None
        return {d.get("field", "") for d in (error or {}).get("details", [])}


Predicate = Callable[[Seen], bool]
REJECTED, ACCEPTED = "RejectedPositiveData", "AcceptedNegativeData"
UPLOADS = {f"POST {API}/datasets", f"POST {API}/datasets/{{dataset_id}}/versions"}

# Correct answers the checks cannot know are: an upload's file is read and refused when
# it is not a CSV or Parquet table, and a feature computation's column mapping or
# carried columns name columns the dataset lacks (a workflow reaches a real dataset
# through the links its typed answers give), which no schema can say.
COMPUTE = f"POST {API}/features/compute"
NOT_DEFECTS: list[Predicate] = [
    lambda s: s.operation in UPLOADS and s.check == REJECTED and s.fields == {"file"},
    lambda s: s.operation in UPLOADS and s.check == REJECTED and s.status == 415,
    # nor that a backtest's window_end must come after its window_start
    lambda s: (
        s.operation == f"POST {API}/models/{{model_id}}/score"
        and s.check == REJECTED
        and s.fields == {"window_end"}
    ),
    # nor a drift audit's window rules (an end after the start, at most 90 days,
    # window or window_start)
    lambda s: (
        s.operation == f"POST {API}/monitoring/drift/compute"
        and s.check == REJECTED
        and bool(s.fields)
        and s.fields <= {"window_start", "window_end"}
    ),
    # nor a bias audit's window rules (the same as a drift audit's)
    lambda s: (
        s.operation == f"POST {API}/bias/audit"
        and s.check == REJECTED
        and bool(s.fields)
        and s.fields <= {"window_start", "window_end"}
    ),
    # nor a protected attribute's cross-group rules (api/schemas_bias.py): group
    # names and values unique, bins apart and not empty, critical beyond warning
    lambda s: (
        s.operation == f"POST {API}/bias/protected-attributes"
        and s.check == REJECTED
        and bool(s.fields)
        and all(f.startswith(("groups.", "thresholds.")) for f in s.fields)
    ),
    # nor an alert rule's value that must be a status for status sources and a
    # number for the others (api/schemas_alerts.py), nor a webhook URL's host
    lambda s: (
        s.operation
        in {f"POST {API}/alerts/rules", f"PUT {API}/alerts/rules/{{rule_id}}"}
        and s.check == REJECTED
        and bool(s.fields)
        and all(f == "condition.value" or f.startswith("channels[") for f in s.fields)
    ),
    lambda s: (
        s.operation == COMPUTE
        and s.check == REJECTED
        and bool(s.fields)
        and all(
            f.startswith("column_mapping.") or f == "carry_columns" for f in s.fields
        )
    ),
]

# (reason, predicate): defects of routes other work is fixing, each named with the work
# that removes it; delete an entry when its fix lands. A failure matching none fails.
# Empty now: what the first runs found here (predict timestamps, batch items and
# labels not typed in the schema, the upload form's required name, the dataset preview's
# ?rows= bounds) has been fixed in those routes.
KNOWN_DEFECTS: list[tuple[str, Predicate]] = []


def _seen(case: Any, response: Any, failure: Exception) -> Seen:
    try:
        answer = response.json()
    except ValueError:
        answer = None
    body = case.body if isinstance(case.body, dict | list) else None
    return Seen(
        case.operation.label, type(failure).__name__, response.status_code, body, answer
    )


def _judge(case: Any, response: Any, group: FailureGroup) -> None:
    """Let pass what is no defect, xfail what is a known one, raise the rest."""
    seen = [_seen(case, response, f) for f in group.exceptions]
    left = [s for s in seen if not any(ok(s) for ok in NOT_DEFECTS)]
    if not left:
        return
    reasons = [next((r for r, hit in KNOWN_DEFECTS if hit(s)), None) for s in left]
    if all(reasons):
        pytest.xfail("; ".join(sorted({r for r in reasons if r})))
    raise group


BOUNDED = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@schema.parametrize()
@BOUNDED
def test_operation(case: Any) -> None:
    response = case.call()
    try:
        case.validate_response(response)
    except FailureGroup as group:
        _judge(case, response, group)


# The typed dataset and feature-set answers give links to real ids. Left out of the
# workflows: deleting a dataset (a dataset the fuzzer uploaded is deleted once, and the
# next example's same step answers 404 instead of 204, which hypothesis takes for flaky
# data generation: the workflows share one database; tests/api/test_dataset_delete.py
# covers deletes), and starting training (its split times are free strings in the
# schema, routes/training.py, so a real feature set gets unparseable ones: 422).
_WORKFLOW_SCHEMA = schema.exclude(
    method="DELETE", path=f"{API}/datasets/{{dataset_id}}"
).exclude(method="POST", path=f"{API}/training/jobs")


class _Workflows(_WORKFLOW_SCHEMA.as_state_machine()):  # type: ignore[misc]
    """Sequences along the links schemathesis infers (create, then read, cancel,
    delete): where use_after_free and ensure_resource_availability apply."""

    def validate_response(
        self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
    ) -> None:
        try:
            super().validate_response(response, case, additional_checks, **kwargs)
        except FailureGroup as group:
            _judge(case, response, group)


TestWorkflows = _Workflows.TestCase
TestWorkflows.settings = settings(BOUNDED, stateful_step_count=8)


# -- what the fuzzer does not see -----------------------------------------------------


@pytest.fixture(scope="module")
def client(contract_ctx: Container) -> Iterator[TestClient]:
    with TestClient(_app(), raise_server_exceptions=False) as c:
        yield c


def test_docs_pages_load_their_assets_from_the_app(client: TestClient) -> None:
    for page in ("docs", "redoc"):
        html = client.get(f"{API}/{page}")
        assert html.status_code == 200
        urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*["']([^"']+)["']""", html.text)
        assert urls, html.text
        assert all(u.startswith("/") and not u.startswith("//") for u in urls), urls
        for url in urls:
            if url.endswith((".js", ".css")):
                asset = client.get(url)
                assert asset.status_code == 200, url
                kind = "javascript" if url.endswith(".js") else "css"
                assert kind in asset.headers["content-type"]
                assert len(asset.content) > 10_000
    assert client.get(f"{API}/docs/assets/nothing.js").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/datasets",
        "/jobs",
        "/models",
        "/training/jobs",
        "/features/sets",
        "/bias/protected-attributes",
    ],
)
def test_list_pages_are_bounded(client: TestClient, path: str) -> None:
    for params in ({"page": 4611686018427387904}, {"page": 0}, {"page_size": 101}):
        resp = client.get(f"{API}{path}", params=params)
        assert resp.status_code == 422, (params, resp.text)
        assert resp.json()["error"]["details"][0]["field"] in params
    doc = client.get(f"{API}/openapi.json").json()
    query = {
        p["name"]: p["schema"]
        for p in doc["paths"][f"{API}{path}"]["get"]["parameters"]
    }
    assert query["page"]["minimum"] == 1 and query["page"]["maximum"] == 1_000_000
    assert query["page_size"]["minimum"] == 1 and query["page_size"]["maximum"] == 100


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/datasets", {"GET", "POST"}),
        ("/datasets/x", {"GET", "DELETE"}),
        ("/training/jobs", {"GET", "POST"}),
        ("/models/x/promote", {"POST"}),
    ],
)
def test_allow_lists_every_method_of_the_path(
    client: TestClient, path: str, allowed: set[str]
) -> None:
    options = client.options(f"{API}{path}")
    assert options.status_code == 204
    listed = {m.strip() for m in options.headers["allow"].split(",")}
    assert listed - {"HEAD", "OPTIONS"} == allowed
    refused = client.put(f"{API}{path}")
    assert refused.status_code == 405
    assert refused.headers["allow"] == options.headers["allow"]
    assert refused.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


def test_every_error_is_declared_in_the_envelope(client: TestClient) -> None:
    doc = client.get(f"{API}/openapi.json").json()
    assert "HTTPValidationError" not in json.dumps(doc)
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            codes = set(operation["responses"])
            assert {"500", "503"} <= codes, (method, path)
            if "{" in path:
                assert "404" in codes, (method, path)
            if "requestBody" in operation:
                assert {"400", "413", "415", "422"} <= codes, (method, path)


def test_model_literals_match_the_registry() -> None:
    from typing import get_args

    from functions.api.routes.models import Metric, Operator
    from shared.services.models import METRICS, OPERATORS

    assert get_args(Metric) == METRICS
    assert set(get_args(Operator)) == set(OPERATORS)
