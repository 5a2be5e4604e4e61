"""Who may talk to the server, and what its responses may reveal.

- Loopback by default; another address without a token needs --insecure (binding.py).
- With a token every /api route needs `Authorization: Bearer TOKEN` (compared in
  constant time). Media elements (<img>, <audio>) cannot send headers, so the page
  trades the token once for an HttpOnly, SameSite=Strict session cookie: a random
  value the server remembers until it expires or DELETE /api/session revokes it.
- Responses carry no credentials: URLs are shown with passwords masked.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

SESSION_COOKIE = "anyfind_session"
MASK = "***"
_SECRET_PARAM = re.compile(r"pass(word|wd)?$|secret|token|credential|api_?key|access_?key|"
                           r"private_?key|^key$|^sig$|signature", re.I)


class TokenAuth:
    """FastAPI dependency: the Bearer token, or a session cookie the server issued.

    A session is a random value the server remembers (never derived from the token), so
    DELETE /api/session revokes it: the same cookie is refused afterwards. Sessions live
    in this process (a restart ends them: the page trades its token again) and expire."""

    scheme = HTTPBearer(auto_error=False, description="The server's token (--token / ANYFIND_TOKEN)")
    SESSION_SECONDS = 12 * 3600
    MAX_SESSIONS = 10_000

    def __init__(self, token: str | None):
        self.token = token.encode() if token else None
        self._sessions: dict[str, float] = {}  # sha256(session) -> expiry (monotonic)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.token is not None

    def new_session(self) -> str | None:
        if self.token is None:
            return None
        session = secrets.token_urlsafe(32)
        with self._lock:
            now = time.monotonic()
            self._sessions = {k: v for k, v in self._sessions.items() if v > now}
            while len(self._sessions) >= self.MAX_SESSIONS:  # the oldest goes first
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[_digest(session)] = now + self.SESSION_SECONDS
        return session

    def revoke(self, session: str | None) -> None:
        if session:
            with self._lock:
                self._sessions.pop(_digest(session), None)

    def _valid_session(self, session: str) -> bool:
        expiry = self._sessions.get(_digest(session))
        return expiry is not None and expiry > time.monotonic()

    def check(self, request: Request, credentials: HTTPAuthorizationCredentials | None) -> None:
        if self.token is None:
            return
        if credentials is not None and hmac.compare_digest(
                credentials.credentials.encode(), self.token):
            return
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie is not None and self._valid_session(cookie):
            return
        offered = credentials is not None or request.headers.get("authorization")
        message = ("wrong token" if offered else
                   "expired or revoked session: send the token again" if cookie else
                   "this server needs a token (Authorization: Bearer TOKEN)")
        raise HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def _digest(session: str) -> str:
    # Looked up by digest, so a dict lookup's timing says nothing about a stored value.
    return hashlib.sha256(session.encode()).hexdigest()


def mask_url(url: str) -> str:
    """A URL with the password of its user-info and secret-looking parameters masked."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        info, _, host = netloc.rpartition("@")
        user, sep, _password = info.partition(":")
        netloc = f"{user}:{MASK}@{host}" if sep else f"{info}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if _SECRET_PARAM.search(k) else v) for k, v in pairs],
                          safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
