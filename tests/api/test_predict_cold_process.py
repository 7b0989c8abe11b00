"""The scoring path in a fresh worker process, as after a cold start: one /predict
loads numpy, onnxruntime and SQLAlchemy, and none of the training stack."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from shared.container import Container
from tests.support.fresh_process import run_fresh
from tests.support.serving import as_request, generated, serve

pytestmark = pytest.mark.slow

TRAINING_STACK = (
    "pandas",
    "pyarrow",
    "sklearn",
    "xgboost",
    "lightgbm",
    "shap",
    "scipy",
)

_PROBE = """
import json, sys, time
started = time.perf_counter()
from fastapi.testclient import TestClient
from function_app import asgi_app
with TestClient(asgi_app) as client:
    resp = client.post("/api/v1/predict", json={"transaction": json.loads(sys.argv[1])})
    first = time.perf_counter() - started
    again = client.post("/api/v1/predict", json={"transaction": json.loads(sys.argv[1])})
print(json.dumps({
    "status": resp.status_code,
    "body": resp.json(),
    "replayed": again.json()["data"]["replayed"],
    "seconds": first,
    "loaded": [m for m in %r if m in sys.modules],
}))
"""


# the embedded stack: the child process opens the same database file and blob folder
@pytest.mark.parametrize("ctx", ["embedded"], indirect=True)
def test_first_predict_in_a_fresh_process_loads_no_training_stack(
    client: Any, ctx: Container, runtime: Any
) -> None:
    df = generated(3000)
    serve(client, df.iloc[:2500])
    txn = as_request(df.iloc[2600].to_dict())
    env = {
        **os.environ,
        "SH_DATA_DIR": str(ctx.settings.data_dir),
        "SH_DATABASE_URL": ctx.db.url,
        "SH_LOG_LEVEL": "WARNING",
    }
    result = run_fresh(_PROBE % (TRAINING_STACK,), json.dumps(txn), env=env)
    assert result["status"] == 200, result["body"]
    assert result["body"]["data"]["transaction_id"] == txn["transaction_id"]
    assert result["replayed"] is True
    assert result["loaded"] == [], result["loaded"]
