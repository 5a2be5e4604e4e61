"""The indexing pipeline: plan, hash, extract (on threads), embed in windows, write.

Hashing and extraction run on worker threads overlapped with encoding in the main thread
(tokenisation, decoding and matrix work release the GIL). Text is embedded in windows of
~2,048 chunks sorted by length (little padding), images in windows of up to one model
batch. Items are written in batches of ~256 chunks, each in one store transaction
together with their chunks and vectors, so an interrupted run resumes from the last
committed batch with nothing half-written.
"""

from __future__ import annotations

import mimetypes
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..connectors.base import Blob, Connector, ItemRef, content_hash
from ..core import calibration
from ..crashpoints import crash_point
from ..errors import ExtractionError, one_line
from ..executors import ChunkJob
from ..store.metadata import ChunkRecord, ItemRecord, NewChild
from .chunks import make_chunks
from .planner import plan_sync
from .report import SyncReport, VectorsPending

if TYPE_CHECKING:
    from ..core import OpenIndex

LFS_POINTER = b"version https://git-lfs.github.com/spec/"
BATCH_CHUNKS = 256  # chunks per write transaction; at most this many decoded images held
EMBED_WINDOW = 2048  # text chunks embedded together, sorted by length (less padding)
IMAGE_WINDOW = 32  # images per window: one model batch, so decoding overlaps the forward
MIN_IMAGE_WINDOW = 4  # ... or fewer, down to this, when the model would wait for decodes
CHECKPOINT_SECONDS = 60.0  # default: save vector files this often during a long sync
MAX_DEPTH = 3  # an attachment of an e-mail attached to an e-mail attached to ... an e-mail
ATTACHMENT = "#attachment/"  # a child's URI: <parent uri>#attachment/<n>/<name>
CHILD_PATH = " › "  # a child's path: <parent path> › <name>
_DONE = object()


@dataclass
class Prepared:
    """One item after extraction and chunking, before embedding."""

    ref: ItemRef
    replace_id: int | None
    content_hash: str | None
    media_type: str | None = None
    modality: str | None = None
    title: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    chunks: list[ChunkRecord] = field(default_factory=list)
    images: dict[int, Any] = field(default_factory=dict)  # chunk ordinal -> PreparedImage
    error: str | None = None
    status: str = "ok"  # ok | error | skipped
    reused: bool = False  # chunks and vectors taken from an indexed item with this content
    children: list[Prepared] = field(default_factory=list)  # items found inside this one

    def tree(self) -> list[Prepared]:
        """This item and every item below it."""
        out = [self]
        for child in self.children:
            out += child.tree()
        return out


def child_ref(parent: ItemRef, n: int, name: str, size: int, digest: str,
              media_type: str | None = None) -> ItemRef:
    """The identity of the n-th item (1-based) inside `parent`."""
    return ItemRef(uri=f"{parent.uri}{ATTACHMENT}{n}/{name}",
                   path=f"{parent.path}{CHILD_PATH}{name}", size=size, mtime=parent.mtime,
                   fingerprint=digest, media_type=media_type,
                   metadata={"attachment": {"index": n, "name": name}})



