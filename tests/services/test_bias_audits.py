"""Bias audits on SQLite: the test set joined with the feature set's protected columns
and the labelled predictions of a window; statuses (MISSING_COLUMN, NO_DATA,
INSUFFICIENT_DATA), the stored rows, result and report, the summary kept with a
trained model, BIAS alerts on a status rise, bad requests and the scheduled run."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from ml.fairness import CategoricalGroup, audit_attribute
from shared.adapters.blobs.local import LocalBlobStore
from shared.adapters.repositories.uow import SqlTransactions
from shared.db.models import (
    Alert,
    BiasAudit,
    BiasMetric,
    FeatureSet,
    MLModel,
    Prediction,
)
from shared.db.session import Database
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.services.bias_audits import (
    JOB_KIND,
    ORCHESTRATOR,
    BiasAudits,
    TrainingAudit,
)
from shared.services.bias_commands import BiasAuditCommand, BiasMetricsQuery
from shared.services.fairness import ProtectedAttributes
from shared.services.fairness_commands import ConfigureAttribute, GroupConfig
from shared.services.jobs import JobService
from shared.services.model_evaluation import EvaluationRows, ModelEvaluations
from tests.services.test_drift_audits import Launches

THRESHOLD = 0.5
ROWS = 4000
METRICS = {
    "demographic_parity_diff",
    "equalized_odds_diff",
    "disparate_impact",
    "fpr_parity_diff",
}


@dataclass
class World:
    db: Database
    audits: BiasAudits
    attributes: ProtectedAttributes
    evaluations: ModelEvaluations
    blobs: LocalBlobStore
    launches: Launches
    rng: np.random.Generator
    feature_sets: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)

    def configure(self, name: str, column: str, groups: dict[str, list[Any]]) -> None:
        self.attributes.configure(
            ConfigureAttribute(
                name,
                column,
                tuple(GroupConfig(g, tuple(v)) for g, v in groups.items()),
            )
        )

    def model(self, status: str = "PRODUCTION", registered: bool = True) -> uuid.UUID:
        model_id, fs_id = uuid.uuid4(), uuid.uuid4()
        self.feature_sets[model_id] = fs_id
        with self.db.session() as s:
            s.add(
                FeatureSet(
                    id=fs_id,
                    name="fs",
                    feature_config={},
                    storage_path=self.feature_set_path(model_id),
                    status="COMPLETED",
                )
            )
        if registered:
            self.register(model_id, status)
        return model_id

    def feature_set_path(self, model_id: uuid.UUID) -> str:
        return f"features/{self.feature_sets[model_id]}/data.parquet"

    def register(self, model_id: uuid.UUID, status: str = "TRAINED") -> None:
        fs_id = self.feature_sets[model_id]
        with self.db.session() as s:
            s.add(
                MLModel(
                    id=model_id,
                    name=f"fraud-{model_id.hex[:6]}",
                    version="1.0",
                    algorithm="xgboost",
                    storage_path=f"models/{model_id}/",
                    feature_set_id=fs_id,
                    status=status,
                    metrics={},
                    details={"threshold": THRESHOLD},
                )
            )

    def test_rows(self, model_id: uuid.UUID, biased: bool) -> dict[str, np.ndarray]:
        """Stored test rows and the feature set's carried columns (shuffled, with
        rows the test set does not have); females selected more when ``biased``."""
        n = ROWS
        tids = np.array([f"T{i}" for i in range(n)])
        gender = self.rng.choice(["male", "female"], n)
        age = self.rng.choice(["18-25", "26-45", "46+"], n)
        age[:10] = "unknown"  # in no group
        labels = (self.rng.random(n) < 0.2).astype(np.int8)
        scores = np.clip(labels * 0.4 + self.rng.random(n) * 0.5, 0, 1)
        if biased:
            scores = np.where(gender == "female", np.minimum(scores + 0.3, 1), scores)
        self.evaluations.store(
            model_id,
            EvaluationRows(
                transaction_id=tids,
                user_id=np.array(["u"] * n),
                timestamp=np.arange(n, dtype=np.int64) * 10**9,
                label=labels,
                score=scores,
            ),
        )
        order = self.rng.permutation(n)
        table = pa.table(
            {
                "transaction_id": np.concatenate([tids[order], ["X1", "X2"]]),
                "amount": np.ones(n + 2),
                "gender": np.concatenate([gender[order], ["male", "female"]]),
                "age_group": np.concatenate([age[order], ["46+", "46+"]]),
            }
        )
        buf = io.BytesIO()
        pq.write_table(table, buf)
        self.blobs.put_bytes(self.feature_set_path(model_id), buf.getvalue())
        return {
            "gender": gender,
            "age": age,
            "labels": labels,
            "decisions": scores >= THRESHOLD,
        }

    def predictions(
        self, model_id: uuid.UUID, n: int, female_flagged: float, at: datetime
    ) -> None:
        """Labelled predictions (plus unlabelled and unprotected ones) in the minute
        before ``at``; females flagged at ``female_flagged``, males at 0.1."""
        with self.db.session() as s:
            for i in range(n):
                female = i % 2 == 0
                flagged = self.rng.random() < (female_flagged if female else 0.1)
                s.add(
                    Prediction(
                        id=uuid.uuid4(),
                        created_at=at - timedelta(seconds=1 + i * 0.01),
                        model_id=model_id,
                        transaction_id=f"P{i}",
                        input_features={"amount": 1.0},
                        fraud_score=0.9 if flagged else 0.1,
                        is_fraud=flagged,
                        actual_label=bool(self.rng.random() < 0.2),
                        protected_values={"gender": "female" if female else "male"},
                    )
                )
            s.add(  # no label: left out
                Prediction(
                    id=uuid.uuid4(),
                    created_at=at - timedelta(seconds=1),
                    model_id=model_id,
                    input_features={},
                    fraud_score=0.9,
                    is_fraud=True,
                    protected_values={"gender": "female"},
                )
            )

    def rows(self, table: Any, model_id: uuid.UUID) -> list[Any]:
        with self.db.session() as s:
            return list(s.scalars(select(table).where(table.model_id == model_id)))


@pytest.fixture
def world(sqlite_db: Database, tmp_path: Path) -> Iterator[World]:
    uow = SqlTransactions(sqlite_db)
    launches = Launches()
    blobs = LocalBlobStore(tmp_path / "blobs")
    attributes = ProtectedAttributes(uow)
    evaluations = ModelEvaluations(uow, blobs)
    jobs = JobService(uow, lambda: launches)
    audits = BiasAudits(uow, blobs, attributes, jobs, launches, replicates=200)
    w = World(
        sqlite_db,
        audits,
        attributes,
        evaluations,
        blobs,
        launches,
        np.random.default_rng(3),
    )
    w.configure("gender", "gender", {"male": ["male"], "female": ["female"]})
    w.configure(
        "age_group",
        "age_group",
        {"18-25": ["18-25"], "26-45": ["26-45"], "46+": ["46+"]},
    )
    w.configure("ethnicity", "ethnicity", {"a": ["a"], "b": ["b"]})
    yield w


def test_test_set_audit_joins_the_protected_columns(world: World) -> None:
    model_id = world.model()
    truth = world.test_rows(model_id, biased=True)
    result = world.audits.audit(str(model_id), "test_set")

    by_name = {a["attribute"]: a for a in result["attributes"]}
    assert list(by_name) == ["age_group", "ethnicity", "gender"]
    assert by_name["ethnicity"]["status"] == "MISSING_COLUMN"
    assert by_name["gender"]["status"] == "CRITICAL"
    assert result["status"] == "CRITICAL" and result["rows"] == ROWS
    # the same figures as ml.fairness on the test rows themselves (join by id)
    expected = audit_attribute(
        "gender",
        "gender",
        truth["gender"],
        [CategoricalGroup("male", ("male",)), CategoricalGroup("female", ("female",))],
        truth["labels"],
        truth["decisions"],
    )
    gender = by_name["gender"]
    for name, m in expected.metrics.items():
        assert gender["metrics"][name]["value"] == pytest.approx(m.value, abs=1e-12)
    female = gender["group_breakdown"]["female"]
    assert female["count"] == int(np.sum(truth["gender"] == "female"))
    assert by_name["age_group"]["unmatched"] == 10
    assert sum(
        g["count"] for g in by_name["age_group"]["group_breakdown"].values()
    ) == (ROWS - 10)

    (audit,) = world.rows(BiasAudit, model_id)
    assert (audit.source, audit.status, audit.row_count) == (
        "test_set",
        "CRITICAL",
        ROWS,
    )
    assert audit.window is None and audit.job_id is None
    metrics = world.rows(BiasMetric, model_id)
    assert {(m.protected_attribute, m.metric_name) for m in metrics} == {
        (a, m) for a in ("gender", "age_group") for m in METRICS
    }
    assert all(m.audit_id == audit.id for m in metrics)
    dp = next(
        m
        for m in metrics
        if (m.protected_attribute, m.metric_name)
        == ("gender", "demographic_parity_diff")
    )
    assert dp.overall_value == gender["metrics"]["demographic_parity_diff"]["value"]
    assert (
        dp.group_values["groups"]["female"]["selection_rate"]
        == (female["selection_rate"])
    )
    stored = json.loads(world.blobs.get_bytes(audit.result_path))
    assert stored["audit_id"] == str(audit.id)
    assert world.rows(Alert, model_id) == []  # a test set gates, live traffic alerts

    html = world.audits.report(str(audit.id))
    assert "<script" not in html and "<svg" in html and "http" not in html
    for text in ("female", "46+", "MISSING_COLUMN", "disparate_impact", "0.6"):
        assert text in html


def test_small_groups_are_insufficient_data_not_violations(world: World) -> None:
    world.audits.min_group_count = ROWS  # no group has that many rows
    model_id = world.model()
    world.test_rows(model_id, biased=True)
    result = world.audits.audit(str(model_id), "test_set")
    gender = next(a for a in result["attributes"] if a["attribute"] == "gender")
    assert gender["status"] == "INSUFFICIENT_DATA"
    assert {m["status"] for m in gender["metrics"].values()} == {"INSUFFICIENT_DATA"}
    assert {g["status"] for g in gender["group_breakdown"].values()} == {
        "INSUFFICIENT_DATA"
    }
    assert result["status"] == "INSUFFICIENT_DATA"
    assert world.rows(BiasMetric, model_id) == []  # no metric has a value
    assert world.rows(Alert, model_id) == []


def _training_audit(world: World, model_id: uuid.UUID) -> TrainingAudit:
    return world.audits.audit_training(
        model_id, world.feature_set_path(model_id), THRESHOLD
    )


def test_a_model_being_registered_gets_its_audit_summary(world: World) -> None:
    model_id = world.model(registered=False)  # computed from its files alone
    world.test_rows(model_id, biased=True)
    training = _training_audit(world, model_id)
    summary = training.summary
    assert world.rows(BiasAudit, model_id) == []  # nothing stored yet
    assert set(summary) == {"audit_id", "status", "computed_at", "attributes"}
    assert summary["status"] == "CRITICAL"
    world.register(model_id)
    training.store()
    (audit,) = world.rows(BiasAudit, model_id)
    assert summary["audit_id"] == str(audit.id)
    assert world.audits.latest(BiasMetricsQuery(str(model_id))).audit_id == str(
        audit.id
    )
    html = world.audits.report(str(audit.id))
    assert f"fraud-{model_id.hex[:6]} 1.0" in html  # its registered name
    datetime.fromisoformat(summary["computed_at"])
    gender = next(a for a in summary["attributes"] if a["attribute"] == "gender")
    assert gender["status"] == "CRITICAL"
    assert set(gender["metrics"]) == METRICS
    assert all(
        set(m) == {"value", "status"} and isinstance(m["value"], float)
        for m in gender["metrics"].values()
    )
    ethnicity = next(a for a in summary["attributes"] if a["attribute"] == "ethnicity")
    assert ethnicity == {
        "attribute": "ethnicity",
        "status": "MISSING_COLUMN",
        "metrics": {},
    }


def test_a_failed_training_audit_is_summarised_as_error(world: World) -> None:
    model_id = world.model(status="TRAINED")  # no test rows stored
    training = _training_audit(world, model_id)
    summary = training.summary
    assert summary["status"] == "ERROR" and "evaluation" in summary["error"]
    assert summary["audit_id"] is None and summary["attributes"] == []
    training.store()  # nothing to store
    assert world.rows(BiasAudit, model_id) == []


def test_predictions_audit_reads_labelled_rows_and_alerts_on_a_rise(
    world: World,
) -> None:
    model_id = world.model()
    now = datetime.now(UTC)
    world.predictions(model_id, 400, female_flagged=0.6, at=now)
    accepted = world.audits.request(
        BiasAuditCommand(str(model_id), "predictions", window="1h")
    )
    assert world.launches.started == [(ORCHESTRATOR, accepted.job_id)]
    done = world.audits.run_job(accepted.job_id)
    assert done["status"] == "COMPLETED" and done["bias_status"] == "CRITICAL"
    job = world.audits.job(accepted.job_id)
    assert job["kind"] == JOB_KIND and job["status"] == "COMPLETED"
    assert job["result"]["audit_id"] == accepted.job_id  # the job's id is the audit's

    (audit,) = world.rows(BiasAudit, model_id)
    assert (audit.source, audit.window, audit.row_count) == ("predictions", "1h", 400)
    view = world.audits.latest(BiasMetricsQuery(str(model_id)))
    gender = next(a for a in view.protected_attributes if a["attribute"] == "gender")
    assert gender["groups"] == ["male", "female"]
    assert set(gender["metrics"]) == METRICS
    assert {g: r["count"] for g, r in gender["group_breakdown"].items()} == {
        "male": 200,
        "female": 200,
    }
    assert set(gender["group_breakdown"]["male"]) == {
        "fpr",
        "tpr",
        "selection_rate",
        "count",
    }
    statuses = {a["attribute"]: a["status"] for a in view.protected_attributes}
    # nothing logged an age group or an ethnicity
    assert statuses["age_group"] == statuses["ethnicity"] == "MISSING_COLUMN"
    assert view.report_url == f"/api/v1/bias/reports/{audit.id}"

    (alert,) = world.rows(Alert, model_id)
    assert (alert.alert_type, alert.severity) == ("BIAS", "CRITICAL")
    assert alert.details is not None
    assert alert.details["audit_id"] == str(audit.id)
    named = {(v["attribute"], v["metric"]) for v in alert.details["violations"]}
    assert ("gender", "demographic_parity_diff") in named
    assert "gender" in alert.title

    # the same status again: no new alert; the run is idempotent for its job
    assert world.audits.run_job(accepted.job_id)["status"] == "COMPLETED"
    world.audits.audit(str(model_id), "predictions")
    assert len(world.rows(Alert, model_id)) == 1
    assert len(world.rows(BiasAudit, model_id)) == 2


def test_no_labelled_predictions_is_no_data(world: World) -> None:
    model_id = world.model()
    world.predictions(model_id, 50, female_flagged=0.6, at=datetime.now(UTC))
    old = datetime(2020, 1, 1, tzinfo=UTC)
    accepted = world.audits.request(
        BiasAuditCommand(
            str(model_id),
            "predictions",
            window_start=old,
            window_end=old + timedelta(days=1),
        )
    )
    done = world.audits.run_job(accepted.job_id)
    assert done["bias_status"] == "NO_DATA" and done["rows"] == 0
    view = world.audits.latest(BiasMetricsQuery(str(model_id), "predictions"))
    assert {a["status"] for a in view.protected_attributes} == {"NO_DATA"}
    assert world.rows(Alert, model_id) == []


def test_bad_requests_write_nothing(world: World) -> None:
    model_id = world.model()
    with pytest.raises(NotFound):
        world.audits.request(BiasAuditCommand(str(uuid.uuid4())))
    with pytest.raises(NotFound):
        world.audits.request(BiasAuditCommand("not-a-uuid"))
    with pytest.raises(ValidationFailed) as exc:
        world.audits.request(BiasAuditCommand(str(model_id), window="24h"))
    assert exc.value.details[0]["field"] == "window"
    with pytest.raises(ValidationFailed) as exc:
        world.audits.request(
            BiasAuditCommand(str(model_id), "predictions", window="2d")
        )
    assert exc.value.details[0]["field"] == "window"
    assert world.launches.started == []
    with pytest.raises(NotFound):
        world.audits.latest(BiasMetricsQuery(str(model_id)))
    with pytest.raises(NotFound):
        world.audits.report(str(uuid.uuid4()))
    with pytest.raises(NotFound):
        world.audits.report("nope")


def test_a_job_without_test_rows_fails_with_the_reason(world: World) -> None:
    model_id = world.model()
    with pytest.raises(Conflict):  # refused at once
        world.audits.request(BiasAuditCommand(str(model_id)))
    world.test_rows(model_id, biased=False)
    accepted = world.audits.request(BiasAuditCommand(str(model_id)))
    world.blobs.delete_prefix(f"models/{model_id}/")  # gone meanwhile
    done = world.audits.run_job(accepted.job_id)
    assert done["status"] == "FAILED" and "evaluation" in done["error"]
    assert world.audits.job(accepted.job_id)["status"] == "FAILED"


def test_the_schedule_audits_production_models(world: World) -> None:
    live, staged = world.model(), world.model(status="STAGING")
    now = datetime.now(UTC)
    world.predictions(live, 100, female_flagged=0.1, at=now)
    world.predictions(staged, 100, female_flagged=0.1, at=now)
    assert world.audits.run_scheduled("24h") == 1
    (audit,) = world.rows(BiasAudit, live)
    assert (audit.source, audit.window) == ("predictions", "24h")
    assert world.rows(BiasAudit, staged) == []
