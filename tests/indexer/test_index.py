"""End to end on the real MiniLM model and real files: index, search, sync, bad input."""

from __future__ import annotations

import os
import shutil

import pytest

from anyfind import Index
from anyfind.errors import ModelMismatch


def paths(results):
    return [os.path.basename(r.path) for r in results]


@pytest.fixture
def index(tmp_path):
    with Index.open(tmp_path / "idx") as idx:
        yield idx


def test_search_finds_document_and_passage(index, corpus):
    report = index.add([corpus])
    assert report.added == 6 and report.failed == 0
    top = index.search("chip shortage delaying deliveries", k=3)[0]
    assert top.path.endswith("report.pdf")
    assert top.page == 2 and "semiconductor" in top.text
    assert index.search("how much holiday do staff get", k=1)[0].path.endswith("handbook.docx")
    assert paths(index.search("when should I water tomato plants", k=1)) == ["tomatoes.md"]
    hit = index.search("espresso pressure and crema", k=1)[0]
    assert hit.path.endswith("espresso.html") and "var x" not in hit.text
    assert hit.media_type == "text/html"


def test_result_fields_and_offsets(index, corpus):
    index.add([corpus])
    r = index.search("tidal lock of the moon", k=1)[0]
    d = r.to_dict()
    for key in ("rank", "score", "uri", "path", "modality", "text", "page", "start", "end",
                "item_id", "chunk_id"):
        assert key in d
    assert d["rank"] == 1 and d["modality"] == "text" and d["start"] is None
    full = (corpus / "astro" / "moon.txt").read_text()
    assert full[r.char_start : r.char_end] == r.text


def test_resync_embeds_nothing_when_unchanged(index, corpus):
    first = index.add([corpus])
    assert first.chunks > 0
    again = index.add([corpus])
    assert (again.added, again.updated, again.removed, again.chunks) == (0, 0, 0, 0)
    assert again.unchanged == 6
    # touching a file changes mtime only: the content hash says nothing changed
    os.utime(corpus / "astro" / "moon.txt", (1, 1))
    touched = index.add([corpus])
    assert touched.chunks == 0 and touched.unchanged == 6


def test_edit_delete_rename_copy(index, corpus):
    index.add([corpus])
    vectors_before = index.status()["spaces"]["text"]["vectors"]

    (corpus / "astro" / "moon.txt").write_text(
        "Saturn has more than one hundred known moons; Titan has a thick orange atmosphere.")
    edit = index.add([corpus])
    assert edit.updated == 1 and edit.chunks == 1
    assert paths(index.search("Titan's orange atmosphere", k=1)) == ["moon.txt"]
    assert all("drifting away" not in r.text for r in index.search("moon drifting away", k=10))

    (corpus / "code" / "fib.py").unlink()
    gone = index.add([corpus])
    assert gone.removed == 1
    assert "fib.py" not in paths(index.search("fibonacci memoisation", k=10))

    shutil.move(corpus / "garden" / "tomatoes.md", corpus / "garden" / "tomato-care.md")
    moved = index.add([corpus])
    assert moved.renamed == 1 and moved.chunks == 0 and moved.removed == 0
    assert paths(index.search("watering tomatoes", k=1)) == ["tomato-care.md"]

    shutil.copy(corpus / "office" / "report.pdf", corpus / "report-copy.pdf")
    copied = index.add([corpus])
    assert copied.copied == 1 and copied.chunks == 0
    hits = paths(index.search("semiconductor shortage", k=2))
    assert sorted(hits) == ["report-copy.pdf", "report.pdf"]
    # every live chunk has exactly one vector: the fib.py chunk is gone, a copy added 2
    st = index.status()
    assert st["spaces"]["text"]["vectors"] == st["chunks"] == vectors_before - 1 + 2


def test_bad_inputs_are_recorded_and_run_goes_on(tmp_path, corpus):
    bad = corpus / "bad"
    bad.mkdir()
    (bad / "junk.txt").write_bytes(os.urandom(4096))
    (bad / "empty.md").write_bytes(b"")
    (bad / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me br\xfbl\xe9e recipe".encode("latin-1"))
    (bad / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\ntrunc")
    (bad / "big.txt").write_text("word " * 20000)
    (bad / "loop").symlink_to(bad)  # a symlink loop
    (bad / "dangling.txt").symlink_to(bad / "missing.txt")
    with Index.open(tmp_path / "idx", max_file_bytes=60_000) as idx:
        report = idx.add([corpus])
        assert report.added == 7  # 6 documents + the Latin-1 file
        failed = {os.path.basename(e["path"]) for e in report.errors}
        assert {"junk.txt", "broken.pdf", "big.txt", "dangling.txt"} <= failed
        assert "empty.md" not in failed and report.skipped >= 1  # empty: skipped, not failed
        errors = {os.path.basename(e["path"]): e["error"] for e in idx.errors()}
        assert "too large" in errors["big.txt"]
        assert "empty.md" not in errors
        assert paths(idx.search("crème brûlée", k=1)) == ["latin1.txt"]
        assert paths(idx.search("chip shortage", k=1)) == ["report.pdf"]


def test_open_existing_index_needs_no_arguments(tmp_path, corpus):
    with Index.open(tmp_path / "idx") as idx:
        idx.add([corpus])
    with Index.open(tmp_path / "idx", create=False) as idx:
        assert idx.config.spaces["text"].dim == 384
        assert paths(idx.search("paid holiday", k=1)) == ["handbook.docx"]


def test_model_mismatch_names_reindex(tmp_path, corpus):
    with Index.open(tmp_path / "idx") as idx:
        idx.add([corpus])
    with pytest.raises(ModelMismatch, match="anyfind reindex"):
        Index.open(tmp_path / "idx", text_model="sentence-transformers/all-mpnet-base-v2")


def test_remove_and_reindex(index, corpus):
    index.add([corpus])
    assert index.remove([corpus / "office"]) == 2
    assert "report.pdf" not in paths(index.search("semiconductor", k=10))
    report = index.reindex()  # same model: every item re-embedded in place
    assert (report.updated, report.added) == (4, 2)
    st = index.status()
    assert report.chunks == st["chunks"] == st["spaces"]["text"]["vectors"]
    assert paths(index.search("semiconductor chips", k=1)) == ["report.pdf"]


def test_named_index_lives_under_home(anyfind_home, corpus):
    with Index.open("notes") as idx:
        idx.add([corpus])
    assert (anyfind_home / "indexes" / "notes" / "config.json").is_file()


def test_failed_reread_keeps_last_good_version(index, corpus):
    index.add([corpus])
    moon = corpus / "astro" / "moon.txt"
    good = moon.read_bytes()
    moon.write_bytes(os.urandom(3000))  # e.g. a half-written or corrupted save
    report = index.add([corpus])
    assert report.failed == 1 and report.updated == 0
    assert paths(index.search("tidally locked moon", k=1)) == ["moon.txt"]
    assert [os.path.basename(e["path"]) for e in index.errors()] == ["moon.txt"]
    moon.write_bytes(good)
    healed = index.add([corpus])
    assert healed.failed == 0 and healed.chunks == 0  # same content as before: nothing to embed
    assert index.errors() == []


def test_vanished_folder_keeps_its_items(index, corpus, tmp_path):
    index.add([corpus])
    shutil.move(corpus, tmp_path / "elsewhere")
    report = index.sync()
    assert report.removed == 0 and report.failed_sources
    assert index.status()["ok"] == 6
