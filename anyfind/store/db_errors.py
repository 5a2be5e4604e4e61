"""A metadata database that cannot be reached or refuses the login, said in one line.

A wrong password, a missing database or a server that is down is the operator's to fix,
not a defect of anyfind: the driver's first line says which, with the URL masked."""

from __future__ import annotations

from ..errors import ServiceUnreachable
from ..secrets import mask_uri


def unreachable(exc: BaseException, url: str) -> ServiceUnreachable | None:
    """The sentence for a server database that failed while being opened (None: another
    error, or a SQLite file, whose problems are said elsewhere: storage, damage)."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    if url.startswith("sqlite") or not isinstance(exc, OperationalError | InterfaceError):
        return None
    orig = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    said = lines[-1] if lines else type(orig).__name__
    for line in lines:  # psycopg: 'connection failed: ... FATAL: password authentication ...'
        if "FATAL" in line or "failed" in line or "refused" in line:
            said = line
            break
    return ServiceUnreachable(
        f"cannot use the metadata database {mask_uri(url)}: {said}; check the server, the "
        "database name and the credentials (docs/SCALE.md)")
