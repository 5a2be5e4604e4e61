"""The embed as evidence: does a note's passage around an embedded photo help find the
photo when the note speaks of it, and cost nothing when it does not?

    python benchmarks/bench_embed_context.py [--per-class 20] [--work DIR] [--out FILE]

200 CIFAR-10 test photos (10 classes x 20, ../shared/data/cifar10-test) in three
folders, each indexed with the defaults (offline tagger, MiniLM, RapidOCR):
- photos: the photos alone (no note: the context has nothing to lend);
- related: plus one short note per two photos of a class that says, in a diary's
  words, what they show ("the kitten slept on the windowsill"; one of three nouns per
  class, the class word itself in one of three);
- unrelated: plus one note per two photos whose text is a CISI abstract (library
  science) that says nothing of them.
Queries: each class word and "a photo of a <class>". Measured on the photos among the
results (a note is never counted, nor does it push a photo out: the first ten photos
of a deep result list), with `embed_context` on and off: P@10 and Recall@10 per query,
and the photos hidden by the floor.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

from bench_common import SHARED, finish, machine  # first: offline settings

from anyfind import Index  # noqa: E402

NOUNS = {  # what a diary would call them: the class word is one of three
    "airplane": ["airplane", "jet", "plane"], "automobile": ["automobile", "car", "sedan"],
    "bird": ["bird", "sparrow", "robin"], "cat": ["cat", "kitten", "tabby"],
    "deer": ["deer", "fawn", "stag"], "dog": ["dog", "puppy", "terrier"],
    "frog": ["frog", "toad", "tadpole"], "horse": ["horse", "pony", "mare"],
    "ship": ["ship", "freighter", "steamer"], "truck": ["truck", "lorry", "pickup"]}
DIARY = ["Saturday: a {} near the old mill, two shots before the light went.",
         "The {} stayed still long enough for these.",
         "Found a {} by the river this morning.",
         "Second roll of the week, mostly the {} at the farm."]


def folders(work: Path, per_class: int, seed: int = 7
            ) -> tuple[dict[str, Path], dict[str, str]]:
    """The three folders, and each photo's class by file name (names say nothing of the
    class: a note's `![[name]]` must not give it away)."""
    rng = random.Random(seed)
    classes = sorted(NOUNS)
    shots = {c: sorted((SHARED / "cifar10-test" / c).glob("*.jpg"))[:per_class] for c in classes}
    abstracts = [json.loads(line)["text"] for line in
                 (SHARED / "cisi-beir" / "corpus.jsonl").read_text().splitlines()]
    out, truth = {}, {}
    numbers = rng.sample(range(10_000, 100_000), len(classes) * per_class)
    named = {(c, p.stem): f"IMG_{numbers.pop()}.jpg" for c in classes for p in shots[c]}
    truth = {name: c for (c, _), name in named.items()}
    for kind in ("photos", "related", "unrelated"):
        root = work / kind
        if root.exists():
            shutil.rmtree(root)
        (root / "images").mkdir(parents=True)
        pairs = []
        for c in classes:
            names = [named[(c, p.stem)] for p in shots[c]]
            for p, name in zip(shots[c], names, strict=True):
                shutil.copy(p, root / "images" / name)
            pairs += [(c, names[i:i + 2]) for i in range(0, len(names), 2)]
        if kind != "photos":
            (root / "notes").mkdir()
            order = pairs[:]
            rng.shuffle(order)
            for n, (c, names) in enumerate(order):
                text = (rng.choice(DIARY).format(rng.choice(NOUNS[c])) if kind == "related"
                        else abstracts[n % len(abstracts)])
                embeds = "\n".join(f"![[{name}]]" for name in names)
                (root / "notes" / f"note {n:03}.md").write_text(f"{text}\n{embeds}\n")
        out[kind] = root
    return out, truth


def measure(index: Index, classes: list[str], truth: dict[str, str], on: bool) -> dict:
    rows = {}
    for label, template in (("class word", "{}"), ("a photo of a", "a photo of a {}")):
        p10 = r10 = hidden = 0.0
        for c in classes:
            results = index.search(template.format(c), k=200, embed_context=on)
            photos = [Path(r.path).name for r in results if r.modality == "image"][:10]
            right = sum(truth.get(name) == c for name in photos)
            p10 += right / 10
            r10 += right / min(10, 20)
            everything = index.search(template.format(c), k=200, floor=False, embed_context=on)
            shown = {Path(r.path).name for r in results}
            hidden += sum(truth.get(Path(r.path).name) == c and Path(r.path).name not in shown
                          for r in everything)
        n = len(classes)
        rows[label] = {"p@10": round(p10 / n, 3), "recall@10": round(r10 / n, 3),
                       "true_photos_hidden_per_query": round(hidden / n, 2)}
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, default=20)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="anyfind-bench-embed-"))
    result: dict = {"machine": machine(),
                    "photos": 10 * args.per_class}
    classes = sorted(NOUNS)
    made, truth = folders(work, args.per_class)
    for kind, root in made.items():
        with Index.open(work / f"{kind}-index", transcriber=None) as index:
            started = time.perf_counter()
            index.add([root])
            entry = {"index_s": round(time.perf_counter() - started, 1)}
            for on in (False, True):
                started = time.perf_counter()
                entry["context_on" if on else "context_off"] = measure(index, classes, truth, on)
                entry[f"query_ms_{'on' if on else 'off'}"] = round(
                    1000 * (time.perf_counter() - started) / (4 * len(classes)), 1)
            result[kind] = entry
            print(kind, json.dumps(entry), flush=True)
    finish(result, args.out)


if __name__ == "__main__":
    main()
