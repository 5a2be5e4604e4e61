"""Image benchmark: end-to-end indexing speed against the raw encoder forward pass, and
zero-shot retrieval on CIFAR-10 with the offline tagger.

    python benchmarks/bench_images.py [--quick] [--data ../shared/data/cifar10-test]
                                      [--out results.json] [--work DIR]

1. Throughput. For each model -- the offline tagger (EfficientNet-Lite0), a tiny random
   open_clip checkpoint, a full-size random-init ViT-B-32 (random weights: speed only) --
   and each image set -- small (CIFAR-10 32x32 JPEGs, or generated ones) and large
   (generated 4000x3000 "photographic" JPEGs, quality 90) -- images/s of `Index.add` on the
   folder (scan, hash, decode, preprocess, tag/embed, thumbnail, write) against the same
   model's forward pass on the same images already decoded, preprocessed and stacked in
   memory, measured in the same run (before and after `Index.add`). Target ratio >= 0.8.
   Also decode-only throughput (PIL with draft, as extract_image does, without and with
   the decode size an index's models ask for) and where the end-to-end time goes (stage
   timers wrapped around the pipeline's own functions).
2. Zero-shot retrieval on CIFAR-10 test (10,000 JPEGs in class folders): index with the
   offline tagger, query each class name, precision@10 per search mode.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")


# -- timing helpers ------------------------------------------------------------------------
class Stages:
    """Thread-safe seconds and call counts per named stage."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def wrap(self, fn: Callable, key: str) -> Callable:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                with self._lock:
                    self.seconds[key] += dt
                    self.calls[key] += 1

        return timed

    @contextlib.contextmanager
    def patched(self, targets: list[tuple[Any, str, str]]) -> Iterator[Stages]:
        """Wrap owner.attr (a class function or an instance attribute) for the duration."""
        saved = []
        for owner, attr, key in targets:
            had = attr in vars(owner)
            saved.append((owner, attr, had, vars(owner).get(attr)))
            setattr(owner, attr, self.wrap(getattr(owner, attr), key))
        try:
            yield self
        finally:
            for owner, attr, had, original in reversed(saved):
                if had:
                    setattr(owner, attr, original)
                else:
                    delattr(owner, attr)

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {k: {"s": round(v, 3), "calls": self.calls[k]} for k, v in sorted(self.seconds.items())}


@contextlib.contextmanager
def clock() -> Iterator[dict[str, float]]:
    """Wall and process CPU seconds (all threads) of a block."""
    out: dict[str, float] = {}
    w0, c0 = time.perf_counter(), time.process_time()
    try:
        yield out
    finally:
        out["wall"] = time.perf_counter() - w0
        out["cpu"] = time.process_time() - c0


def loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def machine() -> dict[str, Any]:
    import PIL
    import torch

    import anyfind

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu, "cores": os.cpu_count(), "arch": platform.machine(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "pillow": PIL.__version__, "python": platform.python_version(),
        "anyfind": f"{anyfind.__version__} ({Path(anyfind.__file__).parent})",
    }


# -- image sets ----------------------------------------------------------------------------
def cifar_files(data: Path, per_class: int | None) -> list[Path]:
    """The first `per_class` files of every class folder (all when None), class-interleaved."""
    lists = [sorted((data / c).glob("*.jpg"))[:per_class] for c in CLASSES]
    out = []
    for i in range(max((len(x) for x in lists), default=0)):
        out.extend(x[i] for x in lists if i < len(x))
    return out


