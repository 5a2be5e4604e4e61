"""Cold start benchmark: `anyfind search "query"` from a fresh process, ONNX against torch.

    python benchmarks/bench_coldstart.py [--quick] [--out coldstart.json] [--workdir DIR]

In ONE run, on one index of 100k text chunks plus 10k images:

1. The index: generated prose documents indexed for real (all-MiniLM-L6-v2 text space,
   the tiny CLIP checkpoint of the tests as the vision space, so text chunks have a
   vector in both spaces), 4 real photos, then perturbed copies of those real vectors
   (cosine ~0.94 to their original) written through `MetadataStore.write_items` until the store
   holds 100k text chunks and 10k image chunks. The vector files are built and saved
   (IVF at this size), and both spaces are exported to ONNX (`export_index`).
2. Cold: the median wall time of 10 `python -m anyfind search QUERY --index PATH` runs
   on the ONNX path, interleaved with 10 on the torch path (ANYFIND_NO_ONNX=1), plus
   `--image` runs; `python -c pass` and `anyfind --help` for scale; a breakdown from
   ANYFIND_PROFILE=json runs (median per stage); the heavy modules the cold path
   imported (from `python -X importtime`).
3. Warm: in-process `Index.search` p50/p95 at this size (query encoding included,
   ONNX query encoders), hybrid and dense.

The machine is shared: the load average is recorded beside every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import (  # noqa: E402
    cpu_name,
    generate_corpus,
    header,
    loadavg,
    log,
    ms,
    report,
    warm_queries,
    workspace,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO / "tests" / "fixtures" / "images"
HEAVY = ("torch", "transformers", "sentence_transformers", "open_clip", "sqlalchemy")


# -- 1. the index ---------------------------------------------------------------------------


def refresh_export(path: Path) -> list[dict[str, Any]]:
    """A reused index gets its export brought up to date (an export made by an older
    anyfind is stale, and a stale export would send the cold runs to torch)."""
    sys.path.insert(0, str(REPO))
    from anyfind import Index
    from anyfind.encoders.export import export_index

    with Index.open(path, create=False) as idx:
        return [r.to_dict() for r in export_index(idx)]


def build_index(work: Path, args) -> tuple[Path, list[str], dict[str, Any]]:
    sys.path.insert(0, str(REPO))
    from anyfind import Index
    from anyfind.encoders.export import export_index
    from tests.support.clip_fixtures import make_tiny_clip_checkpoint

    corpus = work / "corpus"
    queries = generate_corpus(corpus, args.files, args.seed)
    for photo in PHOTOS.glob("*.jpg"):
        shutil.copy(photo, corpus / photo.name)
    arch, ckpt = make_tiny_clip_checkpoint(work / "clip")
    config = work / "clip" / "configs" / f"{arch}.json"
    path = work / "index"
    info: dict[str, Any] = {}
    t = time.perf_counter()
    idx = Index.open(path, clip_model=arch, clip_weights=str(ckpt), clip_config=str(config),
                     tagger=False, transcriber=None)
    report = idx.add([corpus])
    info["real_index_s"] = round(time.perf_counter() - t, 1)
    log(f"indexed {report.added} files ({report.chunks} chunks) in {info['real_index_s']} s")

    t = time.perf_counter()
    Synthetic(idx.store, np.random.default_rng(args.seed)).write(args.text_chunks, args.images)
    info["synthetic_write_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    idx.opened.refresh_vectors(save=True)
    info["faiss_build_s"] = round(time.perf_counter() - t, 1)
    info["spaces"] = {name: {"vectors": len(idx.opened.vectors(name)),
                             "factory": idx.opened.vectors(name).built_factory}
                      for name in idx.spaces}
    counts = idx.store.counts()
    info["chunks"], info["by_modality"] = counts["chunks"], counts["by_modality"]
    t = time.perf_counter()
    info["export"] = [r.to_dict() for r in export_index(idx)]
    info["export_s"] = round(time.perf_counter() - t, 1)
    idx.close()
    info["disk_mb"] = {p.name: round(sum(f.stat().st_size for f in p.rglob("*")
                                         if f.is_file()) / 1e6, 1)
                       for p in path.iterdir() if p.is_dir()}
    info["disk_mb"]["meta.db"] = round((path / "meta.db").stat().st_size / 1e6, 1)
    log(f"index ready: {info['spaces']}")
    return path, queries, info


class Synthetic:
    """Text chunks (a vector in both spaces) and image chunks (vision only) whose vectors
    are perturbed copies of the real ones, written through MetadataStore.write_items."""

    sigma = 0.35  # noise norm relative to a unit vector: cosine ~ 1/sqrt(1+s^2) ~ 0.94

    def __init__(self, store, rng: np.random.Generator):
        from sqlalchemy import text as sql

        self.store, self.rng = store, rng
        with store.engine.connect() as conn:
            rows = conn.execute(sql("SELECT id, modality, text FROM chunks ORDER BY id")).all()
        vecs = {s: dict(zip(*store.vectors(s), strict=True)) for s in ("text", "vision")}
        self.texts = [(r.text, vecs["text"][r.id], vecs["vision"][r.id]) for r in rows
                      if r.modality == "text" and r.id in vecs["text"] and r.id in vecs["vision"]]
        self.images = [vecs["vision"][r.id] for r in rows if r.modality == "image"]
        self.real_text = len(self.texts)
        self.real_images = len(self.images)
        self.source = store.ensure_source("synthetic", "filesystem", "/synthetic", {})

    def _noisy(self, vec: np.ndarray) -> np.ndarray:
        out = vec + self.rng.standard_normal(len(vec)).astype(np.float32) * (
            self.sigma / np.sqrt(len(vec)))
        return (out / np.linalg.norm(out)).astype(np.float32)

    def write(self, text_chunks: int, images: int, per_item: int = 4, batch: int = 500) -> None:
        from anyfind.store.metadata import ChunkRecord, ItemRecord

        entries: list = []
        n_items = 0

        def flush() -> None:
            if entries:
                self.store.write_items(entries)
                entries.clear()

        left = text_chunks - self.real_text
        k = 0
        while left > 0:
            chunks = []
            for o in range(min(per_item, left)):
                text, tv, vv = self.texts[k % len(self.texts)]
                k += 1
                chunks.append(ChunkRecord(ordinal=o, modality="text", text=text, char_start=0,
                                          char_end=len(text), vectors={
                                              "text": self._noisy(tv), "vision": self._noisy(vv)}))
            left -= len(chunks)
            n_items += 1
            path = f"/synthetic/doc-{n_items:06d}.txt"
            entries.append((ItemRecord(self.source, f"file://{path}", path, "text", "text/plain",
                                       1000, 0.0, str(n_items), f"syn-{n_items}"), chunks, None))
            if len(entries) >= batch:
                flush()
        for i in range(images - self.real_images):
            vec = self._noisy(self.images[i % len(self.images)])
            path = f"/synthetic/img-{i:06d}.jpg"
            entries.append((ItemRecord(self.source, f"file://{path}", path, "image",
                                       "image/jpeg", 50_000, 0.0, f"i{i}", f"syn-img-{i}",
                                       meta={"width": 640, "height": 480}),
                            [ChunkRecord(ordinal=0, modality="image", text="",
                                         vectors={"vision": vec})], None))
            if len(entries) >= batch:
                flush()
        flush()


# -- 2. cold --------------------------------------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("ANYFIND_NO_ONNX", "ANYFIND_PROFILE", "ANYFIND_SERVER")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def _run(cmd: list[str], **extra: str) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600,
                          env=_env(**extra))
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {proc.stderr[-800:]}")
    return wall, proc


def _summary(walls: list[float]) -> dict[str, Any]:
    return {"median_s": round(statistics.median(walls), 3), "min_s": round(min(walls), 3),
            "max_s": round(max(walls), 3), "runs": len(walls),
            "all_s": [round(w, 3) for w in walls]}


def _profile(cmd: list[str], runs: int, **extra: str) -> dict[str, Any]:
    """Median per stage over `runs` ANYFIND_PROFILE=json runs."""
    stages: dict[str, list[float]] = {}
    totals, heavy = [], set()
    for _ in range(runs):
        _, proc = _run(cmd, ANYFIND_PROFILE="json", **extra)
        line = next(x for x in proc.stderr.splitlines() if x.startswith("anyfind-profile "))
        data = json.loads(line.split(" ", 1)[1])
        totals.append(data["total"])
        heavy |= set(data["heavy_modules"])
        for k, v in data["stages"].items():
            stages.setdefault(k, []).append(v)
    return {"total_s": round(statistics.median(totals), 3),
            "stages_s": {k: round(statistics.median(v), 4) for k, v in stages.items()},
            "heavy_modules": sorted(heavy)}


def _importtime(cmd: list[str]) -> list[str]:
    """Heavy top-level modules in `python -X importtime` of the command."""
    _, proc = _run([cmd[0], "-X", "importtime", *cmd[1:]])
    found = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip().split(".")[0]
            if name in HEAVY:
                found.add(name)
    return sorted(found)


def bench_cold(path: Path, queries: list[str], args) -> dict[str, Any]:
    py = sys.executable
    rng = random.Random(args.seed)
    picked = [rng.choice(queries) for _ in range(max(args.runs, args.torch_runs))]
    search = [py, "-m", "anyfind", "search", "--index", str(path), "-k", "10"]
    image = [*search, "--image", str(PHOTOS / "coffee.jpg")]
    out: dict[str, Any] = {"loadavg_before": loadavg()}
    out["python_c_pass"] = _summary([_run([py, "-c", "pass"])[0] for _ in range(5)])
    out["help"] = _summary([_run([py, "-m", "anyfind", "--help"])[0] for _ in range(5)])
    _run([*search, "warm the page cache"])  # the first run of all reads files from disk
    onnx, torch_, stderr_torch = [], [], ""
    for i in range(max(args.runs, args.torch_runs)):
        if i < args.runs:
            wall, _ = _run([*search, picked[i]])
            onnx.append(wall)
        if i < args.torch_runs:
            wall, proc = _run([*search, picked[i]], ANYFIND_NO_ONNX="1")
            torch_.append(wall)
            stderr_torch = proc.stderr
        log(f"cold run {i + 1}: onnx {onnx[-1]:.2f} s" + (f", torch {torch_[-1]:.2f} s"
                                                           if i < args.torch_runs else ""))
    out["onnx"] = _summary(onnx)
    out["torch"] = _summary(torch_)
    out["torch_notice"] = next((x for x in stderr_torch.splitlines() if "ONNX" in x), None)
    out["image_onnx"] = _summary([_run(image)[0] for _ in range(args.image_runs)])
    out["breakdown_onnx"] = _profile([*search, picked[0]], args.profile_runs)
    out["breakdown_torch"] = _profile([*search, picked[0]], 1, ANYFIND_NO_ONNX="1")
    out["breakdown_image_onnx"] = _profile(image, args.profile_runs)
    out["importtime_heavy_modules"] = {
        "text": _importtime([*search, picked[0]]), "image": _importtime(image)}
    out["loadavg_after"] = loadavg()
    return out


# -- 3. warm --------------------------------------------------------------------------------


def bench_warm(path: Path, queries: list[str], args) -> dict[str, Any]:
    from anyfind import Index

    rng = random.Random(args.seed + 1)
    qs = [rng.choice(queries) for _ in range(args.queries)]
    out: dict[str, Any] = {"loadavg_before": loadavg()}
    with Index.open(path, create=False) as idx:
        out["query_encoders"] = {n: type(s.query_encoder).__name__ for n, s in idx.spaces.items()}
        timed = warm_queries(idx, qs)
    out["hybrid"], out["dense"] = ms(timed["hybrid"]), ms(timed["dense"])
    out["loadavg_after"] = loadavg()
    return out


# -- report ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    import faiss
    import onnxruntime

    return {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__, "faiss": faiss.__version__,
            "platform": platform.platform()}


def table(res: dict[str, Any]) -> str:
    c, w, m, ix = res["cold"], res["warm"], res["machine"], res["index"]
    b, bt = c["breakdown_onnx"]["stages_s"], c["breakdown_torch"]["stages_s"]
    keys = ["interpreter", "imports", "open", "image", "model", "encode", "vector", "lexical",
            "metadata", "results", "output", "other"]
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores, python {m['python']}, onnxruntime "
        f"{m['onnxruntime']}, faiss {m['faiss']}",
        f"index: {ix['chunks']:,} chunks {ix['by_modality']}, spaces {ix['spaces']}",
        "",
        "| cold `anyfind search` (fresh process) | median s | min | max | runs |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, key in (("text query, ONNX path", "onnx"), ("text query, torch path "
                       "(ANYFIND_NO_ONNX=1)", "torch"), ("`--image`, ONNX path", "image_onnx"),
                       ("`python -c pass`", "python_c_pass"), ("`anyfind --help`", "help")):
        s = c[key]
        lines.append(f"| {label} | {s['median_s']} | {s['min_s']} | {s['max_s']} | {s['runs']} |")
    lines += [f"(load average {c['loadavg_before']} -> {c['loadavg_after']})", "",
              "| stage (s, median of profiled runs) | ONNX text | torch text | ONNX --image |",
              "|---|---:|---:|---:|"]
    bi = c["breakdown_image_onnx"]["stages_s"]
    for k in keys:
        lines.append(f"| {k} | {b.get(k, 0):.3f} | {bt.get(k, 0):.3f} | {bi.get(k, 0):.3f} |")
    lines.append(f"| total (profiled) | {c['breakdown_onnx']['total_s']} | "
                 f"{c['breakdown_torch']['total_s']} | {c['breakdown_image_onnx']['total_s']} |")
    lines += ["", f"heavy modules imported by the cold path (-X importtime): "
              f"{c['importtime_heavy_modules']}", "",
              f"warm in-process `Index.search`, k=10, {w['hybrid']['n']} queries "
              f"(encoders {w['query_encoders']}): hybrid p50 {w['hybrid']['p50_ms']} ms / p95 "
              f"{w['hybrid']['p95_ms']} ms; dense p50 {w['dense']['p50_ms']} ms / p95 "
              f"{w['dense']['p95_ms']} ms (load average {w['loadavg_before']} -> "
              f"{w['loadavg_after']})"]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="10k text chunks, 1k images, 3 runs each (a smoke run)")
    ap.add_argument("--files", type=int, default=300, help="real documents to index")
    ap.add_argument("--text-chunks", type=int, default=None, help="default 100000")
    ap.add_argument("--images", type=int, default=None, help="default 10000")
    ap.add_argument("--runs", type=int, default=None, help="cold ONNX runs (default 10)")
    ap.add_argument("--torch-runs", type=int, default=None, help="cold torch runs (default 10)")
    ap.add_argument("--image-runs", type=int, default=None, help="cold --image runs (default 5)")
    ap.add_argument("--profile-runs", type=int, default=3)
    ap.add_argument("--queries", type=int, default=200, help="warm queries")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=None, help="keep (or reuse) the index here")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    ap.add_argument("--build-only", action="store_true",
                    help="only build the index in --workdir (measure later, on a quieter machine)")
    args = ap.parse_args()
    q = args.quick
    args.text_chunks = args.text_chunks or (10_000 if q else 100_000)
    args.images = args.images or (1_000 if q else 10_000)
    args.runs = args.runs or (3 if q else 10)
    args.torch_runs = args.torch_runs or (3 if q else 10)
    args.image_runs = args.image_runs or (3 if q else 5)

    work = workspace(args.workdir, "anyfind-coldstart-")
    started = time.perf_counter()
    try:
        res = header(machine(), args)
        saved = work / "index-info.json"
        if (work / "index" / "config.json").exists() and saved.exists():
            path, (queries, res["index"]) = work / "index", json.loads(saved.read_text())
            log(f"reusing the index in {path}")
            res["index"]["reexport"] = refresh_export(path)
        else:
            path, queries, res["index"] = build_index(work, args)
            saved.write_text(json.dumps([queries, res["index"]]))
        if args.build_only:
            print(json.dumps(res["index"], indent=2))
            return
        res["cold"] = bench_cold(path, queries, args)
        res["warm"] = bench_warm(path, queries, args)
        res["total_s"] = round(time.perf_counter() - started, 1)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    report(res, table(res), f"total {res['total_s']} s", args.out)


if __name__ == "__main__":
    main()
