"""GPU throughput of anyfind's models (benchmarks/gpu_check.sh runs it on a CUDA machine).

    python benchmarks/gpu_throughput.py [--json OUT]

text: MiniLM documents through anyfind's encoder (fp16 on CUDA), chunks/s on 4,096
generated texts of ~120 tokens. images: ViT-B-32 with random weights (no CLIP weights are
needed), fp16, 224 px, images/s of the image tower alone. whisper: tiny.en through
anyfind's Transcriber (float16 on CUDA) on ~60 s of espeak-ng speech, the real-time
factor (seconds of compute per second of audio). ocr: RapidOCR's PP-OCRv4 models through
anyfind's engine on onnxruntime's CUDA provider (onnxruntime-gpu), 1920x1080 slides
rendered with PIL (tests/support/ocr_fixtures.py), slides/s of a full read. Each after a warm-up;
median of 3.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WORDS = ("catalogue index retrieval subject heading library thesaurus query relevance "
         "document abstract citation journal classification vocabulary term weight").split()


def timed(fn, rounds: int = 3) -> float:
    fn()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def text_rate() -> dict:
    from anyfind.encoders.text import SentenceTransformerEncoder

    rng = random.Random(0)
    texts = [" ".join(rng.choice(WORDS) for _ in range(100)) for _ in range(4096)]
    enc = SentenceTransformerEncoder("all-MiniLM-L6-v2", device="auto")
    seconds = timed(lambda: enc.encode_documents(texts))
    return {"model": "all-MiniLM-L6-v2", "device": str(enc.model.device),
            "batch": enc.batch_size, "chunks_per_s": round(len(texts) / seconds, 1)}


def image_rate() -> dict:
    import open_clip
    import torch

    model = open_clip.create_model("ViT-B-32", pretrained=None).cuda().half().eval()
    batch = torch.randn(256, 3, 224, 224, device="cuda", dtype=torch.float16)

    def run():
        with torch.no_grad():
            for _ in range(8):
                model.encode_image(batch)
        torch.cuda.synchronize()

    seconds = timed(run)
    return {"model": "ViT-B-32 (random weights)", "precision": "fp16", "batch": 256,
            "images_per_s": round(8 * 256 / seconds, 1)}


def whisper_rtf() -> dict:
    if shutil.which("espeak-ng") is None:
        return {"skipped": "espeak-ng is not installed"}
    from anyfind.audio.transcribe import Transcriber

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        text = ("the library catalogue lists every book by subject and by author, and the "
                "index points from each term to the documents that use it. ") * 6
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text],
                       check=True)
        t = Transcriber()
        duration = t.transcribe(wav).duration
        seconds = timed(lambda: t.transcribe(wav))
    return {"model": "tiny.en", "device": t.device, "compute_type": t.compute_type,
            "audio_s": round(duration, 1), "rtf": round(seconds / duration, 4)}


def ocr_rate() -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))
    from ocr_fixtures import slide
    from PIL import Image

    from anyfind.ocr.rapid import RapidEngine, cuda_available

    with tempfile.TemporaryDirectory() as tmp:
        pictures = []
        for i in range(8):
            path = slide(Path(tmp) / f"s{i}.png", f"Lecture {i}: Temporal Difference Learning",
                         [f"bullet {j}: the target network is updated every {j + 2} steps"
                          for j in range(6)], seed=i, size=(1920, 1080))
            pictures.append(Image.open(path).convert("RGB"))
        engine = RapidEngine(threads=None)
        engine.read(pictures[0])
        seconds = timed(lambda: [engine.read(p) for p in pictures])
        providers = engine._engine().text_det.infer.session.get_providers()
    return {"cuda_provider": cuda_available(), "providers": providers,
            "slides_per_s": round(len(pictures) / seconds, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", dest="out", default=None)
    args = ap.parse_args()
    import torch

    out: dict = {"gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                 "torch": torch.__version__}
    for name, fn in (("text", text_rate), ("images", image_rate), ("whisper", whisper_rtf),
                     ("ocr", ocr_rate)):
        try:
            out[name] = fn()
        except Exception as exc:  # one failing part never hides the others' figures
            out[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        print(name, json.dumps(out[name]), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
