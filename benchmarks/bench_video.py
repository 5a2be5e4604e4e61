"""Video moments: how precisely a lecture video is found, and how fast it is indexed.

    python benchmarks/bench_video.py [--slides 32] [--seconds 20] [--corpus CISI.jsonl]
                                     [--work DIR] [--out results.json]

A lecture is built here with its ground-truth timeline: `--slides` slides of 1280x720
(PIL, tests/support/video_fixtures.py), each shown at least `--seconds`, each narrated by
espeak-ng; H.264 + AAC at 25 fps muxed by PyAV. The text comes from real abstracts
(the CISI corpus, ../shared/data/cisi-beir, when present; else generated sentences):
a slide's title and bullets are phrases of one abstract, its narration other sentences
of the same abstract, so slide words and spoken words differ.

1. Moment precision through `Index.search` (the default index: MiniLM, tagger, OCR,
   Whisper tiny.en): for a slide query (one bullet's words) and a spoken query (the six
   consecutive narrated words with the most long words) per slide, the share whose top
   hit is the lecture and whose first moment starts while that slide is shown (1 s of
   slack either side: a frame sample, Whisper's timestamps) and spans at most 30 s. Goal
   >= 0.9 for both.
2. Speed: the real-time factor of the whole indexing (video seconds per wall second),
   and the frame work's share: the same video indexed without a transcriber (decode,
   frame selection, OCR, tagger, encoders of the frames) over the full run.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
from pathlib import Path

from bench_common import ROOT, SHARED, finish, machine  # first: offline settings

sys.path.insert(0, str(ROOT / "tests" / "support"))

from anyfind import Index  # noqa: E402

WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 6]


def deck(n: int, corpus: Path | None, seed: int = 0):
    """(slides, slide queries, spoken queries) from n abstracts with >= 5 sentences."""
    from video_fixtures import Shown

    rng = random.Random(seed)
    docs: list[list[str]] = []
    if corpus is not None and corpus.exists():
        for line in corpus.read_text().splitlines():
            parts = sentences(json.loads(line)["text"])
            if len(parts) >= 5:
                docs.append(parts)
    rng.shuffle(docs)
    slides, slide_queries, spoken_queries = [], [], []
    for i in range(n):
        parts = docs[i] if i < len(docs) else [
            " ".join(rng.choice(["alpha", "index", "river", "copper", "signal", "garden",
                                 "harbour", "lantern", "orbit", "meadow"]) for _ in range(9))
            + "." for _ in range(5)]
        words = [WORD.findall(p) for p in parts]
        title = " ".join(words[2][:5]).capitalize()
        bullets = [" ".join(w[:7]) for w in words[3:5]]
        said = " ".join(parts[:2])
        slides.append(Shown(title, bullets, said))
        slide_queries.append(bullets[0])
        # What a listener remembers: the six-word stretch with the most long words (a
        # stretch of "in the form of" is not a query anyone types).
        spoken = WORD.findall(said)
        best = max(range(max(1, len(spoken) - 5)),
                   key=lambda s: (sum(len(w) >= 5 for w in spoken[s:s + 6]), -s))
        spoken_queries.append(" ".join(spoken[best:best + 6]))
    return slides, slide_queries, spoken_queries


SLACK = 1.0  # seconds: one frame sample, and Whisper's timestamps (segments start early)


def inside(moment: dict, shown) -> bool:
    return (shown.start - SLACK <= moment["start"] < shown.end + SLACK
            and moment["end"] - moment["start"] <= 30.0)


def precision(index: Index, queries: list[str], slides) -> tuple[float, list]:
    misses, good = [], 0
    for n, query in enumerate(queries):
        hits = index.search(query, k=1)
        moment = hits[0].moments[0] if hits and hits[0].moments else None
        if moment is not None and hits[0].path.endswith("lecture.mp4") and inside(moment,
                                                                                  slides[n]):
            good += 1
        else:
            misses.append({"query": query, "slide": [round(slides[n].start, 1),
                                                     round(slides[n].end, 1)],
                           "moment": moment})
    return good / max(1, len(queries)), misses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slides", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--corpus", type=Path, default=SHARED / "cisi-beir" / "corpus.jsonl")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    from video_fixtures import lecture

    work = args.work or Path(tempfile.mkdtemp(prefix="anyfind-bench-video-"))
    folder = work / "lecture"
    folder.mkdir(parents=True, exist_ok=True)
    slides, slide_queries, spoken_queries = deck(args.slides, args.corpus)
    started = time.perf_counter()
    timeline = folder.parent / "timeline.json"
    if timeline.exists() and (folder / "lecture.mp4").exists():  # built by an earlier run
        for shown, (start, end) in zip(slides, json.loads(timeline.read_text()), strict=True):
            shown.start, shown.end = start, end
    else:
        lecture(folder / "lecture.mp4", slides, fps=25, min_seconds=args.seconds)
        timeline.write_text(json.dumps([[s.start, s.end] for s in slides]))
    built = time.perf_counter() - started
    duration = slides[-1].end
    print(f"built a {duration / 60:.1f}-minute lecture in {built:.0f} s", flush=True)

    # Models loaded (and ONNX sessions built) before timing: a warm-up index.
    warm = work / "warm"
    warm.mkdir(exist_ok=True)
    lecture(warm / "w.mp4", slides[:1], fps=25, min_seconds=2)
    import shutil

    for old in work.glob("idx-*"):  # every run indexes from scratch
        shutil.rmtree(old)
    with Index.open(work / "idx-warm") as index:
        index.add([warm])

    result: dict = {"machine": machine(),
                    "video": {"minutes": round(duration / 60, 2), "slides": len(slides),
                              "size": "1280x720", "fps": 25,
                              "mb": round((folder / "lecture.mp4").stat().st_size / 1e6, 1)}}
    for name, options in (("frames_only", {"transcriber": None}), ("full", {})):
        with Index.open(work / f"idx-{name}", **options) as index:
            started = time.perf_counter()
            report = index.add([folder])
            seconds = time.perf_counter() - started
            assert report.failed == 0, report.errors
            result[name] = {"seconds": round(seconds, 1),
                            "realtime_factor": round(duration / seconds, 2)}
            print(name, json.dumps(result[name]), flush=True)
            if name == "full":
                item = index.item(index.item_ids_at([str(folder / "lecture.mp4")])[0])
                result["frames_kept"] = len(item["meta"]["frames"])
                for kind, queries in (("slide", slide_queries), ("spoken", spoken_queries)):
                    share, misses = precision(index, queries, slides)
                    result[f"{kind}_moment_precision"] = round(share, 3)
                    result[f"{kind}_misses"] = misses[:10]
                    print(kind, round(share, 3), flush=True)
    result["frame_work_share"] = round(result["frames_only"]["seconds"]
                                       / result["full"]["seconds"], 3)
    # The frame work split: looking at the picture (decode, sample, choose: what a video
    # costs more than its sound) and reading what the kept frames show (OCR, the same
    # work as for a screenshot).
    from anyfind.extract.pixels_text import read_pixels
    from anyfind.extract.video import read_frames
    from anyfind.ocr import ocr_engine, resolve

    path = folder / "lecture.mp4"
    started = time.perf_counter()
    kept, _, _ = read_frames(path, None, path.stat().st_size)
    looking = time.perf_counter() - started
    engine = ocr_engine(resolve("auto"))
    read_pixels(engine, kept[0].image, where="warm-up")
    started = time.perf_counter()
    for frame in kept:
        read_pixels(engine, frame.image, where="bench")
    reading = time.perf_counter() - started
    result["frame_work_split"] = {
        "decode_and_choose_s": round(looking, 1), "ocr_of_kept_frames_s": round(reading, 1),
        "decode_and_choose_share_of_full": round(looking / result["full"]["seconds"], 3)}
    result["one_hour_minutes_estimate"] = round(result["full"]["seconds"] * 60 / duration, 1)
    finish(result, args.out)


if __name__ == "__main__":
    main()
