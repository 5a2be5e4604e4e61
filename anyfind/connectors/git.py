"""Git repositories through the `git` command: files as of a branch, tag or commit.

Item identity is `<repo>@<ref>:<path>` (the ref as configured, e.g. `main`), so a file
that changes between commits is an update of the same item; the commit a version was
read at is in the item's metadata. Blob ids are the fingerprints: a sync to a new commit
reads only the blobs that changed, and a renamed file keeps its vectors (same blob).
Remote repositories are cloned bare into the index's cache folder and fetched on sync.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ConfigError, SourceError
from ..secrets import mask_uri
from .base import Blob, Connector, ItemRef, glob_spec

_SAFE_REF = re.compile(r"^[^\s\x00-\x1f]+$")
# Cloned into the cache; a plain path or file:// URL is read in place with `git -C`.
_REMOTE = re.compile(r"^(?:git\+)?(?:https?|ssh|git)://|^git\+file://|^[\w.-]+@[\w.-]+:")
LFS_HEADER = b"version https://git-lfs.github.com/spec/v1"


class GitConnector(Connector):
    """Options: ref (branch, tag or commit; default HEAD), include / exclude (globs on
    paths in the repository), commits (also index commit messages), max_commits (default
    1000), timeout (seconds for clone/fetch, default 300), retries (default 2)."""

    kind = "git"
    worker_reads = "local"
    option_names = frozenset({"ref", "include", "exclude", "commits", "max_commits", "timeout",
                              "retries"})

    def __init__(self, uri: str, **options: Any):
        super().__init__(uri, **options)
        self.ref = str(options.get("ref") or "HEAD")
        if self.ref.startswith("-") or not _SAFE_REF.match(self.ref):
            raise ConfigError(f"invalid git ref {self.ref!r}")
        self.commits = bool(options.get("commits", False))
        self.max_commits = int(options.get("max_commits", 1000))
        self.timeout = float(options.get("timeout", 300))
        self.retries = max(1, int(options.get("retries", 2)))
        self.include = glob_spec(options.get("include"))
        self.exclude = glob_spec(options.get("exclude"))
        if _REMOTE.match(uri):
            self.remote: str | None = uri[4:] if uri.startswith("git+") else uri
            self.local: Path | None = None
            self.identity = "git+" + mask_uri(self.remote) if "://" in self.remote else self.remote
        else:
            path = uri[len("file://"):] if uri.startswith("file://") else uri
            self.remote = None
            self.local = Path(path).expanduser().absolute()
            self.identity = f"git+file://{self.local}"
        self.label = Path((self.remote or str(self.local)).rstrip("/")).name.removesuffix(".git")
        self.commit: str | None = None
        self._repo: Path | None = None
        self._cat: subprocess.Popen | None = None
        self._cat_lock = threading.Lock()
        self._messages: dict[str, bytes] = {}

    def describe(self) -> str:
        return f"{self.identity}@{self.ref}"

    # -- running git ---------------------------------------------------------------------
    @staticmethod
    def _env() -> dict[str, str]:
        env = dict(os.environ)
        env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_ASKPASS="true",
                   GIT_SSH_COMMAND="ssh -o BatchMode=yes -o ConnectTimeout=20")
        return env

    def _git(self, *args: str, repo: Path | None = None, timeout: float = 120) -> bytes:
        cmd = ["git"]
        if repo is not None:
            cmd += ["-C", str(repo)]
        cmd += list(args)
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=timeout, env=self._env(),
                                  check=False)
        except FileNotFoundError:
            raise SourceError("the `git` command is not installed") from None
        except subprocess.TimeoutExpired:
            raise SourceError(f"git {args[0]} timed out after {timeout:.0f}s") from None
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip().splitlines()
            raise SourceError(f"git {args[0]} failed: {mask_uri(' '.join(err[-3:]) or '?')}")
        return done.stdout

    def _with_retries(self, *args: str, repo: Path | None = None) -> None:
        for attempt in range(self.retries):
            try:
                self._git(*args, repo=repo, timeout=self.timeout)
                return
            except SourceError:
                if attempt + 1 == self.retries:
                    raise
                time.sleep(min(2.0 * (attempt + 1), 10.0))  # back off before the next try

    def _prepare_repo(self) -> Path:
        if self.local is not None:
            if not self.local.exists():
                raise SourceError(f"no git repository at {self.local}")
            return self.local
        if self.workdir is None:
            raise SourceError("a remote git source needs a cache folder (run it from an Index)")
        clone = self.workdir / "repo.git"
        if (clone / "HEAD").is_file():
            self._with_retries("fetch", "--prune", "--quiet", "--tags", "origin",
                               "+refs/heads/*:refs/heads/*", repo=clone)
        else:
            clone.parent.mkdir(parents=True, exist_ok=True)
            self._with_retries("clone", "--bare", "--quiet", "--", self.remote or "", str(clone))
        return clone

    # -- scanning ------------------------------------------------------------------------
    def scan(self) -> Iterator[ItemRef]:
        repo = self._repo = self._prepare_repo()
        try:
            out = self._git("rev-parse", "--verify", "--quiet", "--end-of-options",
                            f"{self.ref}^{{commit}}", repo=repo)
        except SourceError:
            raise SourceError(f"ref '{self.ref}' not found in {self.describe()}") from None
        self.commit = commit = out.decode().strip()
        listing = self._git("ls-tree", "-r", "-l", "-z", "--full-tree", commit, repo=repo,
                            timeout=self.timeout)
        for entry in listing.split(b"\0"):
            ref = self._entry(entry, commit)
            if ref is not None:
                yield ref
        if self.commits:
            yield from self._commit_refs(repo, commit)

    def _entry(self, entry: bytes, commit: str) -> ItemRef | None:
        if not entry:
            return None
        head, _, raw_path = entry.partition(b"\t")
        mode, kind, sha, size = head.decode().split()
        path = raw_path.decode("utf-8", errors="surrogateescape")
        # Submodules (commit entries) and symlinks (mode 120000) carry no content here.
        if kind != "blob" or mode == "120000" or not self._wanted(path):
            return None
        return ItemRef(
            uri=f"{self.identity}@{self.ref}:{path}",
            path=f"{self.label}@{self.ref}:{path}",
            size=int(size) if size.isdigit() else None,
            fingerprint=sha,
            metadata={"commit": commit, "blob": sha, "repo_path": path, "ref": self.ref},
        )

    def _wanted(self, rel: str) -> bool:
        if self.include is not None and not self.include.match_file(rel):
            return False
        return not (self.exclude is not None and self.exclude.match_file(rel))

    def _commit_refs(self, repo: Path, commit: str) -> Iterator[ItemRef]:
        log = self._git("log", f"-n{self.max_commits}", "--format=%H%x1f%an%x1f%aI%x1f%B%x1e",
                        commit, "--", repo=repo, timeout=self.timeout)
        for record in log.decode(errors="replace").split("\x1e"):
            fields = record.strip("\n").split("\x1f")
            if len(fields) != 4:
                continue
            sha, author, date, message = fields
            text = f"{message.strip()}\n\nAuthor: {author}\nDate: {date}\nCommit: {sha}\n"
            data = text.encode()
            self._messages[sha] = data
            yield ItemRef(
                uri=f"{self.identity}#commit/{sha}",
                path=f"{self.label}@{sha[:10]} (commit)",
                size=len(data), fingerprint=sha, media_type="text/plain",
                metadata={"commit": sha, "author": author, "date": date, "kind": "commit"},
            )

    def sync_state(self) -> dict[str, Any]:
        return {"commit": self.commit, "ref": self.ref}

    # -- reading -------------------------------------------------------------------------
    def open(self, ref: ItemRef) -> Blob:
        if ref.metadata.get("kind") == "commit":
            data = self._messages[ref.fingerprint]
        else:
            data = self._cat_blob(ref.fingerprint)

        def opener():
            import io

            return io.BytesIO(data)

        return Blob(ref, opener)

    def _cat_blob(self, sha: str) -> bytes:
        """One long-lived `git cat-file --batch` serves every blob (thread-safe)."""
        with self._cat_lock:
            if self._cat is None:
                self._cat = subprocess.Popen(
                    ["git", "-C", str(self._repo), "cat-file", "--batch"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                    env=self._env())
            assert self._cat.stdin is not None and self._cat.stdout is not None
            self._cat.stdin.write(sha.encode() + b"\n")
            self._cat.stdin.flush()
            header = self._cat.stdout.readline().split()
            if len(header) != 3:
                raise OSError(f"git object {sha} is missing")
            size = int(header[2])
            data = self._cat.stdout.read(size)
            self._cat.stdout.read(1)  # the newline after the content
        return data

    def close(self) -> None:
        with self._cat_lock:
            if self._cat is not None:
                if self._cat.stdin:
                    self._cat.stdin.close()
                try:
                    self._cat.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._cat.kill()
                if self._cat.stdout:
                    self._cat.stdout.close()
                self._cat = None
