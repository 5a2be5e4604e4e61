"""Kill the indexer (SIGKILL) at many points, resume, and prove nothing was lost or
duplicated and the index is consistent and complete. See crashlab.py for the method.

Fast mode (default): ANYFIND_CRASH_KILLS kills (10) + one real `python -m anyfind`
process. Long mode (`-m slow`): ANYFIND_CRASH_KILLS_LONG kills (100, and at least two
per crash point passed by the two scenarios, so that every point is killed at) + 4
processes.
ANYFIND_RELIABILITY_REPORT=FILE writes the figures as JSON.
"""

from __future__ import annotations

import json
import os

import pytest
from crashkit import differences
from crashlab import CrashLab, env_int, run_until, summary, trials

pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open") or not hasattr(os, "fork"),
                                reason="the crash lab's fork server needs Linux (fork, pidfd)")

POINTS = {"store.write.uncommitted", "batch.committed", "file.temp_written",
          "vectors.file_saved", "sync.planned", "sync.written"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = CrashLab(tmp_path_factory.mktemp("crash"))
    yield lab
    lab.close()


def test_clean_runs_agree(lab):
    """Without a crash, syncing A to B gives exactly a clean index of B (and the runs
    pass through every kind of crash point)."""
    assert differences(lab.ref_update, lab.ref_b) == []
    assert POINTS <= set(lab.points["fresh"])
    assert {"sync.moved", "sync.copied", "sync.touched", "sync.deleted",
            "store.delete.uncommitted"} <= set(lab.points["update"])
    assert lab.ref_a and lab.kept


def _run(lab, kills: int, processes: int, seed: int, name: str) -> dict:
    done = run_until(lab, trials(lab, seed, processes), kills, processes)
    figures = summary(done)
    print(f"\n{name}: {json.dumps(figures)}")
    if path := os.environ.get("ANYFIND_RELIABILITY_REPORT"):
        with open(path, "a") as fh:
            fh.write(json.dumps({"mode": name, **figures, "seconds": lab.seconds}) + "\n")
    problems = [(t.scenario, t.how, t.kill_after, t.crash_at, t.point, p)
                for t in done for p in t.problems]
    assert problems == []
    assert figures["killed"] >= kills + processes
    assert figures["by_how"]["process"] == processes
    return figures


def test_kill_and_resume(lab):
    _run(lab, env_int("ANYFIND_CRASH_KILLS", 10), processes=1, seed=8, name="fast")


@pytest.mark.slow
def test_kill_and_resume_long(lab):
    """At least 100 kills, and at least one at every crash point of both scenarios."""
    points = sum(len(names) for names in lab.points.values())
    kills = max(env_int("ANYFIND_CRASH_KILLS_LONG", 100), 2 * points)
    figures = _run(lab, kills, processes=4, seed=108, name="long")
    assert figures["killed"] >= 100
    assert set(lab.points["fresh"]) | set(lab.points["update"]) <= set(figures["points_hit"])
