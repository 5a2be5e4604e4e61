"""The connector contract: scan() lists item references, open() gives their bytes."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO


@dataclass(frozen=True)
class ItemRef:
    """One item a connector found: a stable URI and a cheap change fingerprint."""

    uri: str  # stable identity within the source, e.g. file:///abs/path
    path: str  # what people see: a path or a readable locator
    size: int | None = None
    mtime: float | None = None
    fingerprint: str = ""  # cheap change marker (size+mtime, blob id, ETag ...)
    media_type: str | None = None  # a hint; extraction sniffs content anyway
    metadata: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    # Set when the item is listed but could not be checked this time (a timeout, a 5xx):
    # the stored version is kept as it is, and a new one is not added yet.
    unavailable: str | None = None


class Blob:
    """Lazy access to one item's content (bytes, a stream, or a local path)."""

    def __init__(self, ref: ItemRef, opener, local_path: Path | None = None):
        self.ref = ref
        self._opener = opener
        self._local_path = local_path

    def open(self) -> BinaryIO:
        return self._opener()

    def read(self, limit: int | None = None) -> bytes:
        with self.open() as fh:
            return fh.read() if limit is None else fh.read(limit)

    @contextlib.contextmanager
    def local_path(self) -> Iterator[Path]:
        """A filesystem path to the content; spooled to a temp file when not local."""
        if self._local_path is not None:
            yield self._local_path
            return
        suffix = Path(self.ref.path).suffix
        fd, name = tempfile.mkstemp(prefix="anyfind-", suffix=suffix)
        try:
            with os.fdopen(fd, "wb") as out, self.open() as src:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
            yield Path(name)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(name)

    @classmethod
    def from_bytes(cls, data: bytes, path: str = "blob", media_type: str | None = None) -> Blob:
        ref = ItemRef(uri=f"bytes:{path}", path=path, size=len(data), media_type=media_type)
        return cls(ref, lambda: io.BytesIO(data))


def content_hash(blob: Blob) -> str:
    """The identity of an item's bytes (renames, copies, attachments): BLAKE2b-128, hex."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    with blob.open() as fh:
        while data := fh.read(1 << 20):
            h.update(data)
    subtitles = blob.ref.metadata.get("subtitles") if blob.ref.metadata else None
    if subtitles:  # a video's transcript beside it (filesystem.with_subtitles) is its content
        for path in subtitles:
            h.update(b"\0subtitles\0")
            with contextlib.suppress(OSError), open(path, "rb") as fh:
                h.update(fh.read(1 << 24))
    return h.hexdigest()


def glob_spec(patterns: Any):
    """A gitignore-style matcher for include/exclude options (None when there are none)."""
    patterns = [patterns] if isinstance(patterns, str) else list(patterns or [])
    if not patterns:
        return None
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(patterns)


@dataclass
class ScanError:
    """An entry the scan could not list or stat (recorded, never fatal)."""

    path: str
    message: str


class Connector(ABC):
    """A repository of items. Subclasses set `kind` and implement scan() and open().

    scan() raises SourceError when the whole source cannot be read (unreachable, bad
    credentials, missing ref or table): the sync then changes nothing for this source.
    Entries it cannot read one by one go to scan_errors instead.
    """

    kind: str = ""
    #: where a copy of this connector (pickled to a distributed executor's worker) can
    #: open items: "local" on this machine (its files), "anywhere" (a network service),
    #: "driver" only in this process (the bytes are shipped to the workers)
    worker_reads: str = "driver"
    #: option names this connector understands (None: not checked)
    option_names: frozenset[str] | None = None

    def __init__(self, uri: str, **options: Any):
        self.uri = uri
        self.options = options
        self.scan_errors: list[ScanError] = []
        #: a private folder inside the index for caches (clones, downloads); set by Index
        self.workdir: Path | None = None
        #: what the last successful sync of this source recorded (see sync_state)
        self.prior_state: dict[str, Any] = {}
        #: credentials in the URI or options, to redact from messages; set by the index
        self.secrets: list[str] = []

    @abstractmethod
    def scan(self) -> Iterator[ItemRef]:
        """Yield every item currently in the repository."""

    @abstractmethod
    def open(self, ref: ItemRef) -> Blob:
        """Give access to one item's content."""

    def describe(self) -> str:
        """The source's URI as safe to print: credentials masked."""
        from ..secrets import mask_uri

        return mask_uri(self.uri)

    def sync_state(self) -> dict[str, Any]:
        """What to remember after a successful sync (e.g. the commit that was read)."""
        return {}

    def close(self) -> None:
        """Release processes, sessions or files held since scan()."""
        return None
