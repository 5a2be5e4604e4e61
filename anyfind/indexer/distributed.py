"""Items read and encoded on a distributed executor's workers (Ray), written here.

The sync plan stays on this machine (the driver); what it decides to read goes out as
rows, one per item, through the executor's stages:

    read        CPU tasks: open, sniff, extract, chunk (prepare.py: the local code);
                images and scanned pages wait for the ocr stage when the index reads
                pixels, audio for the transcribe stage when it transcribes; a video's
                picture is decoded and its frames chosen here (CPU work), and the
                frames travel with it (extract.video.DecodedFrames)
    ocr         actors holding the OCR engine: the deferred images and scans, and the
                frames of the videos
    transcribe  actors holding Whisper: the deferred recordings (and what holds both)
    tag         actors holding the image tagger: new images' tags
    <space>     one pool of actors per embedding space, holding its encoder

and comes back, item by item, to ONE writer here, which commits it in batches exactly
as the local pipeline does (a SQLite index has one writer; a batch is one transaction).
A retried task or actor (Ray) yields its rows once; a row that came twice would be
skipped by its number. A driver killed mid-run loses only the uncommitted batch: the
next run's plan reads the rest again. Workers open the items themselves where they can
(a shared machine, a network source); otherwise this process ships the bytes, in
segments of bounded size.
"""

from __future__ import annotations

import contextlib
import functools
import io
import mimetypes
import pickle
import shutil
import tempfile
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import IndexConfig
from ..connectors.base import Blob, ItemRef
from ..core import OpenIndex
from ..crashpoints import crash_point
from ..errors import one_line
from ..executors import Stage
from ..executors.local import LocalExecutor
from ..store.thumbnails import Thumbnails
from .encode import embed_chunks, tag_images
from .prepare import OCR, Prepared, Preparer

if TYPE_CHECKING:
    from .batch_writer import BatchWriter

SHIP_SEGMENT_BYTES = 256 << 20  # bytes shipped by the driver per executor run, at most


@dataclass
class Task:
    """One item to read: its number in this run, identity and (when shipped) bytes."""

    n: int
    ref: ItemRef
    replace_id: int | None
    digest: str | None
    data: bytes | None = None  # shipped by the driver; None: the worker opens it
    error: str | None = None  # the driver could not read it


@dataclass
class Done:
    """One item back from the workers."""

    n: int
    item: Prepared
    thumbnails: dict[str, bytes] = field(default_factory=dict)
    task: Task | None = None  # kept while the item waits for a transcriber
    encoded_with: dict[str, str] = field(default_factory=dict)  # space -> its documents' precision


@dataclass
class WorkerSpec:
    """What a worker needs to build its view of the index: no store, no lock."""

    key: str
    config: IndexConfig
    path: str | None  # the index folder, when the workers share this machine's files
    device: str | None
    decode_size: Any  # extract.image.DecodeSize the local pipeline would decode at


class _FixedImageInputs:
    """Workers decode images at the size the index's models need (resolved once, by the
    driver) and leave the per-model preprocessing to the actors holding the models."""

    def __init__(self, decode_size: Any):
        self._size = decode_size

    def decode_size(self):
        return self._size

    def prepare(self, image: Any):
        from ..encoders.imageprep import PreparedImage

        return PreparedImage.of(image, [])


class _CollectedThumbnails(Thumbnails):
    """Thumbnails made on a worker (as the local pipeline makes them), kept to travel back
    with their item and be written here."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.made: dict[str, bytes] = {}

    def write_bytes(self, content_hash: str, jpeg: bytes) -> None:
        self.made[content_hash] = jpeg

    def take(self) -> dict[str, bytes]:
        made, self.made = self.made, {}
        return made


class WorkerIndex(OpenIndex):
    """An index's models and extraction settings, on a worker."""

    def __init__(self, spec: WorkerSpec):
        path = Path(spec.path) if spec.path else Path(tempfile.mkdtemp(prefix="anyfind-worker-"))
        super().__init__(path, spec.config, spec.device)
        if not spec.path:  # a scratch folder of this view: gone with it (or at exit)
            weakref.finalize(self, shutil.rmtree, path, True)
        self._fixed_inputs = _FixedImageInputs(spec.decode_size)
        self.collected = _CollectedThumbnails(path / "thumbnails")

    @property
    def image_inputs(self):
        return self._fixed_inputs

    @property
    def thumbnails(self):
        return self.collected


