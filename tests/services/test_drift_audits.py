"""Drift audits on SQLite with a fake feature log: statuses, stored rows, alerts on a
status rise, NO_DATA, bad requests, the features view and performance over time."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from ml.monitoring import realised_metrics
from shared.adapters.blobs.local import LocalBlobStore
from shared.adapters.bus.in_process import InProcessAlertBus
from shared.adapters.repositories.uow import SqlTransactions
from shared.db.models import Alert, DriftAudit, DriftMetric, MLModel
from shared.db.session import Database
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.ports import LoggedWindow
from shared.services.alert_rules import AlertEngine
from shared.services.drift_audits import JOB_KIND, ORCHESTRATOR, DriftAudits
from shared.services.drift_baselines import DriftBaselines, baseline_path
from shared.services.jobs import JobService
from shared.services.monitoring_commands import (
    AuditCommand,
    DriftQuery,
    PerformanceQuery,
)
from shared.services.performance import PerformanceService

NAMES = ["amount", "velocity", "hour", "distance", "device_type"]
THRESHOLD = 0.5
# over scipy's exact KS size (10,000): its exact p-value takes a second a feature
ROWS = 12_000


def _features(rng: np.random.Generator, n: int, shift: float = 0.0) -> np.ndarray:
    x = np.column_stack(
        [
            rng.lognormal(3 + shift, 1, n),
            rng.poisson(3 + 4 * shift, n).astype(float) + rng.random(n),
            rng.normal(12 + 4 * shift, 4, n),
            rng.exponential(10 * (1 + shift), n),
            rng.choice(
                4, n, p=[0.4, 0.3, 0.2, 0.1] if not shift else [0.1, 0.2, 0.3, 0.4]
            ),
        ]
    )
    return x.astype(np.float32)


def _scores(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated scores and labels drawn from them."""
    scores = rng.beta(0.5, 4, n)
    return scores, (rng.random(n) < scores).astype(np.float64)


@dataclass
class FakeLog:
    """``FeatureLogReader`` over arrays kept per model."""

    windows: dict[uuid.UUID, LoggedWindow] = field(default_factory=dict)
    calls: list[tuple[datetime, datetime, tuple[str, ...]]] = field(
        default_factory=list
    )

    def put(
        self,
        model_id: uuid.UUID,
        features: np.ndarray,
        scores: np.ndarray,
        labels: np.ndarray,
        at: datetime,
    ) -> None:
        n = len(scores)
        base = int(at.timestamp() * 1e9)
        spread = np.linspace(0, 30 * 60 * 1e9, n, endpoint=False).astype(np.int64)
        self.windows[model_id] = LoggedWindow(
            tuple(NAMES),
            features,
            scores,
            labels,
            base - spread,
            np.full(n, 3.0),
        )

    def window(
        self,
        model_id: uuid.UUID,
        start: datetime,
        end: datetime,
        feature_names: Sequence[str],
    ) -> LoggedWindow:
        self.calls.append((start, end, tuple(feature_names)))
        w = self.windows.get(model_id)
        if w is None:
            empty = np.empty(0)
            return LoggedWindow(
                tuple(feature_names),
                np.empty((0, len(feature_names)), np.float32),
                empty,
                empty,
                empty.astype(np.int64),
                empty,
            )
        lo, hi = int(start.timestamp() * 1e9), int(end.timestamp() * 1e9)
        keep = (w.created_at_ns >= lo) & (w.created_at_ns < hi)
        columns = [NAMES.index(n) for n in feature_names]
        return LoggedWindow(
            tuple(feature_names),
            w.features[keep][:, columns],
            w.scores[keep],
            w.labels[keep],
            w.created_at_ns[keep],
            w.latency_ms[keep],
        )


class Launches:
    def __init__(self) -> None:
        self.started: list[tuple[str, str]] = []

    def launch(self, orchestrator: str, job_id: str, payload: dict[str, Any]) -> None:
        self.started.append((orchestrator, job_id))

    def cancel(self, job_id: str, reason: str) -> None:
        return None


