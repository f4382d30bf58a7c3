"""Alembic glue shared by every service's ``migrations/env.py`` and by the launchers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def run_env(target_metadata: MetaData, database_url: str) -> None:
    """Body of a service's env.py: run migrations online over the async engine."""

    def do_run(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(database_url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
        await engine.dispose()

    database_url = context.config.get_main_option("sqlalchemy.url") or database_url
    asyncio.run(run_async())


def _config(migrations_dir: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(migrations_dir: Path, database_url: str, revision: str = "head") -> None:
    """Apply a service's migrations (what ``make run``, the test stack and containers do)."""
    command.upgrade(_config(migrations_dir, database_url), revision)


def check(migrations_dir: Path, database_url: str) -> None:
    """Fail if the models hold changes that no migration makes (run on an upgraded database)."""
    command.check(_config(migrations_dir, database_url))


def main(migrations_dir: Path, database_url: str) -> None:
    """Command line of each service's ``migrate`` module: upgrade, or ``--check``."""
    import sys

    upgrade(migrations_dir, database_url)
    if "--check" in sys.argv[1:]:
        check(migrations_dir, database_url)
