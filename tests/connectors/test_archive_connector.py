"""Zip and tar archives indexed as folders; changes between syncs; bombs and broken files."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile

import pytest

from anyfind import Index

FILES = {
    "docs/otters.md": "# Otters\n\nSea otters hold hands while they sleep so they do not drift.",
    "docs/clock.txt": "A pendulum clock keeps time because each swing takes the same time.",
    "old/fax.txt": "Fax the form to the office before noon on Fridays.",
}
CHANGED = {
    "docs/otters.md": FILES["docs/otters.md"],
    "docs/clock.txt": "An atomic clock counts the vibrations of caesium atoms.",
    "new/glass.txt": "Glass is made by melting sand with soda ash and lime.",
}


def make_zip(path, files: dict[str, str]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(name, text)


def make_tar(path, files: dict[str, str | bytes]) -> None:
    with tarfile.open(path, "w:gz") as tf:
        for name, text in files.items():
            data = text.encode() if isinstance(text, str) else text
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000 + len(data)
            tf.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_archive_sync(index, tmp_path, suffix):
    archive = tmp_path / f"bundle{suffix}"
    make = make_zip if suffix == ".zip" else make_tar
    make(archive, FILES)
    info = index.add_source("bundle", str(archive))
    assert info["kind"] == "archive"
    first = index.sync()
    assert (first.added, first.failed, first.failed_sources) == (3, 0, [])
    hit = index.search("otters sleeping holding hands", k=1)[0]
    assert hit.path == f"bundle{suffix}/docs/otters.md"
    assert hit.uri == f"{suffix[1:4]}://docs/otters.md::file://{archive}"

    make(archive, CHANGED)
    second = index.sync()
    assert (second.added, second.updated, second.removed, second.unchanged) == (1, 1, 1, 1)
    assert index.search("caesium atomic clock", k=1)[0].path.endswith("clock.txt")
    assert index.search("how glass is made", k=1)[0].path.endswith("glass.txt")
    assert all("fax" not in r.path for r in index.search("fax the form", k=10))


def test_zip_url_form_and_include(index, tmp_path):
    archive = tmp_path / "a.zip"
    make_zip(archive, FILES)
    index.add_source("docs", f"zip://{archive}", include=["docs/"])
    assert index.sync().added == 2


def test_bombs_and_malformed_archives(tmp_path):
    zeros = bytes(20 * 1024 * 1024)
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.txt", zeros)
        zf.writestr("ok.txt", "fine")
    make_tar(tmp_path / "bomb.tar.gz", {"zeros.txt": zeros})
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04" + os.urandom(300))
    (tmp_path / "broken.tar.gz").write_bytes(b"\x1f\x8b" + os.urandom(300))
    make_zip(tmp_path / "good.zip", FILES)
    with Index.open(tmp_path / "idx") as idx:
        for name in ("bomb.zip", "bomb.tar.gz", "broken.zip", "broken.tar.gz", "good.zip"):
            idx.add_source(name.replace(".", "-"), str(tmp_path / name))
        idx.add_source("capped", str(tmp_path / "good.zip"), max_total_bytes=100)
        report = idx.sync()
        errors = {e["source"]: e["error"] for e in report.errors}
        assert sorted(report.failed_sources) == ["bomb-tar-gz", "bomb-zip", "broken-tar-gz",
                                                 "broken-zip", "capped"]
        assert "zip bomb guard" in errors["bomb-zip"] and "expands" in errors["bomb-zip"]
        assert "zip bomb guard" in errors["bomb-tar-gz"]
        assert "malformed zip" in errors["broken-zip"]
        assert "malformed tar" in errors["broken-tar-gz"]
        assert "more than 100 bytes" in errors["capped"]
        assert report.added == 3
        # a broken archive later leaves what was indexed from it in place
        idx.add_source("later", str(tmp_path / "later.zip"), kind="archive")
        make_zip(tmp_path / "later.zip", FILES)
        assert idx.sync(["later"]).added == 3
        (tmp_path / "later.zip").write_bytes(b"PK\x03\x04 truncated")
        again = idx.sync(["later"])
        assert again.failed_sources == ["later"] and again.removed == 0
        assert [s["items"] for s in idx.sources() if s["name"] == "later"] == [3]
