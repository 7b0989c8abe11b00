"""Training requests and fairness: protected columns refused as model features unless
allowed explicitly (recorded), and fairness_mitigation checked against the active
protected attributes before any job exists."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest

from ml.datagen import GeneratorConfig, generate_transactions
from shared.container import Container
from shared.db.models import FeatureSet, ProtectedAttribute, TrainingJob
from tests.support.data import upload
from tests.support.jobs import wait_for_job
from tests.support.serving import API
from tests.support.serving import PARAMS as SMALL


def _feature_set(ctx: Container, *features: str) -> str:
    fs_id = uuid.uuid4()
    with ctx.db.session() as s:
        s.add(
            FeatureSet(
                id=fs_id,
                name="fs",
                status="READY",
                feature_config={
                    "label_column": "is_fraud",
                    "label_summary": {"positives": 10, "negatives": 90},
                },
                features=[{"name": n} for n in features],
                feature_count=len(features),
                row_count=100,
                storage_path=f"features/{fs_id}.parquet",
            )
        )
    return str(fs_id)


def _attribute(ctx: Container, name: str, column: str, active: bool = True) -> None:
    with ctx.db.session() as s:
        s.add(
            ProtectedAttribute(
                attribute_name=name,
                column_name=column,
                groups=[{"name": "a", "values": ["a"]}],
                thresholds={},
                is_active=active,
            )
        )


def _start(client: Any, fs_id: str, **extra: Any) -> Any:
    body = {"name": "fair", "feature_set_id": fs_id, "algorithm": "xgboost", **extra}
    return client.post(f"{API}/training/jobs", json=body)


def _job_config(ctx: Container, job_id: str) -> dict[str, Any]:
    with ctx.db.session() as s:
        job = s.get(TrainingJob, uuid.UUID(job_id))
        assert job is not None
        return dict(job.config or {})


def test_protected_columns_are_refused_as_features(client: Any, ctx: Container) -> None:
    _attribute(ctx, "region", "home_region")
    for column in ("gender", "age_group", "home_region"):
        resp = _start(client, _feature_set(ctx, "amount", column))
        assert resp.status_code == 422, resp.text
        fields = [d["field"] for d in resp.json()["error"]["details"]]
        assert fields == [f"features.{column}"]
    assert client.get(f"{API}/training/jobs").json()["meta"]["pagination"]["total"] == 0


def test_protected_features_allowed_explicitly_are_recorded(
    client: Any, ctx: Container
) -> None:
    resp = _start(
        client, _feature_set(ctx, "amount", "gender"), allow_protected_features=True
    )
    assert resp.status_code == 202, resp.text
    config = _job_config(ctx, resp.json()["data"]["job_id"])
    assert config["allow_protected_features"] is True
    plain = _start(client, _feature_set(ctx, "amount"))
    assert plain.status_code == 202
    assert "allow_protected_features" not in _job_config(
        ctx, plain.json()["data"]["job_id"]
    )


def test_mitigation_needs_an_active_attribute(client: Any, ctx: Container) -> None:
    _attribute(ctx, "gender", "gender")
    _attribute(ctx, "age", "age_group", active=False)
    fs_id = _feature_set(ctx, "amount")
    for attribute in ("age", "unknown"):
        resp = _start(
            client,
            fs_id,
            fairness_mitigation={
                "method": "threshold_optimizer",
                "constraint": "demographic_parity",
                "attribute": attribute,
            },
        )
        assert resp.status_code == 422, resp.text
        fields = [d["field"] for d in resp.json()["error"]["details"]]
        assert fields == ["fairness_mitigation.attribute"]
    bad_method = _start(
        client,
        fs_id,
        fairness_mitigation={
            "method": "reweigh",
            "constraint": "demographic_parity",
            "attribute": "gender",
        },
    )
    assert bad_method.status_code == 422
    resp = _start(
        client,
        fs_id,
        fairness_mitigation={
            "method": "exponentiated_gradient",
            "constraint": "equalized_odds",
            "attribute": "gender",
        },
    )
    assert resp.status_code == 202, resp.text
    assert _job_config(ctx, resp.json()["data"]["job_id"])["fairness_mitigation"] == {
        "method": "exponentiated_gradient",
        "constraint": "equalized_odds",
        "attribute": "gender",
        "column": "gender",
    }


def _computed_feature_set(client: Any) -> str:
    df = generate_transactions(
        GeneratorConfig(
            n_rows=6000,
            n_users=500,
            n_merchants=60,
            days=30,
            seed=5,
            target_fraud_rate=0.03,
        )
    )
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    resp = upload(client, name="tx", content=buf.getvalue(), filename="tx.parquet")
    dataset_id = resp.json()["data"]["id"]
    job = client.post(f"{API}/features/compute", json={"dataset_id": dataset_id}).json()
    done = wait_for_job(client, f"{API}/features/jobs/{job['data']['job_id']}")
    assert done["status"] == "COMPLETED", done
    return str(done["feature_set_id"])


@pytest.mark.slow
@pytest.mark.parametrize("method", ["threshold_optimizer", "exponentiated_gradient"])
def test_training_with_mitigation_reports_both_models(
    client: Any, ctx: Container, runtime: Any, method: str
) -> None:
    _attribute(ctx, "gender", "gender")
    fs_id = _computed_feature_set(client)
    resp = _start(
        client,
        fs_id,
        hyperparameters=SMALL["xgboost"],
        fairness_mitigation={
            "method": method,
            "constraint": "demographic_parity",
            "attribute": "gender",
        },
    )
    assert resp.status_code == 202, resp.text
    job = wait_for_job(
        client, f"{API}/training/jobs/{resp.json()['data']['job_id']}", 180
    )
    assert job["status"] == "COMPLETED", job
    report = job["metrics"]["fairness_mitigation"]
    assert report["method"] == method
    for side in ("plain", "mitigated"):
        assert {
            "auc_roc",
            "precision",
            "recall",
            "demographic_parity_diff",
            "equalized_odds_diff",
            "disparate_impact",
            "fpr_parity_diff",
        } <= set(report[side])
    served = ctx.predictor.models.get(uuid.UUID(job["model_id"]))
    if method == "exponentiated_gradient":
        assert "group_thresholds" not in report
        assert served.decision_threshold({"gender": "F"}) == served.threshold
        return
    thresholds = report["group_thresholds"]
    assert thresholds and all(0.0 <= t <= 1.0 for t in thresholds.values())
    group, value = next(iter(thresholds.items()))
    assert served.decision_threshold({"gender": group}) == value
    assert served.decision_threshold(None) == served.threshold
    assert served.decision_threshold({"gender": "unseen"}) == served.threshold
