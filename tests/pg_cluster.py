"""A throwaway PostgreSQL cluster for the tests, holding StreamPay's settlement_outbox.

The session fixture :func:`postgres` runs ``initdb`` in a fresh temporary
directory, starts the server on a Unix socket in that directory and on
127.0.0.1 at a free port, creates the ``streampay`` database with the schema
and the 20 seeded rows of ``tests/postgres/``, and stops and removes it all at
the end of the session. Tests and CI run as root and initdb refuses root, so
the server binaries then run as ``postgres`` (created when missing) through
``runuser`` on a postgres-owned directory.

Without the server binaries or psycopg the tests that use it skip with the
reason, unless ``STREAMPAY_INCIDENT_REQUIRE_POSTGRES=1`` (set by ``.ci/run``):
then they fail, as promtool's tests do.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs
import pytest

REQUIRE_ENV = "STREAMPAY_INCIDENT_REQUIRE_POSTGRES"
SQL_DIR = Path(__file__).resolve().parent / "postgres"
DATABASE = "streampay"
SUPERUSER = "postgres"
SUPERUSER_PASSWORD = "superuser-test-password"  # noqa: S105 - a throwaway test cluster
READER = "incident_reader"
READER_PASSWORD = "reader-test-password"  # noqa: S105 - a throwaway test cluster
PSQL = shutil.which("psql") or "/usr/bin/psql"


def unavailable(reason: str) -> None:
    """Skip (or, when PostgreSQL is required, fail) with ``reason``."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"PostgreSQL is required ({REQUIRE_ENV}=1) but {reason}")
    pytest.skip(reason)


def server_bindir() -> Path | None:
    """The newest installed PostgreSQL server's bin directory (Debian's layout), or PATH's."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@attrs.frozen
class PostgresCluster:
    """A running throwaway server: where it listens and how to reach it."""

    bindir: Path
    base: Path
    port: int
    run_as: str | None

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base / "socket"

    def dsn(
        self,
        *,
        user: str = READER,
        password: str | None = None,
        database: str = DATABASE,
        port: int | None = None,
    ) -> str:
        """A URL for 127.0.0.1 (the password only when given: tests pass it in PGPASSWORD)."""
        secret = f":{password}" if password is not None else ""
        return f"postgresql://{user}{secret}@127.0.0.1:{port or self.port}/{database}"

    def env(self, *, password: str = READER_PASSWORD, tz: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["PGPASSWORD"] = password
        if tz is not None:
            env["PGTZ"] = tz  # psql sets the session's TimeZone from it
        return env

    def psql(
        self,
        *args: str,
        user: str = READER,
        password: str = READER_PASSWORD,
        tz: str | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run psql over TCP as ``user`` (``-X``: no ~/.psqlrc), checking its exit status."""
        return subprocess.run(
            [PSQL, "-X", "-v", "ON_ERROR_STOP=1", "-d", self.dsn(user=user), *args],
            env=self.env(password=password, tz=tz),
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )

    def create_outbox_database(self, name: str) -> None:
        """A new database holding the settlement_outbox schema and the 20 seeded rows."""
        subprocess.run(
            [PSQL, "-X", "-q", "-h", str(self.socket_dir), "-p", str(self.port),
             "-U", SUPERUSER, "-d", "postgres", "-c", f"create database {name}"],
            check=True,
            capture_output=True,
            timeout=60,
        )  # fmt: skip
        for sql in ("outbox_schema.sql", "outbox_seed.sql"):
            self.admin((SQL_DIR / sql).read_text(encoding="utf-8"), database=name)

    def admin(self, sql: str, *, database: str = DATABASE, timeout: float = 60) -> str:
        """Run SQL as the superuser over the Unix socket (trusted locally)."""
        result = subprocess.run(
            [
                PSQL,
                "-X",
                "-q",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-d",
                database,
                "-c",
                sql,
            ],
            env={k: v for k, v in os.environ.items() if not k.startswith("PG")},
            capture_output=True,
            text=True,
            check=True,
            timeout=timeout,
        )
        return result.stdout


def _as_server_user(argv: Sequence[str], run_as: str | None) -> list[str]:
    return ["runuser", "-u", run_as, "--", *argv] if run_as else list(argv)


def _ensure_postgres_user() -> None:
    probe = subprocess.run(["id", "-u", SUPERUSER], capture_output=True, check=False)
    if probe.returncode != 0:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", SUPERUSER], check=True
        )


def start_cluster() -> PostgresCluster:
    """initdb, start, create the database, schema, seed and reader role."""
    bindir = server_bindir()
    if bindir is None:
        unavailable("the PostgreSQL server binaries are not installed (apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401 - the code under test needs it
    except ImportError:
        unavailable("psycopg is not installed (pip install 'streampay-incident[postgres]')")
    assert bindir is not None
    run_as = SUPERUSER if os.geteuid() == 0 else None
    if run_as:
        _ensure_postgres_user()
    # Directly under /tmp: pytest's own tmp dirs are root-only, the server user could not enter.
    base = Path(tempfile.mkdtemp(prefix="streampay-pg-"))
    (base / "socket").mkdir()
    pwfile = base / "pwfile"
    pwfile.write_text(SUPERUSER_PASSWORD + "\n", encoding="utf-8")
    if run_as:
        shutil.chown(base, run_as, run_as)
        for child in base.iterdir():
            shutil.chown(child, run_as, run_as)
    port = free_port()
    cluster = PostgresCluster(bindir=bindir, base=base, port=port, run_as=run_as)

    def server(*argv: str) -> None:
        subprocess.run(
            _as_server_user(argv, run_as), check=True, capture_output=True, text=True, timeout=120
        )

    server(
        str(bindir / "initdb"),
        "-D",
        str(cluster.data_dir),
        "-U",
        SUPERUSER,
        "-E",
        "UTF8",
        "--locale=C",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        f"--pwfile={pwfile}",
        "--no-sync",
    )
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {cluster.socket_dir} "
        "-c fsync=off -c full_page_writes=off -c synchronous_commit=off"
    )
    server(
        str(bindir / "pg_ctl"),
        "-D",
        str(cluster.data_dir),
        "-l",
        str(base / "server.log"),
        "-w",
        "-t",
        "60",
        "-o",
        options,
        "start",
    )
    cluster.create_outbox_database(DATABASE)
    cluster.admin(
        f"alter role {SUPERUSER} password '{SUPERUSER_PASSWORD}';"
        f"create role {READER} login password '{READER_PASSWORD}';"
        f"grant select on all tables in schema public to {READER};"
    )
    return cluster


def stop_cluster(cluster: PostgresCluster) -> None:
    subprocess.run(
        _as_server_user(
            [
                str(cluster.bindir / "pg_ctl"),
                "-D",
                str(cluster.data_dir),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            cluster.run_as,
        ),
        check=False,
        capture_output=True,
        timeout=60,
    )
    shutil.rmtree(cluster.base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """The session's throwaway PostgreSQL with the seeded settlement_outbox."""
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        stop_cluster(cluster)
