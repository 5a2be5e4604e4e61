"""The one writer of a sync's prepared items, for the local and the Ray paths alike.

Items arrive encoded (their chunks carry vectors); they are written in batches of about
`batch_chunks` chunks, each batch in one store transaction with its chunks, vectors and
children, so an interruption loses at most one batch and never leaves an item
half-written (`batch.committed` is the crash point after each). Every `checkpoint_seconds`
the vector stores and the lexical cache are caught up and saved, so a crash in a long
sync resumes from its last checkpoint without rebuilding them. The report counts what
was written; the progress bar moves by item.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..connectors.base import ItemRef
from ..crashpoints import crash_point
from ..store.metadata import ItemRecord, NewChild
from .prepare import Prepared
from .report import SyncReport

if TYPE_CHECKING:
    from ..core import OpenIndex

BATCH_CHUNKS = 256  # chunks per write transaction; at most this many decoded images held
CHECKPOINT_SECONDS = 60.0  # default: save vector files this often during a long sync


class BatchWriter:
    """Writes one source's prepared items in batches, with checkpoints (module docstring)."""

    def __init__(self, opened: OpenIndex, source_id: int, report: SyncReport, bar: Any = None,
                 batch_chunks: int | None = None):
        self.opened = opened
        self.store = opened.store
        self.source_id = source_id
        self.report = report
        self.bar = bar  # a tqdm bar (or None): advanced by item, its postfix the counts
        self.batch_chunks = batch_chunks or getattr(opened.config, "batch_chunks", BATCH_CHUNKS)
        self.every = getattr(opened.config, "checkpoint_seconds", CHECKPOINT_SECONDS)
        self._last_checkpoint = time.monotonic()
        self._group: list[Prepared] = []
        self._size = 0

    # -- batches --------------------------------------------------------------------------
    def add(self, item: Prepared, **postfix: Any) -> None:
        """One encoded item; a batch is written once it holds `batch_chunks` chunks."""
        self._group.append(item)
        self._size += sum(len(i.chunks) for i in item.tree())
        if self._size >= self.batch_chunks:
            self.flush(**postfix)

    def add_all(self, items: Iterable[Prepared], **postfix: Any) -> None:
        for item in items:
            self.add(item, **postfix)
        self.flush(**postfix)

    def flush(self, **postfix: Any) -> None:
        """Write what is held (a batch smaller than `batch_chunks` at the end of a window)."""
        if not self._group:
            return
        group, self._group, self._size = self._group, [], 0
        self.write_batch(group)
        if self.bar is not None:
            self.bar.update(len(group))
            self.bar.set_postfix(chunks=self.report.chunks, failed=self.report.failed,
                                 refresh=False, **postfix)

    def checkpoint_if_due(self) -> None:
        """Catch up and save the vector stores and the lexical cache every `every` s."""
        if time.monotonic() - self._last_checkpoint >= self.every:
            self.opened.refresh_vectors(save=True, checkpoint=True)
            self._last_checkpoint = time.monotonic()

    def ensure_spaces(self) -> None:
        """Every space with a known dimension has its row in the store (before writing)."""
        for name, space in self.opened.spaces.items():
            if space.config.dim:
                self.store.ensure_space(name, space.config.dim)

    # -- one transaction --------------------------------------------------------------------
    def write_batch(self, items: list[Prepared]) -> None:
        """Prepared items (and their chunks, vectors, children) in one store transaction,
        counted in the report; a changed item that failed keeps its last good version."""
        report = self.report
        entries = []
        for item in items:
            if item.status == "error":
                report.failed += 1
                report.errors.append({"path": item.ref.path, "error": item.error or ""})
                if item.replace_id is not None:
                    # A changed item that fails keeps its last good version (a network
                    # blip or a half-written file must not cost its vectors); the error
                    # is noted on it and the next sync tries again.
                    self.store.note_error(item.replace_id, item.error or "")
                    continue
            for lost in ("frames_error", "transcript_error"):  # indexed, with a part lost
                if item.meta.get(lost):
                    report.errors.append({"path": item.ref.path,
                                          "error": f"partly read: {item.meta[lost]}"})
            entries.append((self.record(item.ref, item.content_hash, item),
                            item.chunks, item.replace_id, self._children(item)))
            if item.status == "error":
                pass  # counted above; its record keeps the error
            elif item.status == "skipped":
                report.skipped += 1
            elif item.replace_id is not None:
                report.updated += 1
            else:
                report.added += 1
            report.chunks += sum(1 for c in item.chunks if c.vectors)
        self.store.write_items(entries)
        crash_point("batch.committed")
        if any("ocr" in i.meta or "ocr_pages" in i.meta for item in items for i in item.tree()):
            self.opened.note_pixels_read()

    def record(self, ref: ItemRef, digest: str | None, item: Prepared | None) -> ItemRecord:
        """The item row of `ref` (None: an unchanged item whose row is only refreshed)."""
        return ItemRecord(
            source_id=self.source_id, uri=ref.uri, path=ref.path,
            modality=item.modality if item else None,
            media_type=item.media_type if item else None,
            size=ref.size, mtime=ref.mtime, fingerprint=ref.fingerprint, content_hash=digest,
            status=item.status if item else "ok", error=item.error if item else None,
            title=(item.title if item else None) or ref.metadata.get("title"),
            meta={**ref.metadata, **(item.meta if item else {})},
        )

    def _children(self, item: Prepared) -> list[NewChild]:
        """The items found inside `item`, ready to write under it; counted in the report
        (attachments), a failed one as a failed item with its own error."""
        report = self.report
        out = []
        for child in item.children:
            if child.status == "error":
                report.failed += 1
                report.errors.append({"path": child.ref.path, "error": child.error or ""})
            elif child.status == "skipped":
                report.skipped += 1
            report.attachments += 1
            if not child.reused:
                report.chunks += sum(1 for c in child.chunks if c.vectors)
            out.append(NewChild(self.record(child.ref, child.content_hash, child),
                                child.chunks, self._children(child)))
        return out
