"""Running `python -m anyfind` (this worktree's) in subprocesses, optionally as a root
without the power to ignore file permissions, and small text corpora."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from crashkit import ROOT, WORDS, child_env

# Root ignores file modes; without these two capabilities it obeys them like anyone.
NO_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def can_drop_privileges() -> bool:
    if shutil.which("setpriv") is None:
        return False
    probe = subprocess.run([*NO_DAC, "true"], capture_output=True)
    return probe.returncode == 0


def anyfind(*args: str, obey_permissions: bool = False, timeout: float = 600,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "anyfind", *args]
    if obey_permissions:
        cmd = [*NO_DAC, *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**child_env(), **(env or {})})


def text_corpus(root: Path, n: int, seed: int = 0) -> list[Path]:
    """n short documents, each about a different pair of words (one chunk each)."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        a, b = WORDS[(i + seed) % len(WORDS)], WORDS[(3 * i + 7 + seed) % len(WORDS)]
        p = root / f"doc-{i:03d}.md"
        p.write_text(f"# Note {i} on the {a} and the {b}\n\nThe {a} stood next to the {b}; "
                     f"note number {i} says the {a} is older than the {b}.")
        paths.append(p)
    return paths
