"""A real Milvus server process on loopback for the tests (tests/support/milvus_serve.py), started
once per session, stopped (its whole process group) afterwards."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CREDENTIALS = "root:Milvus"  # the server's default user and password
PYTHON = Path(os.environ.get("ANYFIND_MILVUS_PYTHON", ROOT / ".venv-milvus" / "bin" / "python"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MilvusProcess:
    """The server process of tests/support/milvus_serve.py: its URI, and a stop and a start (on
    the same data), each a bounded wait on the server's own line."""

    def __init__(self, base: Path, port: int):
        self.uri = f"milvus://127.0.0.1:{port}?token={CREDENTIALS}"
        self.proc = subprocess.Popen(
            [str(PYTHON), str(ROOT / "tests" / "support" / "milvus_serve.py"), str(base), str(port),
             "auth"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self._expect("started")

    def _expect(self, word: str, timeout: float = 240) -> None:
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(timeout)
        if not line or not line[0].startswith(word):
            self.kill()
            pytest.fail(f"the Milvus server did not say {word!r}: {line[:1]}")

    def command(self, name: str) -> None:
        self.proc.stdin.write(name + "\n")
        self.proc.stdin.flush()
        self._expect("started" if name == "start" else "stopped")

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the milvus binary too, what is left
        except ProcessLookupError:
            pass


@pytest.fixture(scope="session")
def milvus_process(tmp_path_factory):
    """The session's Milvus standalone server, one for every module (fixed internal
    ports: a second one cannot run beside it)."""
    if not PYTHON.exists():
        pytest.skip(f"no Milvus server interpreter at {PYTHON} (scripts/setup.sh makes it)")
    server = MilvusProcess(tmp_path_factory.mktemp("milvus-server"), free_port())
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def milvus_server(milvus_process):
    """The URI of a running Milvus standalone server that requires credentials, as a
    deployment does: milvus://127.0.0.1:PORT?token=root:Milvus (add more with '&')."""
    return milvus_process.uri
