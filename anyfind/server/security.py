"""Who may talk to the server, and what its responses may reveal.

- Loopback by default; another address without a token needs --insecure (binding.py).
- With a token every /api route needs `Authorization: Bearer TOKEN` (compared in
  constant time). Media elements (<img>, <audio>) cannot send headers, so the page
  trades the token once for an HttpOnly, SameSite=Strict session cookie holding an
  HMAC of it (never the token itself), accepted in place of the header.
- Responses carry no credentials: URLs are shown with passwords masked.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

SESSION_COOKIE = "anyfind_session"
MASK = "***"
_SECRET_PARAM = re.compile(r"pass(word|wd)?$|secret|token|credential|api_?key|access_?key|"
                           r"private_?key|^key$|^sig$|signature", re.I)


class TokenAuth:
    """FastAPI dependency: the Bearer token, or the session cookie derived from it."""

    scheme = HTTPBearer(auto_error=False, description="The server's token (--token / ANYFIND_TOKEN)")

    def __init__(self, token: str | None):
        self.token = token.encode() if token else None
        self.session = (hmac.new(self.token, b"anyfind-session", hashlib.sha256).hexdigest()
                        if self.token else None)

    @property
    def enabled(self) -> bool:
        return self.token is not None

    def check(self, request: Request, credentials: HTTPAuthorizationCredentials | None) -> None:
        if self.token is None:
            return
        if credentials is not None and hmac.compare_digest(
                credentials.credentials.encode(), self.token):
            return
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie is not None and self.session and hmac.compare_digest(
                cookie.encode(), self.session.encode()):
            return
        raise HTTPException(401, "missing or wrong token", headers={"WWW-Authenticate": "Bearer"})


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
