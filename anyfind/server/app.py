"""The FastAPI application: one index opened for concurrent use, models warmed at start-up.

    from anyfind.server import create_app
    app = create_app("notes", token="s3cret")      # serve with any ASGI server
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from .._version import __version__
from ..errors import AnyfindError, MissingExtra, QueryError
from .deps import MiB, Settings, require_auth
from .middleware import BodyLimit, SecurityHeaders
from .routes import items, page, search, system
from .security import TokenAuth

MULTIPART_OVERHEAD = 64 * 1024
log = logging.getLogger("anyfind.server")


def create_app(index: str | os.PathLike | None = None, *, token: str | None = None,
               cors: Sequence[str] = (), allowed_hosts: Sequence[str] | None = None,
               max_upload_bytes: int = 25 * MiB, warm: bool = True) -> FastAPI:
    """An app serving the index at `index` (a name or path; it must exist).

    token: required as `Authorization: Bearer` on every /api route. cors: origins allowed
    to call the API from other pages (none by default). allowed_hosts: Host headers
    accepted (None: any; `anyfind serve` limits a loopback server to loopback names).
    warm: load and run every model once before serving."""
    from ..index import Index

    # Shared by the request threads: copy-on-write vector catch-up, one model thread.
    shared = Index.open(index, create=False, concurrent=True)
    settings = Settings(token=token, cors=tuple(cors),
                        allowed_hosts=list(allowed_hosts) if allowed_hosts is not None else None,
                        max_upload_bytes=max_upload_bytes, warm=warm)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.warm:
            app.state.warmed = await run_in_threadpool(shared.warm)
        yield
        shared.close()

    app = _fastapi(title="anyfind", version=__version__, lifespan=lifespan,
                   description="Search text, images and speech across everything indexed.")
    app.state.index = shared
    app.state.settings = settings
    app.state.auth = TokenAuth(token)
    app.state.started_at = time.time()
    app.state.warmed = []

    protected = [Depends(require_auth)]
    app.include_router(search.router, dependencies=protected)
    app.include_router(items.router, dependencies=protected)
    app.include_router(system.router)
    app.include_router(system.public)
    app.include_router(page.router)
    app.mount("/static", StaticFiles(directory=page.STATIC), name="static")
    _error_handlers(app)

    # Added innermost first: the last one added sees the request first.
    app.add_middleware(SecurityHeaders, cross_origin=settings.cors)
    if settings.cors:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors),
                           allow_methods=["GET", "POST", "HEAD"],
                           allow_headers=["Authorization", "Range", "Content-Type"],
                           expose_headers=["Content-Range", "Accept-Ranges", "Server-Timing"])
    app.add_middleware(BodyLimit, limit=max_upload_bytes + MULTIPART_OVERHEAD)
    if settings.allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
    return app


def _fastapi(**kwargs: Any) -> FastAPI:
    """FastAPI whose /docs page works offline when fastapi-offline ships the assets."""
    try:
        from fastapi_offline import FastAPIOffline
    except ImportError:
        return FastAPI(**kwargs)
    return FastAPIOffline(**kwargs)


def _error_handlers(app: FastAPI) -> None:
    from ..secrets import mask_uris_in  # a service URI in a message is shown masked

    @app.exception_handler(QueryError)
    async def bad_query(_: Request, exc: QueryError) -> JSONResponse:
        return JSONResponse({"detail": mask_uris_in(str(exc))}, status_code=400)

    @app.exception_handler(MissingExtra)
    async def missing_extra(_: Request, exc: MissingExtra) -> JSONResponse:
        return JSONResponse({"detail": mask_uris_in(str(exc))}, status_code=501)

    @app.exception_handler(AnyfindError)
    async def domain_error(_: Request, exc: AnyfindError) -> JSONResponse:
        return JSONResponse({"detail": mask_uris_in(str(exc))}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Still JSON (the README's promise), one line; the traceback goes to the log.
        from ..errors import one_line

        log.error("unexpected error", exc_info=exc)
        return JSONResponse({"detail": f"internal error: {one_line(exc, 200)}"},
                            status_code=500)
