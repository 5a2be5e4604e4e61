"""`anyfind serve`: check the binding, build the app, run uvicorn."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import click

from ..errors import require
from .binding import allowed_hosts, check_bind, is_loopback


def serve(index: str | os.PathLike | None = None, *, host: str = "127.0.0.1", port: int = 8000,
          token: str | None = None, insecure: bool = False, cors: Sequence[str] = (),
          log_level: str = "info") -> None:
    check_bind(host, token, insecure)  # before anything slow
    require("fastapi", "server")
    uvicorn = require("uvicorn", "server")
    from .app import create_app

    app = create_app(index, token=token, cors=cors, allowed_hosts=allowed_hosts(host))
    shown = f"[{host}]" if ":" in host else host
    note = "token required" if token else ("open to anyone who can reach it"
                                           if not is_loopback(host) else "this machine only")
    click.echo(f"anyfind: serving {app.state.index.path} at http://{shown}:{port}/ ({note}); "
               "loading models...", err=True)
    stopping = app.state.index.opened.stopping

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            # SIGTERM / Ctrl-C: uvicorn lets requests in flight finish; a spoken query's
            # transcription (up to 120 s of sound) gives up at its next step instead.
            stopping.set()
            super().handle_exit(sig, frame)

    Server(uvicorn.Config(app, host=host, port=port, log_level=log_level,
                          server_header=False, proxy_headers=False)).run()


@contextlib.contextmanager
def background(app: Any, host: str = "127.0.0.1", port: int = 0,
               timeout: float = 300.0) -> Iterator[str]:
    """Run `app` on uvicorn in a thread (port 0: a free one) and yield its base URL;
    stopped on exit. Start-up (which warms the models) is waited for, within `timeout`."""
    uvicorn = require("uvicorn", "server")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while not server.started:  # bounded wait on a condition
            if not thread.is_alive():
                raise RuntimeError("uvicorn exited during start-up")
            if time.monotonic() > deadline:
                raise TimeoutError(f"uvicorn did not start within {timeout:.0f} s")
            time.sleep(0.05)
        shown = f"[{host}]" if ":" in host else host
        yield f"http://{shown}:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
