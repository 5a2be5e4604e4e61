"""Folders on disk: recursive, globs, gitignore-style ignore files, loop-safe."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import pathspec

from ..errors import SourceError
from ..fsutil import display_path, index_dir_above, is_index_dir, open_regular

__all__ = ["FilesystemConnector", "display_path", "path_of"]
from .base import Blob, Connector, ItemRef, ScanError

IGNORE_FILES = (".anyfindignore", ".gitignore")


def path_of(uri: str) -> Path:
    """The exact file behind a file:// URI (its bytes, whatever the name's encoding)."""
    return Path(os.fsdecode(unquote_to_bytes(uri[len("file://"):])))


def _spec(patterns: list[str]) -> pathspec.PathSpec | None:
    return pathspec.GitIgnoreSpec.from_lines(patterns) if patterns else None


class FilesystemConnector(Connector):
    """Options: include / exclude (gitignore-style globs, relative to the root),
    hidden (index dot-files, default False), ignore_files (default .anyfindignore and
    .gitignore), follow_symlinks: by default a symlink is followed only when it resolves
    inside the source's folder; True also follows links that leave it (the opt-in);
    False follows none. Loops are detected. A folder holding an anyfind index (its
    secrets, models, state) is never scanned."""

    kind = "filesystem"
    worker_reads = "local"
    option_names = frozenset({"include", "exclude", "hidden", "ignore_files", "follow_symlinks"})

    def __init__(self, uri: str, **options: Any):
        super().__init__(uri, **options)
        path = path_of(uri) if uri.startswith("file://") else Path(uri)
        self.root = path.expanduser().absolute()
        self.include = _spec(list(options.get("include") or []))
        self.exclude = _spec(list(options.get("exclude") or []))
        self.hidden = bool(options.get("hidden", False))
        self.ignore_files = tuple(options.get("ignore_files", IGNORE_FILES))
        follow = options.get("follow_symlinks")
        self.follow_symlinks: bool | None = None if follow is None else bool(follow)
        self._real_root: Path | None = None

    def describe(self) -> str:
        return str(self.root)

    def _ref(self, path: Path, st: os.stat_result) -> ItemRef:
        return ItemRef(
            uri=path.as_uri(),  # percent-encoded bytes: exact for any name
            path=display_path(path),
            size=st.st_size,
            mtime=st.st_mtime,
            # the inode too: a file swapped in through a hard link with the same size and
            # mtime is another file (server/content.py refuses to serve it)
            fingerprint=f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}",
        )

    def _error(self, path: str | Path, exc: BaseException) -> None:
        msg = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        self.scan_errors.append(ScanError(display_path(path), f"{type(exc).__name__}: {msg}"))

    def _wanted(self, rel: str) -> bool:
        if self.include is not None and not self.include.match_file(rel):
            return False
        return not (self.exclude is not None and self.exclude.match_file(rel))

    def _load_ignores(self, directory: Path) -> pathspec.PathSpec | None:
        lines: list[str] = []
        for name in self.ignore_files:
            try:
                lines += (directory / name).read_text(errors="replace").splitlines()
            except OSError:
                continue
        return _spec(lines)

    def scan(self) -> Iterator[ItemRef]:
        root = self.root
        try:
            st = root.stat()
        except OSError as exc:
            # The whole source is unreachable (unmounted drive, moved folder): fail the
            # source, so that its items are kept rather than synced away as deleted.
            reason = exc.strerror or type(exc).__name__
            raise SourceError(f"cannot read folder {root}: {reason}") from None
        inside = index_dir_above(root)
        if inside is not None:
            self.scan_errors.append(ScanError(display_path(root), (
                f"inside the anyfind index {display_path(inside)}: an index's own files "
                "are never indexed")))
            return
        if not stat.S_ISDIR(st.st_mode):
            if stat.S_ISREG(st.st_mode):
                yield self._ref(root, st)
            return
        self._real_root = real_root = Path(os.path.realpath(root))

        seen_dirs = {(st.st_dev, st.st_ino)}
        # Stack of (directory, [(ignore-spec base dir, spec), ...]) for nested ignore files.
        stack: list[tuple[Path, list[tuple[Path, pathspec.PathSpec]]]] = [(root, [])]
        while stack:
            directory, ignores = stack.pop()
            if directory != root and is_index_dir(directory):
                continue  # an index kept inside the folder it indexes: its secrets stay out
            spec = self._load_ignores(directory)
            if spec is not None:
                ignores = [*ignores, (directory, spec)]
            try:
                with os.scandir(directory) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                self._error(directory, exc)
                continue
            subdirs = []
            files: list[ItemRef] = []
            for entry in entries:
                if not self.hidden and entry.name.startswith("."):
                    continue
                path = Path(entry.path)
                is_link = False
                try:
                    is_link = entry.is_symlink()
                    if is_link and self.follow_symlinks is False:
                        continue
                    est = entry.stat(follow_symlinks=True)
                except FileNotFoundError as exc:
                    if is_link:  # a dangling link: worth saying
                        self._error(path, exc)
                    continue  # deleted since the folder was listed: simply not there
                except OSError as exc:  # permission, I/O
                    self._error(path, exc)
                    continue
                is_dir = stat.S_ISDIR(est.st_mode)
                if not is_dir and not stat.S_ISREG(est.st_mode):
                    continue  # a pipe, socket or device: never opened
                if is_link and self.follow_symlinks is None and not _inside(
                        Path(os.path.realpath(path)), real_root):
                    self.scan_errors.append(ScanError(display_path(path), (
                        "a symlink out of the source is not followed (the source's "
                        "follow_symlinks option opts in)")))
                    continue
                if self._ignored(path, is_dir, ignores):
                    continue
                if is_dir:
                    key = (est.st_dev, est.st_ino)
                    if key in seen_dirs:  # a symlink loop or a second way in
                        continue
                    seen_dirs.add(key)
                    subdirs.append((path, ignores))
                elif stat.S_ISREG(est.st_mode):
                    rel = path.relative_to(root).as_posix()
                    if self._wanted(rel):
                        files.append(self._ref(path, est))
            yield from with_subtitles(files)
            stack.extend(reversed(subdirs))

    @staticmethod
    def _ignored(path: Path, is_dir: bool, ignores) -> bool:
        # Like git: the deepest ignore file with a matching rule decides, so a nested
        # `!pattern` re-includes what a parent folder's file excludes.
        for base, spec in reversed(ignores):
            rel = path.relative_to(base).as_posix() + ("/" if is_dir else "")
            verdict = spec.check_file(rel).include
            if verdict is not None:
                return verdict
        return False

    def open(self, ref: ItemRef) -> Blob:
        path = path_of(ref.uri) if ref.uri.startswith("file://") else Path(ref.path)
        # Checked at every open, not only at scan time: a file swapped for a FIFO or for a
        # symlink out of the source between the two is refused, never read or waited on.
        if self._real_root is None:
            self._real_root = Path(os.path.realpath(self.root))
        within = None if self.follow_symlinks else self._real_root

        def opener():
            fd, _ = open_regular(path, within=within)
            return os.fdopen(fd, "rb")

        return LocalBlob(ref, opener, local_path=path)


