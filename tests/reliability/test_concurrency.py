"""One writer at a time, any number of readers during a write.

- A second writer is refused with the holder's pid (library and command line).
- A lock left by a writer killed with SIGKILL is no obstacle to the next one.
- While a writer process indexes (and then re-syncs) a corpus in many small batches,
  reader threads sharing one Index, a `check` thread and a reader process search without
  pause: no exception, every result is an existing chunk of the item it names with the
  text it has, and `check` finds no error at any moment.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

import pytest
from crashkit import ROOT, child_env
from procs import anyfind, text_corpus

from anyfind import Index
from anyfind.errors import IndexLocked
from anyfind.lock import WriteLock

HOLD = ("import sys; from pathlib import Path; from anyfind.lock import WriteLock; "
        "WriteLock(Path(sys.argv[1])).acquire(); print('held', flush=True); sys.stdin.read()")
QUERIES = ("the river and the lantern", "a glacier", "copper saddle", "violin", "walnut")


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("concurrency")


def new_index(path: Path) -> Path:
    Index.open(path, batch_chunks=2, tagger=False, transcriber=None).close()
    return path


def hold_lock(index: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(index)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=child_env(), cwd=ROOT)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_second_writer_is_refused_with_the_holders_pid(base):
    index = new_index(base / "locked")
    docs = text_corpus(base / "locked-docs", 2)[0].parent
    holder = hold_lock(index)
    try:
        with Index.open(index, create=False) as idx, pytest.raises(IndexLocked) as err:
            idx.add([docs])
        assert f"pid {holder.pid}" in str(err.value)
        res = anyfind("index", str(docs), "--index", str(index), "-q")
        assert res.returncode == 1
        assert res.stderr.strip().count("\n") == 0 and "Traceback" not in res.stderr
        assert f"pid {holder.pid}" in res.stderr and "being written" in res.stderr
    finally:
        holder.kill()
        holder.wait()


def test_lock_of_a_killed_writer_is_recovered(base):
    index = new_index(base / "stale")
    holder = hold_lock(index)
    holder.kill()  # SIGKILL: no cleanup at all
    holder.wait()
    assert (index / "write.lock").read_text().strip() == str(holder.pid)  # still on disk
    lock = WriteLock(index)
    lock.acquire()
    try:
        assert (index / "write.lock").read_text().strip() == str(os.getpid())
    finally:
        lock.release()


class Readers:
    """Searching threads on one shared Index, plus one thread running `check`."""

    def __init__(self, idx: Index, threads: int = 2):
        self.idx = idx
        self.stop = threading.Event()
        self.seen: set[tuple[int, int, str]] = set()
        self.sizes: set[int] = set()
        self.errors: list[str] = []
        self.searches = 0
        self.checks = 0
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._search, args=(i,)) for i in range(threads)]
        self.threads.append(threading.Thread(target=self._check))
        for t in self.threads:
            t.start()

    def _search(self, n: int) -> None:
        while not self.stop.wait(0.01):  # pacing: leave the writer some CPU
            try:
                results = self.idx.search(QUERIES[n % len(QUERIES)], k=5)
                size = len(self.idx.opened.vectors("text"))
            except Exception:
                self.errors.append(traceback.format_exc())
                continue
            with self._lock:
                self.searches += 1
                self.sizes.add(size)
                self.seen |= {(r.item_id, r.chunk_id, r.text) for r in results}
                n += 1

    def _check(self) -> None:
        while not self.stop.wait(0.05):
            try:
                report = self.idx.check()
            except Exception:
                self.errors.append(traceback.format_exc())
                continue
            self.checks += 1
            self.errors += [f"check: {f.code}: {f.message}" for f in report.errors]

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=120)


def chunk_table(index: Path) -> dict[int, tuple[int, str]]:
    db = sqlite3.connect(f"file:{index / 'meta.db'}?mode=ro", uri=True)
    try:
        return {cid: (item, text) for cid, item, text in
                db.execute("SELECT id, item_id, text FROM chunks")}
    finally:
        db.close()


def start_reader(index: Path, out: Path) -> tuple[subprocess.Popen, Path]:
    """Another process searching the index until its stop file appears."""
    stop = out.with_suffix(".stop")
    reader = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "reader.py"), str(index), str(stop),
         str(out)], stdout=subprocess.PIPE, text=True, env=child_env(), cwd=ROOT)
    assert reader.stdout.readline().strip() == "ready"
    return reader, stop


def write_while_reading(idx: Index, docs: Path) -> Readers:
    """Run `anyfind index` in a writer process while threads of this one search."""
    readers = Readers(idx)
    try:
        writer = subprocess.run(
            [sys.executable, "-m", "anyfind", "index", str(docs), "--index", str(idx.path),
             "-q"], capture_output=True, text=True, env=child_env(), cwd=ROOT, timeout=600)
    finally:
        readers.finish()
    assert writer.returncode == 0, writer.stderr
    return readers


def test_readers_see_a_consistent_index_during_writes(base):
    index = new_index(base / "busy")
    docs = base / "busy-docs"
    text_corpus(docs, 24)
    reader, stop = start_reader(index, base / "reader.json")
    try:
        with Index.open(index, create=False) as idx:
            idx.search("warm up", k=1)
            first = write_while_reading(idx, docs)
            after_first = chunk_table(index)
            # Then a re-sync that edits, deletes and adds while the readers go on.
            for i, p in enumerate(sorted(docs.glob("*.md"))):
                if i % 3 == 0:
                    p.write_text(p.read_text() + f"\n\nEdited: note {i} now mentions a beacon.")
                elif i % 7 == 0:
                    p.unlink()
            text_corpus(docs / "more", 6, seed=5)
            second = write_while_reading(idx, docs)
    finally:
        stop.touch()
        reader.wait(timeout=120)
    other = json.loads((base / "reader.json").read_text())
    final = chunk_table(index)

    # Each result is a committed chunk of the item it names, with its text: in phase 1
    # (only additions) one that is still there; in phase 2 one from before or after it.
    for readers, tables in ((first, [after_first]), (second, [after_first, final]),
                            (None, [after_first, final])):
        results = readers.seen if readers else {tuple(r) for r in other["results"]}
        for item_id, chunk_id, text in results:
            assert any(t.get(chunk_id) == (item_id, text) for t in tables), (chunk_id, text)
    assert first.errors == [] and second.errors == [] and other["errors"] == []
    for readers in (first, second):
        assert len(readers.sizes) >= 2, "the readers never saw the index change"
    assert len(other["sizes"]) >= 3
    with Index.open(index, create=False) as idx:
        assert idx.check().findings == []
    figures = {"searches": first.searches + second.searches + other["searches"],
               "checks": first.checks + second.checks,
               "results": len(first.seen | second.seen) + len(other["results"]),
               "states_seen": len(first.sizes | second.sizes | set(other["sizes"]))}
    print(f"\nconcurrency: {json.dumps(figures)}")
    if path := os.environ.get("ANYFIND_RELIABILITY_REPORT"):
        with open(path, "a") as fh:
            fh.write(json.dumps({"mode": "concurrency", **figures, "at": time.time()}) + "\n")
