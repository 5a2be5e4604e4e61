"""Relevance of every mode, fusion, the relevance floor and pseudo-relevance feedback on
BEIR-format text collections (docs/SEARCH_QUALITY.md).

    python benchmarks/bench_relevance.py [--data DIR ...] [--work DIR] [--out results.json]

Default collections: CISI (/work/shared/data/cisi-beir, when present), Cranfield 1400
and CACM (benchmarks/data/cranfield-beir, cacm-beir, in the repository). Each is indexed once into --work
(kept: a second run only searches). Every judged query runs at depth 100 in each
configuration; nothing is tuned on the labels. Then the floor, on and off, on the sets
under /work/shared/data when present: the OCR'd receipts, the figures (by caption), a
notes vault (by section heading: one course's notes), the CIFAR-10 photo folders.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from bench_common import ROOT  # noqa: E402, F401 (first: offline settings, the repository on the path)

from anyfind import Index  # noqa: E402
from anyfind.evaluate import index_dataset, load_beir, run_mode  # noqa: E402

DEFAULTS = [Path("/work/shared/data/cisi-beir"),
            Path(__file__).parent / "data" / "cranfield-beir",
            Path(__file__).parent / "data" / "cacm-beir"]  # the third: not used to choose
# (label, mode, search options)
RUNS = [
    ("dense", "dense", {"floor": False}),
    ("dense, floor", "dense", {}),
    ("lexical", "lexical", {}),
    ("hybrid auto (default), no floor", "hybrid", {"floor": False}),
    ("hybrid auto (default)", "hybrid", {}),
    ("hybrid relevance", "hybrid", {"fusion": "relevance", "floor": False}),
    ("hybrid rrf", "hybrid", {"fusion": "rrf", "floor": False}),
    ("hybrid score", "hybrid", {"fusion": "score", "floor": False}),
    ("dense + prf", "dense", {"prf": True, "floor": False}),
    ("lexical + prf", "lexical", {"prf": True}),
    ("hybrid + prf", "hybrid", {"prf": True, "floor": False}),
]


def floor_effect(search, queries: dict[str, str], relevant: dict[str, set[str]]) -> dict:
    """What the floor does at depth 10: Recall@10 with it and without, and per query how
    many of the results it hid (those shown without it, not with it) were relevant and
    how many not. `search(text, floor)` -> the ids shown, best first."""
    r_on = r_off = 0.0
    hid_rel = hid_irr = 0
    judged = [q for q in queries if relevant.get(q)]
    for qid in judged:
        want = relevant[qid]
        off, on = search(queries[qid], False), search(queries[qid], True)
        r_off += len(want & set(off)) / min(len(want), 10)
        r_on += len(want & set(on)) / min(len(want), 10)
        hidden = set(off) - set(on)
        hid_rel += len(hidden & want)
        hid_irr += len(hidden - want)
    n = max(1, len(judged))
    return {"queries": len(judged), "recall@10_floor_off": round(r_off / n, 4),
            "recall@10_floor_on": round(r_on / n, 4),
            "hidden_relevant_per_query": round(hid_rel / n, 3),
            "hidden_irrelevant_per_query": round(hid_irr / n, 3)}


CIFAR = Path("/work/shared/data/cifar10-test")
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"]
# Subjects no CIFAR-10 photo shows: every result of such a query is unrelated, and what
# the floor shows of them is the price of what it keeps (ten shown without it).
ABSENT = ["volcano", "piano", "bicycle", "birthday cake", "laptop", "pizza", "guitar",
          "suspension bridge", "tax form", "wedding dress"]


def photos(work: Path, classes: list[str], per_class: int) -> dict:
    """A photo folder of CIFAR-10 test images (the default index: offline tags), queried by
    class word and by "a photo of a <class>"."""
    import shutil

    name = f"cifar-{len(classes)}x{per_class}"
    folder, index_dir = work / name, work / f"{name}-index"
    if not index_dir.exists():
        folder.mkdir(parents=True, exist_ok=True)
        for cls in classes:
            for p in sorted((CIFAR / cls).glob("*.jpg"))[:per_class]:
                shutil.copy(p, folder / f"{cls}_{p.name}")
    index = Index.open(index_dir)
    index.add([folder])
    try:
        def search(text: str, floor: bool) -> list[str]:
            return [Path(r.path).name for r in index.search(text, k=10, floor=floor)]

        everything = [p.name for p in folder.iterdir()]
        out = {"photos": len(everything)}
        for label, template in (("class word", "{}"), ("a photo of a", "a photo of a {}")):
            queries = {c: template.format(c) for c in classes}
            relevant = {c: {n for n in everything if n.startswith(c + "_")} for c in classes}
            out[label] = floor_effect(search, queries, relevant)
            out[label]["absent_subject_shown_per_query"] = round(sum(
                len(search(template.format(a), True)) for a in ABSENT) / len(ABSENT), 2)
            print(f"  {name:16} {label:14} {json.dumps(out[label])}", flush=True)
        return out
    finally:
        index.close()


RECEIPTS = Path("/work/shared/data/ocr-receipts")
# Nothing a shop receipt is about: every result of these is unrelated.
NOT_RECEIPTS = ["volcano eruption", "piano lesson", "wedding dress", "suspension bridge",
                "birthday party photos", "guitar chords", "quantum physics lecture",
                "holiday at the beach", "train timetable", "knitting pattern"]


def receipts(work: Path) -> dict:
    """A one-subject collection read from pixels: scanned shop receipts (SROIE), the
    default index (OCR on), queried "<shop> receipt <date>" (queries.tsv). Every item is
    a receipt, so "unrelated" is a narrow band: the floor must still keep the one asked
    for, and hide what a query about something else reaches."""
    import shutil

    folder, index_dir = work / "receipts", work / "receipts-index"
    if not index_dir.exists():
        folder.mkdir(parents=True, exist_ok=True)
        for p in sorted((RECEIPTS / "img").glob("*.jpg")):
            shutil.copy(p, folder / p.name)
    queries, relevant = {}, {}
    for n, line in enumerate((RECEIPTS / "queries.tsv").read_text("utf-8").splitlines()):
        text, path = line.split("\t")
        queries[str(n)], relevant[str(n)] = text, {Path(path).name}
    return floor_on_folder("receipts", folder, index_dir, queries, relevant,
                           receipts=len(list(folder.iterdir())))


def one(data_dir: Path, work: Path) -> dict:
    data = load_beir(data_dir)
    index = Index.open(work / f"{data.name}-index")
    started = time.perf_counter()
    ids = index_dataset(index, data)
    index_s = time.perf_counter() - started
    calib = index.opened.calibration
    rows = []
    try:
        for label, mode, options in RUNS:
            r = run_mode(index, data, ids, mode, **options)
            rows.append({"run": label, "ndcg@10": round(r.ndcg_at_10, 4),
                         "recall@100": round(r.recall_at_100, 4), "mrr@10": round(r.mrr_at_10, 4),
                         "p50_ms": round(r.p50_ms, 1)})
            print(f"  {data.name:16} {label:40} nDCG@10 {r.ndcg_at_10:.3f}  "
                  f"R@100 {r.recall_at_100:.3f}  MRR@10 {r.mrr_at_10:.3f}", flush=True)
        def search(text: str, floor: bool) -> list[str]:
            return [ids[r.item_id] for r in index.search(text, k=10, floor=floor, syntax=False)
                    if r.item_id in ids]

        relevant = {q: {d for d, g in data.qrels.get(q, {}).items() if g > 0}
                    for q in data.queries}
        floor = {**floor_effect(search, data.queries, relevant), **unrelated_shown(search)}
        print(f"  {data.name:16} floor at depth 10: {json.dumps(floor)}", flush=True)
    finally:
        index.close()
    return {"dataset": data.name, "documents": len(data.corpus), "queries": len(data.queries),
            "index_s": round(index_s, 1), "floor": floor,
            "calibration": {m: s.to_dict() for m, s in (calib.spaces.get("text") or {}).items()}
            if calib else None,
            "runs": rows}


def unrelated_shown(search) -> dict:
    """Results shown per query, with and without the floor, for queries about nothing in
    the collection (every result unrelated: what the floor exists to hide)."""
    return {"unrelated_query_shown_per_query": round(sum(
                len(search(q, True)) for q in NOT_RECEIPTS) / len(NOT_RECEIPTS), 2),
            "unrelated_query_shown_without_floor": round(sum(
                len(search(q, False)) for q in NOT_RECEIPTS) / len(NOT_RECEIPTS), 2)}


def floor_on_folder(label: str, folder: Path, index_dir: Path, queries: dict[str, str],
                    relevant: dict[str, set[str]], **about) -> dict:
    """Index a folder (timed), then the floor's effect on its queries (results named by
    their path under the folder) and on queries about nothing in it."""
    index = Index.open(index_dir)
    started = time.perf_counter()
    index.add([folder])
    index_s = time.perf_counter() - started
    try:
        def search(text: str, floor: bool) -> list[str]:
            return [Path(r.path).relative_to(folder).as_posix()
                    for r in index.search(text, k=10, floor=floor, syntax=False)]

        out = {**about, "index_s": round(index_s, 1),
               **floor_effect(search, queries, relevant), **unrelated_shown(search)}
        print(f"  {label:16} {json.dumps(out)}", flush=True)
        return out
    finally:
        index.close()


FIGURES = Path("/work/shared/data/figures")


def figures(work: Path) -> dict:
    """Figures and screenshots with printed text (OCR on), each queried by its caption
    (captions.tsv: what it shows, with its main visible words): the floor on pictures
    found by the text in their pixels and by their tags."""
    import shutil

    folder, index_dir = work / "figures", work / "figures-index"
    lines = [line.split("\t") for line in
             (FIGURES / "captions.tsv").read_text("utf-8").splitlines() if "\t" in line]
    if not index_dir.exists():
        for rel, _ in lines:
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(FIGURES / rel, folder / rel)
    queries = {str(n): caption for n, (_, caption) in enumerate(lines)}
    relevant = {str(n): {rel} for n, (rel, _) in enumerate(lines)}
    return floor_on_folder("figures", folder, index_dir, queries, relevant,
                           figures=len(lines))


VAULT = Path("/work/shared/data/notes-vault")


def section_queries(root: Path) -> tuple[dict[str, str], dict[str, set[str]]]:
    """Known-item queries from a notes folder, no labels needed: each section heading
    (## / ###, outside code fences, two words or more) that only one note has, asking
    for that note."""
    import re

    found: dict[str, set[str]] = {}
    for note in sorted(root.rglob("*.md")):
        fenced = False
        for line in note.read_text("utf-8", errors="replace").splitlines():
            if line.lstrip().startswith(("```", "~~~")):
                fenced = not fenced
            elif not fenced and (m := re.match(r"#{2,3}\s+(.+?)\s*#*$", line)):
                heading = re.sub(r"[`*_\[\]]", "", m.group(1)).strip()
                if len(heading.split()) >= 2:
                    found.setdefault(heading.lower(), set()).add(
                        note.relative_to(root).as_posix())
    unique = sorted((h, notes) for h, notes in found.items() if len(notes) == 1)
    return ({str(n): h for n, (h, _) in enumerate(unique)},
            {str(n): notes for n, (_, notes) in enumerate(unique)})


def vault(work: Path) -> dict:
    """One course's notes: a real notes vault on one subject (a plugin's documentation,
    Markdown notes and their screenshots, OCR on), queried by its section headings for
    the note that holds them, and by queries about nothing it says."""
    import shutil

    folder, index_dir = work / "vault", work / "vault-index"
    if not folder.exists():
        shutil.copytree(VAULT, folder)
    queries, relevant = section_queries(folder)
    return floor_on_folder("vault", folder, index_dir, queries, relevant,
                           notes=len(list(folder.rglob("*.md"))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, action="append", default=None)
    ap.add_argument("--work", type=Path, default=None, help="indexes are kept here")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--no-photos", action="store_true", help="skip the CIFAR-10 photo sets")
    ap.add_argument("--only-receipts", action="store_true",
                    help="only the OCR'd receipts (a one-subject collection)")
    ap.add_argument("--only-pictures-and-notes", action="store_true",
                    help="only the figures (by caption) and the notes vault (by heading)")
    ap.add_argument("--only-cifar-10k", action="store_true",
                    help="only the whole CIFAR-10 test set (10,000 photos, ~6 min to index)")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="anyfind-bench-relevance-"))
    datasets = [d for d in (args.data or DEFAULTS) if (d / "corpus.jsonl").exists()]
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    only = {"only_receipts": lambda: {"receipts": receipts(work)},
            "only_pictures_and_notes": lambda: {"figures": figures(work), "vault": vault(work)},
            "only_cifar_10k": lambda: {"photos": [photos(work, CLASSES, 1000)]}}
    for flag, run in only.items():
        if getattr(args, flag):
            result = {"machine": machine, **run()}
            if args.out:
                args.out.write_text(json.dumps(result, indent=2))
            return
    result = {"machine": machine, "collections": [one(d, work) for d in datasets]}
    if RECEIPTS.is_dir():
        result["receipts"] = receipts(work)
    if FIGURES.is_dir():
        result["figures"] = figures(work)
    if VAULT.is_dir():
        result["vault"] = vault(work)
    if CIFAR.is_dir() and not args.no_photos:
        result["photos"] = [photos(work, ["cat", "dog", "ship", "truck"], 20),
                            photos(work, CLASSES, 40),
                            photos(work, ["cat"], 60)]  # one subject
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
