"""FilesystemConnector on real folders: recursion, globs, ignore files, hidden, symlinks, names."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from anyfind.connectors.filesystem import FilesystemConnector
from anyfind.errors import SourceError


def touch(root: Path, rel: str, text: str | None = None) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text if text is not None else f"content of {rel}\n")
    return p


def scan(root: Path | str, **options) -> tuple[list[str], FilesystemConnector]:
    conn = FilesystemConnector(str(root), **options)
    refs = list(conn.scan())
    base = Path(root)
    return sorted(Path(r.path).relative_to(base).as_posix() for r in refs), conn


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "tree"
    for rel in ["a.txt", "b.md", "docs/guide.md", "docs/api/ref.md", "docs/api/deep/x/y/z.txt",
                "src/main.py", "src/util.py", "drafts/todo.md", "build/out.txt", "notes.log"]:
        touch(root, rel)
    (root / "empty-dir").mkdir()
    return root


def test_recursive_scan_and_refs(tree):
    found, conn = scan(tree)
    assert found == ["a.txt", "b.md", "build/out.txt", "docs/api/deep/x/y/z.txt", "docs/api/ref.md",
                     "docs/guide.md", "drafts/todo.md", "notes.log", "src/main.py", "src/util.py"]
    assert conn.scan_errors == []
    ref = next(r for r in FilesystemConnector(str(tree)).scan() if r.path.endswith("a.txt"))
    st = (tree / "a.txt").stat()
    assert ref.uri == (tree / "a.txt").as_uri() and ref.size == st.st_size
    assert ref.mtime == st.st_mtime
    assert ref.fingerprint == f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"
    assert FilesystemConnector(str(tree)).open(ref).read() == b"content of a.txt\n"


def test_fingerprint_changes_when_file_changes(tree):
    def fp() -> str:
        conn = FilesystemConnector(str(tree))
        return next(r.fingerprint for r in conn.scan() if r.path.endswith("a.txt"))

    before = fp()
    (tree / "a.txt").write_text("new and longer content\n")
    assert fp() != before
    os.utime(tree / "a.txt", ns=(1_000_000_000, 1_000_000_000))
    assert f":1000000000:{(tree / 'a.txt').stat().st_ino}" in fp()


def test_file_uri_root(tree):
    found, _ = scan(tree)
    conn = FilesystemConnector(tree.as_uri())
    assert len(list(conn.scan())) == len(found)


def test_include_and_exclude_globs(tree):
    assert scan(tree, include=["*.md"])[0] == ["b.md", "docs/api/ref.md", "docs/guide.md",
                                               "drafts/todo.md"]
    assert scan(tree, include=["docs/**"])[0] == ["docs/api/deep/x/y/z.txt", "docs/api/ref.md",
                                                  "docs/guide.md"]
    assert scan(tree, include=["/a.txt", "src/"])[0] == ["a.txt", "src/main.py", "src/util.py"]
    assert scan(tree, exclude=["drafts/", "build", "*.log", "src/util.py"])[0] == [
        "a.txt", "b.md", "docs/api/deep/x/y/z.txt", "docs/api/ref.md", "docs/guide.md",
        "src/main.py"]
    # exclude wins over include; gitignore negation works inside one list
    assert scan(tree, include=["*.md"], exclude=["docs/**", "!docs/guide.md"])[0] == [
        "b.md", "docs/guide.md", "drafts/todo.md"]


def test_anyfindignore_and_gitignore_at_root(tree):
    touch(tree, ".anyfindignore", "# comments are fine\n*.log\nbuild/\n")
    touch(tree, ".gitignore", "drafts/\nsrc/*.py\n!src/main.py\n")
    found, _ = scan(tree)
    assert found == ["a.txt", "b.md", "docs/api/deep/x/y/z.txt", "docs/api/ref.md",
                     "docs/guide.md", "src/main.py"]
    # a custom list of ignore-file names replaces the default
    found, _ = scan(tree, ignore_files=[".anyfindignore"])
    assert "drafts/todo.md" in found and "notes.log" not in found


def test_nested_ignore_files_are_relative_to_their_folder(tree):
    touch(tree, "docs/.gitignore", "/guide.md\ndeep/\n")
    touch(tree, "docs/api/.anyfindignore", "ref.md\n")
    touch(tree, "guide.md")  # same name at the root: not anchored to docs/, so kept
    touch(tree, "src/guide.md")
    found, _ = scan(tree)
    assert "docs/guide.md" not in found and "docs/api/ref.md" not in found
    assert "docs/api/deep/x/y/z.txt" not in found
    assert {"guide.md", "src/guide.md", "b.md"} <= set(found)
    # a nested ignore file does not affect its siblings
    touch(tree, "src/.gitignore", "*.md\n")
    found, _ = scan(tree)
    assert "src/guide.md" not in found and "b.md" in found and "drafts/todo.md" in found


def test_nested_negation_re_includes_like_git(tree):
    touch(tree, ".gitignore", "*.log\n")
    touch(tree, "logs/keep.log")
    touch(tree, "logs/drop.log")
    touch(tree, "logs/.gitignore", "!keep.log\n")
    found, _ = scan(tree)
    assert "logs/keep.log" in found and "logs/drop.log" not in found


def test_hidden_files_skipped_by_default(tree):
    touch(tree, ".env", "SECRET=1")
    touch(tree, ".cache/blob.txt")
    touch(tree, "docs/.draft.md")
    found, _ = scan(tree)
    assert not [f for f in found if any(part.startswith(".") for part in f.split("/"))]
    found, _ = scan(tree, hidden=True)
    assert {".env", ".cache/blob.txt", "docs/.draft.md"} <= set(found)


def test_symlink_loops_are_safe(tree):
    (tree / "docs" / "loop").symlink_to(tree)  # back to the root
    (tree / "docs" / "api" / "self").symlink_to(".")  # to itself
    (tree / "src" / "again").symlink_to(tree / "src")
    found, conn = scan(tree)
    assert len(found) == len(set(found)) == 10  # every file once, through its real folder
    assert conn.scan_errors == []


def test_symlinks_out_of_the_source_are_followed_only_on_opt_in(tmp_path, tree):
    outside = tmp_path / "outside"
    touch(outside, "shared/readme.txt")
    touch(outside, "solo.txt")
    (tree / "linked").symlink_to(outside / "shared")
    (tree / "solo-link.txt").symlink_to(outside / "solo.txt")
    (tree / "inside-link.txt").symlink_to(tree / "docs" / "guide.md")
    found, conn = scan(tree)  # default: links that stay inside the source only
    assert "inside-link.txt" in found
    assert "linked/readme.txt" not in found and "solo-link.txt" not in found
    refused = {e.path: e.message for e in conn.scan_errors}
    assert set(refused) == {str(tree / "linked"), str(tree / "solo-link.txt")}
    assert all("follow_symlinks" in m for m in refused.values())
    found, _ = scan(tree, follow_symlinks=True)
    assert {"linked/readme.txt", "solo-link.txt", "inside-link.txt"} <= set(found)
    found, _ = scan(tree, follow_symlinks=False)
    assert not {"linked/readme.txt", "solo-link.txt", "inside-link.txt"} & set(found)


def test_dangling_symlink_is_recorded(tree):
    (tree / "docs" / "gone.txt").symlink_to(tree / "missing.txt")
    found, conn = scan(tree)
    assert "docs/gone.txt" not in found and len(found) == 10
    (err,) = conn.scan_errors
    assert err.path == str(tree / "docs" / "gone.txt")
    assert err.message.startswith("FileNotFoundError")


@pytest.mark.skipif(os.geteuid() == 0, reason=(
    "running as root: chmod 000 does not stop root from reading a folder, so there is no "
    "unreadable folder to scan"))
def test_unreadable_directory_is_recorded_and_scan_goes_on(tree):
    locked = tree / "docs"
    locked.chmod(0)
    try:
        found, conn = scan(tree)
    finally:
        locked.chmod(0o755)
    assert "a.txt" in found and not [f for f in found if f.startswith("docs/")]
    assert [e.path for e in conn.scan_errors] == [str(locked)]
    assert "PermissionError" in conn.scan_errors[0].message


def test_single_file_root(tree):
    conn = FilesystemConnector(str(tree / "docs" / "guide.md"))
    (ref,) = list(conn.scan())
    assert ref.path == str(tree / "docs" / "guide.md")
    assert conn.open(ref).read() == b"content of docs/guide.md\n"
    # include/exclude are relative to a folder root; they do not filter an explicit file
    assert len(list(FilesystemConnector(str(tree / "a.txt"), exclude=["*.txt"]).scan())) == 1


def test_missing_root_fails_the_source(tmp_path):
    # An unmounted drive must not read as "every file was deleted".
    conn = FilesystemConnector(str(tmp_path / "nope"))
    with pytest.raises(SourceError, match="cannot read folder"):
        list(conn.scan())


def test_relative_root_and_tilde(tmp_path, monkeypatch, tree):
    monkeypatch.chdir(tree.parent)
    assert FilesystemConnector("tree").root == tree
    monkeypatch.setenv("HOME", str(tree.parent))
    assert FilesystemConnector("~/tree").root == tree


def test_odd_file_names(tree):
    names = ["my notes.txt", "café 日本語.md", "line\nbreak.txt", "tab\tname.txt", "emoji 😀.txt",
             "#hash%percent?.txt", " leading-space.txt", "trailing-space .txt"]
    for n in names:
        touch(tree / "odd", n, f"text of {n}")
    (tree / "odd dir ü").mkdir()
    touch(tree / "odd dir ü", "inner file.txt")
    conn = FilesystemConnector(str(tree))
    refs = {Path(r.path).relative_to(tree).as_posix(): r for r in conn.scan()}
    for n in names:
        ref = refs[f"odd/{n}"]
        assert conn.open(ref).read().decode() == f"text of {n}"
        assert unquote(urlparse(ref.uri).path) == ref.path  # the URI round-trips to the path
        assert "\n" not in ref.uri and " " not in ref.uri
    assert "odd dir ü/inner file.txt" in refs
    assert len({r.uri for r in refs.values()}) == len(refs)


def test_non_utf8_file_name(tree):
    name = os.fsencode(tree) + b"/latin1-caf\xe9.txt"
    with open(name, "wb") as fh:
        fh.write(b"bytes")
    conn = FilesystemConnector(str(tree))
    ref = next(r for r in conn.scan() if "latin1" in r.path)
    assert conn.open(ref).read() == b"bytes"
    assert ref.uri.startswith("file://")


def test_a_fingerprint_from_before_inodes_still_says_unchanged(tree):
    """Indexes written before the inode joined the fingerprint (`size:mtime`) are not read
    again whole: the same size and mtime with any inode is unchanged; another size or
    mtime, or another kind of fingerprint, is a change."""
    from types import SimpleNamespace

    from anyfind.indexer.planner import plan_sync, same_version

    refs = [r for r in FilesystemConnector(str(tree)).scan()]
    legacy = {r.uri: SimpleNamespace(fingerprint=r.fingerprint.rsplit(":", 1)[0], status="ok")
              for r in refs}
    plan = plan_sync(refs, legacy)
    assert len(plan.unchanged) == len(refs) and not plan.changed
    assert same_version("10:5+3:7", "10:5:99+3:7:98")  # a video and its subtitles
    assert not same_version("10:5", "10:6:99") and not same_version("10:5", "11:5:99")
    assert not same_version("10:5:98", "10:5:99")  # kept inode, another one now
    assert not same_version("etag-1", "etag-2") and same_version("etag-1", "etag-1")
