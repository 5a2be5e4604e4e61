"""Items/s indexing with the local executor vs on a Ray cluster, on this machine.

    python benchmarks/bench_ray.py [--sizes 250,1000] [--images 64] [--out results.json]

Text files (60-200 words each) at two corpus sizes, indexed from scratch by each
executor: time(N) = start-up + N x per-item. Ray runs on a one-node cluster started here
(`ray start --head` on loopback, 2 CPUs, its own temp dir), so the start-up it reports is
joining the cluster, starting the actor pools and loading the models in them; a local Ray
started by anyfind itself (no --ray-address) adds `ray.init` (measured once). Then a set
of photos (the tagger + MiniLM over their tags) the same way. The index is a local SQLite
one (one writer on the driver), tagger and Whisper off for the text runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOKEN = secrets.token_hex(16)
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": TOKEN, "RAY_USAGE_STATS_ENABLED": "0"}
os.environ.update(RAY_ENV)  # before ray is imported (it reads them once)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["ANYFIND_ONNX_EXPORT"] = "off"
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from anyfind import Index  # noqa: E402

WORDS = ("river granite harvest lantern orbit ledger violin glacier pepper compiler meadow "
         "tunnel saddle beacon quartz ferry protocol enzyme theorem budget").split()
PHOTOS = ROOT / "tests" / "fixtures" / "images"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cluster(temp: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "ray"), "start", "--head",
                             "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
                             "--include-dashboard=false", f"--temp-dir={temp}",
                             "--disable-usage-stats", "--block"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while not (temp / "ray_current_cluster").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    return proc, f"127.0.0.1:{port}"


def stop_cluster(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(30)
            return
        except (ProcessLookupError, subprocess.TimeoutExpired):
            continue


def text_corpus(root: Path, n: int) -> Path:
    rng = random.Random(n)
    root.mkdir(parents=True)
    for i in range(n):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(60, 200)))
        (root / f"doc{i:05d}.txt").write_text(f"Document {i}. {words}.")
    return root


def photo_corpus(root: Path, n: int) -> Path:
    from PIL import Image

    root.mkdir(parents=True)
    sources = sorted(PHOTOS.glob("*.jpg"))
    for i in range(n):
        img = Image.open(sources[i % len(sources)]).convert("RGB")
        img = img.rotate(7 * i, expand=False).resize((320, 240))  # distinct content, hashes
        img.save(root / f"p{i:04d}.jpg", quality=90)
    return root


def run(work: Path, corpus: Path, executor: str, address: str | None, **settings) -> dict:
    import ray

    if ray.is_initialized():
        ray.shutdown()
    path = work / f"idx-{executor}-{corpus.name}"
    shutil.rmtree(path, ignore_errors=True)
    with Index.open(path, **settings) as idx:
        idx.spaces["text"].encoder.encode_documents(["warm up"])  # the driver's model: loaded
        if executor == "ray":
            options = {"address": address} if address else {"num_cpus": 2}
            idx.use_executor("ray", **options)
        t0 = time.perf_counter()
        report = idx.add([corpus])
        seconds = time.perf_counter() - t0
    where = "" if executor == "local" else (address or "local ray")
    return {"executor": executor, "address": where,
            "items": report.added, "chunks": report.chunks, "seconds": round(seconds, 2),
            "items_per_s": round(report.added / seconds, 1), "workers": report.workers}


def fit(a: dict, b: dict) -> dict:
    """time = start-up + n x per-item, through the two sizes."""
    per_item = (b["seconds"] - a["seconds"]) / (b["items"] - a["items"])
    return {"startup_s": round(a["seconds"] - per_item * a["items"], 2),
            "per_item_ms": round(per_item * 1000, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="250,1000")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="anyfind-bench-ray-"))
    temp = Path(tempfile.mkdtemp(prefix="rb", dir="/tmp"))
    proc, address = start_cluster(temp)
    rows = []
    try:
        text_only = {"tagger": False, "transcriber": None}
        for n in sizes:
            corpus = text_corpus(work / f"text{n}", n)
            for executor in ("local", "ray"):
                rows.append({"corpus": f"text x{n}", **run(work, corpus, executor,
                                                             address, **text_only)})
                print(json.dumps(rows[-1]), flush=True)
        corpus = work / f"text{sizes[0]}"
        rows.append({"corpus": f"text x{sizes[0]}", **run(work, corpus, "ray", None, **text_only)})
        print(json.dumps(rows[-1]), flush=True)
        if args.images:
            photos = photo_corpus(work / "photos", args.images)
            for executor in ("local", "ray"):
                rows.append({"corpus": f"photos x{args.images}",
                             **run(work, photos, executor, address, transcriber=None)})
                print(json.dumps(rows[-1]), flush=True)
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        stop_cluster(proc)
        shutil.rmtree(temp, ignore_errors=True)
    by = {(r["corpus"], r["executor"], r["address"]): r for r in rows}
    fits = {}
    for executor, where in (("local", ""), ("ray", address)):
        a = by[(f"text x{sizes[0]}", executor, where)]
        b = by[(f"text x{sizes[-1]}", executor, where)]
        fits[executor] = fit(a, b)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "ray": __import__("ray").__version__,
        "runs": rows, "text_fit": fits,
        "ray_overhead_per_item_ms": round(fits["ray"]["per_item_ms"]
                                          - fits["local"]["per_item_ms"], 2),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