class LocalBlob(Blob):
    """A file on disk: parsers that want a path get it only after the same checks."""

    @contextlib.contextmanager
    def local_path(self) -> Iterator[Path]:
        with self.open():  # refuses a FIFO or an escaping symlink swapped in since the scan
            yield self._local_path


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mkv", ".webm", ".mov", ".avi", ".ogv", ".mpg",
                            ".mpeg", ".wmv", ".ts"})
SUBTITLE_SUFFIXES = frozenset({".srt", ".vtt"})
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?")


def with_subtitles(files: list[ItemRef]) -> list[ItemRef]:
    """One folder's files, a video's subtitle files (`talk.srt`, `talk.vtt`,
    `talk.en.srt`) folded into it: listed in its `metadata["subtitles"]` (its transcript,
    extract/video.py) and its fingerprint, not items of their own."""
    videos = {Path(_name(r)).stem: r for r in files
              if Path(_name(r)).suffix.lower() in VIDEO_SUFFIXES}
    if not videos:
        return files
    found: dict[str, list[tuple[int, ItemRef]]] = {}
    rest = []
    for ref in files:
        name = Path(_name(ref))
        stem, language = name.stem, ""
        if name.suffix.lower() in SUBTITLE_SUFFIXES and stem not in videos:
            base, _, language = stem.rpartition(".")
            stem = base if base and _LANGUAGE.fullmatch(language) else stem
        if name.suffix.lower() in SUBTITLE_SUFFIXES and stem in videos:
            rank = 0 if not language else 1 if language.lower().startswith("en") else 2
            found.setdefault(stem, []).append((rank, ref))
        else:
            rest.append(ref)
    out = []
    for ref in rest:
        stem = Path(_name(ref)).stem
        subtitles = sorted(found.get(stem, []), key=lambda rr: (rr[0], _name(rr[1])))
        if subtitles and videos.get(stem) is ref:
            ref = dataclasses.replace(
                ref, fingerprint=ref.fingerprint + "".join(f"+{s.fingerprint}"
                                                           for _, s in subtitles),
                metadata={**ref.metadata,
                          "subtitles": [str(path_of(s.uri)) for _, s in subtitles]})
        out.append(ref)
    return out


def _name(ref: ItemRef) -> str:
    return path_of(ref.uri).name
