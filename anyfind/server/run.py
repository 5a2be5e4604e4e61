"""`anyfind serve`: check the binding, build the app, run uvicorn."""

from __future__ import annotations

import os
from collections.abc import Sequence

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
    uvicorn.run(app, host=host, port=port, log_level=log_level, server_header=False,
                proxy_headers=False)
