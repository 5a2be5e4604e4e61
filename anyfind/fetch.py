"""Reading a query's example (an image or a clip) from a URL or a local path, bounded.

A URL gets a total deadline, not only a per-read timeout (a server trickling one byte
every few seconds never trips a per-read timeout), and a size cap; a local path must be
a regular file (a FIFO would block the open forever). Every failure is one sentence."""

from __future__ import annotations

import os
import time
from pathlib import Path

from .errors import QueryError
from .fsutil import display_path

MAX_EXAMPLE_BYTES = 50 * 1024 * 1024
DEADLINE = 30.0  # seconds for a whole download
_READ_TIMEOUT = 5.0  # each socket operation; the deadline is checked between reads


def is_url(where: object) -> bool:
    return isinstance(where, str) and where.lower().startswith(("http://", "https://"))


def fetch_url(url: str, max_bytes: int = MAX_EXAMPLE_BYTES, deadline: float = DEADLINE
              ) -> bytes:
    """The body at an http(s) URL, within `deadline` seconds and `max_bytes` bytes."""
    import urllib.error
    import urllib.request

    from .secrets import mask_uri

    shown = mask_uri(url)
    start = time.monotonic()
    chunks: list[bytes] = []
    total = 0
    try:
        with urllib.request.urlopen(url, timeout=min(_READ_TIMEOUT, deadline)) as resp:  # noqa: S310
            declared = resp.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise QueryError(f"{shown} is larger than {max_bytes} bytes")
            while True:
                if time.monotonic() - start > deadline:
                    raise QueryError(f"{shown} did not arrive within {deadline:g} s")
                chunk = resp.read1(min(1 << 16, max_bytes + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
                if total > max_bytes:
                    raise QueryError(f"{shown} is larger than {max_bytes} bytes")
    except QueryError:
        raise
    except urllib.error.HTTPError as exc:
        raise QueryError(f"{shown} answered HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        text = reason.strerror if isinstance(reason, OSError) and reason.strerror else reason
        raise QueryError(f"cannot fetch {shown}: {text}") from None
    except TimeoutError:
        raise QueryError(f"{shown} did not answer within {_READ_TIMEOUT:g} s") from None
    except (OSError, ValueError) as exc:
        raise QueryError(f"cannot fetch {shown}: {type(exc).__name__}: {exc}") from None
    return b"".join(chunks)


def check_regular(path: str | os.PathLike) -> None:
    """QueryError unless `path` is a regular file now (a decoder will open it itself)."""
    from .fsutil import open_regular

    try:
        fd, _ = open_regular(Path(path))
    except OSError as exc:
        raise QueryError(f"cannot read {display_path(path)}: {exc.strerror or exc}") from None
    os.close(fd)


def read_local(path: str | os.PathLike, max_bytes: int = MAX_EXAMPLE_BYTES) -> bytes:
    """The bytes of a regular file (never a FIFO, a device or a folder), capped."""
    from .fsutil import open_regular

    shown = display_path(path)
    try:
        fd, st = open_regular(Path(path))
    except OSError as exc:
        raise QueryError(f"cannot read {shown}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as fh:
        if st.st_size > max_bytes:
            raise QueryError(f"{shown} is larger than {max_bytes} bytes")
        return fh.read(max_bytes + 1)


def read_example(where: str | os.PathLike, max_bytes: int = MAX_EXAMPLE_BYTES) -> bytes:
    """A query example's bytes from a URL or a local path."""
    if is_url(where):
        return fetch_url(str(where), max_bytes)
    return read_local(where, max_bytes)
