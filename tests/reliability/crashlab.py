"""The crash laboratory: kill `anyfind index` at chosen moments, resume, and verify.

Two scenarios on one mixed corpus (crashkit.Corpus):
- fresh: an empty index indexes version A;
- update: a complete index of A syncs to version B (edits, deletes, renames, a copy, new
  files, a fixed file, a touched file).
Three ways to kill:
- time: SIGKILL from outside after a random delay within the measured run time;
- point: SIGKILL at the n-th named crash point (anyfind/crashpoints.py): inside an open
  store transaction, between a temp file and its rename, between a vector file and its
  sidecar, after a batch commit...;
- process: a genuine `python -m anyfind index` subprocess, SIGKILLed from outside.
After each kill: `check` finds no error, and every item present is exactly its old or its
new version (committed work intact, nothing half-written, nothing lost). After resuming:
`check` finds nothing at all and the index equals a clean index of the same corpus.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from crashkit import (
    ROOT,
    Corpus,
    Zygote,
    child_env,
    content,
    copy_index,
    differences,
    item_differences,
)

from anyfind import Index
from anyfind.crashpoints import CRASH_AT, CRASH_LOG

SETTINGS = {"batch_chunks": 3, "checkpoint_seconds": 0, "clip": True}


@dataclass
class Trial:
    scenario: str  # fresh | update
    how: str  # time | point | process
    kill_after: float | None = None
    crash_at: str | None = None  # a crash point spec, see anyfind/crashpoints.py
    killed: bool = False
    point: str | None = None  # the crash point reached last before the kill
    items_at_kill: int = 0
    problems: list[str] = field(default_factory=list)


class CrashLab:
    def __init__(self, base: Path):
        self.base = base
        self.logs = base / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.idx = base / "work" / "idx"
        self.corpus = Corpus(base / "work" / "corpus")
        self.corpus.build_a()
        self.corpus.save(base / "A")
        self.corpus.mutate_to_b()
        self.corpus.save(base / "B")
        self.corpus.restore(base / "A")
        self.zygote = Zygote(base / "zygote", self.corpus.root, SETTINGS)
        self.template = Path(self.zygote.hello["template"])
        self.count = 0
        # Clean references, and how long an uninterrupted run takes.
        self.ref_a_path = base / "ref-a"
        self.seconds = {"fresh": self._clean_run("fresh", self.ref_a_path)}
        self.ref_a = content(self.ref_a_path)
        self.seconds["update"] = self._clean_run("update", base / "ref-update")
        self.ref_update = content(base / "ref-update")
        self._clean_run("fresh-b", base / "ref-b")
        self.ref_b = content(base / "ref-b")
        self.kept = [u for u in set(self.ref_a) & set(self.ref_b)
                     if not item_differences(u, self.ref_a[u], self.ref_b[u])]
        self.points = {s: self._points(s) for s in ("fresh", "update")}

    # -- runs ------------------------------------------------------------------------------
    def argv(self) -> list[str]:
        return ["index", str(self.corpus.root), "--index", str(self.idx), "-q"]

    def setup(self, scenario: str) -> None:
        """fresh: corpus A, empty index. update: corpus B, a complete index of A.
        fresh-b: corpus B, empty index."""
        self.corpus.restore(self.base / ("A" if scenario == "fresh" else "B"))
        copy_index(self.ref_a_path if scenario == "update" else self.template, self.idx)

    def _log(self, name: str) -> Path:
        self.count += 1
        return self.logs / f"{self.count:04d}-{name}.log"

    def _clean_run(self, scenario: str, dest: Path) -> float:
        self.setup(scenario)
        log = self._log(f"clean-{scenario}")
        result = self.zygote.run(self.argv(), log)
        assert result["rc"] == 0, log.read_text()
        copy_index(self.idx, dest)
        return result["seconds"]

    def _points(self, scenario: str) -> list[str]:
        self.setup(scenario)
        points = self._log(f"points-{scenario}")
        result = self.zygote.run(self.argv(), self._log("points"), env={CRASH_LOG: str(points)})
        assert result["rc"] == 0
        return points.read_text().split()

    def reference(self, scenario: str) -> dict[str, Any]:
        return self.ref_a if scenario == "fresh" else self.ref_b

    # -- one trial -------------------------------------------------------------------------
    def run(self, trial: Trial) -> Trial:
        self.setup(trial.scenario)
        log = self._log(f"{trial.scenario}-{trial.how}")
        if trial.how == "process":
            self._kill_process(trial, log)
        else:
            env = {}
            if trial.how == "point":
                env = {CRASH_AT: trial.crash_at, CRASH_LOG: str(log.with_suffix(".points"))}
            result = self.zygote.run(self.argv(), log, kill_after=trial.kill_after, env=env)
            trial.killed = result["rc"] == -9
            if not trial.killed and result["rc"] != 0:
                trial.problems.append(f"run failed (rc {result['rc']}): {log.read_text()[-500:]}")
            if trial.how == "point" and trial.killed:
                trial.point = log.with_suffix(".points").read_text().split()[-1]
        self.verify_crashed(trial)
        result = self.zygote.run(self.argv(), self._log("resume"))
        if result["rc"] != 0:
            trial.problems.append(f"resume failed (rc {result['rc']})")
        self.verify_final(trial)
        return trial

    def _kill_process(self, trial: Trial, log: Path) -> None:
        """A real `python -m anyfind index`, killed from outside once it has committed a
        batch (the crash log says so) plus a random delay."""
        points = log.with_suffix(".points")
        env = {**child_env(), CRASH_LOG: str(points)}
        with open(log, "w") as out:
            proc = subprocess.Popen([sys.executable, "-m", "anyfind", *self.argv()],
                                    stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            if points.exists() and "batch.committed" in points.read_text():
                break
            time.sleep(0.02)  # bounded polling on a condition
        else:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
                trial.problems.append("no batch was committed within 300 s")
                return
        try:
            proc.wait(timeout=trial.kill_after or 0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        trial.killed = proc.returncode == -9
        if not trial.killed and proc.returncode != 0:
            trial.problems.append(f"run failed (rc {proc.returncode})")
        if points.exists() and trial.killed:
            trial.point = (points.read_text().split() or ["start"])[-1]

    # -- verification ----------------------------------------------------------------------
    def _check(self, trial: Trial, when: str, allow_warnings: bool) -> None:
        with Index.open(self.idx, create=False) as idx:
            report = idx.check()
        bad = report.errors if allow_warnings else [f for f in report.findings]
        for f in bad:
            trial.problems.append(f"{when}: check {f.severity} {f.code}: {f.message}")

    def verify_crashed(self, trial: Trial) -> None:
        """Right after the kill: consistent, and every item is its old or its new version."""
        self._check(trial, "after the kill", allow_warnings=True)
        state = content(self.idx)
        trial.items_at_kill = len(state)
        versions = [self.ref_a] if trial.scenario == "fresh" else [self.ref_a, self.ref_b]
        for uri, item in state.items():
            if not any(uri in ref and not item_differences(uri, item, ref[uri])
                       for ref in versions):
                trial.problems.append(f"after the kill: {uri} is neither its old nor new version")
        if trial.scenario == "update":
            lost = [u for u in self.kept if u not in state]
            if lost:
                trial.problems.append(f"after the kill: unchanged items lost: {lost}")

    def verify_final(self, trial: Trial) -> None:
        self._check(trial, "after resuming", allow_warnings=False)
        for d in differences(content(self.idx), self.reference(trial.scenario)):
            trial.problems.append(f"after resuming: {d}")

    def close(self) -> None:
        self.zygote.close()


def trials(lab: CrashLab, seed: int, processes: int = 0) -> Iterator[Trial]:
    """`processes` real processes first, then alternately a kill at a random time (in
    [2%, 80%] of the measured run time) and one at a crash point: every point of both
    scenarios in turn ("store.write.uncommitted:3" is the 3rd time that one is reached),
    shuffled, then around again."""
    rng = np.random.default_rng(seed)
    for k in range(processes):
        yield Trial(("fresh", "update")[k % 2], "process", kill_after=float(rng.uniform(0, 2)))
    points = []
    for scenario in ("fresh", "update"):
        seen: dict[str, int] = {}
        for name in lab.points[scenario]:
            seen[name] = seen.get(name, 0) + 1
            points.append((scenario, f"{name}:{seen[name]}"))
    order = rng.permutation(len(points))
    k = 0
    while True:
        scenario = ("fresh", "update")[k % 2]
        after = float(rng.uniform(0.02, 0.8)) * lab.seconds[scenario]
        yield Trial(scenario, "time", kill_after=after)
        scenario, spec = points[int(order[k % len(points)])]
        yield Trial(scenario, "point", crash_at=spec)
        k += 1


def run_until(lab: CrashLab, source: Iterator[Trial], kills: int, processes: int
              ) -> list[Trial]:
    """Run trials until `kills` of them were killed (a run may finish before its kill
    time), the `processes` real-process trials included; at most 2 * kills trials."""
    done: list[Trial] = []
    while sum(t.killed for t in done) < kills + processes and len(done) < 2 * (kills + processes):
        done.append(lab.run(next(source)))
    return done


def summary(trials: list[Trial]) -> dict[str, Any]:
    killed = [t for t in trials if t.killed]
    return {
        "trials": len(trials),
        "killed": len(killed),
        "by_how": {h: sum(1 for t in killed if t.how == h) for h in ("time", "point", "process")},
        "points_hit": sorted({t.point for t in killed if t.point}),
        # fresh runs killed after some batches were committed and before the last one
        "partial": sum(1 for t in killed if t.scenario == "fresh" and t.items_at_kill),
        "failed": sum(1 for t in trials if t.problems),
    }


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))
