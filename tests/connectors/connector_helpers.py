"""Helpers shared by the connector tests (plain functions; fixtures are in conftest)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

PG_USER, PG_PASSWORD = "anyfind", "pg-test-Secret-42"


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.org",
           "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.org",
           "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(repo.parent)}
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, env=env,
                          check=True, timeout=60)
    return done.stdout.decode().strip()


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)


def names(results) -> list[str]:
    return [r.path.rsplit("/", 1)[-1].rsplit(":", 1)[-1] for r in results]


def free_port() -> int:
    """A loopback port nobody listens on (right now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
