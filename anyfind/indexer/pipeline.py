"""The indexing pipeline: plan, hash, extract (on threads), embed in windows, write.

Hashing and extraction run on worker threads overlapped with encoding in the main thread
(tokenisation, decoding and matrix work release the GIL). Text is embedded in windows of
~2,048 chunks sorted by length (little padding), images in windows of up to one model
batch. Items are written in batches of ~256 chunks, each in one store transaction
together with their chunks and vectors, so an interrupted run resumes from the last
committed batch with nothing half-written.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import TYPE_CHECKING

from ..connectors.base import Connector, ItemRef, content_hash
from ..core import calibration
from ..crashpoints import crash_point
from ..errors import one_line
from .batch_writer import BATCH_CHUNKS, BatchWriter
from .encode import encode_items
from .planner import plan_sync
from .prepare import Prepared, Preparer
from .relations import resolve_links
from .report import SyncReport, VectorsPending

if TYPE_CHECKING:
    from ..core import OpenIndex

EMBED_WINDOW = 2048  # text chunks embedded together, sorted by length (less padding)
IMAGE_WINDOW = 32  # images per window: one model batch, so decoding overlaps the forward
FIRST_TEXT_WINDOW = 256  # chunks of the first text window (then doubling: _process)
MIN_IMAGE_WINDOW = 4  # ... or fewer, down to this, when the model would wait for decodes
_DONE = object()


class Pipeline:
    """One sync of one source, over an open index: plans, reads and extracts (threads),
    hands chunk batches to the index's encoding executor, and writes batches."""

    def __init__(self, opened: OpenIndex, progress: bool = True, batch_chunks: int | None = None):
        self.opened = opened
        self.store = opened.store
        self.executor = opened.executor
        self.progress = progress
        self.batch_chunks = batch_chunks or getattr(opened.config, "batch_chunks", BATCH_CHUNKS)
        self.embed_window = max(self.batch_chunks,
                                getattr(opened.config, "embed_window", EMBED_WINDOW))
        self.image_window = max(1, min(self.batch_chunks, IMAGE_WINDOW))
        self.workers = max(1, min(4, os.cpu_count() or 1))
        self.preparer = Preparer(opened, store=self.store)

    def writer(self, source_id: int, report: SyncReport, bar=None) -> BatchWriter:
        """The batch writer of this sync (batch_writer.py): the local and the Ray paths
        write through it alike."""
        return BatchWriter(self.opened, source_id, report, bar, self.batch_chunks)

    # -- planning ------------------------------------------------------------------------
    def sync(self, source_id: int, connector: Connector, retry_errors: bool = False) -> SyncReport:
        started = time.perf_counter()
        report = SyncReport()
        refs = list(connector.scan())
        for err in connector.scan_errors:
            report.errors.append({"path": err.path, "error": err.message})
        stored = self.store.items_of_source(source_id)
        plan = plan_sync(refs, stored, retry_errors=retry_errors)
        retry: set[int] = set()
        if retry_errors:  # an item whose attachment failed is read again, attachments too
            retry = self.store.with_failed_children(source_id)
            again = [(ref, row) for ref, row in plan.unchanged
                     if row.id in retry and ref.unavailable is None]
            plan.unchanged = [pair for pair in plan.unchanged if pair not in again]
            plan.changed += again
        report.unchanged = len(plan.unchanged)
        crash_point("sync.planned")

        deleted_by_hash = {row.content_hash: row for row in plan.deleted
                           if row.content_hash and row.status == "ok"}
        todo: list[tuple[ItemRef, int | None, str | None, str | None]] = []
        failed_early: list[Prepared] = []
        cap = self.opened.config.max_file_bytes
        candidates = [(r, None) for r in plan.new] + plan.changed
        digests = self._hash_all(connector, [ref for ref, _ in candidates], cap)
        twins = self.store.items_by_hash([d for (_, row), d in zip(candidates, digests, strict=True)
                                          if row is None and isinstance(d, str)])
        for (ref, row), digest in zip(candidates, digests, strict=True):
            if digest is None:  # over the cap: refused in _prepare; never hashed
                todo.append((ref, row.id if row else None, None, row.path if row else None))
                continue
            if isinstance(digest, Exception):  # unreadable, vanished: recorded, never fatal
                failed_early.append(Prepared(ref, row.id if row else None, None,
                                             error=one_line(digest), status="error"))
                continue
            if (row is not None and row.content_hash == digest and row.status == "ok"
                    and row.id not in retry):
                self.store.touch_item(row.id, ref.size, ref.mtime, ref.fingerprint,
                                      meta=ref.metadata or None)
                crash_point("sync.touched")
                report.unchanged += 1
                continue
            if row is None and digest in deleted_by_hash:
                old = deleted_by_hash.pop(digest)
                self.store.move_item(old.id, ref.uri, ref.path, ref.size, ref.mtime,
                                     ref.fingerprint)
                plan.deleted.remove(old)
                crash_point("sync.moved")
                report.renamed += 1
                continue
            if row is None:
                twin = twins.get(digest)
                if twin is not None:
                    self.store.copy_item(twin, self.writer(source_id, report).record(
                        ref, digest, None))
                    crash_point("sync.copied")
                    report.copied += 1
                    report.added += 1
                    continue
            todo.append((ref, row.id if row else None, digest, row.path if row else None))

        if plan.deleted:
            self.store.delete_items([row.id for row in plan.deleted])
            crash_point("sync.deleted")
            report.removed = len(plan.deleted)

        if failed_early:
            self.writer(source_id, report).write_batch(failed_early)
        for space in self.opened.spaces.values():  # a small sync may skip loading torch
            space.plan_documents(len(todo))
        self._process(source_id, connector, todo, report)
        crash_point("sync.written")
        resolve_links(self.store, source_id)  # notes' links to what they name (vaults)
        try:
            self.opened.refresh_vectors(save=True)
        except Exception as exc:
            if self.opened.storage_failed(exc):
                raise
            report.seconds = time.perf_counter() - started
            raise VectorsPending(report, exc) from exc
        calibration.refresh(self.opened.fit_inputs())  # what scores mean: refitted when the corpus moved
        report.seconds = time.perf_counter() - started
        if report.chunks:  # the spaces whose documents were encoded, and how (on a cluster:
            for n, s in self.opened.spaces.items():  # as its workers said, kept first)
                if s.document_precision:
                    report.precision.setdefault(n, s.document_precision)
        return report

    def _hash_all(self, connector: Connector, refs: list[ItemRef], cap: int
                  ) -> list[str | Exception | None]:
        """Content hashes in order, on the worker threads (hashlib releases the GIL on
        large reads); an exception in place of an unreadable item's hash (or of one whose
        read missed its deadline), None for an item over the size cap."""
        from .deadline import map_with_deadlines, read_deadline

        def one(ref: ItemRef) -> str | Exception | None:
            if ref.size is not None and ref.size > cap:
                return None
            try:
                return content_hash(connector.open(ref))
            except Exception as exc:
                return exc

        return map_with_deadlines(one, refs, self.workers, lambda ref: read_deadline(ref.size))

    # -- extraction (producer thread) ----------------------------------------------------
    def _prepare(self, connector: Connector, ref: ItemRef, replace_id, digest) -> Prepared:
        return self.preparer.prepare(None, ref, replace_id, digest, lambda: connector.open(ref))

    def _producer(self, connector, todo, out: queue.Queue, stop: threading.Event) -> None:
        """Prepare items on a few threads (decoders and parsers release the GIL), in order."""
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        try:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="anyfind-extract") as pool:
                window: deque = deque()
                for ref, replace_id, digest, _ in todo:
                    if stop.is_set():
                        break
                    window.append(pool.submit(self._prepare, connector, ref, replace_id, digest))
                    if len(window) >= 2 * self.workers:
                        out.put(window.popleft().result())
                while window and not stop.is_set():
                    out.put(window.popleft().result())
                for f in window:
                    f.cancel()
        finally:
            out.put(_DONE)

    # -- embedding and writing (main thread) ---------------------------------------------
    def _process(self, source_id: int, connector: Connector, todo, report: SyncReport) -> None:
        if not todo:
            return  # nothing to read: a distributed executor is not even contacted
        if self.executor.distributed:
            from .distributed import process_distributed

            process_distributed(self.opened, self.writer(source_id, report), connector, todo,
                                self.progress)
            return
        from tqdm import tqdm

        q: queue.Queue = queue.Queue(maxsize=256)  # read-ahead while a window encodes
        stop = threading.Event()
        worker = threading.Thread(target=self._producer, args=(connector, todo, q, stop),
                                  name="anyfind-extract", daemon=True)
        worker.start()
        bar = tqdm(total=len(todo), unit="item", desc="indexing", disable=not self.progress,
                   dynamic_ncols=True, leave=False)
        writer = self.writer(source_id, report, bar)
        # Two windows. Text waits for a whole window (sorted by length, it pads little);
        # items with images go in windows of one model batch, so the workers decode the
        # next batch while the model runs, and few decoded images are held at once.
        text: list[Prepared] = []
        images: list[Prepared] = []
        n_text = n_images = 0
        # An image window closes at one model batch, or earlier (at MIN_IMAGE_WINDOW or
        # more) when no decoded item is waiting: the model then runs on what is ready
        # instead of idling while the workers decode. Small images, decoded faster than
        # the model runs, fill whole batches (a model is least efficient on small ones).
        least = min(MIN_IMAGE_WINDOW, self.image_window)
        # Text windows ramp up from FIRST_TEXT_WINDOW, doubling to embed_window: the model
        # starts once a few hundred chunks are read instead of idling while a whole 2,048-
        # chunk window is (most of a small folder), and reading overlaps encoding after.
        text_window = min(FIRST_TEXT_WINDOW, self.embed_window)
        try:
            while True:
                item = q.get()
                if item is _DONE:
                    break
                tree = item.tree()
                held = sum(len(i.images) for i in tree)
                if held:
                    images.append(item)
                    n_images += held
                else:
                    text.append(item)
                    n_text += sum(len(i.chunks) for i in tree)
                images_due = n_images >= self.image_window or (n_images >= least and q.empty())
                if n_text < text_window and not images_due:
                    continue
                if n_text >= text_window:
                    self._flush(text, writer)
                    text, n_text = [], 0
                    text_window = min(2 * text_window, self.embed_window)
                else:
                    self._flush(images, writer)
                    images, n_images = [], 0
                writer.checkpoint_if_due()
            self._flush(images, writer)
            self._flush(text, writer)
        finally:
            stop.set()
            bar.close()
            while worker.is_alive():  # unblock a producer waiting on a full queue
                try:
                    q.get(timeout=0.1)
                except queue.Empty:
                    pass

    def _flush(self, items: list[Prepared], writer: BatchWriter) -> None:
        """Encode one window, then write it in batches (batch_writer.py)."""
        if not items:
            return
        report, bar = writer.report, writer.bar

        def embedded(done: int, total: int) -> None:
            bar.set_postfix(chunks=report.chunks, failed=report.failed,
                            embedding=f"{done}/{total}")

        self._encode([i for item in items for i in item.tree()], writer, embedded)
        writer.add_all(items)

    def _encode(self, items: list[Prepared], writer: BatchWriter, progress) -> None:
        """Tags for new images, then every chunk's vectors, from the executor."""
        encode_items(items, self.executor, progress)
        writer.ensure_spaces()
