"""Web pages over http(s) through fsspec: one URL, or every page a sitemap.xml lists.

Fingerprints: the sitemap's <lastmod> when given (no request at all), else the ETag or
Last-Modified header of a HEAD request, else a hash of the content. Every request has a
timeout and a bounded number of tries. A page that answers 404/410 is gone; one that
fails otherwise (5xx, timeout) keeps its indexed version until it answers again.
"""

from __future__ import annotations

import hashlib
import io
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from ..errors import SourceError
from ..secrets import mask_uri
from .base import Blob, Connector, ItemRef, ScanError, glob_spec
from .remote import TIMEOUT, filesystem, fingerprint, read_capped

MAX_PAGES = 10_000
MAX_SITEMAP_BYTES = 50 * 1024 * 1024  # the sitemaps.org limit
MAX_PAGE_BYTES = 50 * 1024 * 1024
_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


class HTTPFailure(OSError):
    def __init__(self, url: str, status: int | None, reason: str):
        self.status = status
        where = mask_uri(url)
        super().__init__(f"HTTP {status} {reason} from {where}" if status else f"{reason}: {where}")


class WebConnector(Connector):
    """Options: sitemap (true/false; default: when the URL path ends in .xml and names a
    sitemap), same_host (only pages on the sitemap's host; default true), include /
    exclude (globs on URL paths), max_pages (default 10000), timeout (seconds per
    request, default 30), retries (tries per request, default 3)."""

    kind = "web"
    worker_reads = "local"  # pages fetched by the crawl are cached in its workdir
    option_names = frozenset({"sitemap", "same_host", "include", "exclude", "max_pages",
                              "timeout", "retries"})

    def __init__(self, uri: str, **options: Any):
        super().__init__(uri, **options)
        path = urlsplit(uri).path.lower()
        default = path.endswith((".xml", ".xml.gz")) and "sitemap" in path.rsplit("/", 1)[-1]
        self.sitemap = bool(options.get("sitemap", default))
        self.same_host = bool(options.get("same_host", True))
        self.max_pages = int(options.get("max_pages", MAX_PAGES))
        self.timeout = float(options.get("timeout", TIMEOUT))
        self.retries = max(1, int(options.get("retries", 3)))
        self.include = glob_spec(options.get("include"))
        self.exclude = glob_spec(options.get("exclude"))
        self._fs = None
        self._urls: dict[str, str] = {}  # item uri (masked) -> the real URL

    @property
    def fs(self):
        if self._fs is None:
            self._fs = filesystem(urlsplit(self.uri).scheme.lower(), timeout=self.timeout,
                                  retries=self.retries)
        return self._fs

    # -- requests with bounded retries ---------------------------------------------------
    def _call(self, fn, url: str):
        last: HTTPFailure | None = None
        for attempt in range(self.retries):
            try:
                return fn(url)
            except Exception as exc:
                last = _failure(url, exc)
                if last.status is not None and last.status < 500 and last.status != 429:
                    raise last from None  # 404, 401...: asking again will not help
            if attempt + 1 < self.retries:
                time.sleep(min(0.5 * 2**attempt, 5.0))  # back off before the next try
        assert last is not None
        raise last

    def _get(self, url: str, limit: int) -> bytes:
        def fetch(u: str) -> bytes:
            with self.fs.open(u, "rb", block_size=0) as fh:
                return read_capped(fh, limit)

        data = self._call(fetch, url)
        if len(data) > limit:
            raise HTTPFailure(url, None, f"more than {limit} bytes")
        return data

    # -- scanning ------------------------------------------------------------------------
    def scan(self) -> Iterator[ItemRef]:
        if not self.sitemap:
            try:
                ref = self._page(self.uri, None)
            except HTTPFailure as exc:
                raise SourceError(str(exc)) from None
            yield ref
            return
        try:
            entries = self._sitemap(self.uri, depth=0)
        except HTTPFailure as exc:
            raise SourceError(f"sitemap unavailable: {exc}") from None
        for url, lastmod in entries[: self.max_pages]:
            try:
                yield self._page(url, lastmod)
            except HTTPFailure as exc:
                self.scan_errors.append(ScanError(mask_uri(url), str(exc)))
                if exc.status not in (404, 410):  # not gone, only failing now: keep it
                    yield ItemRef(uri=mask_uri(url), path=mask_uri(url), unavailable=str(exc))

    def _page(self, url: str, lastmod: str | None) -> ItemRef:
        masked = mask_uri(url)
        self._urls[masked] = url
        if lastmod:
            return ItemRef(uri=masked, path=masked, fingerprint=f"lastmod:{lastmod}"[:250])
        info = self._call(self.fs.info, url)
        fp = fingerprint(info) if any(k in info for k in ("ETag", "Last-Modified")) else ""
        if not fp:
            fp = "sha:" + hashlib.blake2b(self._get(url, MAX_PAGE_BYTES), digest_size=16).hexdigest()
        return ItemRef(uri=masked, path=masked, size=info.get("size"), fingerprint=fp,
                       media_type=info.get("mimetype"))

    def _sitemap(self, url: str, depth: int) -> list[tuple[str, str | None]]:
        data = self._get(url, MAX_SITEMAP_BYTES)
        if url.lower().endswith(".gz") or data[:2] == b"\x1f\x8b":
            import gzip

            data = gzip.GzipFile(fileobj=io.BytesIO(data)).read(MAX_SITEMAP_BYTES + 1)
        root = _parse_sitemap(url, data)
        out: list[tuple[str, str | None]] = []
        if root.tag == f"{_NS}sitemapindex" or root.tag == "sitemapindex":
            if depth >= 2:
                raise HTTPFailure(url, None, "sitemap indexes nested too deep")
            for loc, _ in _locs(root):
                if self._allowed(loc):
                    out += self._sitemap(loc, depth + 1)
                if len(out) >= self.max_pages:
                    break
            return out
        return [(loc, mod) for loc, mod in _locs(root) if self._allowed(loc)]

    def _allowed(self, url: str) -> bool:
        parts, base = urlsplit(url), urlsplit(self.uri)
        if parts.scheme not in ("http", "https"):
            return False
        if self.same_host and parts.netloc.rpartition("@")[2] != base.netloc.rpartition("@")[2]:
            return False
        path = parts.path.lstrip("/")
        if self.include is not None and not self.include.match_file(path):
            return False
        return not (self.exclude is not None and self.exclude.match_file(path))

    # -- reading -------------------------------------------------------------------------
    def open(self, ref: ItemRef) -> Blob:
        url = self._urls.get(ref.uri, ref.uri)
        holder: list[bytes] = []

        def opener():
            if not holder:  # fetched once, read twice (hashing, then extraction)
                holder.append(self._get(url, MAX_PAGE_BYTES))
            return io.BytesIO(holder[0])

        return Blob(ref, opener)


