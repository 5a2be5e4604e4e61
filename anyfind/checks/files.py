"""The files of an index beside the store: FAISS vector files and leftover temp files.

A vector file is a cache of the store's vectors for one space, saved with the store
generation it reflects. Lagging behind is normal after a crash (it catches up on open);
claiming a generation while holding other vectors, duplicate ids, or vectors that differ
from the store's are damage. Every repair here rebuilds from the store: no model runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..fsutil import TEMP_GLOB
from ..store.faiss_store import FaissVectorStore
from .report import ERROR, WARNING, CheckReport
from .snapshot import SnapshotVectors

if TYPE_CHECKING:
    from ..store.metadata import MetadataStore


def temp_files(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob(TEMP_GLOB) if p.is_file())


def check_temp_files(root: Path, report: CheckReport) -> list[Path]:
    found = temp_files(root)
    if found:
        report.add("temp-files", WARNING, f"{len(found)} temporary files left by an "
                   f"interrupted write (e.g. {found[0].name})", len(found), repair="delete them")
    return found


def _sidecar(vi: FaissVectorStore) -> dict[str, Any] | None:
    try:
        data = json.loads(vi.sidecar.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def load_vector_file(vi: FaissVectorStore) -> str:
    """Read a space's file: "ok", "missing" or "unreadable". Done before the store snapshot
    is taken, so the snapshot is at least as new as the file (files are saved after the
    commits they reflect) and a file can be judged against it."""
    if not vi.path.exists():
        return "missing"
    return "ok" if _sidecar(vi) is not None and vi.load() else "unreadable"


def check_vector_file(vi: FaissVectorStore, state: str, snap: SnapshotVectors, report: CheckReport
                      ) -> dict[str, Any]:
    """Findings for one space's file; returns stats, with "rebuild": True when damaged."""
    space = vi.space
    want = np.sort(snap.vector_ids(space))
    gen = snap.generation(space)
    stats: dict[str, Any] = {"store": int(len(want)), "generation": gen, "file": None,
                             "file_generation": None, "rebuild": False, "save": False}
    if state == "missing":
        if len(want):
            report.add("vector-file-missing", WARNING, f"space '{space}' has no vector file "
                       "(rebuilt from the store on open)", repair="rebuild it")
            stats["rebuild"] = True
        return stats
    if state == "unreadable":
        report.add("vector-file-unreadable", WARNING, f"the vector file of space '{space}' is "
                   "unreadable or of another dimension (rebuilt from the store on open)",
                   repair="rebuild it")
        stats["rebuild"] = True
        return stats
    have = vi.ids()
    stats["file"], stats["file_generation"] = int(len(have)), vi.generation
    if len(np.unique(have)) != len(have):
        report.add("vector-file-duplicates", ERROR, f"the vector file of space '{space}' holds "
                   f"{len(have) - len(np.unique(have))} duplicate ids", repair="rebuild it")
        stats["rebuild"] = True
        return stats
    if vi.generation == gen and not np.array_equal(np.sort(have), want):
        report.add("vector-file-mismatch", ERROR, f"the vector file of space '{space}' claims "
                   f"store generation {gen} but holds other vectors", repair="rebuild it")
        stats["rebuild"] = True
        return stats
    if vi.generation != gen:
        report.add("vector-file-stale", WARNING, f"the vector file of space '{space}' reflects "
                   f"generation {vi.generation}, the store is at {gen} (caught up on open)",
                   repair="catch it up and save it")
        stats["save"] = True
    vi.catch_up(snap)
    have = vi.ids()
    if len(np.unique(have)) != len(have) or not np.array_equal(np.sort(have), want):
        report.add("vector-file-catch-up", ERROR, f"catching up the vector file of space "
                   f"'{space}' does not give the store's vectors", repair="rebuild it")
        stats["rebuild"] = True
    elif not _same_vectors(vi, snap):
        report.add("vector-file-content", ERROR, f"vectors in the file of space '{space}' differ "
                   "from the store's", repair="rebuild it")
        stats["rebuild"] = True
    return stats


