"""The composition: one container, its services built once from its ports (that no
service reaches back to it is import-linter's layer contract, pyproject.toml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.container import Container
from tests.conftest import make_settings


class _Launcher:
    def __init__(self) -> None:
        self.launched: list[str] = []

    def launch(self, orchestrator: str, instance_id: str, payload: Any) -> None:
        self.launched.append(instance_id)


def _container(tmp_path: Path) -> Container:
    # the services only keep their ports when built: no database is touched here
    return Container(make_settings(tmp_path), db=object(), blobs=object())  # type: ignore[arg-type]


def test_services_are_built_once_from_the_ports(tmp_path: Path) -> None:
    c = _container(tmp_path)
    assert c.datasets is c.datasets
    assert c.features is c.features
    assert c.features.datasets is c.datasets
    assert c.datasets.blobs is c.blobs and c.features.uow is c.uow
    assert c.uow.db is c.db  # type: ignore[attr-defined]
    assert c.jobs.uow is c.uow and c.registry.uow is c.uow


def test_a_new_database_rebuilds_the_units_of_work(tmp_path: Path) -> None:
    c = _container(tmp_path)
    before = c.uow
    c.db = object()  # type: ignore[assignment]
    assert c.uow is not before and c.features.uow is c.uow


def test_a_new_port_rebuilds_the_services_that_use_it(tmp_path: Path) -> None:
    c = _container(tmp_path)
    before = c.features
    launcher = _Launcher()
    c.launcher = launcher  # type: ignore[assignment]
    assert c.features is not before
    assert c.features.launcher is launcher
    blobs = object()
    c.blobs = blobs  # type: ignore[assignment]
    assert c.datasets.blobs is blobs