def _failure(url: str, exc: BaseException) -> HTTPFailure:
    """The HTTP status (or network failure) behind an fsspec/aiohttp exception."""
    seen: BaseException | None = exc
    while seen is not None:
        status = getattr(seen, "status", None)
        if isinstance(status, int):
            return HTTPFailure(url, status, getattr(seen, "message", "") or "error")
        if isinstance(seen, TimeoutError) or type(seen).__name__.endswith("TimeoutError"):
            return HTTPFailure(url, None, "timed out")
        if type(seen).__name__.startswith("ClientConnector"):
            return HTTPFailure(url, None, f"cannot connect ({seen})")
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, FileNotFoundError):
        return HTTPFailure(url, 404, "Not Found")
    return HTTPFailure(url, None, f"{type(exc).__name__}: {exc}")


def _parse_sitemap(url: str, data: bytes) -> ET.Element:
    head = data.lstrip()[:200].lower()
    if head.startswith((b"<!doctype html", b"<html")):
        raise HTTPFailure(url, None, "not a sitemap (the server sent an HTML page)")
    try:
        root = ET.fromstring(data)  # expat: no external entities, bounded expansion
    except ET.ParseError as exc:
        raise HTTPFailure(url, None, f"not a sitemap (invalid XML: {exc})") from None
    if root.tag.split("}")[-1] not in ("urlset", "sitemapindex"):
        raise HTTPFailure(url, None, f"not a sitemap (root element <{root.tag}>)")
    return root


def _locs(root: ET.Element) -> Iterator[tuple[str, str | None]]:
    for entry in root:
        loc = entry.findtext(f"{_NS}loc") or entry.findtext("loc")
        mod = entry.findtext(f"{_NS}lastmod") or entry.findtext("lastmod")
        if loc and loc.strip():
            yield loc.strip(), (mod.strip() if mod else None)
