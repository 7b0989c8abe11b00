"""The local engine's HistoryStore on the app database (SQLite or PostgreSQL), so that
orchestrations survive a restart of the local runtime."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from local.durable.history import Event
from local.durable.store import FINISHED, PENDING, InstanceExistsError, InstanceRecord
from shared.db.models import OrchestrationEvent, OrchestrationInstance
from shared.db.session import Database
from shared.db.types import utcnow


class SqlHistoryStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create_instance(
        self, instance_id: str, name: str, input_json: str | None
    ) -> None:
        try:
            with self.db.session(write=True) as s:
                s.add(
                    OrchestrationInstance(
                        instance_id=instance_id,
                        name=name,
                        input=input_json,
                        status=PENDING,
                        output="null",
                        custom_status="null",
                    )
                )
        except IntegrityError:
            raise InstanceExistsError(instance_id) from None

    def _row(self, s: Any, instance_id: str) -> OrchestrationInstance:
        row = s.get(OrchestrationInstance, instance_id)
        if row is None:
            raise KeyError(instance_id)
        return row  # type: ignore[no-any-return]

    def append_events(self, instance_id: str, events: list[Event]) -> None:
        encoded = [json.dumps(e) for e in events]  # fail before touching the database
        with self.db.session(write=True) as s:
            row = self._row(s, instance_id)
            last = s.scalar(
                select(func.max(OrchestrationEvent.seq)).where(
                    OrchestrationEvent.instance_id == instance_id
                )
            )
            start = (last if last is not None else -1) + 1
            s.add_all(
                OrchestrationEvent(instance_id=instance_id, seq=start + i, event=text)
                for i, text in enumerate(encoded)
            )
            row.updated_at = utcnow()

    def load(self, instance_id: str) -> InstanceRecord:
        with self.db.session() as s:
            row = self._row(s, instance_id)
            events = s.scalars(
                select(OrchestrationEvent.event)
                .where(OrchestrationEvent.instance_id == instance_id)
                .order_by(OrchestrationEvent.seq)
            ).all()
            return InstanceRecord(
                name=row.name,
                input=row.input,
                events=[json.loads(e) for e in events],
                status=row.status,
                output=json.loads(row.output or "null"),
                custom_status=json.loads(row.custom_status or "null"),
                error=row.error,
                terminate_reason=row.terminate_reason,
                created_time=row.created_at,
                last_updated_time=row.updated_at,
            )

    def set_status(
        self,
        instance_id: str,
        status: str,
        output: Any = None,
        error: str | None = None,
        custom_status: Any = None,
    ) -> None:
        output_json, custom_json = json.dumps(output), json.dumps(custom_status)
        with self.db.session(write=True) as s:
            row = self._row(s, instance_id)
            row.status, row.output, row.error = status, output_json, error
            row.custom_status = custom_json
            row.updated_at = utcnow()

    def list_unfinished(self) -> list[str]:
        with self.db.session() as s:
            return list(
                s.scalars(
                    select(OrchestrationInstance.instance_id)
                    .where(OrchestrationInstance.status.not_in(FINISHED))
                    .order_by(OrchestrationInstance.created_at)
                )
            )

    def request_terminate(self, instance_id: str, reason: str) -> None:
        with self.db.session(write=True) as s:
            self._row(s, instance_id)
            s.execute(
                update(OrchestrationInstance)
                .where(
                    OrchestrationInstance.instance_id == instance_id,
                    OrchestrationInstance.terminate_reason.is_(None),
                )
                .values(terminate_reason=reason)
            )

    def is_terminate_requested(self, instance_id: str) -> bool:
        with self.db.session() as s:
            reason = s.scalar(
                select(OrchestrationInstance.terminate_reason).where(
                    OrchestrationInstance.instance_id == instance_id
                )
            )
            return reason is not None
