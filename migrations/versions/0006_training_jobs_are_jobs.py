"""One job model: a training job is a row of ``jobs`` (kind 'training') plus its detail

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 22:30:00

Status, progress, error and times move from ``training_jobs`` to ``jobs``; QUEUED becomes
PENDING, the state every job starts in. ``training_jobs`` keeps the training detail (name,
feature set, algorithm, hyperparameters, config, metrics, model) keyed by the job id.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import shared.db.types

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_TIME = shared.db.types.UTCDateTime(timezone=True)
_MOVED = ("status", "progress", "error_message", "started_at", "completed_at")
_FK = "fk_training_jobs_id_jobs"

_jobs = sa.table(
    "jobs",
    sa.column("id", sa.Uuid()),
    sa.column("kind", sa.String()),
    sa.column("status", sa.String()),
    sa.column("progress", sa.Float()),
    sa.column("input", _JSON),
    sa.column("result", _JSON),
    sa.column("error_message", sa.Text()),
    sa.column("started_at", _TIME),
    sa.column("completed_at", _TIME),
    sa.column("created_at", _TIME),
    sa.column("updated_at", _TIME),
)


def _training() -> Any:
    """``training_jobs`` as it was before this revision."""
    return sa.table(
        "training_jobs",
        sa.column("id", sa.Uuid()),
        sa.column("model_id", sa.Uuid()),
        sa.column("status", sa.String()),
        sa.column("progress", sa.Float()),
        sa.column("error_message", sa.Text()),
        sa.column("started_at", _TIME),
        sa.column("completed_at", _TIME),
        sa.column("created_at", _TIME),
    )


def upgrade() -> None:
    conn = op.get_bind()
    old = _training()
    rows = conn.execute(sa.select(old)).mappings().all()
    if rows:
        conn.execute(
            sa.insert(_jobs),
            [
                {
                    "id": r["id"],
                    "kind": "training",
                    "status": "PENDING" if r["status"] == "QUEUED" else r["status"],
                    "progress": r["progress"] or 0.0,
                    "input": {"job_id": str(r["id"])},
                    "result": {"status": r["status"], "model_id": str(r["model_id"])}
                    if r["model_id"]
                    else None,
                    "error_message": r["error_message"],
                    "started_at": r["started_at"],
                    "completed_at": r["completed_at"],
                    "created_at": r["created_at"],
                    "updated_at": r["completed_at"]
                    or r["started_at"]
                    or r["created_at"],
                }
                for r in rows
            ],
        )
    with op.batch_alter_table("training_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_training_jobs_status"))
        for column in (*_MOVED, "created_at"):
            batch_op.drop_column(column)
        batch_op.create_foreign_key(_FK, "jobs", ["id"], ["id"], ondelete="CASCADE")


def downgrade() -> None:
    with op.batch_alter_table("training_jobs", schema=None) as batch_op:
        batch_op.drop_constraint(_FK, type_="foreignkey")
        batch_op.add_column(sa.Column("status", sa.String(50), nullable=True))
        batch_op.add_column(sa.Column("progress", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("error_message", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("started_at", _TIME, nullable=True))
        batch_op.add_column(sa.Column("completed_at", _TIME, nullable=True))
        batch_op.add_column(sa.Column("created_at", _TIME, nullable=True))
    conn = op.get_bind()
    training = _training()
    jobs = conn.execute(
        sa.select(
            _jobs.c.id,
            _jobs.c.status,
            _jobs.c.progress,
            _jobs.c.error_message,
            _jobs.c.started_at,
            _jobs.c.completed_at,
            _jobs.c.created_at,
        ).where(_jobs.c.kind == "training")
    ).all()
    for j in jobs:
        conn.execute(
            sa.update(training)
            .where(training.c.id == j.id)
            .values(
                status="QUEUED" if j.status == "PENDING" else j.status,
                progress=j.progress,
                error_message=j.error_message,
                started_at=j.started_at,
                completed_at=j.completed_at,
                created_at=j.created_at,
            )
        )
    conn.execute(sa.delete(_jobs).where(_jobs.c.kind == "training"))
    with op.batch_alter_table("training_jobs", schema=None) as batch_op:
        batch_op.alter_column("status", existing_type=sa.String(50), nullable=False)
        batch_op.alter_column("progress", existing_type=sa.Float(), nullable=False)
        batch_op.alter_column("created_at", existing_type=_TIME, nullable=False)
        batch_op.create_index(
            batch_op.f("ix_training_jobs_status"), ["status"], unique=False
        )
