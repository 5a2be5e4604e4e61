"""A real Milvus standalone server (the PyPI package `milvus`, 2.3) on loopback, run by
tests/support/milvus_fixtures.py with the interpreter of .venv-milvus (scripts/setup.sh makes it:
the server package needs setuptools<81 and marshmallow<4, which anyfind's venv does not
pin). Prints "started" once it answers. With `auth` it requires credentials (user root,
password Milvus: the server's default), as a real deployment does.

Commands on stdin, a line each: `stop` (a graceful shutdown) or `kill` (SIGKILL), each
printing "stopped", and `start` (again, on the same data and port; prints "started").
It stops when stdin closes.

    .venv-milvus/bin/python tests/support/milvus_serve.py BASE_DIR PORT [auth]
"""

import socket
import subprocess
import sys
import time

from milvus import MilvusServer

server = MilvusServer()
server.set_base_dir(sys.argv[1])
# The port as a fixed setting (not a first choice the package may move on a restart).
server.config.configs.update(proxy_port=int(sys.argv[2]))


def bind_reusable(port: int):
    """The package's check that a port is free, with SO_REUSEADDR as the server itself
    binds: after a stop, the old connections' TIME_WAIT (60 s) would fail it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        return None
    return sock


server.config.try_bind_port = bind_reusable
server.config.set("common.gracefulStopTimeout", 10)  # seconds (1800 by default)
if sys.argv[3:] == ["auth"]:
    server.config.set("authorization_enabled", True)


def start() -> None:
    began = time.monotonic()
    while True:
        try:
            server.start()
            break
        except RuntimeError:  # the port not free yet after a stop: a bounded retry
            if time.monotonic() - began > 60:
                raise
            time.sleep(0.5)
    print(f"started in {time.monotonic() - began:.1f} s", flush=True)


def stop() -> None:
    """A graceful shutdown: SIGTERM and a wait (the package's own stop kills after 1 s,
    which leaves its etcd holding the old node's sessions: no restart on the data)."""
    proc = server.server_proc
    if proc is not None:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        server.server_proc = None
    server.stop()  # closes its log files


start()
running = True
for line in sys.stdin:
    command = line.strip()
    if command in ("stop", "kill") and running:
        if command == "kill":  # SIGKILL, as a crash or the OOM killer would
            server.server_proc.kill()
            server.server_proc.wait()
            server.server_proc = None
        stop()
        running = False
        print("stopped", flush=True)
    elif command == "start" and not running:
        start()
        running = True
if running:
    stop()
