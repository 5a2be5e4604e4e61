"""Health, status, and the browser session that lets media elements authenticate."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from ..._version import __version__
from ..deps import IndexDep, SettingsDep, require_auth
from ..schemas import Health
from ..security import SESSION_COOKIE, mask_url

public = APIRouter(tags=["system"])
router = APIRouter(prefix="/api", tags=["system"], dependencies=[Depends(require_auth)])

SOURCE_FIELDS = ("id", "name", "kind", "items", "created_at", "synced_at")


@public.get("/healthz", response_model=Health, summary="Liveness (no token needed)")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/status", summary="What the index holds")
def status(index: IndexDep, settings: SettingsDep, request: Request) -> dict[str, Any]:
    """Counts, spaces, sources (credentials masked, options left out) and the server."""
    st = index.status()
    st["store"] = mask_url(str(st.get("store", "")))
    st["sources"] = [{**{k: s.get(k) for k in SOURCE_FIELDS}, "uri": mask_url(str(s["uri"]))}
                     for s in st.get("sources", [])]
    state = request.app.state
    st["server"] = {"version": __version__, "uptime_s": round(time.time() - state.started_at, 1),
                    "warmed": state.warmed, "token": settings.token is not None,
                    "max_upload_bytes": settings.max_upload_bytes}
    return st


@router.post("/session", status_code=204, summary="Start a browser session")
def start_session(request: Request, response: Response) -> None:
    """Trade the Bearer token for an HttpOnly cookie, so that <img> and <audio>
    elements (which cannot send headers) may load thumbnails and content."""
    session = request.app.state.auth.new_session()
    if session is not None:
        response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="strict",
                            path="/api/", secure=request.url.scheme == "https",
                            max_age=request.app.state.auth.SESSION_SECONDS)


@public.delete("/api/session", status_code=204, summary="End the browser session")
def end_session(request: Request, response: Response) -> None:
    """Revoke the session: its cookie is refused from now on, wherever it was copied."""
    request.app.state.auth.revoke(request.cookies.get(SESSION_COOKIE))
    response.delete_cookie(SESSION_COOKIE, path="/api/", httponly=True, samesite="strict")
