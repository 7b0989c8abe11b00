"""Run the Alembic migrations from code (local runtime start-up, tests, deploy step)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from shared.config import PROJECT_ROOT

if TYPE_CHECKING:
    from alembic.config import Config

VERSIONS = PROJECT_ROOT / "migrations" / "versions"
_REVISION = re.compile(r'^revision(?:: str)? = "(\w+)"', re.MULTILINE)
_DOWN = re.compile(r'^down_revision(?:: [^=]+)? = "(\w+)"', re.MULTILINE)


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision``."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    """The newest revision, read from the migration files without importing Alembic;
    None unless the history is one straight line."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in VERSIONS.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        if found := _REVISION.search(text):
            revisions.add(found.group(1))
        if down := _DOWN.search(text):
            parents.add(down.group(1))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def upgrade_if_behind(url: str) -> bool:
    """``upgrade`` unless the database is already at the head; True if it ran. The
    check costs one query, where importing Alembic to find out costs a third of a
    second of every local start."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import DBAPIError

    head = head_revision()
    if head is not None:
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                current = conn.execute(
                    text("SELECT version_num FROM alembic_version")
                ).scalar()
        except DBAPIError:  # no alembic_version table yet: a new database
            current = None
        finally:
            engine.dispose()
        if current == head:
            return False
    upgrade(url)
    return True
