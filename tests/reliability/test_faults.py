"""Resource faults during a write: a full disk, a read-only file system, a directory the
user may not write. Each gives one clear line (no traceback), keeps what was committed,
and leaves the index searchable and consistent; once the fault is gone the next run
completes. Disks are small tmpfs mounts (root only); permissions are enforced on root by
dropping its DAC capabilities (setpriv)."""

from __future__ import annotations

import contextlib
import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from procs import anyfind, can_drop_privileges, text_corpus

from anyfind import Index
from anyfind.errors import StorageError


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill ({mounted.stderr.strip()}): "
                    "needs root in a container that allows mounts")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(path: Path, leave: int = 0) -> None:
    """Write zeros until the disk is full, then give `leave` bytes back."""
    with open(path, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        try:
            while True:
                fh.write(b"\0" * 512)
        except OSError:
            pass
        if leave:
            fh.truncate(max(0, fh.tell() - leave))


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fault-docs")
    text_corpus(root / "one", 5)
    text_corpus(root / "two", 60, seed=3)
    return root


def build(index: Path, docs: Path) -> None:
    with Index.open(index, tagger=False, transcriber=None, batch_chunks=4) as idx:
        assert idx.add([docs / "one"]).added == 5


def assert_usable(index: Path, items: int) -> None:
    with Index.open(index, create=False) as idx:
        report = idx.check()
        assert report.errors == [], report.summary()
        assert report.stats["items"] >= items
        assert idx.search("the river stood next to the harbour", k=3)


def one_line(result: subprocess.CompletedProcess, words: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert words in result.stderr


def test_disk_full(docs, tmp_path):
    with tmpfs(tmp_path / "disk", "4m") as disk:
        index = disk / "idx"
        build(index, docs)
        fill(disk / "filler")
        one_line(anyfind("index", str(docs / "two"), "--index", str(index), "-q"),
                 "no space left on device")
        assert_usable(index, 5)

        # Space runs out in the middle of a write: the batches before stay, nothing breaks.
        (disk / "filler").unlink()
        fill(disk / "filler", leave=48 * 1024)
        with Index.open(index, create=False) as idx, pytest.raises(StorageError) as err:
            idx.add([docs / "two"])
        assert "no space left on device" in str(err.value)
        assert_usable(index, 5)

        (disk / "filler").unlink()
        with Index.open(index, create=False) as idx:
            idx.add([docs / "two"])
            report = idx.check()
        assert report.findings == [] and report.stats["items"] == 65


def test_read_only_file_system(docs, tmp_path):
    with tmpfs(tmp_path / "disk", "8m") as disk:
        index = disk / "idx"
        build(index, docs)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        one_line(anyfind("index", str(docs / "two"), "--index", str(index), "-q"),
                 "read-only")
        assert_usable(index, 5)
        with Index.open(index, create=False) as idx:
            assert idx.store.read_only
            with pytest.raises(StorageError, match="read-only"):
                idx.check(repair=True)


@pytest.mark.skipif(not can_drop_privileges(), reason="needs setpriv to drop root's DAC "
                    "capabilities (util-linux)")
def test_directory_without_write_permission(docs, tmp_path):
    index = tmp_path / "idx"
    build(index, docs)
    before = sorted(p.name for p in index.rglob("*"))
    for p in [index, *index.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        one_line(anyfind("index", str(docs / "two"), "--index", str(index), "-q",
                         obey_permissions=True), "permission denied")
        found = anyfind("search", "the river next to the harbour", "--index", str(index),
                        "--json", "-k", "2", obey_permissions=True)
        assert found.returncode == 0, found.stderr
        assert len(found.stdout.strip().splitlines()) == 2
        assert sorted(p.name for p in index.rglob("*")) == before  # nothing written
    finally:
        for p in [index, *index.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
    assert_usable(index, 5)