def photo_like(width: int, height: int, seed: int) -> Any:
    """A PIL image that compresses like a photo: smooth colour fields, a gradient, grain."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    base = Image.fromarray(rng.integers(0, 256, (9, 12, 3), dtype=np.uint8))
    pixels = np.asarray(base.resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    detail = Image.fromarray(rng.integers(0, 256, (height // 40, width // 40), dtype=np.uint8))
    pixels = pixels + (np.asarray(detail.resize((width, height), Image.Resampling.BILINEAR),
                                  dtype=np.int16)[..., None] // 4 - 32)
    pixels += (np.arange(width, dtype=np.int16) * 64 // width - 32)[None, :, None]
    pixels += rng.integers(-10, 11, pixels.shape, dtype=np.int16)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def make_small_set(folder: Path, n: int, data: Path | None) -> str:
    """n small JPEGs: CIFAR-10 test images when present, else generated 64x64 ones."""
    note = folder.with_name(folder.name + ".source")  # outside the folder: never indexed
    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.iterdir())) == n and note.exists():
        return note.read_text()
    shutil.rmtree(folder)
    folder.mkdir(parents=True)
    if data is not None and data.is_dir():
        for i, src in enumerate(cifar_files(data, None)[:n]):
            shutil.copy(src, folder / f"{i:05d}-{src.parent.name}.jpg")
        source = f"CIFAR-10 test ({data})"
    else:
        for i in range(n):
            photo_like(64, 64, seed=10_000 + i).save(folder / f"{i:05d}.jpg", quality=90)
        source = "generated 64x64"
    note.write_text(source)
    return source


def make_large_set(folder: Path, n: int, size: tuple[int, int] = (4000, 3000)) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        path = folder / f"{i:03d}.jpg"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            photo_like(*size, seed=i).save(tmp, format="JPEG", quality=90)
            tmp.rename(path)
    for extra in sorted(folder.glob("*.jpg"))[n:]:
        extra.unlink()
    return f"generated {size[0]}x{size[1]} JPEG q90"


# -- decode-only ---------------------------------------------------------------------------
def decode_bench(files: list[Path], workers: int, large: bool) -> tuple[dict[str, Any], list]:
    """Decode-only throughputs; returns them and the decoded images (as the pipeline has them)."""
    from types import SimpleNamespace

    from PIL import Image

    from anyfind.extract.image import MAX_SIDE, extract_image, make_thumbnail
    from anyfind.store.thumbnails import SIZE

    try:  # what the tagger (timm: 256 px short side) and thumbnails need
        from anyfind.extract.image import DecodeSize
    except ImportError:  # anyfind before the decode size: ctx is ignored
        need = None
    else:
        need = SimpleNamespace(image_decode_size=DecodeSize(256, SIZE))

    def pil_draft(p: Path) -> None:
        with Image.open(p) as img:
            img.draft("RGB", (MAX_SIDE, MAX_SIDE))
            img.load()

    def extracted(p: Path) -> Any:
        return extract_image(p.read_bytes()).image

    out: dict[str, Any] = {"images": len(files),
                           "mean_file_kb": round(sum(p.stat().st_size for p in files) / len(files) / 1024, 1)}
    with Image.open(files[0]) as img:
        out["size"] = f"{img.width}x{img.height}"
    with clock() as t:
        for p in files:
            pil_draft(p)
    out["pil_draft_1t"] = round(len(files) / t["wall"], 1)
    if large:
        sample = files[: max(1, len(files) // 4)]
        with clock() as t:
            for p in sample:
                with Image.open(p) as img:
                    img.load()
        out["pil_full_decode_1t"] = round(len(sample) / t["wall"], 1)
    with clock() as t:
        images = [extracted(p) for p in files]
    out["extract_image_1t"] = round(len(files) / t["wall"], 1)
    with clock() as t:
        for p in files:
            drafted = extract_image(p.read_bytes(), None, need).image
    out["extract_image_to_need_1t"] = round(len(files) / t["wall"], 1)
    out["extract_image_to_need_cpu_ms"] = round(t["cpu"] / len(files) * 1000, 2)
    out["decoded_size_to_need"] = f"{drafted.width}x{drafted.height}"
    with clock() as t, ThreadPoolExecutor(workers) as pool:
        list(pool.map(extracted, files))
    out[f"extract_image_{workers}t"] = round(len(files) / t["wall"], 1)
    out[f"extract_image_{workers}t_cpu_per_wall"] = round(t["cpu"] / t["wall"], 2)
    with clock() as t:
        for img in images:
            make_thumbnail(img)
    out["thumbnail_1t"] = round(len(files) / t["wall"], 1)
    out["decoded_size"] = f"{images[0].width}x{images[0].height}"
    return out, images


# -- models --------------------------------------------------------------------------------
class Case:
    """One model under test: how to open an index with it, and its raw forward pass."""

    def __init__(self, name: str, open_kwargs: dict[str, Any], tagger: bool):
        self.name = name
        self.open_kwargs = open_kwargs
        self.uses_tagger = tagger

    def prepare(self, index: Any) -> None:
        """Load every model the index will use, outside all timings."""
        text = index.spaces["text"].encoder
        text.encode_documents(["warm up"])
        if self.uses_tagger:
            tagger = index.opened.tagger
            tagger._load()
            # the per-process cache of label-name text vectors (built on first sight of a label)
            with clock() as t:
                index.opened.tag_vectors.vector(
                    text, [{"label": lab, "prob": 1.0} for lab in tagger.labels])
            self.label_cache_s = round(t["wall"], 2)
            self.transform, self.forward = tagger._transform, tagger._model
            self.batch_size = tagger.batch_size
            # the same network in torch's default layout: the plain fp32 forward a user
            # would run (anyfind's runs channels_last on a CPU, issue 17)
            import copy

            import torch

            self.plain_forward = copy.deepcopy(tagger._model).to(
                memory_format=torch.contiguous_format)
        else:
            enc = index.spaces["vision"].encoder
            model = enc.model
            self.transform, self.forward = enc._preprocess, model.encode_image
            self.batch_size = enc.batch_size

    def patch_targets(self, index: Any) -> list[tuple[Any, str, str]]:
        from anyfind.core import OpenIndex
        from anyfind.encoders.tagger import ImageTagger
        from anyfind.indexer import batch_writer, pipeline
        from anyfind.store.thumbnails import Thumbnails

        targets = [
            (pipeline.Pipeline, "sync", "sync"),
            (pipeline.Pipeline, "_process", "process (prepare || embed+write)"),
            (pipeline, "content_hash", "main: hash files"),
            (pipeline.Pipeline, "_prepare", "workers: prepare items (decode, thumbnail)"),
            (Thumbnails, "write", "workers: thumbnails"),
            (pipeline.Pipeline, "_encode", "main: embed_chunks"),
            (batch_writer.BatchWriter, "write_batch", "main: store write"),
            (OpenIndex, "refresh_vectors", "main: vector files"),
        ]
        with contextlib.suppress(ImportError):  # the split preprocessing, where the code has it
            from anyfind.encoders.imageprep import ImagePrep

            targets += [(ImagePrep, "prepare", "model preprocess per image, PIL (workers)"),
                        (ImagePrep, "batch", "main: batched normalise")]
        if self.uses_tagger:
            tagger = index.opened.tagger
            targets += [(ImageTagger, "tag", "main: tagger.tag"),
                        (tagger, "_transform", "main: tagger preprocess"),
                        (tagger, "_model", "main: tagger forward")]
        else:
            enc = index.spaces["vision"].encoder
            targets += [(enc, "_preprocess", "main: clip preprocess"),
                        (enc.model, "encode_image", "main: clip forward")]
        return targets


def raw_forward(forward: Callable, batches: list[Any]) -> dict[str, float]:
    import torch

    with torch.no_grad():
        forward(batches[0])  # warm-up (allocator, oneDNN kernels)
        with clock() as t:
            for batch in batches:
                forward(batch)
    n = sum(len(b) for b in batches)
    return {"images": n, "wall_s": round(t["wall"], 3), "cpu_s": round(t["cpu"], 3),
            "images_per_s": round(n / t["wall"], 2)}


def run_case(case: Case, set_name: str, folder: Path, images: list, work: Path,
             limit: int | None) -> dict[str, Any]:
    """Raw forward, Index.add, raw forward again -- same model objects, same images."""
    import torch

    from anyfind import Index

    files = sorted(folder.glob("*.jpg"))
    if limit is not None and limit < len(files):
        folder = work / f"{set_name}-first{limit}"
        if not folder.exists():
            folder.mkdir()
            for p in files[:limit]:
                os.link(p, folder / p.name)
        images = images[:limit]
    n = len(images)
    index_dir = work / "indexes" / f"{case.name}-{set_name}"
    shutil.rmtree(index_dir, ignore_errors=True)
    index = Index.open(index_dir, **case.open_kwargs)
    try:
        with clock() as t_load:
            case.prepare(index)
        with clock() as t_pre:
            tensors = [case.transform(img) for img in images]
        bs = case.batch_size
        batches = [torch.stack(tensors[i:i + bs]) for i in range(0, n, bs)]
        del tensors
        load_before = loadavg()
        raw1 = raw_forward(case.forward, batches)
        stages = Stages()
        with stages.patched(case.patch_targets(index)), clock() as t_e2e:
            report = index.add([folder])
        raw2 = raw_forward(case.forward, batches)
        plain = getattr(case, "plain_forward", None)
        raw_plain = raw_forward(plain, batches) if plain is not None else None
        del batches
    finally:
        index.close()
    raw_wall = raw1["wall_s"] + raw2["wall_s"]
    raw_cpu = raw1["cpu_s"] + raw2["cpu_s"]
    raw_ips = 2 * n / raw_wall
    e2e_ips = n / t_e2e["wall"]
    fwd_s = stages.seconds["main: tagger forward" if case.uses_tagger else "main: clip forward"]
    process = stages.seconds["process (prepare || embed+write)"]
    busy = stages.seconds["main: embed_chunks"] + stages.seconds["main: store write"]
    result = {
        "model": case.name, "set": set_name, "images": n, "batch_size": bs,
        "added": report.added, "failed": report.failed,
        "model_load_s": round(t_load["wall"], 2),
        "label_cache_s": getattr(case, "label_cache_s", None),
        "preprocess_1t_images_per_s": round(n / t_pre["wall"], 1),
        "raw_before": raw1, "raw_after": raw2, "raw_images_per_s": round(raw_ips, 2),
        "e2e_s": round(t_e2e["wall"], 3), "e2e_cpu_s": round(t_e2e["cpu"], 3),
        "e2e_images_per_s": round(e2e_ips, 2),
        "ratio": round(e2e_ips / raw_ips, 3),
        "raw_plain_layout": raw_plain,
        "ratio_vs_plain_layout": (round(e2e_ips / raw_plain["images_per_s"], 3)
                                  if raw_plain else None),
        "ratio_cpu": round((raw_cpu / 2) / t_e2e["cpu"], 3),
        "e2e_cores_busy": round(t_e2e["cpu"] / t_e2e["wall"], 2),
        # the same forward pass timed inside Index.add: how much of the wall it fills, and
        # how fast it ran there (slower than raw = contention with the decode threads)
        "forward_share_of_e2e": round(fwd_s / t_e2e["wall"], 3),
        "in_pipeline_forward_images_per_s": round(n / fwd_s, 2) if fwd_s else None,
        "main_thread_waiting_s": round(max(0.0, process - busy), 3),
        "stages": stages.as_dict(),
        "loadavg_before": load_before, "loadavg_after": loadavg(),
    }
    print(f"  {case.name:<16} {set_name:<6} n={n:<5} raw {raw1['images_per_s']:>7} / "
          f"{raw2['images_per_s']:>7} img/s   e2e {result['e2e_images_per_s']:>7} img/s   "
          f"ratio {result['ratio']:.3f} (cpu {result['ratio_cpu']:.3f}, forward share "
          f"{result['forward_share_of_e2e']:.2f})"
          + (f"   vs plain-layout fp32 {raw_plain['images_per_s']} img/s: "
             f"{result['ratio_vs_plain_layout']:.3f}" if raw_plain else "")
          + f"   load {loadavg()}",
          flush=True)
    return result


def load_clip_fixtures() -> Any:
    spec = importlib.util.spec_from_file_location("clip_fixtures", REPO / "tests" / "support" / "clip_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def vit_b32_checkpoint(work: Path) -> Path:
    """A full-size ViT-B-32, randomly initialised (seeded), saved as a checkpoint: speed only."""
    path = work / "vit-b-32-random.pt"
    if not path.exists():
        import open_clip
        import torch

        torch.manual_seed(0)
        model = open_clip.create_model("ViT-B-32", pretrained=None)
        torch.save(model.state_dict(), path.with_suffix(".tmp"))
        path.with_suffix(".tmp").rename(path)
    return path


def throughput(args: argparse.Namespace, work: Path, data: Path | None) -> dict[str, Any]:
    workers = max(1, min(4, os.cpu_count() or 1))  # as Pipeline.__init__ chooses
    print(f"preparing image sets in {work} ...", flush=True)
    sets = {
        "small": (work / "small", make_small_set(work / "small", args.small, data)),
        "large": (work / "large", make_large_set(work / "large", args.large)),
    }
    decode: dict[str, Any] = {}
    decoded: dict[str, list] = {}
    for name, (folder, source) in sets.items():
        files = sorted(folder.glob("*.jpg"))
        stats, decoded[name] = decode_bench(files, workers, large=name == "large")
        decode[name] = {"source": source, **stats}
        print(f"  decode {name}: {json.dumps(stats)}", flush=True)

    fixtures = load_clip_fixtures()
    arch, tiny_ckpt = fixtures.make_tiny_clip_checkpoint(work / "tiny-clip")
    cases = [
        (Case("tagger-effnet-l0", {}, tagger=True), None),
        (Case("clip-tiny", {"tagger": False, "clip_config": str(work / "tiny-clip" / "configs" / f"{arch}.json"),
                            "clip_weights": str(tiny_ckpt)}, tagger=False), None),
    ]
    if args.vit_images:
        cases.append((Case("clip-vit-b-32", {"tagger": False, "clip_model": "ViT-B-32",
                                             "clip_weights": str(vit_b32_checkpoint(work))},
                           tagger=False), args.vit_images))
    runs = []
    for case, limit in cases:
        if args.models and case.name not in args.models.split(","):
            continue
        for name, (folder, _) in sets.items():
            if args.sets and name not in args.sets.split(","):
                continue
            runs.append(run_case(case, name, folder, decoded[name], work, limit))
    probes = None if args.no_what_if else what_if(
        {k: v[0] for k, v in sets.items()}, decoded, min(12, args.large))
    return {"decode": decode, "runs": runs, "workers": workers, "what_if": probes}


# -- what-if probes (alternatives the pipeline could use; nothing in anyfind is changed) -----
def per_image(fn: Callable, items: list) -> dict[str, float]:
    with clock() as t:
        for x in items:
            fn(x)
    return {"wall_ms": round(t["wall"] / len(items) * 1000, 2),
            "cpu_ms": round(t["cpu"] / len(items) * 1000, 2)}


def what_if(sets: dict[str, Path], decoded: dict[str, list], n_large: int) -> dict[str, Any]:
    import numpy as np
    import torch
    from PIL import Image

    from anyfind.encoders.tagger import ImageTagger
    from anyfind.extract.image import extract_image

    out: dict[str, Any] = {}
    files = sorted(sets["large"].glob("*.jpg"))[:n_large]

    def drafted(side: int, resize: bool) -> Callable:
        def fn(p: Path) -> Any:
            with Image.open(io.BytesIO(p.read_bytes())) as img:
                img.draft("RGB", (side, side))
                img.load()
                if resize:
                    img.thumbnail((side, side), Image.Resampling.LANCZOS)
                return img.convert("RGB")
        return fn

    out["decode_12mp_single_thread"] = {
        "extract_image (today: draft to 1/2, LANCZOS to 1024)": per_image(
            lambda p: extract_image(p.read_bytes()), files),
        "draft to 1/2 only (2000x1500, no resize)": per_image(drafted(1024, False), files),
        "draft to 1/4 + LANCZOS to 512 (MAX_SIDE=512)": per_image(drafted(512, True), files),
    }

    tagger = ImageTagger()
    tagger._load()
    transform, model = tagger._transform, tagger._model
    resize, crop = transform.transforms[0], transform.transforms[1]
    mean = torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1)

    def pil_only(img: Any) -> Any:  # what a worker could hand over: uint8 HWC, no torch op
        return np.asarray(crop(resize(img)))

    def batched_normalise(arrays: list) -> Any:
        batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div_(255)
        return batch.sub_(mean).div_(0.5)

    prep: dict[str, Any] = {}
    threads = torch.get_num_threads()
    for name in ("small", "large"):
        imgs = decoded[name][:200] if name == "small" else decoded[name][:n_large]
        row = {f"timm transform, torch threads={threads} (today)": per_image(transform, imgs)}
        torch.set_num_threads(1)
        row["timm transform, torch threads=1"] = per_image(transform, imgs)
        torch.set_num_threads(threads)
        row["PIL resize+crop to uint8 (worker side)"] = per_image(pil_only, imgs)
        arrays = [pil_only(im) for im in imgs]
        with clock() as t:
            for i in range(0, len(arrays), 32):
                batched_normalise(arrays[i:i + 32])
        row["batched uint8->float normalise (main side)"] = {
            "wall_ms": round(t["wall"] / len(arrays) * 1000, 2),
            "cpu_ms": round(t["cpu"] / len(arrays) * 1000, 2)}
        prep[f"{name} ({imgs[0].width}x{imgs[0].height})"] = row
    out["tagger_preprocess_per_image"] = prep

    by_batch = {}
    with torch.no_grad():
        for bs in (4, 8, 16, 32):
            x = torch.randn(bs, 3, 224, 224)
            model(x)
            times = []
            for _ in range(max(2, 64 // bs)):
                t0 = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - t0)
            by_batch[bs] = round(bs / statistics.median(times), 2)
    out["tagger_forward_images_per_s_by_batch"] = by_batch
    print(f"  what-if: {json.dumps(out)}", flush=True)
    return out


# -- retrieval -----------------------------------------------------------------------------
def retrieval(args: argparse.Namespace, work: Path, data: Path) -> dict[str, Any]:
    from sqlalchemy import select

    from anyfind import Index
    from anyfind.errors import QueryError
    from anyfind.store.schema import Item

    per_class = args.limit or None
    corpus = work / f"cifar-{per_class or 'all'}"
    files = cifar_files(data, per_class)
    if not corpus.exists():
        tmp = corpus.with_name(corpus.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        for p in files:
            (tmp / p.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(p, tmp / p.parent.name / p.name)
        tmp.rename(corpus)
    index_dir = work / "indexes" / f"cifar-{per_class or 'all'}"
    shutil.rmtree(index_dir, ignore_errors=True)
    print(f"indexing {len(files)} CIFAR-10 images ...", flush=True)
    index = Index.open(index_dir)
    try:
        with clock() as t_load:
            index.spaces["text"].encoder.encode_documents(["warm up"])
            index.opened.tagger._load()
        with clock() as t_add:
            report = index.add([corpus])
        modes: dict[str, dict[str, Any]] = {}
        # The ranking of each mode (the relevance floor off: P@10 of the order itself).
        runs = {"hybrid": ("hybrid", "relevance"), "hybrid-rrf": ("hybrid", "rrf"),
                "dense": ("dense", "relevance"), "lexical": ("lexical", "relevance")}
        for label, (mode, fusion) in runs.items():
            per: dict[str, float] = {}
            latency = []
            returned = 0
            try:
                for cls in CLASSES:
                    t0 = time.perf_counter()
                    hits = index.search(cls, k=10, mode=mode, fusion=fusion, floor=False)
                    latency.append(time.perf_counter() - t0)
                    per[cls] = sum(Path(h.path).parent.name == cls for h in hits) / 10
                    returned += len(hits)
            except QueryError as exc:
                modes[label] = {"unsupported": str(exc)}
                continue
            if not returned:
                modes[label] = {"unsupported": "no results for any query (no signal in this mode)"}
                continue
            modes[label] = {"p_at_10": per, "mean": round(statistics.mean(per.values()), 3),
                           "median_query_ms": round(statistics.median(latency) * 1000, 1)}
        with index.store.engine.connect() as conn:
            rows = conn.execute(select(Item.path, Item.meta)).all()
    finally:
        index.close()
    top1: dict[str, Counter[str]] = {c: Counter() for c in CLASSES}
    for path, meta in rows:
        tags = (meta or {}).get("tags") or []
        top1[Path(path).parent.name][tags[0]["label"] if tags else "(no tag >= 0.05)"] += 1
    return {
        "images": len(files), "per_class": per_class or 1000, "added": report.added,
        "failed": report.failed, "model_load_s": round(t_load["wall"], 2),
        "index_s": round(t_add["wall"], 2), "index_cpu_s": round(t_add["cpu"], 2),
        "images_per_s": round(len(files) / t_add["wall"], 2), "modes": modes,
        "top1_tags": {c: top1[c].most_common(4) for c in CLASSES},
    }


# -- output --------------------------------------------------------------------------------
def print_tables(result: dict[str, Any]) -> None:
    tp = result.get("throughput")
    if tp:
        print("\n| model | set | images | raw forward img/s (before / after) | end to end img/s "
              "| ratio | ratio by CPU time | forward in pipeline img/s | forward share of e2e "
              "| load avg |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in tp["runs"]:
            print(f"| {r['model']} | {r['set']} | {r['images']} | {r['raw_images_per_s']} "
                  f"({r['raw_before']['images_per_s']} / {r['raw_after']['images_per_s']}) | "
                  f"{r['e2e_images_per_s']} | **{r['ratio']:.2f}** | {r['ratio_cpu']:.2f} | "
                  f"{r['in_pipeline_forward_images_per_s']} | {r['forward_share_of_e2e']:.2f} | "
                  f"{r['loadavg_before']} |")
        w = tp["workers"]
        print(f"\n| set | images | file KB | PIL draft decode 1 thread | extract_image 1 thread | "
              f"extract_image {w} threads | extract_image to the models' need, 1 thread "
              f"(CPU ms/image) | full decode (no draft) | thumbnail |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, d in tp["decode"].items():
            print(f"| {name} ({d['size']} -> {d['decoded_size']}) | {d['images']} | "
                  f"{d['mean_file_kb']} | {d['pil_draft_1t']} | {d['extract_image_1t']} | "
                  f"{d[f'extract_image_{w}t']} | {d.get('extract_image_to_need_1t', '-')} -> "
                  f"{d.get('decoded_size_to_need', '-')} "
                  f"({d.get('extract_image_to_need_cpu_ms', '-')}) | "
                  f"{d.get('pil_full_decode_1t', '-')} | {d['thumbnail_1t']} |")
        print("\nstage seconds (main thread unless 'workers'; worker stages are thread-seconds)")
        keys = sorted({k for r in tp["runs"] for k in r["stages"]})
        print("| stage | " + " | ".join(f"{r['model']} {r['set']}" for r in tp["runs"]) + " |")
        print("|---|" + "---:|" * len(tp["runs"]))
        print("| index.add wall | " + " | ".join(str(r["e2e_s"]) for r in tp["runs"]) + " |")
        for k in keys:
            print(f"| {k} | " + " | ".join(str(r["stages"].get(k, {}).get("s", "-"))
                                           for r in tp["runs"]) + " |")
        print("| main thread waiting for items | " + " | ".join(
            str(r["main_thread_waiting_s"]) for r in tp["runs"]) + " |")
        print("| raw forward (one pass) | " + " | ".join(
            str(round((r["raw_before"]["wall_s"] + r["raw_after"]["wall_s"]) / 2, 3))
            for r in tp["runs"]) + " |")
        wi = tp.get("what_if")
        if wi:
            print("\nwhat-if, per image, one thread: | variant | wall ms | CPU ms |")
            for group in ("decode_12mp_single_thread", "tagger_preprocess_per_image"):
                rows = wi[group].items() if group.startswith("decode") else [
                    (f"{s} {v}", m) for s, vs in wi[group].items() for v, m in vs.items()]
                for variant, m in rows:
                    print(f"| {variant} | {m['wall_ms']} | {m['cpu_ms']} |")
            print("tagger forward img/s by batch size: " + ", ".join(
                f"{bs}: {v}" for bs, v in wi["tagger_forward_images_per_s_by_batch"].items()))
    rt = result.get("retrieval")
    if rt:
        modes = [m for m, v in rt["modes"].items() if "p_at_10" in v]
        print(f"\nCIFAR-10 zero-shot, offline tagger, {rt['images']} images, indexed in "
              f"{rt['index_s']} s ({rt['images_per_s']} img/s)")
        print("| class | " + " | ".join(f"P@10 {m}" for m in modes) + " | most frequent top-1 tags |")
        print("|---|" + "---:|" * len(modes) + "---|")
        for c in CLASSES:
            tags = ", ".join(f"{t} ({n})" for t, n in rt["top1_tags"][c][:3])
            print(f"| {c} | " + " | ".join(f"{rt['modes'][m]['p_at_10'][c]:.1f}" for m in modes)
                  + f" | {tags} |")
        print("| **mean** | " + " | ".join(f"**{rt['modes'][m]['mean']:.2f}**" for m in modes)
              + " | |")
        for m, v in rt["modes"].items():
            if "unsupported" in v:
                print(f"(mode {m}: {v['unsupported']})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO / ".." / "shared" / "data" / "cifar10-test",
                    help="CIFAR-10 test folder (class sub-folders of JPEGs)")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    ap.add_argument("--work", type=Path, default=None,
                    help="keep generated images, checkpoints and indexes here (reused next run)")
    ap.add_argument("--quick", action="store_true", help="a short run with small sets")
    ap.add_argument("--small", type=int, default=None, help="small images (default 1000)")
    ap.add_argument("--large", type=int, default=None, help="12 MP JPEGs (default 40)")
    ap.add_argument("--vit-images", type=int, default=None,
                    help="images per set for the random ViT-B-32 (0 skips it; default 128)")
    ap.add_argument("--limit", type=int, default=None,
                    help="CIFAR images per class for retrieval (0 = all 1000; default 300)")
    ap.add_argument("--only", choices=("throughput", "retrieval"), default=None)
    ap.add_argument("--models", default=None,
                    help="comma-separated cases to run (tagger-effnet-l0, clip-tiny, clip-vit-b-32)")
    ap.add_argument("--sets", default=None, help="comma-separated image sets (small, large)")
    ap.add_argument("--no-what-if", action="store_true",
                    help="skip the what-if probes (alternative preprocessing timings)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads for every model (default: torch's choice)")
    args = ap.parse_args()
    quick = {"small": 128, "large": 6, "vit_images": 32, "limit": 20}
    full = {"small": 1000, "large": 40, "vit_images": 128, "limit": 300}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    data = args.data.resolve()
    have_data = data.is_dir() and any((data / c).is_dir() for c in CLASSES)
    if not have_data:
        print(f"CIFAR-10 test images not found at {data}: the retrieval benchmark is skipped "
              "(the throughput part generates its small images)", file=sys.stderr)
    work = args.work.resolve() if args.work else Path(tempfile.mkdtemp(prefix="anyfind-bench-img-"))
    work.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"machine": machine(), "args": {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    started, started_cpu = time.perf_counter(), time.process_time()
    try:
        if args.only in (None, "throughput"):
            result["throughput"] = throughput(args, work, data if have_data else None)
        if args.only in (None, "retrieval") and have_data:
            result["retrieval"] = retrieval(args, work, data)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    result["total_s"] = round(time.perf_counter() - started, 1)
    result["total_cpu_s"] = round(time.process_time() - started_cpu, 1)
    print_tables(result)
    print(f"\ntotal {result['total_s']} s wall, {result['total_cpu_s']} s CPU (all threads)")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
