"""Where the server may listen: loopback by default, anything else only with a token
(or an explicit --insecure). No FastAPI here: `anyfind serve` checks before importing it."""

from __future__ import annotations

import ipaddress

from ..errors import ConfigError

LOOPBACK_HOST_HEADERS = ("localhost", "127.0.0.1", "[::1]")


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def check_bind(host: str, token: str | None, insecure: bool) -> None:
    """Refuse to expose an index beyond this machine without a token."""
    if token is not None and not token.strip():
        raise ConfigError("the token is empty")
    if not is_loopback(host) and token is None and not insecure:
        raise ConfigError(
            f"refusing to serve on {host} without a token: anyone who can reach it could read "
            "the index. Set ANYFIND_TOKEN (or --token), or pass --insecure if you mean it")


def allowed_hosts(host: str) -> list[str] | None:
    """Host headers to accept: when bound to loopback, only loopback names (this stops
    DNS-rebinding pages from reading the API through a browser)."""
    if not is_loopback(host):
        return None
    own = f"[{host.strip('[]')}]" if ":" in host else host
    return sorted({*LOOPBACK_HOST_HEADERS, own.lower()})
