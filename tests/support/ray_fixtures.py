"""A real Ray cluster on loopback for the tests: `ray start --head --block` in a temp dir of
its own, with token authentication, started once per session and stopped by its process
group afterwards. The test process gets the token (and the loopback setting) in its env."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from milvus_fixtures import free_port

RAY = Path(sys.executable).parent / "ray"
START_SECONDS = 120


def _ray_env(token: str) -> dict[str, str]:
    return {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # keep 127.0.0.1, not the external IP
            "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
            "RAY_USAGE_STATS_ENABLED": "0"}


@pytest.fixture(scope="session")
def ray_cluster():
    """The address (127.0.0.1:PORT) of a running one-node Ray cluster with 2 CPUs."""
    token = secrets.token_hex(16)
    # Set before ray is imported here: it reads them once (without the first it would
    # swap 127.0.0.1 for this machine's external address).
    saved = {k: os.environ.get(k) for k in _ray_env(token)}
    os.environ.update(_ray_env(token))
    pytest.importorskip("ray.data")
    if not RAY.exists():
        pytest.skip(f"no ray command at {RAY}")
    # Ray's socket paths must stay short: a temp dir directly under /tmp.
    temp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
    port = free_port()
    env = dict(os.environ)
    log = open(temp / "ray-start.log", "wb")  # noqa: SIM115 - open for the cluster's life
    proc = subprocess.Popen([str(RAY), "start", "--head", "--node-ip-address=127.0.0.1",
                             f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                             f"--temp-dir={temp}", "--disable-usage-stats", "--block"],
                            env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + START_SECONDS
    ready = temp / "ray_current_cluster"  # written once the head node is up
    while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if not ready.exists():
        _stop(proc)
        pytest.fail(f"the Ray head did not start: {(temp / 'ray-start.log').read_text()[-2000:]}")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _stop(proc)
        log.close()


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the head's process group (ray start --block stops its processes), then
    SIGKILL whatever is left of it: the cluster's data is a throwaway temp dir, and the
    head lets every SIGTERM wait run out (it cost 30 s at the end of every suite)."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # workers the raylet left in the group
    except ProcessLookupError:
        pass


@pytest.fixture
def ray_driver():
    """Each test connects this process to Ray afresh (so its env reaches the workers) and
    leaves it disconnected."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    yield
    if ray.is_initialized():
        ray.shutdown()