def _is_binary_type(media_type: str) -> bool:
    return media_type.startswith(("image/", "audio/", "video/")) or media_type in (
        "application/pdf", "application/zip") or media_type.startswith("application/vnd.")


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
                twin = self.store.item_by_hash(digest)
                if twin is not None:
                    self.store.copy_item(twin, self._record(source_id, ref, digest, None))
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
            self._write(source_id, failed_early, report)
        self._process(source_id, connector, todo, report)
        crash_point("sync.written")
        try:
            self.opened.refresh_vectors(save=True)
        except Exception as exc:
            if self.opened.storage_failed(exc):
                raise
            report.seconds = time.perf_counter() - started
            raise VectorsPending(report, exc) from exc
        calibration.refresh(self.opened)  # what scores mean: refitted when the corpus moved
        report.seconds = time.perf_counter() - started
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
        item = Prepared(ref, replace_id, digest)
        try:
            self._check_size(ref.size)
            self._extract_into(item, connector.open(ref), depth=0)
        except Exception as exc:  # every failure is this item's, never the run's
            item.status = "error"
            item.error = one_line(exc)
            item.chunks, item.children = [], []
        return item

    def _check_size(self, size: int | None, what: str = "file") -> None:
        limit = self.opened.config.max_file_bytes
        if size is not None and size > limit:
            raise ExtractionError(f"{what} too large ({size} bytes > cap of {limit})")
        if size == 0:
            raise ExtractionError(f"empty {what}")

    def _extract_into(self, item: Prepared, blob, depth: int) -> None:
        """The one extraction path of every item, a file or an attachment: sniff, check
        the type against the name, extract, chunk; then the items found inside it."""
        from ..extract import extract
        from ..extract.sniff import modality_of, sniff_blob

        item.media_type = sniff_blob(blob)
        item.modality = modality_of(item.media_type)
        claimed = mimetypes.guess_type(item.ref.path)[0]
        if claimed and _is_binary_type(claimed) and item.media_type.startswith("text/"):
            if blob.read(len(LFS_POINTER)) == LFS_POINTER:
                item.meta["lfs_pointer"] = True  # the object is not fetched: index the pointer
            else:  # a text file named .jpg/.mp3/.pdf is a mistake worth reporting
                raise ExtractionError(f"content is text, not {claimed}")
        if item.modality is None:
            if claimed and modality_of(claimed):
                # named like a document, but its bytes are not one
                raise ExtractionError(f"content is not {claimed} (binary or corrupt data)")
            item.status, item.error = "skipped", f"unsupported format ({item.media_type})"
            return
        if not self.opened.handles(item.modality):
            item.status = "skipped"
            item.error = f"{item.media_type} is not indexed ({self.opened.why_not(item.modality)})"
            return
        extracted = extract(blob, item.media_type, self.opened.extract_context())
        item.modality = extracted.modality
        item.title = extracted.title
        item.meta.update(extracted.metadata)
        make_chunks(self.opened, extracted, item)
        if extracted.children and depth >= MAX_DEPTH:
            item.meta["children_not_indexed"] = f"nested more than {MAX_DEPTH} levels deep"
        elif extracted.children:
            item.children = [self._prepare_child(item, n, child, depth + 1)
                             for n, child in enumerate(extracted.children, start=1)]

    def _reuse(self, item: Prepared) -> bool:
        """An attachment whose content is indexed already (the same file elsewhere, or the
        unchanged attachment of an edited e-mail): its chunks and vectors, no model."""
        twin = self.store.reusable(item.content_hash) if item.content_hash else None
        if twin is None or not twin["chunks"]:
            return False
        spaces = set(self.opened.spaces)
        if any(c.modality == "image" and not (c.text and spaces <= set(c.vectors or {}))
               for c in twin["chunks"]):
            return False  # an image's pixels would be needed: extract it as usual
        item.modality, item.media_type, item.title = (twin["modality"], twin["media_type"],
                                                      twin["title"])
        item.meta.update({k: v for k, v in twin["meta"].items() if k != "attachment"})
        item.chunks, item.reused = twin["chunks"], True
        return True

    def _prepare_child(self, parent: Prepared, n: int, child, depth: int) -> Prepared:
        """An attachment as an item of its own: same extraction path as a file; whatever
        goes wrong is recorded on it, never on its parent."""
        from ..extract.sniff import canonical

        digest = content_hash(Blob.from_bytes(child.data))
        ref = child_ref(parent.ref, n, child.name, len(child.data), digest, child.media_type)
        item = Prepared(ref, None, digest)
        item.media_type = canonical(child.media_type) if child.media_type else None
        try:
            self._check_size(ref.size, "attachment")
            if self._reuse(item):
                return item
            self._extract_into(item, Blob.from_bytes(child.data, path=child.name), depth)
        except Exception as exc:
            item.status = "error"
            item.error = one_line(exc)
            item.chunks, item.children = [], []
        return item

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
            return
        from tqdm import tqdm

        q: queue.Queue = queue.Queue(maxsize=256)  # read-ahead while a window encodes
        stop = threading.Event()
        worker = threading.Thread(target=self._producer, args=(connector, todo, q, stop),
                                  name="anyfind-extract", daemon=True)
        worker.start()
        bar = tqdm(total=len(todo), unit="item", desc="indexing", disable=not self.progress,
                   dynamic_ncols=True, leave=False)
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
        last_checkpoint = time.monotonic()
        every = getattr(self.opened.config, "checkpoint_seconds", CHECKPOINT_SECONDS)
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
                if n_text < self.embed_window and not images_due:
                    continue
                if n_text >= self.embed_window:
                    self._flush(source_id, text, report, bar)
                    text, n_text = [], 0
                else:
                    self._flush(source_id, images, report, bar)
                    images, n_images = [], 0
                if time.monotonic() - last_checkpoint >= every:
                    self.opened.refresh_vectors(save=True, checkpoint=True)
                    last_checkpoint = time.monotonic()
            self._flush(source_id, images, report, bar)
            self._flush(source_id, text, report, bar)
        finally:
            stop.set()
            bar.close()
            while worker.is_alive():  # unblock a producer waiting on a full queue
                try:
                    q.get(timeout=0.1)
                except queue.Empty:
                    pass

    def _flush(self, source_id: int, items: list[Prepared], report: SyncReport, bar) -> None:
        if not items:
            return

        def embedded(done: int, total: int) -> None:
            bar.set_postfix(chunks=report.chunks, failed=report.failed,
                            embedding=f"{done}/{total}")

        self._encode([i for item in items for i in item.tree()], embedded)
        # One transaction per ~batch_chunks chunks: an interruption loses at most one
        # window's embeddings and never leaves an item half-written.
        group: list[Prepared] = []
        size = 0
        for item in items:
            group.append(item)
            size += sum(len(i.chunks) for i in item.tree())
            if size >= self.batch_chunks:
                self._write(source_id, group, report)
                bar.update(len(group))
                group, size = [], 0
        if group:
            self._write(source_id, group, report)
            bar.update(len(group))
        bar.set_postfix(chunks=report.chunks, failed=report.failed, refresh=False)

    def _encode(self, items: list[Prepared], progress) -> None:
        """Tags for new images, then every chunk's vectors, from the executor."""
        pairs = [(item, chunk) for item in items for chunk in item.chunks
                 if chunk.modality == "image" and not chunk.text and chunk.ordinal in item.images]
        if pairs and self.executor.tags_images:
            found = self.executor.tag([item.images[c.ordinal] for item, c in pairs])
            for (item, chunk), tags in zip(pairs, found, strict=True):
                item.meta["tags"] = [{"label": label, "prob": prob} for label, prob in tags]
                chunk.text = ", ".join(label for label, _ in tags)
        chunks = [(item, chunk) for item in items for chunk in item.chunks]
        jobs = [ChunkJob(chunk.modality, chunk.text, item.images.get(chunk.ordinal),
                         item.meta.get("tags"), frozenset(chunk.vectors or {}))
                for item, chunk in chunks]
        for (_, chunk), vectors in zip(chunks, self.executor.encode(jobs, progress),
                                       strict=True):
            if vectors:
                chunk.vectors = {**(chunk.vectors or {}), **vectors}
        for name, space in self.opened.spaces.items():
            if space.config.dim:
                self.store.ensure_space(name, space.config.dim)

    def _record(self, source_id: int, ref: ItemRef, digest, item: Prepared | None) -> ItemRecord:
        return ItemRecord(
            source_id=source_id, uri=ref.uri, path=ref.path,
            modality=item.modality if item else None,
            media_type=item.media_type if item else None,
            size=ref.size, mtime=ref.mtime, fingerprint=ref.fingerprint, content_hash=digest,
            status=item.status if item else "ok", error=item.error if item else None,
            title=(item.title if item else None) or ref.metadata.get("title"),
            meta={**ref.metadata, **(item.meta if item else {})},
        )

    def _write(self, source_id: int, items: list[Prepared], report: SyncReport) -> None:
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
            entries.append((self._record(source_id, item.ref, item.content_hash, item),
                            item.chunks, item.replace_id, self._children(source_id, item, report)))
            if item.status == "error":
                pass
            elif item.status == "skipped":
                report.skipped += 1
            elif item.replace_id is not None:
                report.updated += 1
            else:
                report.added += 1
            report.chunks += sum(1 for c in item.chunks if c.vectors)
        self.store.write_items(entries)
        crash_point("batch.committed")

    def _children(self, source_id: int, item: Prepared, report: SyncReport) -> list[NewChild]:
        """The items found inside `item`, ready to write under it; counted in the report
        (attachments), a failed one as a failed item with its own error."""
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
            out.append(NewChild(self._record(source_id, child.ref, child.content_hash, child),
                                child.chunks, self._children(source_id, child, report)))
        return out
