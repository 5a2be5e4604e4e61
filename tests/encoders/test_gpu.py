"""What anyfind runs on a CUDA GPU, against the CPU: skipped on a machine without one.

Run by benchmarks/gpu_check.sh on a GPU machine (`pytest -m gpu`)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

TEXTS = ["A history of the Dewey Decimal Classification and its editions.",
         "Photographs of the harbour at dusk, taken from the lighthouse.",
         "word " * 400]  # over the token budget


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_text_encoder_runs_fp16_on_cuda_close_to_cpu_fp32():
    from anyfind.encoders.text import SentenceTransformerEncoder

    gpu = SentenceTransformerEncoder("all-MiniLM-L6-v2", device="cuda")
    cpu = SentenceTransformerEncoder("all-MiniLM-L6-v2", device="cpu")
    got, want = gpu.encode_documents(TEXTS), cpu.encode_documents(TEXTS)
    assert next(gpu.model.parameters()).dtype == torch.float16 and gpu.batch_size == 64
    assert got.dtype == np.float32 and cosines(got, want).min() >= 0.999


def test_space_on_cuda_reports_fp16_documents(tmp_path):
    from anyfind import Index

    corpus = tmp_path / "c"
    corpus.mkdir()
    for i, text in enumerate(TEXTS):
        (corpus / f"{i}.txt").write_text(text)
    with Index.open(str(tmp_path / "idx"), device="cuda", tagger=False,
                    transcriber=None) as index:
        report = index.add([corpus])
        assert report.failed == 0 and report.precision == {"text": "fp16"}
        hits = index.search("Dewey classification history", k=1, mode="dense")
        assert hits and hits[0].path.endswith("0.txt")


def test_clip_fp16_on_cuda_close_to_cpu(tmp_path):
    from PIL import Image

    from anyfind.encoders.clip import OpenClipEncoder
    from tests.support.clip_fixtures import make_tiny_clip_checkpoint

    arch, checkpoint = make_tiny_clip_checkpoint(tmp_path)
    config = str(tmp_path / "configs" / f"{arch}.json")
    gpu = OpenClipEncoder(arch, device="cuda", weights=str(checkpoint), model_config=config)
    cpu = OpenClipEncoder(arch, device="cpu", weights=str(checkpoint), model_config=config)
    images = [Image.new("RGB", (64 + 16 * i, 48), (40 * i, 200 - 30 * i, 90)) for i in range(4)]
    assert gpu.precision == "fp16"
    assert cosines(gpu.encode_documents(images, "image"),
                   cpu.encode_documents(images, "image")).min() >= 0.99
    assert cosines(gpu.encode_query(["a red square"]), cpu.encode_query(["a red square"])
                   ).min() >= 0.99


def test_faiss_gpu_search_equals_cpu():
    faiss = pytest.importorskip("faiss")
    if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
        pytest.skip("faiss without GPU support (pip install 'anyfind[gpu]')")
    rng = np.random.default_rng(0)
    base = rng.standard_normal((20000, 384)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    queries = base[:50] + 0.05 * rng.standard_normal((50, 384)).astype(np.float32)
    cpu = faiss.IndexFlatIP(384)
    cpu.add(base)
    gpu = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, cpu)
    assert (gpu.search(queries, 10)[1] == cpu.search(queries, 10)[1]).mean() > 0.99


def test_whisper_float16_on_cuda(tmp_path):
    pytest.importorskip("faster_whisper")
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng makes the speech")
    from anyfind.audio.transcribe import Transcriber

    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "130", "-w", str(wav),
                    "the library catalogue lists every book by subject"], check=True)
    t = Transcriber()
    text = " ".join(s.text for s in t.transcribe(wav).segments).lower()
    assert (t.device, t.compute_type) == ("cuda", "float16")
    assert "library" in text and "subject" in text


def test_ocr_reads_on_the_cuda_provider_as_on_the_cpu(tmp_path):
    """With onnxruntime-gpu, RapidOCR's three models run on CUDA and read what the CPU
    build reads (gpu_check.sh installs onnxruntime-gpu in place of onnxruntime)."""
    pytest.importorskip("rapidocr_onnxruntime")
    from ocr_fixtures import slide
    from PIL import Image

    from anyfind.ocr.rapid import RapidEngine, cuda_available

    if not cuda_available():
        pytest.skip("onnxruntime here has no CUDA provider (pip install onnxruntime-gpu)")
    picture = Image.open(slide(tmp_path / "s.png", "Experience Replay",
                               ["transitions are stored in a buffer"])).convert("RGB")
    engine = RapidEngine()
    lines = engine.read(picture)
    assert "CUDAExecutionProvider" in engine._engine().text_det.infer.session.get_providers()
    text = " ".join(line.text for line in lines).lower()
    assert "experience replay" in text and "stored in a buffer" in text