_views: dict[str, WorkerIndex] = {}  # per worker process: one view per run


def _view(spec: WorkerSpec) -> WorkerIndex:
    view = _views.get(spec.key)
    if view is None:
        while len(_views) >= 4:
            _views.pop(next(iter(_views)))
        view = _views[spec.key] = WorkerIndex(spec)
    return view


def _read(preparer: Preparer, connector: Any, task: Task, view: WorkerIndex,
          frames: Any = None) -> Done:
    def opener():
        if task.error is not None:
            raise OSError(task.error)
        return connector.open(task.ref)

    data = task.data
    blob = Blob(task.ref, lambda: io.BytesIO(data)) if data is not None else None
    item = preparer.prepare(blob, task.ref, task.replace_id, task.digest, opener, frames)
    return Done(task.n, item, view.collected.take(), task if item.deferred else None)


# -- the stages (built on the workers; their arguments travel pickled) --------------------
def read_stage(spec: WorkerSpec, connector: Any, defer_audio: bool, defer_pixels: bool):
    view = _view(spec)
    preparer = Preparer(view, store=None, defer_audio=defer_audio, defer_pixels=defer_pixels)

    def run(tasks: list[Task]) -> list[Done]:
        crash_point("ray.read")
        return [_read(preparer, connector, task, view) for task in tasks]

    return run


def ocr_stage(spec: WorkerSpec, connector: Any, defer_audio: bool):
    view = _view(spec)
    preparer = Preparer(view, store=None, defer_audio=defer_audio)
    _ = view.ocr  # one engine per actor, for the whole run

    def run(rows: list[Done]) -> list[Done]:
        out = []
        for done in rows:
            frames = done.item.frames if done.task is not None else None
            if frames is not None and not frames.read:
                crash_point("ray.ocr")
                try:
                    frames.read_with(view.ocr)
                except Exception:  # noqa: BLE001 (what reads the video next reads them)
                    pass
            if done.task is not None and done.item.waits_for == OCR:
                crash_point("ray.ocr")
                done = _read(preparer, connector, done.task, view, frames)
            out.append(done)
        return out

    return run


def transcribe_stage(spec: WorkerSpec, connector: Any):
    view = _view(spec)
    preparer = Preparer(view, store=None)
    _ = view.transcriber  # the model loads now, not in the middle of the first batch

    def run(rows: list[Done]) -> list[Done]:
        out = []
        for done in rows:
            if done.task is not None:
                crash_point("ray.transcribe")
                done = _read(preparer, connector, done.task, view, done.item.frames)
            out.append(done)
        return out

    return run


def tag_stage(spec: WorkerSpec):
    view = _view(spec)
    executor = LocalExecutor(spaces={}, tagger=lambda: view.tagger, tag_vectors=view.tag_vectors)

    def run(rows: list[Done]) -> list[Done]:
        tag_images([i for d in rows for i in d.item.tree()], executor)
        return rows

    return run


def space_stage(spec: WorkerSpec, name: str, last: bool):
    view = _view(spec)
    space = view.spaces[name]
    executor = LocalExecutor(spaces={name: space}, tagger=lambda: None,
                             tag_vectors=view.tag_vectors)

    def run(rows: list[Done]) -> list[Done]:
        crash_point("ray.encode")
        items = [i for d in rows for i in d.item.tree()]
        embed_chunks(items, executor)
        if space.document_precision:  # how this worker encoded (the summary says it)
            for d in rows:
                d.encoded_with[name] = space.document_precision
        if last:  # the pixels have served every model: they need not travel back
            for i in items:
                i.images = {}
        return rows

    return run


