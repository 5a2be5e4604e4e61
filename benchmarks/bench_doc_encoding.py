"""Document encoding study: speed and nDCG@10 of every precision path and int8 variant.

    python benchmarks/bench_doc_encoding.py [DATASET_DIR ...] [--work DIR] [--json OUT]
                                            [--variants fp32,bf16,...] [--speed-chunks 384]

Each BEIR-format collection (default: CISI from ../shared/data and the Cranfield 1400
packaged in benchmarks/data) is indexed once per variant through the real pipeline, the
variant encoding the documents (`Space.use_document_encoder`); every index is searched
with the same fp32 torch query vectors (the `anyfind eval` logic), dense and hybrid. Speed: the same
chunk texts encoded by every variant, round by round interleaved so that machine load hits
them alike; docs/s from the median round. Nothing here is tuned on these collections:
the int8 variants are the recipes of the quantisation literature, fixed in advance, and
static calibration uses chunks of the collection being indexed (never its queries).

Variants:
  fp32         torch fp32 (the reference), CPU batches of 16
  bf16         torch under CPU bf16 autocast (anyfind's auto on a CPU with native bf16)
  onnx         the fp32 ONNX export, onnxruntime's optimised graph (--precision onnx)
  int8         dynamic int8, per-channel weights, every MatMul (--precision int8)
  int8-weights dynamic int8, per-channel, only the MatMuls with a weight (the attention
               score products Q.K^T and P.V, activations on both sides, stay fp32)
  int8-inner   int8-weights without the first and the last layer (the most sensitive)
  int8-ffn     dynamic int8 of the feed-forward MatMuls only (2/3 of the FLOPs)
  int8-static  static QDQ int8 (per-channel weights, per-tensor activations), weight
               MatMuls only, calibrated on 128 chunks of the corpus being indexed
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["ANYFIND_NO_ONNX"] = "1"  # every index's queries: the same fp32 torch vectors
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from anyfind import Index  # noqa: E402
from anyfind.encoders.onnx import OnnxTextEncoder, load_document_encoder  # noqa: E402
from anyfind.encoders.precision import Bf16Documents  # noqa: E402
from anyfind.evaluate import index_dataset, load_beir, run_mode  # noqa: E402

DATASETS = [REPO.parent / "shared" / "data" / "cisi-beir", REPO / "benchmarks" / "data" / "cranfield-beir"]
VARIANTS = ("fp32", "bf16", "onnx", "int8", "int8-weights", "int8-inner", "int8-ffn",
            "int8-static")
MODES = ("dense", "hybrid")
MAX_LOSS = 0.002  # issue 17: a faster path becomes the default only within this loss


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- int8 variants ------------------------------------------------------------------------------

def weight_matmuls(model_path: Path) -> list[str]:
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    return [n.name for n in model.graph.node
            if n.op_type == "MatMul" and any(i in inits for i in n.input)]


def layers_of(names: list[str]) -> list[int]:
    return sorted({int(n.split("layer.")[1].split("/")[0]) for n in names if "layer." in n})


def quantize_variant(name: str, src: Path, dst: Path, calibration: list[str], tokenizer) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    weights = weight_matmuls(src)
    layers = layers_of(weights)
    nodes = {
        "int8-weights": weights,
        "int8-inner": [n for n in weights
                       if f"layer.{layers[0]}/" not in n and f"layer.{layers[-1]}/" not in n],
        "int8-ffn": [n for n in weights if "/intermediate/" in n
                     or ("/output/dense" in n and "/attention/" not in n)],
        "int8-static": weights,
    }[name]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if name != "int8-static":
                quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8,
                                 per_channel=True, op_types_to_quantize=["MatMul"],
                                 nodes_to_quantize=nodes)
                return

            class Reader(CalibrationDataReader):
                def __init__(self):
                    self.feeds = iter([_features(tokenizer, [t]) for t in calibration])

                def get_next(self):
                    return next(self.feeds, None)

            quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                            per_channel=True, op_types_to_quantize=["MatMul"],
                            nodes_to_quantize=nodes, activation_type=QuantType.QInt8,
                            weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax,
                            extra_options={"ActivationSymmetric": True})
    finally:
        root.setLevel(level)


def _features(tokenizer, texts: list[str]) -> dict[str, np.ndarray]:
    enc = tokenizer.encode_batch(texts)
    return {"input_ids": np.asarray([e.ids for e in enc], dtype=np.int64),
            "attention_mask": np.asarray([e.attention_mask for e in enc], dtype=np.int64),
            "token_type_ids": np.asarray([e.type_ids for e in enc], dtype=np.int64)}


def onnx_variant(export: Path, model_file: str) -> OnnxTextEncoder:
    manifest = json.loads((export / "export.json").read_text())
    enc = OnnxTextEncoder(export, manifest, documents=True)
    enc.model_file = model_file
    enc.precision = model_file
    return enc


# -- per collection -----------------------------------------------------------------------------

def study(dataset: Path, work: Path, variants: list[str], speed_chunks: int, rounds: int
          ) -> dict:
    data = load_beir(dataset)
    log(f"{data.name}: {len(data.corpus)} documents, {len(data.queries)} queries")
    base = Index.open(str(work / "fp32"), precision="fp32", tagger=False, transcriber=None)
    t0 = time.perf_counter()
    ids = {"fp32": index_dataset(base, data)}
    seconds = {"fp32": time.perf_counter() - t0}
    base.export_onnx(int8=True)
    identity = base.config.spaces["text"].identity
    export = base.path / "onnx" / "text"
    chunk_ids, _ = base.store.vectors("text")
    rows = base.store.chunk_rows(chunk_ids.tolist())
    texts = [rows[int(i)]["text"] for i in chunk_ids]
    rng = random.Random(0)
    sample = rng.sample(texts, min(speed_chunks, len(texts)))
    calibration = rng.sample(texts, min(128, len(texts)))

    torch_enc = base.spaces["text"].encoder
    encoders: dict[str, object] = {"fp32": torch_enc, "bf16": Bf16Documents(torch_enc)}
    if "onnx" in variants:
        encoders["onnx"], why = load_document_encoder(base.path, "text", identity, int8=False)
        assert why is None, why
    if "int8" in variants:
        encoders["int8"], why = load_document_encoder(base.path, "text", identity, int8=True)
        assert why is None, why
    tok = encoders["onnx"]._encoder_tokenizer() if "onnx" in encoders else None
    for name in variants:
        if name.startswith("int8-"):
            file = f"text.{name}.onnx"
            log(f"  quantising {name} ...")
            quantize_variant(name, export / "text.onnx", export / file, calibration, tok)
            encoders[name] = onnx_variant(export, file)

    results: dict[str, dict] = {}
    for name in variants:
        if name != "fp32":
            index = Index.open(str(work / name), precision="fp32", tagger=False,
                               transcriber=None)
            index.spaces["text"].use_document_encoder(encoders[name], name)
            log(f"  indexing with {name} ...")
            t0 = time.perf_counter()
            ids[name] = index_dataset(index, data)
            seconds[name] = time.perf_counter() - t0
        else:
            index = base
        quality = {}
        for mode in MODES:
            r = run_mode(index, data, ids[name], mode)
            quality[mode] = {"ndcg10": round(r.ndcg_at_10, 4), "recall100": round(r.recall_at_100, 4)}
        stored_ids, stored = index.store.vectors("text")
        order = {int(c): k for k, c in enumerate(stored_ids)}
        ref_ids, ref = base.store.vectors("text")
        # chunk ids differ between indexes: compare by chunk text, first occurrence
        ref_by_text = {texts[k]: ref[k] for k in range(len(ref_ids))}
        rows_v = index.store.chunk_rows(stored_ids.tolist())
        cos = [float(stored[order[int(c)]] @ ref_by_text[rows_v[int(c)]["text"]])
               for c in stored_ids if rows_v[int(c)]["text"] in ref_by_text]
        results[name] = {"quality": quality, "index_s": round(seconds[name], 1),
                         "cosine_to_fp32_min": round(min(cos), 6),
                         "cosine_to_fp32_mean": round(float(np.mean(cos)), 6)}
        if index is not base:
            index.close()
    rates = speed({n: encoders[n] for n in variants}, sample, rounds)
    for name in variants:
        results[name]["docs_per_s"] = round(rates[name], 1)
        results[name]["speedup"] = round(rates[name] / rates["fp32"], 2)
        for mode in MODES:
            results[name]["quality"][mode]["delta"] = round(
                results[name]["quality"][mode]["ndcg10"] - results["fp32"]["quality"][mode]["ndcg10"], 4)
    base.close()
    return {"dataset": data.name, "documents": len(data.corpus), "queries": len(data.queries),
            "chunks": len(texts), "speed_chunks": len(sample), "rounds": rounds,
            "variants": results}


def speed(encoders: dict[str, object], texts: list[str], rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in encoders}
    for enc in encoders.values():  # warm-up: sessions, thread pools, first allocations
        enc.encode_documents(texts[:16])
    for _ in range(rounds):
        for name, enc in encoders.items():
            t0 = time.perf_counter()
            enc.encode_documents(texts)
            times[name].append(time.perf_counter() - t0)
    return {name: len(texts) / statistics.median(ts) for name, ts in times.items()}


def machine() -> dict:
    import onnxruntime
    import torch

    from anyfind.encoders.precision import cpu_has_native_bf16

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "native_bf16": cpu_has_native_bf16(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "onnxruntime": onnxruntime.__version__, "python": platform.python_version()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("datasets", nargs="*", default=[str(d) for d in DATASETS])
    ap.add_argument("--work", default=None, help="folder for the indexes (kept)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--speed-chunks", type=int, default=384)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", dest="out", default=None, help="write the figures here")
    args = ap.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    if variants[0] != "fp32" or any(v not in VARIANTS for v in variants):
        sys.exit(f"--variants: fp32 first, then any of {', '.join(VARIANTS[1:])}")

    out = {"machine": machine(), "load_before": os.getloadavg()[0], "collections": []}
    with tempfile.TemporaryDirectory(prefix="anyfind-docenc-") as tmp:
        for k, dataset in enumerate(args.datasets):
            work = Path(args.work or tmp) / f"set{k}"
            out["collections"].append(study(Path(dataset), work, variants,
                                            args.speed_chunks, args.rounds))
    out["load_after"] = os.getloadavg()[0]
    print_tables(out)
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2))


def print_tables(out: dict) -> None:
    m = out["machine"]
    print(f"{m['cpu']}, {m['cores']} cores, native bf16: {m['native_bf16']}, torch "
          f"{m['torch']} ({m['torch_threads']} threads), onnxruntime {m['onnxruntime']}")
    for c in out["collections"]:
        print(f"\n{c['dataset']}: {c['documents']} documents, {c['chunks']} chunks, "
              f"{c['queries']} queries; speed on {c['speed_chunks']} chunks, median of "
              f"{c['rounds']} interleaved rounds")
        print("| variant | docs/s | vs fp32 | nDCG@10 dense (delta) | nDCG@10 hybrid (delta) "
              "| min cosine to fp32 | within 0.002 |")
        print("|---|---|---|---|---|---|---|")
        for name, v in c["variants"].items():
            q = v["quality"]
            ok = all(-q[mode]["delta"] <= MAX_LOSS for mode in MODES)
            print(f"| {name} | {v['docs_per_s']} | {v['speedup']:.2f}x | "
                  f"{q['dense']['ndcg10']:.4f} ({q['dense']['delta']:+.4f}) | "
                  f"{q['hybrid']['ndcg10']:.4f} ({q['hybrid']['delta']:+.4f}) | "
                  f"{v['cosine_to_fp32_min']:.5f} | {'yes' if ok else 'no'} |")


if __name__ == "__main__":
    main()
