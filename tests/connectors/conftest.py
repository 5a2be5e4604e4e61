"""Fixtures for the connector tests: real git repositories, databases and servers."""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest
from connector_helpers import PG_PASSWORD, PG_USER, free_port

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


# -- a loopback HTTP server whose pages a test can change ------------------------------------
class Site:
    """Pages by path: bytes (200, with an ETag), or (status, body) to answer an error."""

    def __init__(self) -> None:
        self.pages: dict[str, bytes | tuple[int, bytes]] = {}
        self.base = ""


def _handler(site: Site):
    from http.server import BaseHTTPRequestHandler

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, body: bool) -> None:
            page = site.pages.get(self.path.split("?", 1)[0])
            if page is None:
                page = (404, b"<!doctype html><html><body><h1>Not Found</h1></body></html>")
            status, data = page if isinstance(page, tuple) else (200, page)
            self.send_response(status)
            kind = "application/xml" if self.path.endswith(".xml") and status == 200 else "text/html"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            if status == 200:
                self.send_header("ETag", f'"{hashlib.md5(data).hexdigest()}"')
            self.end_headers()
            if body:
                self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            self._answer(True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._answer(False)

        def log_message(self, *args) -> None:
            pass

    return Handler


@pytest.fixture
def site():
    from http.server import ThreadingHTTPServer

    s = Site()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(s))
    s.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield s
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# -- an S3-compatible server on loopback (moto's server mode) --------------------------------
@pytest.fixture(scope="session")
def s3_server():
    moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed")
    pytest.importorskip("s3fs", reason="s3fs is not installed (anyfind[connectors])")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(),
                                            verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch):
    """(endpoint URL, boto3 client) with test credentials in the environment."""
    import boto3

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    return s3_server, client
