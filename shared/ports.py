"""Small Protocols the services depend on, and the types they speak in.

Each port has its own section; its adapters live in ``shared/adapters/<port>/``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload, runtime_checkable

if TYPE_CHECKING:  # annotations only: importing the app must not load SQLAlchemy
    from sqlalchemy import Connection

    from ml.features.config import Float64Array
    from ml.features.online import EntityKey, State

# ---- online state ----------------------------------------------------------------------


@dataclass(frozen=True)
class OnlineFeatures:
    transaction_id: str
    features: dict[str, float]
    replayed: bool  # True when this transaction id had been applied before


@dataclass(frozen=True)
class BatchFeatures(Sequence[OnlineFeatures]):
    """``process_many``'s answer, by column: the batch path scores ``values`` and stores
    ``rows`` as they are, where a dict of 53 features per transaction cost it more than
    scoring. Indexing gives an ``OnlineFeatures`` (its dict built then)."""

    transaction_ids: list[str]
    names: tuple[str, ...]  # the columns, in the engine's ``feature_names`` order
    values: Float64Array  # (n, len(names))
    rows: list[list[float]]  # ``values`` as lists, as they are stored and logged
    replayed: list[bool]

    def __len__(self) -> int:
        return len(self.transaction_ids)

    @overload
    def __getitem__(self, i: int) -> OnlineFeatures: ...
    @overload
    def __getitem__(self, i: slice) -> list[OnlineFeatures]: ...
    def __getitem__(self, i: int | slice) -> OnlineFeatures | list[OnlineFeatures]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return OnlineFeatures(
            self.transaction_ids[i],
            dict(zip(self.names, self.rows[i], strict=True)),
            self.replayed[i],
        )


_T_contra = TypeVar("_T_contra", contravariant=True)


class CommitWith(Protocol[_T_contra]):
    """Work that must commit with an applied transaction, in its database transaction."""

    def __call__(self, applied: _T_contra, conn: Connection, /) -> None: ...


@runtime_checkable
class InsertWith(CommitWith[_T_contra], Protocol[_T_contra]):
    """A ``CommitWith`` that can also be said as one ``INSERT … SELECT`` (text with
    ``:name`` placeholders, its values in placeholder order, no WHERE clause): an
    adapter may run it in the statement that applies the transaction. Scored before
    the apply: wasted when the transaction was known."""

    def insert_for(self, applied: _T_contra, /) -> tuple[str, Sequence[Any]]: ...


class OnlineStateStore(Protocol):
    """Per-entity state of one feature configuration (``namespace``), changed exactly
    once per transaction id. Events come normalized (``normalize_transaction``)."""

    namespace: str

    def apply(
        self,
        event: dict[str, Any],
        commit_with: CommitWith[OnlineFeatures] | None,
    ) -> OnlineFeatures:
        """Features from the state before ``event``, then fold it in; a known
        transaction id gets its stored features back and changes nothing."""
        ...

    def apply_many(
        self,
        events: list[dict[str, Any]],
        commit_with: CommitWith[BatchFeatures] | None,
    ) -> BatchFeatures:
        """``apply`` of many, in order, in one database transaction."""
        ...

    def add_label(self, transaction_id: str, label: Any) -> bool:
        """Fold a late label into the transaction's merchant state; False when the
        transaction was never applied here."""
        ...

    def replace(self, states: Mapping[EntityKey, State]) -> int:
        """The namespace's whole state, replaced (a backfill); known ids forgotten."""
        ...

    def states(self, keys: list[EntityKey]) -> dict[EntityKey, State]: ...
    def is_live(self) -> bool: ...
    def clear(self) -> None: ...
    def warm(self, limit: int) -> int:
        """Cache the states of up to ``limit`` entities updated most recently."""
        ...

    def stop_warming(self) -> None: ...

    @property
    def cached_entities(self) -> int: ...

    @property
    def cache_capacity(self) -> int: ...


# ---- prediction log --------------------------------------------------------------------


class PredictionSink(Protocol):
    """Where prediction rows go, with the transaction that produced them."""

    def write(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Insert in ``conn``'s open transaction (the caller commits)."""
        ...

    def insert_for(self, rows: Sequence[dict[str, Any]]) -> tuple[str, list[Any]]:
        """The rows as one ``INSERT … SELECT`` (an ``InsertWith``'s form)."""
        ...

    def insert_missing(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert those rows whose id is not stored yet; how many were."""
        ...


# ---- blob storage (shared/adapters/blobs/) ---------------------------------------------


class StorageError(Exception):
    """A blob operation failed; callers turn it into a 5xx or a FAILED job."""


class BlobNotFound(StorageError):
    pass


class BlobStore(Protocol):
    """Paths are '/'-separated keys such as ``datasets/{id}/v1.0/data.parquet``."""

    def upload_file(self, path: str, source: Path) -> None:
        """Store a local file under ``path``, streamed rather than read whole."""

    def download_file(self, path: str, target: Path) -> None:
        """Copy the blob at ``path`` to a local file (streamed)."""

    def put_bytes(self, path: str, data: bytes) -> None: ...

    def get_bytes(self, path: str) -> bytes: ...

    def exists(self, path: str) -> bool: ...

    def list(self, prefix: str) -> list[str]: ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every blob under ``prefix``; return how many went."""

    def ping(self) -> None:
        """Raise StorageError when the store cannot be reached."""


# ---- job launcher (shared/adapters/launcher.py) ----------------------------------------


class JobLauncher(Protocol):
    """Hands a job to whatever runs orchestrations; the job id is the instance id."""

    def launch(
        self, orchestrator: str, job_id: str, payload: dict[str, Any]
    ) -> None: ...

    def cancel(self, job_id: str, reason: str) -> None: ...
