"""In-memory records as a source: (id, title, text) tuples indexed like files.

Used by `Index.add_documents` (and by `anyfind eval` for BEIR corpora). A record's
content is its title and text as UTF-8 plain text; its fingerprint is a hash of that
content, so re-adding the same records costs nothing and an edited record is re-embedded.
A records source has no origin to re-read: only `add_documents` syncs it.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from .base import Blob, Connector, ItemRef


@dataclass(frozen=True)
class Record:
    id: str
    text: str
    title: str = ""
    mtime: float | None = None
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


def as_record(obj: Record | tuple | dict) -> Record:
    """A Record from a Record, a (id, title, text) tuple or a dict with id (or _id), text
    and optional title, mtime and meta (stored with the item, e.g. {"taken": epoch})."""
    if isinstance(obj, Record):
        return obj
    if isinstance(obj, dict):
        return Record(str(obj.get("id", obj.get("_id"))), obj.get("text") or "",
                      obj.get("title") or "", obj.get("mtime"), dict(obj.get("meta") or {}))
    doc_id, title, text = obj
    return Record(str(doc_id), text or "", title or "")


class RecordsConnector(Connector):
    kind = "records"

    def __init__(self, uri: str, records: Iterable[Record | tuple | dict] = (), **options: Any):
        super().__init__(uri, **options)
        self.name = uri.removeprefix("records:")
        self.records = {r.id: r for r in map(as_record, records)}

    def uri_of(self, doc_id: str) -> str:
        return f"records:{quote(self.name, safe='')}/{quote(doc_id, safe='')}"

    @staticmethod
    def doc_id(uri: str) -> str:
        return unquote(uri.rsplit("/", 1)[1])

    @staticmethod
    def content(record: Record) -> bytes:
        text = f"{record.title}\n\n{record.text}" if record.title else record.text
        return text.encode("utf-8")

    def scan(self) -> Iterator[ItemRef]:
        for r in self.records.values():
            data = self.content(r)
            yield ItemRef(
                uri=self.uri_of(r.id), path=f"{self.name}/{r.id}", size=len(data), mtime=r.mtime,
                fingerprint=hashlib.blake2b(data, digest_size=16).hexdigest(),
                media_type="text/plain",
                metadata={**r.meta, **({"title": r.title} if r.title else {})},
            )

    def open(self, ref: ItemRef) -> Blob:
        data = self.content(self.records[self.doc_id(ref.uri)])
        return Blob(ref, lambda: io.BytesIO(data))
