"""PostgreSQL for tests: a database of its own per test on the server at 127.0.0.1:5432
(trust auth, user postgres; ``WATCHSYNC_TEST_POSTGRES`` names another server's admin URL),
dropped afterwards, and ``receiver_database``, which runs a test once on each store.

That server is shared with every other test and process on the machine, so nothing here
restarts it: a test that needs "the database went away" either ends the receiver's own
backend connections (``terminate_connections``: what a restart looks like to a client)
or starts a server of its own (``PrivateServer``, the ``postgres_server`` fixture: the
machine's PostgreSQL binaries, a fresh data dir, a free port) and restarts that.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from tests.mosquitto import free_port

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


def _server_binaries() -> Path:
    """The newest installed PostgreSQL's bin dir (Debian: /usr/lib/postgresql/N/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise PostgresUnavailable("no PostgreSQL server binaries in /usr/lib/postgresql")
    return found[-1].parent


class PrivateServer:
    """A PostgreSQL server of the test's own, to restart at will. The server refuses to
    run as root: as root it runs as the ``postgres`` user (``runuser``), in a temporary
    dir that user owns (pytest's tmp_path is private to root)."""

    def __init__(self) -> None:
        self.bin = _server_binaries()
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="watchsync-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self._as_owner: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
            self._as_owner = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [*self._as_owner, str(self.bin / tool), *args]
        subprocess.run(command, check=True, capture_output=True, cwd=self.directory)

    def _pg_ctl(self, action: str) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-m",
            "fast",
            "-w",
            "-o",
            options,
            action,
        )

    def start(self) -> None:
        self._pg_ctl("start")

    def restart(self) -> None:
        """Stop (ending every connection, as a server restart does) and start again;
        returns once it accepts connections."""
        self._pg_ctl("restart")

    def stop(self) -> None:
        self._pg_ctl("stop")

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def postgres_server() -> Iterator[PrivateServer]:
    """A running server of this test's own (``PrivateServer``); gone afterwards."""
    server = PrivateServer()
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # a test stopped it
            server.stop()
        server.remove()


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
