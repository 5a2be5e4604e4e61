"""Fixtures for the connector tests: real git repositories, databases and servers."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from connector_helpers import PG_PASSWORD, PG_USER

from anyfind import Index


@pytest.fixture
def index(tmp_path):
    with Index.open(tmp_path / "idx") as idx:
        yield idx


# -- PostgreSQL: a throwaway cluster on loopback, one per test session -------------------------


def _pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if found:
        return Path(found[0]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server():
    """(host, port) of a fresh PostgreSQL cluster (initdb + pg_ctl in a temp dir)."""
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed: "
                    "apt-get install postgresql")
    pytest.importorskip("psycopg", reason="psycopg is not installed (anyfind[postgres])")
    base = Path(tempfile.mkdtemp(prefix="anyfind-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the cluster as the postgres user
        import pwd

        pw = pwd.getpwnam("postgres")
        os.chown(base, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    pwfile = base / "pw"
    pwfile.write_text(PG_PASSWORD + "\n")
    if as_user:
        os.chown(pwfile, pw.pw_uid, pw.pw_gid)
    data, port = base / "data", free_port()
    run = lambda *cmd: subprocess.run([*as_user, *map(str, cmd)], check=True,  # noqa: E731
                                      capture_output=True, timeout=120)
    run(bindir / "initdb", "-D", data, "-U", PG_USER, "--pwfile", pwfile,
        "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--locale=C")
    run(bindir / "pg_ctl", "-D", data, "-l", base / "log", "-w", "-t", "60", "-o",
        f"-p {port} -h 127.0.0.1 -k {base} -c fsync=off", "start")
    try:
        yield "127.0.0.1", port
    finally:
        run(bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server, request):
    """A SQLAlchemy URL of a new, empty database on the session's cluster."""
    import psycopg

    host, port = postgres_server
    name = "t_" + "".join(c for c in request.node.name.lower() if c.isalnum())[:40]
    admin = f"host={host} port={port} user={PG_USER} password={PG_PASSWORD} dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://{PG_USER}:{PG_PASSWORD}@{host}:{port}/{name}"
