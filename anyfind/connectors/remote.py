"""Object stores through fsspec: s3:// (s3fs), gs:// (gcsfs), az:// and abfs:// (adlfs).

ETags are the fingerprints (size and modification time when a store gives none).
Listings are never served from fsspec's cache, so each sync sees the store as it is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from ..errors import ConfigError, MissingExtra, SourceError, one_line, require
from ..secrets import mask_uri
from .base import Blob, Connector, ItemRef, glob_spec

# protocol -> (module, extra)
BACKENDS = {
    "s3": ("s3fs", "connectors"), "s3a": ("s3fs", "connectors"),
    "gs": ("gcsfs", "gcs"), "gcs": ("gcsfs", "gcs"),
    "az": ("adlfs", "azure"), "abfs": ("adlfs", "azure"), "abfss": ("adlfs", "azure"),
    "adl": ("adlfs", "azure"),
}  # fmt: skip
TIMEOUT = 30.0
RETRIES = 3


def filesystem(protocol: str, storage_options: dict[str, Any] | None = None,
               timeout: float = TIMEOUT, retries: int = RETRIES):
    """A fresh fsspec filesystem (no instance or listing cache), with timeouts and
    bounded retries where the backend takes them."""
    fsspec = require("fsspec", "connectors")
    opts = dict(storage_options or {})
    if protocol in BACKENDS:
        module, extra = BACKENDS[protocol]
        try:
            __import__(module)
        except ImportError:
            raise MissingExtra(extra, module) from None
    if protocol in ("s3", "s3a"):
        config = {"connect_timeout": timeout, "read_timeout": timeout,
                  "retries": {"max_attempts": retries, "mode": "standard"}}
        opts["config_kwargs"] = {**config, **opts.get("config_kwargs", {})}
        opts.setdefault("use_listings_cache", False)
    elif protocol in ("http", "https"):
        aiohttp = require("aiohttp", "connectors")

        opts.setdefault("client_kwargs", {})["timeout"] = aiohttp.ClientTimeout(
            total=timeout * 4, connect=timeout, sock_read=timeout)
    return fsspec.filesystem(protocol, skip_instance_cache=True, **opts)


def read_capped(fh, limit: int) -> bytes:
    """Read to the end, or limit + 1 bytes (a stream's read(n) may return less than n)."""
    chunks: list[bytes] = []
    total = 0
    while total <= limit:
        chunk = fh.read(min(1 << 20, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def read_url(url: str, max_bytes: int, timeout: float = TIMEOUT) -> bytes:
    """The bytes at an fsspec URL (http, s3, file...), refusing more than max_bytes."""
    protocol = url.split("://", 1)[0].lower()
    fs = filesystem(protocol, timeout=timeout)
    with fs.open(url, "rb") as fh:
        data = read_capped(fh, max_bytes)
    if len(data) > max_bytes:
        raise OSError(f"{mask_uri(url)} is larger than {max_bytes} bytes")
    return data


def _mtime(info: dict[str, Any]) -> float | None:
    for key in ("LastModified", "last_modified", "updated", "mtime", "Last-Modified"):
        value = info.get(key)
        if isinstance(value, dt.datetime):
            return value.timestamp()
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None


def fingerprint(info: dict[str, Any]) -> str:
    for key in ("ETag", "etag", "md5Hash", "content_md5", "Content-MD5", "Digest"):
        value = info.get(key)
        if value:
            return ("etag:" + str(value).strip('"'))[:250]
    return f"{info.get('size')}:{_mtime(info)}"


class ObjectStoreConnector(Connector):
    """Every object under s3://bucket/prefix (or gs://, az://). Options: include /
    exclude (globs on keys under the prefix), endpoint_url (S3-compatible servers),
    region, anon, storage_options (passed to the fsspec backend), timeout, retries.
    Credentials: the backend's usual ones (AWS_ACCESS_KEY_ID..., a profile), or key /
    secret in storage_options, written as ${ENV} references."""

    kind = "objectstore"
    worker_reads = "anywhere"
    option_names = frozenset({"include", "exclude", "endpoint_url", "region", "anon",
                              "storage_options", "timeout", "retries"})

    def __init__(self, uri: str, **options: Any):
        super().__init__(uri, **options)
        if "://" not in uri:
            raise ConfigError(f"not an object store URL: {mask_uri(uri)}")
        self.protocol, _, self.root = uri.partition("://")
        self.protocol = self.protocol.lower()
        self.root = self.root.strip("/")
        if not self.root:
            raise ConfigError(f"{mask_uri(uri)}: name a bucket (and optionally a prefix)")
        opts = dict(options.get("storage_options") or {})
        if options.get("endpoint_url"):
            opts["endpoint_url"] = options["endpoint_url"]
        if options.get("region"):
            opts.setdefault("client_kwargs", {})["region_name"] = options["region"]
        if options.get("anon") is not None:
            opts["anon"] = bool(options["anon"])
        self.storage_options = opts
        self.timeout = float(options.get("timeout", TIMEOUT))
        self.retries = int(options.get("retries", RETRIES))
        self.include = glob_spec(options.get("include"))
        self.exclude = glob_spec(options.get("exclude"))
        self._fs = None

    @property
    def fs(self):
        if self._fs is None:
            self._fs = filesystem(self.protocol, self.storage_options, self.timeout, self.retries)
        return self._fs

    def scan(self) -> Iterator[ItemRef]:
        bucket = self.root.split("/", 1)[0]
        try:
            if not self.fs.exists(bucket):
                raise SourceError(f"bucket {bucket!r} not found at {self.describe()}")
            listing = self.fs.find(self.root, detail=True, withdirs=False)
        except SourceError:
            raise
        except MissingExtra:
            raise
        except PermissionError as exc:
            raise SourceError(f"access denied to {self.describe()} (check the credentials): "
                              f"{one_line(exc, 300)}") from None
        except Exception as exc:
            raise SourceError(f"cannot list {self.describe()}: {one_line(exc, 300)}") from None
        for name, info in sorted(listing.items()):
            rel = name[len(self.root):].lstrip("/") if name.startswith(self.root) else name
            if info.get("type") == "directory" or not self._wanted(rel):
                continue
            yield ItemRef(uri=f"{self.protocol}://{name}", path=f"{self.protocol}://{name}",
                          size=info.get("size"), mtime=_mtime(info),
                          fingerprint=fingerprint(info))

    def _wanted(self, rel: str) -> bool:
        if self.include is not None and not self.include.match_file(rel):
            return False
        return not (self.exclude is not None and self.exclude.match_file(rel))

    def open(self, ref: ItemRef) -> Blob:
        name = ref.uri.split("://", 1)[1]
        return Blob(ref, lambda: self.fs.open(name, "rb"))


