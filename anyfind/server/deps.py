"""Request-scoped access to what the app holds: the shared index, auth, settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials

from .security import TokenAuth

if TYPE_CHECKING:
    from ..index import Index

MiB = 1024 * 1024


@dataclass
class Settings:
    token: str | None = None
    cors: tuple[str, ...] = ()
    allowed_hosts: list[str] | None = None  # None: any Host header
    max_upload_bytes: int = 25 * MiB
    warm: bool = True
    max_k: int = 100


def get_index(request: Request) -> Index:
    return request.app.state.index


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def require_auth(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(TokenAuth.scheme)],
) -> None:
    request.app.state.auth.check(request, credentials)


IndexDep = Annotated["Index", Depends(get_index)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
