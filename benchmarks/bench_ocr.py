"""OCR: accuracy and speed of each engine, and what reading pixels does for retrieval.

    python benchmarks/bench_ocr.py [--receipts DIR] [--figures DIR] [--engines rapidocr,tesseract]
                                   [--work DIR] [--out results.json] [--skip-retrieval]

1. Accuracy on scanned receipts (SROIE, ../shared/data/ocr-receipts: line ground truth
   joined per image): word recall, precision and F1 (bags of lower-cased words, so line
   order does not count) and the character error rate (Levenshtein over the whole text,
   whitespace collapsed, lower-cased; line order counts here).
2. Speed on this machine, one image at a time as the pipeline reads them: receipts/s,
   1920x1080 slides/s (rendered here: a title on a coloured band and bullets),
   text-free 1920x1080 photos/s through the gate, scanned PDF pages/s through extract().
3. Retrieval through a real index (OCR on, and off for the reference): receipts by
   "<shop> receipt <date>" (queries.tsv), R@1; figures by their caption (captions.tsv, a
   short description naming the visible words), R@10.
4. `--effect`: what OCR does to a photo set without text (CIFAR-10 test images, 10 of
   each class, ../shared/data/cifar10-test): Recall@10 of class-word queries with OCR off
   and on, and how many photos had lines read (the gate's false positives). CISI and the
   speech sets hold no images: OCR cannot change them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench_common import ROOT, SHARED  # noqa: E402 (first: offline settings, the repository on the path)

sys.path.insert(0, str(ROOT / "tests" / "support"))

from PIL import Image  # noqa: E402

from anyfind import Index  # noqa: E402
from anyfind.ocr import ocr_engine  # noqa: E402


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def accuracy(engine_name: str, receipts: Path, limit: int | None) -> dict:
    engine = ocr_engine(engine_name)
    truth = dict(line.rstrip("\n").split("\t", 1)
                 for line in (receipts / "ground_truth.tsv").open(encoding="utf-8"))
    items = sorted(truth.items())[:limit]
    recall = precision = cer = 0.0
    started = time.perf_counter()
    for path, reference in items:
        with Image.open(receipts / path) as img:
            lines = engine.read(img.convert("RGB"))
        text = " ".join(line.text for line in lines)
        got, want = Counter(words(text)), Counter(words(reference))
        hit = sum((got & want).values())
        recall += hit / max(1, sum(want.values()))
        precision += hit / max(1, sum(got.values()))
        a, b = " ".join(text.lower().split()), " ".join(reference.lower().split())
        cer += levenshtein(a, b) / max(1, len(b))
    n = len(items)
    r, p = recall / n, precision / n
    return {"receipts": n, "word_recall": round(r, 4), "word_precision": round(p, 4),
            "word_f1": round(2 * r * p / max(r + p, 1e-9), 4), "cer": round(cer / n, 4),
            "seconds_per_receipt": round((time.perf_counter() - started) / n, 3)}


def speed(engine_name: str, receipts: Path, work: Path) -> dict:
    from ocr_fixtures import photo_without_text, scanned_page_pdf, slide

    from anyfind.connectors.base import Blob
    from anyfind.extract import extract

    engine = ocr_engine(engine_name)
    slides = [slide(work / f"slide{i}.png", f"Lecture {i}: gradient descent step {i}",
                    [f"learning rate schedule number {i}", "momentum keeps the velocity",
                     "the loss falls as the weights move", f"see chapter {i + 3}"],
                    size=(1920, 1080), busy=i % 2 == 1, seed=i) for i in range(6)]
    photos = [photo_without_text(work / f"photo{i}.jpg", size=(1920, 1080), seed=i)
              for i in range(20)]
    scans = [scanned_page_pdf(work / f"scan{i}.pdf", [f"Scanned page {i} of the report",
                                                      "The committee met on Tuesday",
                                                      "Budget approved: 12,400 euros"], seed=i)
             for i in range(4)]
    engine.read(Image.open(slides[0]).convert("RGB"))  # models loaded before timing

    def per_second(fn, paths) -> float:
        started = time.perf_counter()
        for p in paths:
            fn(p)
        return round(len(paths) / (time.perf_counter() - started), 3)

    def read_image(p: Path) -> None:
        with Image.open(p) as img:
            img = img.convert("RGB")
            if engine.has_text(img):
                engine.read(img)

    class Ctx:  # what an index hands extraction
        ocr = engine
        max_image_pixels = 100_000_000

    receipt_paths = sorted((receipts / "img").glob("*.jpg"))[:12]
    return {
        "slides_1920x1080_per_s": per_second(read_image, slides),
        "receipts_per_s": per_second(read_image, receipt_paths),
        "text_free_photos_1920x1080_per_s": per_second(read_image, photos),
        "gate_passed_photos": sum(engine.has_text(Image.open(p).convert("RGB")) for p in photos),
        "scanned_pdf_pages_per_s": per_second(
            lambda p: extract(Blob.from_bytes(p.read_bytes(), path=p.name), "application/pdf",
                              Ctx()), scans),
    }


def pipeline(work: Path) -> dict:
    """End to end through `Index.add` (decode, gate, read, tagger, encode, write), the
    default index, OCR on and off: 40 text-free 1920x1080 photos, 12 1920x1080 slides."""
    from ocr_fixtures import photo_without_text, slide

    photos, slides = work / "e2e-photos", work / "e2e-slides"
    photos.mkdir(exist_ok=True)
    slides.mkdir(exist_ok=True)
    for i in range(40):
        photo_without_text(photos / f"p{i}.jpg", size=(1920, 1080), seed=100 + i)
    for i in range(12):
        slide(slides / f"s{i}.png", f"Week {i}: convex optimisation", [
            f"step size rule number {i}", "strong duality holds here", "check the KKT conditions",
            f"exercise {i + 1} is due on Friday"], size=(1920, 1080), busy=i % 2 == 0, seed=i)
    out = {}
    warm = work / "e2e-warm"
    warm.mkdir(exist_ok=True)
    photo_without_text(warm / "w.jpg", size=(640, 480))
    slide(warm / "w.png", "Warm up", ["the models load here"])
    for ocr in ("off", "auto"):
        with Index.open(work / f"e2e-warm-{ocr}", ocr=ocr, transcriber=None) as index:
            index.add([warm])  # models loaded (and the ONNX sessions built) before timing
        for name, folder, n in (("text_free_photos", photos, 40), ("slides", slides, 12)):
            index = Index.open(work / f"e2e-{name}-{ocr}", ocr=ocr, transcriber=None)
            started = time.perf_counter()
            index.add([folder])
            out[f"{name}_per_s_ocr_{ocr}"] = round(n / (time.perf_counter() - started), 2)
            index.close()
    return out


def retrieval(receipts: Path, figures: Path, work: Path, ocr: str) -> dict:
    out: dict = {}
    if receipts.is_dir():
        index = Index.open(work / f"receipts-{ocr}", ocr=ocr, transcriber=None)
        index.add([receipts / "img"])
        rows = [line.rstrip("\n").split("\t") for line in
                (receipts / "queries.tsv").open(encoding="utf-8") if "\t" in line]
        hits = 0
        for query, path in rows:
            found = index.search(query, k=1, floor=False)
            hits += bool(found) and Path(found[0].path).name == Path(path).name
        out["receipts_r@1"] = round(hits / len(rows), 4)
        out["receipt_queries"] = len(rows)
        index.close()
    if figures.is_dir():
        index = Index.open(work / f"figures-{ocr}", ocr=ocr, transcriber=None)
        index.add([figures])
        rows = [line.rstrip("\n").split("\t") for line in
                (figures / "captions.tsv").open(encoding="utf-8") if "\t" in line]
        hits = 0
        for path, caption in rows:
            found = index.search(caption, k=10, floor=False)
            hits += any(r.path.endswith(path) for r in found)
        out["figures_r@10"] = round(hits / len(rows), 4)
        out["figure_queries"] = len(rows)
        index.close()
    return out


def effect(cifar: Path, work: Path, per_class: int = 10) -> dict:
    import shutil

    classes = sorted(p.name for p in cifar.iterdir() if p.is_dir())
    folder = work / "cifar-effect"
    folder.mkdir(parents=True, exist_ok=True)
    for cls in classes:
        for p in sorted((cifar / cls).glob("*.jpg"))[:per_class]:
            shutil.copy(p, folder / f"{cls}_{p.name}")
    out: dict = {"photos": per_class * len(classes)}
    for ocr in ("off", "auto"):
        with Index.open(work / f"cifar-effect-{ocr}", ocr=ocr, transcriber=None) as index:
            started = time.perf_counter()
            index.add([folder])
            seconds = time.perf_counter() - started
            recall = 0.0
            for cls in classes:
                found = [Path(r.path).name for r in index.search(cls, k=10)]
                recall += sum(n.startswith(cls + "_") for n in found) / min(10, per_class)
            read = sum(1 for i in index.item_ids_at([str(p) for p in folder.iterdir()])
                       if (index.item(i)["meta"].get("ocr") or {}).get("lines"))
            out[f"ocr_{ocr}"] = {"recall@10": round(recall / len(classes), 4),
                                 "photos_with_lines_read": read,
                                 "photos_per_s": round(out["photos"] / seconds, 1)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--receipts", type=Path, default=SHARED / "ocr-receipts")
    ap.add_argument("--figures", type=Path, default=SHARED / "figures")
    ap.add_argument("--engines", default="rapidocr,tesseract")
    ap.add_argument("--limit", type=int, default=None, help="receipts for accuracy")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--skip-retrieval", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--pipeline-only", action="store_true",
                    help="only the end-to-end speeds (Index.add, OCR off and on)")
    ap.add_argument("--effect", action="store_true", help="OCR off/on on CIFAR-10 photos")
    ap.add_argument("--cifar", type=Path, default=SHARED / "cifar10-test")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-ocr-"))
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {"machine": {"cpu": platform.processor() or platform.machine(),
                                "cores": os.cpu_count(), "python": platform.python_version()},
                    "engines": {}}
    if args.pipeline_only or args.effect:
        if args.pipeline_only:
            result["pipeline"] = pipeline(work)
        if args.effect:
            result["effect_cifar"] = effect(args.cifar, work)
        print(json.dumps(result, indent=1))
        if args.out:
            args.out.write_text(json.dumps(result, indent=1))
        return
    for name in args.engines.split(","):
        print(f"== {name}", flush=True)
        entry = {}
        if not args.skip_accuracy:
            entry["accuracy"] = accuracy(name, args.receipts, args.limit)
            print(json.dumps(entry["accuracy"]), flush=True)
        if not args.skip_speed:
            entry["speed"] = speed(name, args.receipts, work)
            print(json.dumps(entry["speed"]), flush=True)
        result["engines"][name] = entry
    if not args.skip_speed:
        result["pipeline"] = pipeline(work)
        print(json.dumps(result["pipeline"]), flush=True)
    if not args.skip_retrieval:
        for ocr in ("off", "auto"):
            result[f"retrieval_ocr_{ocr}"] = retrieval(args.receipts, args.figures, work, ocr)
            print(ocr, json.dumps(result[f"retrieval_ocr_{ocr}"]), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
