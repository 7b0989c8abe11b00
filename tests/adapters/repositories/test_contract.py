"""The metadata repositories on SQLite and PostgreSQL: what each method finds and
changes, and the unit of work around them (one commit, a rollback on error, a broken
unique constraint as ``Duplicate``)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from shared.adapters.repositories.uow import SqlTransactions
from shared.db.models import (
    Alert,
    AlertRule,
    Baseline,
    Dataset,
    DatasetVersion,
    FeatureSet,
    Job,
    MLModel,
    ModelTransition,
    Prediction,
    TrainingJob,
)
from shared.db.session import Database
from shared.db.types import utcnow
from shared.ports import Duplicate, Transactions


@pytest.fixture
def uow(db: Database) -> Transactions:
    return SqlTransactions(db)


def _dataset(uow: Transactions, name: str = "tx", versions: int = 1) -> uuid.UUID:
    dataset_id = uuid.uuid4()
    with uow(write=True) as tx:
        tx.datasets.add(Dataset(id=dataset_id, name=name, storage_path=""))
        for i in range(1, versions + 1):
            tx.datasets.add_version(
                DatasetVersion(
                    dataset_id=dataset_id,
                    version=f"{i}.0",
                    storage_path=f"datasets/{dataset_id}/v{i}.0/data.parquet",
                    source_format="csv",
                    size_bytes=10,
                    row_count=i,
                    schema={"columns": []},
                    created_at=utcnow() + timedelta(seconds=i),
                )
            )
    return dataset_id


def _feature_set(
    uow: Transactions,
    dataset_id: uuid.UUID | None,
    config: dict[str, Any] | None = None,
) -> uuid.UUID:
    fs_id = uuid.uuid4()
    with uow() as tx:
        tx.feature_sets.add(
            FeatureSet(
                id=fs_id,
                dataset_id=dataset_id,
                dataset_version="1.0",
                name="f",
                feature_config=config or {"windows": ["1h"]},
            )
        )
    return fs_id


def _model(
    uow: Transactions,
    name: str = "fraud",
    version: str = "1.0",
    fs_id: uuid.UUID | None = None,
    status: str = "TRAINED",
) -> uuid.UUID:
    model_id = uuid.uuid4()
    with uow(write=True) as tx:
        tx.models.add(
            MLModel(
                id=model_id,
                name=name,
                version=version,
                algorithm="xgboost",
                storage_path=f"models/{model_id}/",
                feature_set_id=fs_id,
                status=status,
                promoted_at=utcnow() if status == "PRODUCTION" else None,
            )
        )
    return model_id


# -- the unit of work ----------------------------------------------------------------


def test_a_unit_of_work_commits_at_the_end_and_rolls_back_on_error(
    uow: Transactions,
) -> None:
    with pytest.raises(RuntimeError), uow(write=True) as tx:
        tx.datasets.add(Dataset(name="gone", storage_path=""))
        tx.flush()
        raise RuntimeError("after the flush")
    with uow() as tx:
        assert tx.datasets.page(1, 10, None).total == 0
    _dataset(uow)
    with uow() as tx:
        assert tx.datasets.page(1, 10, None).total == 1


def test_every_repository_of_a_unit_shares_its_transaction(
    uow: Transactions,
) -> None:
    """A write through one repository and a failure after a write through another
    leave nothing: the registry and the dataset delete rely on it."""
    fs_id = _feature_set(uow, _dataset(uow))
    with pytest.raises(RuntimeError), uow(write=True) as tx:
        tx.models.add(
            MLModel(
                name="m",
                version="1.0",
                algorithm="a",
                storage_path="",
                feature_set_id=fs_id,
            )
        )
        tx.feature_sets.delete([])
        tx.jobs.add(Job(kind="features", input={}))
        tx.flush()
        raise RuntimeError("the companion write failed")
    with uow() as tx:
        assert tx.models.trained_on([fs_id]) == []
        assert tx.jobs.page(1, 10, None, None).total == 0


def test_a_broken_unique_constraint_is_a_duplicate(uow: Transactions) -> None:
    _model(uow, version="1.0")
    with pytest.raises(Duplicate):
        _model(uow, version="1.0")  # at commit
    with pytest.raises(Duplicate), uow(write=True) as tx:
        tx.models.add(
            MLModel(name="fraud", version="1.0", algorithm="a", storage_path="")
        )
        tx.flush()
    _model(uow, version="2.0", status="PRODUCTION")
    with pytest.raises(Duplicate):
        _model(uow, version="3.0", status="PRODUCTION")  # one PRODUCTION per name


# -- datasets ----------------------------------------------------------------------


def test_datasets_and_their_versions(uow: Transactions) -> None:
    dataset_id = _dataset(uow, "Card Payments", versions=3)
    _dataset(uow, "other_100%")
    with uow() as tx:
        found = tx.datasets.get(dataset_id)
        assert found is not None and found.name == "Card Payments"
        assert tx.datasets.get(uuid.uuid4()) is None
        assert tx.datasets.id_named("Card Payments") == dataset_id
        assert tx.datasets.id_named("card payments") is None
        assert tx.datasets.version_count(dataset_id) == 3
        assert [v.version for v in tx.datasets.versions(dataset_id)] == [
            "1.0",
            "2.0",
            "3.0",
        ]
        second = tx.datasets.version(dataset_id, "2.0")
        assert second is not None and second.row_count == 2
        assert tx.datasets.version(dataset_id, "9.0") is None
        assert [d.name for d in tx.datasets.page(1, 10, "PAYMENT").items] == [
            "Card Payments"
        ]
        assert [d.name for d in tx.datasets.page(1, 10, "_100%").items] == [
            "other_100%"
        ]
        newest_first = tx.datasets.page(1, 1, None)
        assert (newest_first.total, newest_first.items[0].name) == (2, "other_100%")


def test_a_tombstone_is_not_listed_and_delete_takes_the_versions(
    uow: Transactions,
) -> None:
    dataset_id = _dataset(uow, versions=2)
    with uow(write=True) as tx:
        row = tx.datasets.get_for_update(dataset_id)
        assert row is not None
        row.status = "DELETING"
    with uow(write=True) as tx:
        assert tx.datasets.page(1, 10, None).total == 0
        row = tx.datasets.get_for_update(dataset_id)
        assert row is not None
        tx.datasets.delete(row)
    with uow() as tx:
        assert tx.datasets.get(dataset_id) is None
        assert tx.datasets.versions(dataset_id) == []
        assert tx.datasets.get_for_update(uuid.uuid4()) is None


# -- feature sets ------------------------------------------------------------------


def test_feature_sets(uow: Transactions) -> None:
    dataset_id = _dataset(uow)
    first = _feature_set(uow, dataset_id, {"windows": ["1h"]})
    second = _feature_set(uow, dataset_id, {"windows": ["24h"]})
    elsewhere = _feature_set(uow, None)
    with uow() as tx:
        fs = tx.feature_sets.get(first)
        assert fs is not None and fs.feature_config == {"windows": ["1h"]}
        assert [f.id for f in tx.feature_sets.of_dataset(dataset_id)] == [first, second]
        assert tx.feature_sets.any_of_dataset(dataset_id)
        assert not tx.feature_sets.any_of_dataset(uuid.uuid4())
        assert tx.feature_sets.page(1, 10, None).total == 3
        page = tx.feature_sets.page(1, 10, dataset_id)
        assert {f.id for f in page.items} == {first, second}
        assert {"windows": ["24h"]} in tx.feature_sets.configs()
    with uow(write=True) as tx:
        tx.feature_sets.delete([first, elsewhere])
    with uow() as tx:
        assert [f.id for f in tx.feature_sets.page(1, 10, None).items] == [second]


# -- jobs --------------------------------------------------------------------------


def test_jobs_of_every_kind(uow: Transactions) -> None:
    fs_id = _feature_set(uow, _dataset(uow))
    feature_job = Job(kind="features", input={"dataset_id": "d"})
    training = TrainingJob(name="fraud", algorithm="xgboost", feature_set_id=fs_id)
    done = Job(kind="features", input={}, status="COMPLETED")
    with uow(write=True) as tx:
        for job in (feature_job, training, done):
            tx.jobs.add(job)
    with uow() as tx:
        assert tx.jobs.status(feature_job.id) == "PENDING"
        assert tx.jobs.status(uuid.uuid4()) is None
        got = tx.jobs.get(training.id)
        assert isinstance(got, TrainingJob) and got.name == "fraud"
        assert tx.jobs.get_training(feature_job.id) is None
        assert tx.jobs.page(1, 10, None, None).total == 3
        assert tx.jobs.page(1, 10, "features", "COMPLETED").total == 1
        listed = tx.jobs.page(1, 10, "training", None).items
        assert [type(j) for j in listed] == [TrainingJob]
        assert {j.id for j in tx.jobs.unfinished()} == {feature_job.id, training.id}
        assert [j.id for j in tx.jobs.unfinished_training_on([fs_id])] == [training.id]
        assert tx.jobs.unfinished_training_on([]) == []


def test_training_jobs_go_with_their_models_and_feature_sets(
    uow: Transactions, db: Database
) -> None:
    fs_id = _feature_set(uow, _dataset(uow))
    model_id = _model(uow)
    on_set = TrainingJob(name="a", algorithm="x", feature_set_id=fs_id)
    made_model = TrainingJob(name="b", algorithm="x", model_id=model_id)
    kept = TrainingJob(name="c", algorithm="x")
    with uow(write=True) as tx:
        for job in (on_set, made_model, kept):
            tx.jobs.add(job)
        tx.jobs.add(Job(kind="features", input={}))
    with uow(write=True) as tx:
        tx.jobs.delete_training_of([], [])
        tx.jobs.delete_training_of([model_id], [fs_id])
    with db.session() as s:
        assert list(s.scalars(select(TrainingJob.id))) == [kept.id]
        assert s.scalar(select(func.count()).select_from(Job)) == 2


# -- models ------------------------------------------------------------------------


def test_models_versions_and_the_production_model(uow: Transactions) -> None:
    fs_id = _feature_set(uow, _dataset(uow))
    first = _model(uow, version="1.0", fs_id=fs_id)
    second = _model(uow, version="2.0", fs_id=fs_id, status="PRODUCTION")
    other = _model(uow, name="other", version="1.0", status="PRODUCTION")
    with uow(write=True) as tx:
        row = tx.models.get(other)
        assert row is not None
        row.promoted_at = utcnow() + timedelta(seconds=5)
    with uow() as tx:
        assert sorted(tx.models.versions("fraud")) == ["1.0", "2.0"]
        assert tx.models.versions("nothing") == []
        assert tx.models.production_id("fraud") == second
        assert tx.models.production_id() == other  # the latest promoted
        assert tx.models.production_id("unknown") is None
        assert [m.id for m in tx.models.trained_on([fs_id])] == [first, second]
        assert tx.models.trained_on([]) == []
        assert tx.models.page(1, 10, "fraud", None).total == 2
        assert [m.id for m in tx.models.page(1, 10, None, "PRODUCTION").items] == [
            other,
            second,
        ]


def test_transitions_baselines_and_the_previous_production_model(
    uow: Transactions,
) -> None:
    first = _model(uow, version="1.0")
    second = _model(uow, version="2.0")
    _model(uow, name="other", version="1.0")
    with uow(write=True) as tx:
        a, b = tx.models.get(first), tx.models.get(second)
        assert a is not None and b is not None
        assert tx.models.previous_production(b) is None
        tx.models.add_transition(
            ModelTransition(
                model_id=first,
                from_status="PRODUCTION",
                to_status="ARCHIVED",
                action="archive",
            )
        )
        tx.models.add_baselines(
            [
                Baseline(
                    model_id=second,
                    metric_name="auc_roc",
                    threshold=0.8,
                    operator="gte",
                ),
                Baseline(
                    model_id=second,
                    metric_name="fpr",
                    threshold=0.1,
                    operator="lte",
                    is_active=False,
                ),
            ]
        )
        tx.flush()
        previous = tx.models.previous_production(b)
        assert previous is not None and previous.id == first
        assert [x.metric_name for x in tx.models.active_baselines(second)] == [
            "auc_roc"
        ]
        assert [t.action for t in tx.models.transitions_of_name("fraud")] == ["archive"]
        assert tx.models.transitions_of_name("other") == []


def test_deleting_models_takes_their_own_rows(uow: Transactions, db: Database) -> None:
    gone, kept = _model(uow, version="1.0"), _model(uow, version="2.0")
    with uow(write=True) as tx:
        for model_id in (gone, kept):
            rule = AlertRule(
                name="r",
                alert_type="drift",
                model_id=model_id,
                metric_name="psi",
                operator="gte",
                threshold=0.2,
                severity="high",
            )
            tx.session.add(rule)
            tx.flush()
            tx.session.add(
                Alert(rule_id=rule.id, alert_type="drift", severity="high", title="t")
            )
            tx.models.add_baselines(
                [
                    Baseline(
                        model_id=model_id,
                        metric_name="auc_roc",
                        threshold=0.5,
                        operator="gte",
                    )
                ]
            )
        tx.session.add(
            Prediction(
                model_id=kept,
                transaction_id="T1",
                input_features={},
                fraud_score=0.1,
                is_fraud=False,
            )
        )
    with uow(write=True) as tx:
        assert tx.models.has_predictions(kept) and not tx.models.has_predictions(gone)
        tx.models.delete([])
        tx.models.delete([gone])
    with uow() as tx:
        assert tx.models.get(gone) is None and tx.models.get(kept) is not None
        assert tx.models.active_baselines(gone) == []
        assert len(tx.models.active_baselines(kept)) == 1
    with db.session() as s:
        # the install's default rules (migration 0010) watch every model: model_id null
        own_rules = select(func.count()).where(AlertRule.model_id.is_not(None))
        assert s.scalar(own_rules) == 1
        assert s.scalar(select(func.count()).select_from(Alert)) == 1
