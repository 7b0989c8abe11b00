"""The unit of work: one session, its repositories, one commit (cosmicpython's
``SqlAlchemyUnitOfWork``). Work spanning several aggregates (registering a model with
its job's completion, a dataset's cascading delete) is atomic because every repository
of a unit shares its session."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.adapters.repositories.alert_rules import SqlAlertRuleRepository
from shared.adapters.repositories.bias import SqlBiasRepository
from shared.adapters.repositories.datasets import SqlDatasetRepository
from shared.adapters.repositories.feature_sets import SqlFeatureSetRepository
from shared.adapters.repositories.jobs import SqlJobRepository
from shared.adapters.repositories.models import SqlModelRepository
from shared.adapters.repositories.monitoring import (
    SqlAlertRepository,
    SqlDriftRepository,
)
from shared.adapters.repositories.protected_attributes import (
    SqlProtectedAttributeRepository,
)
from shared.db.session import Database
from shared.ports import (
    AlertRepository,
    AlertRuleRepository,
    BiasRepository,
    DatasetRepository,
    DriftRepository,
    Duplicate,
    FeatureSetRepository,
    JobRepository,
    ModelRepository,
    ProtectedAttributeRepository,
)


class SqlUnitOfWork:
    def __init__(self, session: Session) -> None:
        self._session = session
        self.datasets: DatasetRepository = SqlDatasetRepository(session)
        self.feature_sets: FeatureSetRepository = SqlFeatureSetRepository(session)
        self.jobs: JobRepository = SqlJobRepository(session)
        self.models: ModelRepository = SqlModelRepository(session)
        self.drift: DriftRepository = SqlDriftRepository(session)
        self.alerts: AlertRepository = SqlAlertRepository(session)
        self.alert_rules: AlertRuleRepository = SqlAlertRuleRepository(session)
        self.protected_attributes: ProtectedAttributeRepository = (
            SqlProtectedAttributeRepository(session)
        )
        self.bias: BiasRepository = SqlBiasRepository(session)

    @property
    def session(self) -> Session:
        """Not part of the port: tests seed tables no repository writes through it."""
        return self._session

    def flush(self) -> None:
        try:
            self._session.flush()
        except IntegrityError as exc:
            raise Duplicate(str(exc.orig)) from exc


class SqlTransactions:
    """``Transactions`` on a ``Database``: its sessions, its SQLite write turn."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @contextmanager
    def __call__(self, write: bool = False) -> Iterator[SqlUnitOfWork]:
        try:
            with self.db.session(write) as session:
                yield SqlUnitOfWork(session)
        except IntegrityError as exc:
            raise Duplicate(str(exc.orig)) from exc