def _same_vectors(vi: FaissVectorStore, snap: SnapshotVectors, batch: int = 4096) -> bool:
    ids, matrix = snap.vectors(vi.space, dim=vi.dim)
    if not len(ids) or matrix.shape[1] != vi.dim:
        return True
    for i in range(0, len(ids), batch):
        part = ids[i : i + batch]
        try:
            got = vi.index.reconstruct_batch(part)
        except RuntimeError:  # an index type that cannot reconstruct: nothing to compare
            return True
        if not np.allclose(got, matrix[i : i + batch], atol=1e-5):
            return False
    return True


def repair_vector_file(vi: FaissVectorStore, store: MetadataStore, rebuild: bool) -> None:
    """Rebuild (or catch up) one space's file from the store and save it atomically."""
    if rebuild:
        gen = store.generation(vi.space)
        ids, vecs = store.vectors(vi.space, dim=vi.dim)
        vi.rebuild(ids, vecs, gen)
    else:
        vi.catch_up(store)
    if vi.index is None:
        vi.rebuild(np.zeros(0, dtype=np.int64), np.zeros((0, vi.dim), np.float32),
                   store.generation(vi.space))
    vi.save()


FULL_BELOW = 1_000_000  # vectors: id sets compared whole; above, counts and a sample
SAMPLE = 10_000  # ids sampled from the store and looked up in the service


def check_vector_service(vs, snap: SnapshotVectors, report: CheckReport,
                         full_below: int = FULL_BELOW, sample: int = SAMPLE) -> dict[str, Any]:
    """A space whose vectors live in a service (Milvus): its count against the store's,
    then the id sets whole (under `full_below` vectors) or `sample` ids the store has,
    looked up in the service (a 10^9-vector space is never listed); and the generation it
    says it reflects."""
    space = vs.space
    gen = snap.generation(space)
    vs.load()
    want_n, have_n = snap.vector_count(space), vs.count()
    stats: dict[str, Any] = {"store": want_n, "generation": gen, "file": have_n,
                             "file_generation": vs.generation, "rebuild": False, "save": False}
    pending = snap.outbox_pending(space, getattr(vs, "mark", None))
    stats["pending"] = pending  # changes recorded in the outbox, not yet applied
    problem = None
    if have_n != want_n:
        problem = f"holds {have_n} vectors, the store {want_n}"
        if pending:
            problem += f"; {pending} changes wait in the outbox"
    elif want_n < full_below or not hasattr(vs, "present"):  # a backend with no lookup
        if not np.array_equal(np.sort(vs.ids()), np.sort(snap.vector_ids(space))):
            problem = f"holds other ids than the store's ({have_n} each)"
    else:
        ids = snap.sample_vector_ids(space, sample)
        missing = len(ids) - len(vs.present(ids))
        stats["sampled"] = int(len(ids))
        if missing:
            problem = f"lacks {missing} of {len(ids)} ids sampled from the store"
    if problem:
        later = "caught up by the next sync" if pending else "`anyfind check --repair` fixes it"
        # Behind by what the outbox still holds: a lag. Short of vectors with nothing
        # pending (a deleted Milvus Lite segment, a collection restored from an older
        # backup): searches miss those chunks until it is repaired, an error.
        lost = have_n < want_n and not pending
        report.add("vector-store-mismatch", ERROR if lost else WARNING,
                   f"the vector store of space '{space}' ({vs.describe()}) {problem} "
                   f"({later})", repair="catch it up")
        stats["save"] = True
    elif vs.generation != gen:
        report.add("vector-store-stale", WARNING, f"the vector store of space '{space}' reflects "
                   f"generation {vs.generation}, the store is at {gen}", repair="catch it up")
        stats["save"] = True
    return stats
