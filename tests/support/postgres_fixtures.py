"""A throw-away PostgreSQL cluster for the tests that need a real one (skipped when the
server binaries are not installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / name).exists():
            return str(d / name)
    return None


@pytest.fixture(scope="module")
def postgres_server():
    """A throw-away PostgreSQL cluster on a Unix socket (skipped when not installed)."""
    psycopg = pytest.importorskip("psycopg")
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries are not installed")
    root = Path(tempfile.mkdtemp(prefix="anyfind-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(root, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    run = lambda *args: subprocess.run(prefix + list(args), check=True, capture_output=True)  # noqa: E731
    try:
        run(initdb, "-D", str(data), "-A", "trust", "-U", "anyfind", "--no-sync")
        run(pg_ctl, "-D", str(data), "-w", "-l", str(root / "log"), "-o",
            f"-k {root} -c listen_addresses='' -c fsync=off", "start")
    except (subprocess.CalledProcessError, OSError) as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"could not start PostgreSQL: {exc}")
    try:
        yield psycopg, root
    finally:
        subprocess.run(prefix + [pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, empty database on the test cluster."""
    psycopg, sock = postgres_server
    name = f"t{time.time_ns()}"
    with psycopg.connect(host=str(sock), user="anyfind", dbname="postgres",
                         autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"postgresql+psycopg://anyfind@/{name}?host={sock}"
