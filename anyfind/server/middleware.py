"""Pure ASGI middleware: request body caps and security headers on every response."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from starlette.exceptions import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PAGE_CSP = ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
            "style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class BodyTooLarge(HTTPException):
    """Raised from receive(): FastAPI re-raises HTTPExceptions met while reading a body."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body over the {limit // (1024 * 1024)} MiB limit",
                         headers={"Connection": "close"})


class BodyLimit:
    """413 for a request body over `limit` bytes: refused up front by Content-Length, and
    counted as it streams in (a chunked upload cannot slip past the header check)."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    await _refuse(send, self.limit)
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _refuse(send, self.limit)


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps({"detail": BodyTooLarge(limit).detail})
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body.encode()})


class SecurityHeaders:
    """nosniff, no referrer, no framing, same-origin resources; a strict CSP for the page.

    Routes may set their own Content-Security-Policy (content served from the index
    gets `sandbox`); it is left alone."""

    def __init__(self, app: ASGIApp, cross_origin: Sequence[str] = ()):
        self.app = app
        # Cross-origin reads only for the origins --cors names, never for every site:
        # a request from another origin (or none: a no-cors <img>) gets same-origin.
        self.origins = {o.rstrip("/").lower() for o in cross_origin}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        is_page = path == "/" or path.startswith("/static/")
        origin = next((v.decode("latin-1").rstrip("/").lower() for k, v in scope.get("headers", [])
                       if k == b"origin"), None)
        corp = (b"cross-origin" if origin is not None and (origin in self.origins
                                                            or "*" in self.origins)
                else b"same-origin")

        async def add_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [(b"x-content-type-options", b"nosniff"),
                         (b"referrer-policy", b"no-referrer"),
                         (b"x-frame-options", b"DENY"),
                         (b"cross-origin-resource-policy", corp)]
                if is_page:
                    extra.append((b"content-security-policy", PAGE_CSP.encode()))
                headers += [(n, v) for n, v in extra if n not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, add_headers)