@dataclass
class World:
    db: Database
    audits: DriftAudits
    log: FakeLog
    baselines: DriftBaselines
    launches: Launches
    rng: np.random.Generator
    performance: PerformanceService

    def model(self, status: str = "PRODUCTION", baseline: bool = True) -> uuid.UUID:
        model_id = uuid.uuid4()
        scores, labels = _scores(self.rng, 20_000)
        train = realised_metrics(labels, scores, THRESHOLD)
        with self.db.session() as s:
            s.add(
                MLModel(
                    id=model_id,
                    name=f"fraud-{model_id.hex[:6]}",
                    version="1.0",
                    algorithm="xgboost",
                    storage_path=f"models/{model_id}/",
                    status=status,
                    metrics={
                        "precision": train.precision,
                        "recall": train.recall,
                        "auc_roc": train.auc,
                        "support": train.count,
                    },
                    details={"features": NAMES, "threshold": THRESHOLD},
                )
            )
        if baseline:
            self.baselines.store(model_id, _features(self.rng, 20_000), NAMES)
        return model_id

    def stream(self, model_id: uuid.UUID, shift: float = 0.0, n: int = ROWS) -> None:
        scores, labels = _scores(self.rng, n)
        labels[n // 2 :] = np.nan  # half not labelled yet
        at = datetime.now(UTC) - timedelta(minutes=1)
        self.log.put(model_id, _features(self.rng, n, shift), scores, labels, at)

    def rows(self, table: Any, model_id: uuid.UUID) -> list[Any]:
        with self.db.session() as s:
            return list(s.scalars(select(table).where(table.model_id == model_id)))


@pytest.fixture
def world(sqlite_db: Database, tmp_path: Path) -> Iterator[World]:
    uow = SqlTransactions(sqlite_db)
    launches = Launches()
    blobs = LocalBlobStore(tmp_path / "blobs")
    baselines = DriftBaselines(blobs)
    log = FakeLog()
    jobs = JobService(uow, lambda: launches)
    audits = DriftAudits(
        uow, baselines, log, jobs, launches, AlertEngine(uow, InProcessAlertBus())
    )
    yield World(
        sqlite_db,
        audits,
        log,
        baselines,
        launches,
        np.random.default_rng(7),
        PerformanceService(uow, log),
    )


def _run(world: World, model_id: uuid.UUID, **kw: Any) -> dict[str, Any]:
    accepted = world.audits.request(AuditCommand(str(model_id), **kw))
    assert accepted.status == "PENDING"
    assert world.launches.started[-1] == (ORCHESTRATOR, accepted.job_id)
    result = world.audits.run_job(accepted.job_id)
    assert result["status"] == "COMPLETED", result
    job = world.audits.job(accepted.job_id)
    assert job["kind"] == JOB_KIND and job["status"] == "COMPLETED"
    return result


def test_an_undrifted_stream_is_ok_without_an_alert(world: World) -> None:
    model_id = world.model()
    world.stream(model_id)
    result = _run(world, model_id, window="1h")
    assert result["drift_status"] == "OK" and result["rows"] == ROWS
    assert result["alert_id"] is None
    assert world.rows(Alert, model_id) == []
    metrics = world.rows(DriftMetric, model_id)
    assert {m.drift_type for m in metrics} == {"DATA", "FEATURE", "CONCEPT"}
    assert {m.feature_name for m in metrics if m.drift_type == "FEATURE"} == set(NAMES)
    device = {m.metric_name for m in metrics if m.feature_name == "device_type"}
    assert device == {"psi", "chi_square_p"}
    amount = {m.metric_name for m in metrics if m.feature_name == "amount"}
    assert amount == {"psi", "ks_statistic", "ks_p"}

    latest = world.audits.latest(DriftQuery(str(model_id), "1h"))
    assert latest.status == "OK" and latest.row_count == ROWS
    assert latest.data_drift["status"] == "OK"
    by_name = {f["name"]: f for f in latest.data_drift["features"]}
    assert by_name["amount"]["ks_p"] is not None
    assert by_name["device_type"]["chi_square_p"] is not None
    assert by_name["device_type"]["ks_statistic"] is None
    concept = latest.concept_drift
    assert concept is not None and concept["labelled_count"] == ROWS // 2
    assert concept["status"] == "OK"
    # CBPE on calibrated scores lands near the realised metrics (about 150 of the
    # 6,000 labelled rows are flagged: precision is the noisier one)
    realised, estimated = concept["realised"], concept["estimated"]
    assert abs(estimated["precision"] - realised["precision"]) < 0.1
    assert abs(estimated["auc"] - realised["auc"]) < 0.05
    assert concept["estimation_error"]["auc"] is not None
    report = world.audits.report(latest.audit_id)
    assert report.startswith("<!DOCTYPE html>") and "amount" in report


def test_a_drifted_stream_is_critical_and_records_an_alert(world: World) -> None:
    model_id = world.model()
    world.stream(model_id, shift=1.0)
    result = _run(world, model_id)
    assert result["drift_status"] == "CRITICAL"
    (alert,) = world.rows(Alert, model_id)
    assert str(alert.id) == result["alert_id"]
    assert (alert.alert_type, alert.severity, alert.status) == (
        "DRIFT",
        "CRITICAL",
        "ACTIVE",
    )
    named = {f["name"] for f in alert.details["features"]}
    assert named == set(NAMES)
    assert "amount" in alert.title
    (audit,) = world.rows(DriftAudit, model_id)
    assert (audit.status, audit.window, audit.row_count) == ("CRITICAL", "24h", ROWS)
    stored = json.loads(world.baselines.blobs.get_bytes(audit.result_path))
    assert stored["data_drift"]["status"] == "CRITICAL"


def test_no_predictions_is_no_data_with_the_count(world: World) -> None:
    model_id = world.model()
    result = _run(world, model_id, window="7d")
    assert (result["drift_status"], result["rows"]) == ("NO_DATA", 0)
    latest = world.audits.latest(DriftQuery(str(model_id), "7d"))
    assert (latest.status, latest.row_count) == ("NO_DATA", 0)
    assert latest.data_drift["overall_psi"] is None
    assert world.rows(Alert, model_id) == []


def test_a_repeat_within_the_cooldown_counts_on_the_open_alert(world: World) -> None:
    model_id = world.model()
    expected = [
        (0.0, "OK", 0, 0),
        (1.0, "CRITICAL", 1, 1),  # OK -> CRITICAL
        (1.0, "CRITICAL", 1, 2),  # a repeat within the default rule's hour
        (None, "NO_DATA", 1, 2),  # no data says nothing
        (1.0, "CRITICAL", 1, 3),
        (0.0, "OK", 1, 3),
        (1.0, "CRITICAL", 1, 4),  # still the open alert's cooldown
    ]
    for shift, status, alerts, occurrences in expected:
        if shift is None:
            world.log.windows.pop(model_id)
        else:
            world.stream(model_id, shift)
        assert world.audits.run_scheduled("24h") == 1
        with world.db.session() as s:
            latest = s.scalars(
                select(DriftAudit.status).order_by(DriftAudit.computed_at.desc())
            ).first()
        assert latest == status
        drift = [a for a in world.rows(Alert, model_id) if a.alert_type == "DRIFT"]
        assert len(drift) == alerts
        assert sum(a.occurrences for a in drift) == occurrences


def test_scheduled_audits_cover_production_models_only(world: World) -> None:
    production = world.model()
    staging = world.model(status="STAGING")
    world.model(status="ARCHIVED")
    world.stream(production)
    world.stream(staging)
    assert world.audits.run_scheduled("24h") == 1
    assert len(world.rows(DriftAudit, production)) == 1
    assert world.rows(DriftAudit, staging) == []
    start, end, names = world.log.calls[-1]
    assert end - start == timedelta(hours=24) and names == tuple(NAMES)


def test_a_production_model_that_cannot_be_audited_is_skipped(world: World) -> None:
    bare = world.model(baseline=False)
    audited = world.model()
    world.stream(audited)
    assert world.audits.run_scheduled("1h") == 1
    assert world.rows(DriftAudit, bare) == []
    assert len(world.rows(DriftAudit, audited)) == 1
    with pytest.raises(ValidationFailed):
        world.audits.run_scheduled("2h")


def test_a_rerun_job_finds_its_audit(world: World) -> None:
    model_id = world.model()
    world.stream(model_id, shift=1.0)
    accepted = world.audits.request(AuditCommand(str(model_id)))
    first = world.audits.run_job(accepted.job_id)
    again = world.audits.run_job(accepted.job_id)
    assert again["audit_id"] == first["audit_id"] == accepted.job_id
    assert len(world.rows(DriftAudit, model_id)) == 1
    assert len(world.rows(Alert, model_id)) == 1


def test_bad_requests(world: World) -> None:
    model_id = str(world.model())
    now = datetime.now(UTC)

    def field(cmd: AuditCommand) -> str:
        with pytest.raises(ValidationFailed) as info:
            world.audits.request(cmd)
        return str(info.value.details[0]["field"])

    assert field(AuditCommand(model_id, None, now, now - timedelta(hours=1))) == (
        "window_end"
    )
    assert field(AuditCommand(model_id, None, now - timedelta(days=91), now)) == (
        "window_start"
    )
    assert field(AuditCommand(model_id, "2d")) == "window"
    assert field(AuditCommand(model_id, "7d", now - timedelta(days=1))) == (
        "window_start"
    )
    with pytest.raises(NotFound):
        world.audits.request(AuditCommand(str(uuid.uuid4())))
    with pytest.raises(NotFound):
        world.audits.request(AuditCommand("not-a-uuid"))
    bare = world.model(baseline=False)
    with pytest.raises(Conflict, match=str(bare)):
        world.audits.request(AuditCommand(str(bare)))
    assert world.launches.started == []


def test_reading_before_any_audit_and_unknown_names(world: World) -> None:
    model_id = world.model()
    with pytest.raises(NotFound, match="No drift audit"):
        world.audits.latest(DriftQuery(str(model_id), "7d"))
    world.stream(model_id)
    _run(world, model_id)
    with pytest.raises(NotFound, match="no feature 'nope'"):
        world.audits.features(DriftQuery(str(model_id), "24h", "nope"))
    with pytest.raises(NotFound):
        world.audits.report(str(uuid.uuid4()))
    with pytest.raises(NotFound):
        world.audits.report("x")


def test_features_show_histograms_on_the_same_bins_and_history(world: World) -> None:
    model_id = world.model()
    for shift in (0.0, 1.0):
        world.stream(model_id, shift)
        _run(world, model_id)
    found = world.audits.features(DriftQuery(str(model_id), "24h", "amount"))
    (amount,) = found.features
    assert (
        len(amount["bins"])
        == len(amount["baseline_counts"])
        == len(amount["current_counts"])
    )
    assert amount["bins"][-1] == "missing"
    assert sum(amount["current_counts"]) == ROWS
    assert sum(amount["baseline_shares"]) == pytest.approx(1.0)
    assert set(amount["current_quantiles"]) >= {"p50", "p99"}
    assert amount["baseline_missing_rate"] == 0.0
    assert [p["status"] for p in amount["history"]] == ["OK", "CRITICAL"]
    assert amount["history"][1]["psi"] > 0.2 and amount["history"][1]["ks_p"] < 0.01
    every = world.audits.features(DriftQuery(str(model_id), "24h"))
    assert [f["name"] for f in every.features] == NAMES
    assert all(len(f["history"]) == 2 for f in every.features)


def test_a_baseline_is_stored_where_the_model_keeps_its_files(world: World) -> None:
    model_id = world.model()
    assert world.baselines.blobs.exists(baseline_path(model_id))
    loaded = world.baselines.load(model_id)
    assert loaded is not None and loaded.names == NAMES
    assert loaded.feature("device_type").kind == "categorical"
    assert world.baselines.load(uuid.uuid4()) is None


def test_performance_per_day(world: World) -> None:
    model_id = world.model()
    world.stream(model_id)
    series = world.performance.over_time(PerformanceQuery(str(model_id), "7d", "day"))
    assert len(series.buckets) in (7, 8)  # days touched by the window
    assert sum(b["volume"] for b in series.buckets) == ROWS
    busy = [b for b in series.buckets if b["volume"]]
    assert sum(b["labelled_count"] for b in busy) == ROWS // 2
    day = max(busy, key=lambda b: b["volume"])
    assert day["latency_p50_ms"] == 3.0 and day["score_quantiles"]["p50"] is not None
    assert day["estimated"]["precision"] is not None
    assert day["realised"]["count"] == day["labelled_count"]
    empty = [b for b in series.buckets if not b["volume"]]
    assert all(b["estimated"] is None and b["realised"] is None for b in empty)
    hourly = world.performance.over_time(PerformanceQuery(str(model_id), "24h", "hour"))
    assert len(hourly.buckets) in (24, 25)
    with pytest.raises(ValidationFailed):
        world.performance.over_time(PerformanceQuery(str(model_id), "24h", "week"))
    with pytest.raises(NotFound):
        world.performance.over_time(PerformanceQuery(str(uuid.uuid4())))
