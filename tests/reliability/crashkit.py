"""Helpers of the crash tests: a mixed corpus in two versions, a fork server that runs
`anyfind` commands with the models already loaded (so it can be killed many times
cheaply), and a comparable picture of an index's content."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from makers import make_docx, make_pdf
from makers import speak as speak_samples

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PHOTOS = ROOT / "tests" / "fixtures" / "images"

WORDS = ("river harbour lantern orchard quarry meadow glacier canyon violin compass "
         "ledger furnace pepper copper saddle beacon thistle marble falcon walnut").split()


def _essay(seed: int, sentences: int) -> str:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(sentences):
        words = [str(w) for w in rng.choice(WORDS, size=int(rng.integers(8, 16)))]
        out.append(" ".join(words).capitalize() + ".")
    return " ".join(out)


TEXTS = {
    "notes/tomatoes.md": "# Tomatoes\n\nWater tomatoes deeply twice a week at the base.",
    "notes/bikes.md": "# Bicycle care\n\nOil the chain every two hundred kilometres.",
    "notes/moon.txt": "The Moon drifts away from the Earth by 3.8 centimetres a year.",
    "notes/tides.txt": "Spring tides happen when the Sun and the Moon line up.",
    "notes/sourdough.md": "Feed the starter, then let the dough proof for twelve hours.",
    "web/espresso.html": ("<html><head><title>Espresso</title></head><body><h1>Espresso</h1>"
                          "<p>Nine bars of pressure for twenty-eight seconds.</p></body></html>"),
    "code/retry.py": ('"""Retry with exponential backoff."""\n\n\ndef retry(fn, tries=3):\n'
                      "    for i in range(tries):\n        try:\n            return fn()\n"
                      "        except OSError:\n            pass\n"),
    "data/prices.csv": "item,price\napple,0.5\npear,0.7\nplum,0.3\n",
    "data/settings.json": json.dumps({"theme": "dark", "language": "en", "retries": 3}),
    "long/essay.md": "# A long essay\n\n" + _essay(1, 90),
}


@dataclass
class Corpus:
    """Version A and version B (edits, deletes, renames, a copy, new files, a fix) of one
    mixed folder: text, HTML, code, data, PDF, DOCX, JPEG photos and a spoken clip."""

    root: Path
    has_speech: bool = False

    def build_a(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)
        for rel, text in TEXTS.items():
            _write(self.root / rel, text)
        (self.root / "office").mkdir(parents=True)
        make_pdf(self.root / "office" / "report.pdf",
                 ["Revenue grew by twelve percent this quarter.",
                  "The main risk is a shortage of semiconductor chips."])
        make_pdf(self.root / "office" / "minutes.pdf", ["Minutes: the board approved the budget."])
        make_docx(self.root / "office" / "handbook.docx", "Handbook",
                  ["Every employee gets twenty-five days of holiday.", "Unused days expire."])
        (self.root / "photos").mkdir()
        for p in sorted(PHOTOS.glob("*.jpg")):
            shutil.copy(p, self.root / "photos" / p.name)
        _write(self.root / "bad" / "garbage.txt", b"\x00\x01\x02\xff\xfe" * 400)
        _write(self.root / "bad" / "empty.md", b"")
        self.has_speech = speak("The quarterly budget meeting moves to Thursday afternoon.",
                                self.root / "audio" / "memo.wav")

    def mutate_to_b(self) -> None:
        r = self.root
        (r / "notes" / "tomatoes.md").write_text("# Tomatoes\n\nStake the plants in June.")
        (r / "long" / "essay.md").write_text("# A shorter essay\n\n" + _essay(2, 30))
        (r / "notes" / "tides.txt").unlink()
        (r / "photos" / "camera.jpg").unlink()
        (r / "archive").mkdir()
        os.rename(r / "notes" / "bikes.md", r / "archive" / "bikes-2023.md")
        os.rename(r / "office" / "minutes.pdf", r / "office" / "minutes-2024.pdf")
        shutil.copy2(r / "photos" / "coffee.jpg", r / "photos" / "coffee-copy.jpg")
        _write(r / "notes" / "new-kettle.md", "# Kettle\n\nDescale the kettle with citric acid.")
        _write(r / "notes" / "new-ferns.txt", "Ferns like shade and damp soil.")
        (r / "bad" / "garbage.txt").write_text("Now a readable note about garden hoses.")
        os.utime(r / "web" / "espresso.html", ns=(1_000_000_000, 1_000_000_000))

    def save(self, dest: Path) -> None:
        """Keep this version (mtimes included) to restore it before each trial."""
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(self.root, dest, copy_function=shutil.copy2)

    def restore(self, saved: Path) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)
        shutil.copytree(saved, self.root, copy_function=shutil.copy2)


def _write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)


def speak(text: str, path: Path) -> bool:
    """A spoken WAV clip by espeak-ng; False when espeak-ng is not installed."""
    if shutil.which("espeak-ng") is None:
        return False
    speak_samples(text, path, words_per_minute=150)
    return True


def copy_index(src: Path, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest)


# -- the content of an index, to compare a resumed index with a clean one -------------------
def content(index_path: Path) -> dict[str, Any]:
    """Items by uri with their chunks and vectors, read with plain sqlite3."""
    db = sqlite3.connect(f"file:{index_path / 'meta.db'}?mode=ro", uri=True)
    try:
        items = {}
        for row in db.execute("SELECT id, uri, status, error, content_hash, modality, "
                              "media_type, title, meta FROM items"):
            item_id, uri, *rest = row
            items[uri] = {"id": item_id, "fields": tuple(rest[:-1]), "meta": json.loads(rest[-1]),
                          "chunks": {}}
        by_id = {v["id"]: v for v in items.values()}
        for item_id, ordinal, modality, text, page, start, end, cid in db.execute(
                "SELECT item_id, ordinal, modality, text, page, start_s, end_s, id FROM chunks"):
            by_id[item_id]["chunks"][ordinal] = {
                "fields": (modality, text, page, start, end), "vectors": {}, "id": cid}
        chunk_of = {c["id"]: c for v in items.values() for c in v["chunks"].values()}
        for cid, space, blob in db.execute("SELECT chunk_id, space, vector FROM embeddings"):
            chunk_of[cid]["vectors"][space] = np.frombuffer(blob, dtype=np.float32)
        return items
    finally:
        db.close()


def differences(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """What differs between two index contents (ids aside; vectors within float noise)."""
    out = []
    if set(got) != set(want):
        out.append(f"items differ: extra {sorted(set(got) - set(want))}, "
                   f"missing {sorted(set(want) - set(got))}")
    for uri in sorted(set(got) & set(want)):
        out += item_differences(uri, got[uri], want[uri])
    return out


def item_differences(uri: str, g: dict[str, Any], w: dict[str, Any]) -> list[str]:
    out = []
    if g["fields"] != w["fields"]:
        out.append(f"{uri}: {g['fields']} != {w['fields']}")
    if _stable(g["meta"]) != _stable(w["meta"]):
        out.append(f"{uri}: metadata differs")
    if sorted(g["chunks"]) != sorted(w["chunks"]):
        return [*out, f"{uri}: chunk ordinals {sorted(g['chunks'])} != {sorted(w['chunks'])}"]
    for ordinal, gc in g["chunks"].items():
        wc = w["chunks"][ordinal]
        if gc["fields"] != wc["fields"]:
            out.append(f"{uri}#{ordinal}: chunk differs")
        if set(gc["vectors"]) != set(wc["vectors"]):
            out.append(f"{uri}#{ordinal}: spaces {sorted(gc['vectors'])} != "
                       f"{sorted(wc['vectors'])}")
            continue
        for space, vec in gc["vectors"].items():
            if float(vec @ wc["vectors"][space]) < 0.999:
                out.append(f"{uri}#{ordinal}: {space} vector differs")
    return out


def _stable(meta: dict[str, Any]) -> dict[str, Any]:
    """Metadata without float noise (tag probabilities, transcript times rounded)."""
    meta = dict(meta)
    if "tags" in meta:
        meta["tags"] = [t["label"] for t in meta["tags"]]
    if "transcript" in meta:
        meta["transcript"] = [seg[-1] for seg in meta["transcript"]]
    return meta


# -- the fork server -------------------------------------------------------------------------
def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false")
    for key in ("ANYFIND_CRASH_AT", "ANYFIND_CRASH_LOG"):
        env.pop(key, None)
    return env


class Zygote:
    """`python tests/reliability/zygote.py`: loads the models once, then runs each anyfind
    command in a forked child that it SIGKILLs when asked (after a delay, or never)."""

    def __init__(self, workdir: Path, corpus: Path, settings: dict[str, Any]):
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "zygote.py"), str(workdir), str(corpus),
             json.dumps(settings)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**child_env(), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}, cwd=ROOT)
        self.hello = self._read()

    def _read(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the zygote died (exit {self.proc.wait()})")
        return json.loads(line)

    def run(self, argv: list[str], log: Path, kill_after: float | None = None,
            env: dict[str, str] | None = None) -> dict[str, Any]:
        request = {"argv": argv, "log": str(log), "kill_after": kill_after, "env": env or {}}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
