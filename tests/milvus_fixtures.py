"""A real Milvus server process on loopback for the tests (tests/milvus_serve.py), started
once per session, stopped (its whole process group) afterwards."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CREDENTIALS = "root:Milvus"  # the server's default user and password
PYTHON = Path(os.environ.get("ANYFIND_MILVUS_PYTHON", ROOT / ".venv-milvus" / "bin" / "python"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory):
    """The URI of a running Milvus standalone server that requires credentials, as a
    deployment does: milvus://127.0.0.1:PORT?token=root:Milvus (add more with '&')."""
    if not PYTHON.exists():
        pytest.skip(f"no Milvus server interpreter at {PYTHON} (scripts/setup.sh makes it)")
    port = free_port()
    base = tmp_path_factory.mktemp("milvus-server")
    proc = subprocess.Popen([str(PYTHON), str(ROOT / "tests" / "milvus_serve.py"), str(base),
                             str(port), "auth"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(240)  # a bounded wait on the server's own "started" line
    if not line or not line[0].startswith("started"):
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"the Milvus server did not start: {line[:1]}")
    try:
        yield f"milvus://127.0.0.1:{port}?token={CREDENTIALS}"
    finally:
        proc.stdin.close()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the milvus binary too, whatever is left
        except ProcessLookupError:
            pass