def stages_for(opened: OpenIndex, spec: WorkerSpec, connector: Any, pictures: bool = True
               ) -> list[Stage]:
    """The stages; `connector` travels to the workers (None: the rows carry the bytes).
    `pictures`: whether the items may hold pixels to read (else no OCR pool is started)."""
    audio = opened.config.transcriber is not None
    pixels = pictures and opened.ocr is not None
    stages = [Stage("read", functools.partial(read_stage, spec, connector, audio, pixels))]
    if pixels:
        stages.append(Stage("ocr", functools.partial(ocr_stage, spec, connector, audio),
                            model=True, gpu=True))
    if audio:
        stages.append(Stage("transcribe", functools.partial(transcribe_stage, spec, connector),
                            model=True, gpu=True))
    if opened.config.tagger:
        stages.append(Stage("tag", functools.partial(tag_stage, spec), model=True, gpu=True))
    names = list(opened.spaces)
    for name in names:
        stages.append(Stage(f"encode:{name}",
                            functools.partial(space_stage, spec, name, name == names[-1]),
                            model=True, gpu=True))
    return stages


# -- the driver ---------------------------------------------------------------------------
def _may_hold_images(todo) -> bool:
    return any(not (mimetypes.guess_type(ref.path)[0] or "").startswith("text/")
               for ref, *_ in todo)


def _portable(connector: Any, shares_files: bool) -> bool:
    """Whether the workers can open the items through a copy of the connector (else this
    process ships the bytes)."""
    where = getattr(connector, "worker_reads", "driver")
    if where == "driver" or (where == "local" and not shares_files):
        return False
    try:
        pickle.dumps(connector)  # how it would travel (Ray pickles it)
    except Exception:  # noqa: BLE001 - an unpicklable connector: its bytes travel instead
        return False
    return True


def _segments(connector, todo, ship: bool, cap: int):
    """Tasks in runs: all at once when the workers open the items, else by shipped bytes."""
    tasks: list[Task] = []
    size = 0
    for n, (ref, replace_id, digest, _) in enumerate(todo):
        task = Task(n, ref, replace_id, digest)
        if ship and not (ref.size is not None and ref.size > cap):  # over it: refused unread
            try:
                task.data = connector.open(ref).read()
                size += len(task.data)
            except Exception as exc:  # noqa: BLE001 - this item's error, read on a worker
                task.error = one_line(exc)
        tasks.append(task)
        if ship and size >= SHIP_SEGMENT_BYTES:
            yield tasks
            tasks, size = [], 0
    if tasks:
        yield tasks


def process_distributed(opened: OpenIndex, writer: BatchWriter, connector, todo,
                        progress: bool = True) -> None:
    """Read, extract and encode `todo` on the cluster's workers (the stages above); the
    driver writes what comes back through the sync's batch writer, as the local path does."""
    from tqdm import tqdm

    report = writer.report
    executor = opened.executor
    shares = executor.shares_files()
    portable = _portable(connector, shares)
    pictures = _may_hold_images(todo)
    decode = opened.image_inputs.decode_size() if opened.indexes_modality("image") and pictures else None
    spec = WorkerSpec(uuid.uuid4().hex, opened.config, str(opened.path) if shares else None,
                      opened.device, decode)
    stages = stages_for(opened, spec, connector if portable else None, pictures)
    report.executor = executor.name
    # Before the bar: it writes to the terminal, the cluster's native lines do not.
    quiet = contextlib.ExitStack()
    quiet.enter_context(executor.native_output_kept())
    writer.bar = bar = tqdm(total=len(todo), unit="item", desc="indexing", disable=not progress,
                            dynamic_ncols=True, leave=False)
    thumbnails = opened.thumbnails
    seen: set[int] = set()
    writer.ensure_spaces()
    try:
        for segment in _segments(connector, todo, not portable, opened.config.max_file_bytes):
            for done in executor.run_items(segment, stages):
                if done.n in seen:
                    continue
                seen.add(done.n)
                report.workers, report.nodes = executor.workers, executor.nodes
                for space, how in done.encoded_with.items():  # as the local summary says
                    report.precision.setdefault(space, how)
                for digest, jpeg in done.thumbnails.items():
                    thumbnails.write_bytes(digest, jpeg)
                if done.item.deferred:  # no stage held its model: never expected
                    done.item.status = "error"
                    done.item.error = f"no {done.item.waits_for} ran on the cluster"
                    done.item.chunks, done.item.children = [], []
                writer.add(done.item, workers=executor.workers)
                writer.checkpoint_if_due()
            writer.flush(workers=executor.workers)
    finally:
        bar.close()
        quiet.close()
