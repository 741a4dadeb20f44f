"""PostgreSQL for tests: a database of its own per test on the server at 127.0.0.1:5432
(trust auth, user postgres; ``WATCHSYNC_TEST_POSTGRES`` names another server's admin URL),
dropped afterwards, and ``receiver_database``, which runs a test once on each store.

The server is shared with every other test and process on the machine, so nothing here
restarts it: a test that needs "the database went away" ends the receiver's own backend
connections (``terminate_connections``), which is what a restart looks like to a client.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

ADMIN_URL = os.environ.get(
    "WATCHSYNC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


class PostgresUnavailable(RuntimeError):
    """The server for tests and benchmarks does not answer."""


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as error:
        raise PostgresUnavailable(f"PostgreSQL is not reachable at {ADMIN_URL}: {error}") from None


def database_url(name: str) -> str:
    """The admin URL with another database (a URL: the receiver tells stores by scheme)."""
    return urlsplit(ADMIN_URL)._replace(path=f"/{name}").geturl()


def terminate_connections(url: str) -> int:
    """End every backend connected to ``url``'s database; returns how many."""
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with _admin() as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return len(rows)


def create_database(kind: str = "test") -> str:
    """A new, empty database of a unique name; its URL."""
    name = f"watchsync_{kind}_{uuid.uuid4().hex[:12]}"
    with _admin() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(name)


def drop_database(url: str) -> None:
    """Drop ``url``'s database, ending whatever is still connected to it."""
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with _admin() as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name)))
        )


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty database for this test; its URL."""
    try:
        url = create_database()
    except PostgresUnavailable as error:
        pytest.fail(str(error))
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def receiver_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The receiver's database, once as the embedded SQLite file, once on PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "cloud.db")
    return str(request.getfixturevalue("postgres_url"))
