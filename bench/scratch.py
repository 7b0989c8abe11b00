"""What the benchmark scripts share: the generated data set from their common
arguments, a free local port, and a scratch PostgreSQL database (127.0.0.1:5432, user
postgres, trust auth) created for one run and dropped after it."""

from __future__ import annotations

import argparse
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{db}"


def add_data_arguments(
    parser: argparse.ArgumentParser,
    rows: int = 1_000_000,
    users: int = 50_000,
    merchants: int = 5_000,
    days: int = 90,
) -> None:
    parser.add_argument("--rows", type=int, default=rows)
    parser.add_argument("--users", type=int, default=users)
    parser.add_argument("--merchants", type=int, default=merchants)
    parser.add_argument("--days", type=int, default=days)
    parser.add_argument("--seed", type=int, default=1)


def generated(args: argparse.Namespace) -> pd.DataFrame:
    """The transactions ``add_data_arguments``' options describe."""
    from ml.datagen import GeneratorConfig, generate_transactions

    return generate_transactions(
        GeneratorConfig(
            n_rows=args.rows,
            n_users=args.users,
            n_merchants=args.merchants,
            days=args.days,
            seed=args.seed,
        )
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def scratch_postgres(prefix: str = "sh_bench") -> Iterator[str]:
    """The SQLAlchemy URL of a new, empty database, dropped on the way out."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield PG_URL.format(db=name)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
