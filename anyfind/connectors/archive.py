"""Zip and tar archives (.zip, .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz) indexed as folders.

The archive is a local file, or any fsspec URL (https://, s3://...) downloaded into the
index's cache first. Members are read in memory, never extracted to disk. A zip bomb
guard refuses archives whose members expand too much (ratio) or too far (sizes).
Item URIs use fsspec's chained form, e.g. `zip://docs/a.md::file:///data/notes.zip`.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ConfigError, SourceError
from ..secrets import mask_uri
from .base import Blob, Connector, ItemRef, ScanError, glob_spec

MAX_RATIO = 100  # a member may expand at most this many times...
RATIO_FLOOR = 1 << 20  # ...once it is larger than 1 MiB (tiny files compress well)
MAX_MEMBER_BYTES = 200 * 1024 * 1024
MAX_TOTAL_BYTES = 2 * 1024 * 1024 * 1024
MAX_MEMBERS = 100_000
MAX_DOWNLOAD_BYTES = 2 * 1024 * 1024 * 1024


def archive_format(name: str) -> str | None:
    lowered = name.lower().split("?", 1)[0]
    if lowered.endswith(".zip"):
        return "zip"
    if lowered.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")):
        return "tar"
    return None


class ArchiveConnector(Connector):
    """Options: include / exclude (globs on member paths), max_ratio (default 100),
    max_member_bytes (200 MB), max_total_bytes (2 GB), max_members (100000),
    storage_options (for a remote archive), timeout."""

    kind = "archive"
    worker_reads = "local"
    option_names = frozenset({"include", "exclude", "max_ratio", "max_member_bytes",
                              "max_total_bytes", "max_members", "storage_options", "timeout"})

    def __init__(self, uri: str, **options: Any):
        super().__init__(uri, **options)
        target = uri
        fmt = None
        for prefix in ("zip://", "tar://"):
            if uri.startswith(prefix):
                fmt, target = prefix[:3], uri[len(prefix):]
        if target.startswith("file://"):
            target = target[len("file://"):]
        self.remote = "://" in target
        self.target = target if self.remote else str(Path(target).expanduser().absolute())
        self.format = fmt or archive_format(self.target)
        if self.format is None:
            raise ConfigError(f"{mask_uri(uri)} does not look like a zip or tar archive")
        self.include = glob_spec(options.get("include"))
        self.exclude = glob_spec(options.get("exclude"))
        self.max_ratio = float(options.get("max_ratio", MAX_RATIO))
        self.max_member = int(options.get("max_member_bytes", MAX_MEMBER_BYTES))
        self.max_total = int(options.get("max_total_bytes", MAX_TOTAL_BYTES))
        self.max_members = int(options.get("max_members", MAX_MEMBERS))
        self.storage_options = dict(options.get("storage_options") or {})
        self.timeout = float(options.get("timeout", 60))
        self.name = self.target.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
        base = mask_uri(self.target) if self.remote else f"file://{self.target}"
        self.base = base
        self._archive: zipfile.ZipFile | tarfile.TarFile | None = None
        self._members: dict[str, Any] = {}
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"{self.format}::{self.base}"

    # -- opening the archive -------------------------------------------------------------
    def _local_file(self) -> Path:
        if not self.remote:
            path = Path(self.target)
            if not path.is_file():
                raise SourceError(f"archive {path} not found")
            return path
        if self.workdir is None:
            raise SourceError("a remote archive needs a cache folder (run it from an Index)")
        from .remote import filesystem

        self.workdir.mkdir(parents=True, exist_ok=True)
        local = self.workdir / f"archive-{self.name}"
        protocol = self.target.split("://", 1)[0].lower()
        try:
            fs = filesystem(protocol, self.storage_options, self.timeout)
            with fs.open(self.target, "rb") as src, open(local, "wb") as out:
                copied = 0
                while chunk := src.read(1 << 20):
                    copied += len(chunk)
                    if copied > MAX_DOWNLOAD_BYTES:
                        raise SourceError(f"archive {self.base} is larger than "
                                          f"{MAX_DOWNLOAD_BYTES} bytes")
                    out.write(chunk)
        except SourceError:
            raise
        except Exception as exc:
            raise SourceError(f"cannot download {self.base}: {type(exc).__name__}: {exc}") from None
        return local

    def _bomb(self, what: str) -> SourceError:
        return SourceError(f"refusing {self.describe()}: {what} (zip bomb guard; raise the "
                           "limit with the max_ratio / max_total_bytes options if you trust it)")

    # -- scanning ------------------------------------------------------------------------
    def scan(self) -> Iterator[ItemRef]:
        path = self._local_file()
        listed = self._scan_zip(path) if self.format == "zip" else self._scan_tar(path)
        for name, size, mtime, fp in listed:
            yield ItemRef(uri=f"{self.format}://{name}::{self.base}", path=f"{self.name}/{name}",
                          size=size, mtime=mtime, fingerprint=fp,
                          metadata={"archive": self.base, "member": name})

    def _scan_zip(self, path: Path) -> list[tuple[str, int, float | None, str]]:
        import datetime as dt

        try:
            zf = zipfile.ZipFile(path)
            infos = zf.infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise SourceError(f"malformed zip archive {self.describe()}: {exc}") from None
        self._archive = zf
        self._check_totals([i for i in infos if not i.is_dir()], path,
                           lambda i: i.file_size, lambda i: i.compress_size)
        out = []
        for info in infos:
            if info.is_dir() or not self._wanted(info.filename):
                continue
            if info.flag_bits & 0x1:
                self.scan_errors.append(ScanError(self._path(info.filename), "encrypted member"))
                continue
            if info.file_size > self.max_member:
                self.scan_errors.append(ScanError(self._path(info.filename),
                                                  f"member larger than {self.max_member} bytes"))
                continue
            try:
                mtime = dt.datetime(*info.date_time).timestamp()
            except ValueError:
                mtime = None
            self._members[info.filename] = info
            out.append((info.filename, info.file_size, mtime,
                        f"crc:{info.CRC:08x}:{info.file_size}"))
        return out

    def _scan_tar(self, path: Path) -> list[tuple[str, int, float | None, str]]:
        try:
            tf = tarfile.open(path, "r:*")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise SourceError(f"malformed tar archive {self.describe()}: {exc}") from None
        self._archive = tf
        archive_size = max(path.stat().st_size, 1)
        out, total, count = [], 0, 0
        try:
            # next() reads one header at a time: a bomb is refused before its data is
            # decompressed to skip over it.
            while (member := tf.next()) is not None:
                count += 1
                if count > self.max_members:
                    raise self._bomb(f"more than {self.max_members} members")
                if not member.isfile():
                    continue  # folders, links, devices
                total += member.size
                if total > self.max_total:
                    raise self._bomb(f"members add up to more than {self.max_total} bytes")
                if total > RATIO_FLOOR and total / archive_size > self.max_ratio:
                    raise self._bomb(f"expands more than {self.max_ratio:.0f} times")
                if not self._wanted(member.name):
                    continue
                if member.size > self.max_member:
                    self.scan_errors.append(ScanError(self._path(member.name),
                                                      f"member larger than {self.max_member} bytes"))
                    continue
                self._members[member.name] = member
                out.append((member.name, member.size, float(member.mtime),
                            f"{member.size}:{member.mtime}"))
        except (tarfile.TarError, OSError, EOFError, zlib_error()) as exc:
            raise SourceError(f"malformed tar archive {self.describe()}: {exc}") from None
        return out

    def _check_totals(self, infos, path: Path, size, packed) -> None:
        if len(infos) > self.max_members:
            raise self._bomb(f"more than {self.max_members} members")
        total = sum(size(i) for i in infos)
        if total > self.max_total:
            raise self._bomb(f"members add up to more than {self.max_total} bytes")
        for info in infos:
            if size(info) > RATIO_FLOOR and size(info) / max(packed(info), 1) > self.max_ratio:
                raise self._bomb(f"member {info.filename!r} expands "
                                 f"{size(info) / max(packed(info), 1):.0f} times")

    def _wanted(self, name: str) -> bool:
        if self.include is not None and not self.include.match_file(name):
            return False
        return not (self.exclude is not None and self.exclude.match_file(name))

    def _path(self, name: str) -> str:
        return f"{self.name}/{name}"

    # -- reading -------------------------------------------------------------------------
    def open(self, ref: ItemRef) -> Blob:
        member = self._members[ref.metadata["member"]]
        holder: list[bytes] = []

        def opener():
            if not holder:
                holder.append(self._read(member))
            return io.BytesIO(holder[0])

        return Blob(ref, opener)

    def _read(self, member) -> bytes:
        with self._lock:  # one archive handle, shared by the hashing and extraction threads
            if isinstance(self._archive, zipfile.ZipFile):
                with self._archive.open(member) as fh:
                    data = fh.read(self.max_member + 1)
            else:
                assert isinstance(self._archive, tarfile.TarFile)
                fh = self._archive.extractfile(member)
                if fh is None:
                    raise OSError(f"{member.name} is not a regular file")
                data = fh.read(self.max_member + 1)
        if len(data) > self.max_member:
            raise OSError(f"member larger than {self.max_member} bytes")
        return data

    def close(self) -> None:
        if self._archive is not None:
            with contextlib.suppress(Exception):
                self._archive.close()
            self._archive = None


def zlib_error() -> type[Exception]:
    import zlib

    return zlib.error
