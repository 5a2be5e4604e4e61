"""A damaged index never answers wrongly: a truncated meta.db, a config.json with wrong
types, each said in one line by every command (and found by `check`), exit code 1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from procs import anyfind, text_corpus

from anyfind import Index


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("corrupt")
    text_corpus(base / "docs", 6)
    with Index.open(base / "idx", tagger=False, transcriber=None) as idx:
        idx.add([base / "docs"])
    return base / "idx"


def damaged(pristine: Path, tmp_path: Path, how) -> Path:
    copy = tmp_path / "idx"
    shutil.copytree(pristine, copy)
    how(copy)
    return copy


def truncate_meta(index: Path) -> None:
    data = (index / "meta.db").read_bytes()
    (index / "meta.db").write_bytes(data[: len(data) // 2])
    for extra in ("meta.db-wal", "meta.db-shm"):
        (index / extra).unlink(missing_ok=True)


def wrong_types(index: Path) -> None:
    config = json.loads((index / "config.json").read_text())
    config["batch_chunks"] = "many"
    (index / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("how, said", [
    (truncate_meta, "meta.db is damaged"),
    (wrong_types, "'batch_chunks' should be int"),
])
def test_every_command_says_the_damage_in_one_line(pristine, tmp_path, how, said):
    index = damaged(pristine, tmp_path, how)
    for args in (["search", "note"], ["status"], ["sync"], ["check"]):
        done = anyfind(*args, "--index", str(index))
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert said in done.stdout + done.stderr, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
