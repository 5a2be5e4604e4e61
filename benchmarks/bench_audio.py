"""Audio benchmark: end-to-end indexing speed against raw faster-whisper, and WER; or
text->audio retrieval of spoken clips queried by paraphrases (`--retrieval`).

    python benchmarks/bench_audio.py [--data ../shared/data/speech] [--out results.json]
    python benchmarks/bench_audio.py --retrieval [--work DIR] [--out results.json]

1. Throughput: audio seconds per wall second of `Index.add` on a folder of recordings,
   against raw faster-whisper (`WhisperModel.transcribe` on the same files, same model
   and settings) in the same run. Target ratio >= 0.9.
2. WER of the transcripts against the reference texts (LibriSpeech, LJSpeech, JFK),
   normalising case, punctuation and numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
JFK = ("And so my fellow Americans, ask not what your country can do for you, "
       "ask what you can do for your country.")


def references(data: Path) -> dict[Path, str]:
    refs: dict[Path, str] = {}
    libri = data / "librispeech"
    if (libri / "transcripts.txt").exists():
        for line in (libri / "transcripts.txt").read_text().splitlines():
            key, _, text = line.partition(" ")
            refs[libri / f"{key}.flac"] = text
    lj = data / "ljspeech"
    if (lj / "metadata.csv").exists():
        for line in (lj / "metadata.csv").read_text().splitlines():
            key, _, rest = line.partition("|")
            text = rest.split("|")[-1]
            for ext in ("flac", "mp3", "wav"):
                if (lj / f"{key}.{ext}").exists():
                    refs[lj / f"{key}.{ext}"] = text
    if (data / "jfk.flac").exists():
        refs[data / "jfk.flac"] = JFK
    return refs


PARAPHRASES = Path(__file__).parent / "data" / "spoken_paraphrases.tsv"
# espeak-ng voices and speeds (words per minute), cycled over the clips.
VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb-x-rp", "en-us+m3", "en-029", "en-gb-scotland",
          "en-us+f2")
SPEEDS = (135, 160, 185, 150, 175)


def spoken_corpus(folder: Path) -> list[tuple[str, str, str]]:
    """Speak every sentence of PARAPHRASES into folder/NNN.wav (espeak-ng, voices and speeds
    cycled); (file name, sentence, paraphrase) per clip."""
    import subprocess

    pairs = [line.split("\t") for line in PARAPHRASES.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")]
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, (sentence, paraphrase) in enumerate(pairs):
        name = f"{i:03d}.wav"
        if not (folder / name).exists():
            subprocess.run(["espeak-ng", "-v", VOICES[i % len(VOICES)],
                            "-s", str(SPEEDS[i % len(SPEEDS)]), "-w", str(folder / name),
                            sentence], check=True, capture_output=True)
        out.append((name, sentence, paraphrase))
    return out


def retrieval(work: Path) -> dict:
    """R@1 / R@10 / MRR@10 of each paraphrase finding its own clip, per mode and fusion."""
    import statistics

    from anyfind import Index

    clips = spoken_corpus(work / "clips")
    index_path = work / "index"
    index = Index.open(index_path)
    t0 = time.perf_counter()
    report = index.add([work / "clips"])
    index_s = time.perf_counter() - t0
    runs = [("dense", "rrf"), ("lexical", "rrf"), ("hybrid", "rrf"), ("hybrid", "score"),
            ("hybrid", "relevance")]
    table = {}
    for mode, fusion in runs:
        ranks = []
        for name, _, paraphrase in clips:
            hits = index.search(paraphrase, k=10, mode=mode, fusion=fusion, syntax=False,
                                floor=False)
            found = [Path(h.path).name for h in hits]
            ranks.append(found.index(name) + 1 if name in found else None)
        n = len(ranks)
        table[f"{mode}/{fusion}" if mode == "hybrid" else mode] = {
            "r@1": round(sum(r == 1 for r in ranks) / n, 3),
            "r@10": round(sum(r is not None for r in ranks) / n, 3),
            "mrr@10": round(sum(1 / r for r in ranks if r) / n, 3)}
    # The floor: how many paraphrase queries keep their clip, and how many results remain.
    kept, shown = 0, []
    for name, _, paraphrase in clips:
        hits = index.search(paraphrase, k=10, syntax=False)
        kept += any(Path(h.path).name == name for h in hits)
        shown.append(len(hits))
    index.close()
    return {"clips": len(clips), "added": report.added, "failed": report.failed,
            "index_s": round(index_s, 1), "modes": table,
            "floor": {"own_clip_kept_r@10": round(kept / len(clips), 3),
                      "mean_results_shown": round(statistics.mean(shown), 2)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).parents[1] / "../shared/data/speech")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--retrieval", action="store_true",
                    help="spoken clips of benchmarks/data/spoken_paraphrases.tsv, queried by "
                         "the paraphrases")
    ap.add_argument("--work", type=Path, default=None, help="keep clips and index here")
    args = ap.parse_args()
    if args.retrieval:
        work = args.work or Path(tempfile.mkdtemp(prefix="anyfind-bench-spoken-"))
        result = {"machine": f"{platform.processor() or platform.machine()}, "
                             f"{os.cpu_count()} cores", **retrieval(work)}
        print(json.dumps(result, indent=2))
        if args.out:
            args.out.write_text(json.dumps(result, indent=2))
        return

    from anyfind import Index
    from anyfind.audio import probe
    from anyfind.audio.transcribe import resolve_device, resolve_model
    from anyfind.audio.wer import normalize_words, wer

    refs = references(args.data.resolve())
    if not refs:
        raise SystemExit(f"no speech data under {args.data}")
    total_audio = sum(probe(p)["duration"] or 0 for p in refs)

    # Raw faster-whisper, same model and decoding settings as anyfind's Transcriber.
    from faster_whisper import WhisperModel

    _, folder = resolve_model(None)
    device, compute = resolve_device()
    t0 = time.perf_counter()
    model = WhisperModel(str(folder), device=device, compute_type=compute)
    load_raw = time.perf_counter() - t0
    t0 = time.perf_counter()
    for p in refs:
        segs, _ = model.transcribe(str(p), beam_size=1, vad_filter=True, word_timestamps=True,
                                   condition_on_previous_text=False, language="en")
        list(segs)
    raw_s = time.perf_counter() - t0

    # anyfind end to end: scan, hash, decode, transcribe, chunk, embed, write.
    work = Path(tempfile.mkdtemp(prefix="anyfind-bench-audio-"))
    corpus = work / "corpus"
    corpus.mkdir()
    for i, p in enumerate(refs):
        shutil.copy(p, corpus / f"{i:03d}-{p.name}")
    index = Index.open(work / "index")
    index.spaces["text"].encoder.encode_documents(["warm up"])  # load the text model first
    index.opened.transcriber._load()  # load Whisper outside the timing
    t0 = time.perf_counter()
    report = index.add([corpus])
    e2e_s = time.perf_counter() - t0

    # WER from what anyfind stored.
    transcriber = index.opened.transcriber
    rows = []
    for i, (p, ref) in enumerate(refs.items()):
        item = next(r for r in index.store.items_of_source(1).values()
                    if r.path.endswith(f"{i:03d}-{p.name}"))
        hyp = " ".join(t for _, _, t in (index.item(item.id)["meta"].get("transcript") or []))
        rows.append({"file": f"{p.parent.name}/{p.name}", "wer": round(wer(ref, hyp), 3),
                     "words": len(normalize_words(ref))})
    index.close()
    shutil.rmtree(work, ignore_errors=True)

    words = sum(r["words"] for r in rows)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                   f"device={device}/{compute}",
        "files": len(refs), "audio_seconds": round(total_audio, 1),
        "raw_faster_whisper_s": round(raw_s, 2), "raw_audio_s_per_s": round(total_audio / raw_s, 2),
        "anyfind_e2e_s": round(e2e_s, 2), "anyfind_audio_s_per_s": round(total_audio / e2e_s, 2),
        "ratio": round(raw_s / e2e_s, 3), "failed": report.failed,
        "whisper_load_s": round(load_raw, 2), "model": transcriber.identity(),
        "wer_mean": round(sum(r["wer"] for r in rows) / len(rows), 3),
        "wer_weighted": round(sum(r["wer"] * r["words"] for r in rows) / words, 3),
        "per_file": rows,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "per_file"}, indent=2))
    for r in rows:
        print(f"  {r['file']:<40} WER {r['wer']:.3f}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
