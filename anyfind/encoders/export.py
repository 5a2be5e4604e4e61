"""Export a space's encoder to ONNX (uses torch): the sentence-transformers text model, or
open_clip's text and image towers, into <index>/onnx/<space>/ with a manifest.

The export is built in a temp folder beside the target and renamed into place, so a
reader sees the old export, no export (and falls back to torch), or the new one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..config import SpaceConfig
from ..errors import ConfigError, one_line
from .onnx_manifest import (
    EXPORT_DIR,
    FORMAT,
    MANIFEST,
    canonical,
    check_files,
    describe_files,
    export_dir,
    read_manifest,
    stamp_all,
)

OPSET = 17
QUERY_MODELS = ("text.onnx", "image.onnx")  # the models a query runs (int8 is for documents)
SUPPORTED = ("sentence-transformers", "open-clip")
MIN_FREE_BYTES = 512 * 1024 * 1024  # beyond the model's own size: never fill a disk


class Unsupported(Exception):
    """This model (or tower) cannot be exported faithfully; the space stays on torch."""


@dataclass
class ExportResult:
    space: str
    status: str  # exported | current | skipped | failed
    reason: str | None = None
    path: str | None = None
    files: dict[str, int] | None = None  # name -> bytes

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def export_state(index_dir: Path, space: SpaceConfig, *, int8: bool = False) -> str | None:
    """None when the space's export is present, current and whole; else why it is not."""
    directory = export_dir(index_dir, space.name)
    manifest, reason = read_manifest(directory)
    if manifest is None:
        return reason
    if canonical(manifest.get("identity")) != canonical(space.identity):
        return "made for another model"
    reason = check_files(directory, manifest)
    if reason is None and int8 and "text.int8.onnx" not in manifest["files"]:
        return "no int8 text model"
    if reason is None and "optimized" not in manifest:
        # made before the optimised query graphs: still usable, but the next index or sync
        # re-exports it once, for a cold query 2-3x faster to start (docs/COLDSTART.md)
        return "made before optimised query graphs"
    return reason


def export_space(index_dir: Path, space: SpaceConfig, *, int8: bool = False,
                 min_free_bytes: int | None = None) -> ExportResult:
    """Export one space (raises Unsupported, ConfigError, or whatever torch raises)."""
    if space.encoder not in SUPPORTED:
        raise Unsupported(f"no ONNX export for {space.encoder} encoders")
    if not space.identity:
        raise Unsupported("the index config holds no encoder identity")
    index_dir = Path(index_dir)
    min_free_bytes = MIN_FREE_BYTES if min_free_bytes is None else min_free_bytes
    root = index_dir / EXPORT_DIR
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(f".{space.name}.*.tmp"):  # an interrupted export's leftovers
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{space.name}.", suffix=".tmp", dir=root))
    try:
        if space.encoder == "sentence-transformers":
            manifest = _export_text(space, tmp, int8, min_free_bytes)
        else:
            manifest = _export_clip(space, tmp, min_free_bytes)
        manifest["optimized"] = optimize_models(tmp, [n for n in QUERY_MODELS
                                                      if (tmp / n).is_file()])
        manifest.update(format=FORMAT, space=space.name, identity=space.identity,
                        anyfind_version=_version(), opset=OPSET)
        names = sorted(p.name for p in tmp.iterdir() if p.is_file())
        manifest["files"] = describe_files(tmp, names)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        target = export_dir(index_dir, space.name)
        _replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    stamp_all(target, manifest)
    return ExportResult(space.name, "exported", path=str(target),
                        files={n: f["size"] for n, f in manifest["files"].items()})


def _replace_dir(new: Path, target: Path) -> None:
    """Rename `new` over `target` (a folder cannot be os.replace'd over a non-empty one)."""
    from ..fsutil import fsync_dir

    for f in new.iterdir():
        with open(f, "rb+") as fh:
            os.fsync(fh.fileno())
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old.{new.name.strip('.')}")
        target.rename(old)
    new.rename(target)
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def optimize_models(directory: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """Let onnxruntime save each query model's optimised graph once, at export time, with
    its weights in a separate file it can memory-map: a cold query then loads that graph
    with optimisation off, instead of parsing 90 MB of protobuf, copying every weight and
    re-running the graph optimisers in every fresh process.

    ORT_ENABLE_EXTENDED, not ALL: ALL adds layout transforms (NCHWc) chosen for this CPU's
    vector width, which onnxruntime itself warns may not load or run elsewhere; EXTENDED
    fusions are plain CPU-provider kernels, whatever the CPU. A model that fails is left
    out: queries use the plain model, as for exports made before this existed."""
    try:
        import onnxruntime as ort
    except ImportError:  # the export itself needs only torch and onnx
        return {}
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        stem = name.removesuffix(".onnx")
        model, data = f"{stem}.opt.onnx", f"{stem}.opt.onnx.data"
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(directory / model)
        options.add_session_config_entry(
            "session.optimized_model_external_initializers_file_name", data)
        options.add_session_config_entry(
            "session.optimized_model_external_initializers_min_size_in_bytes", "1024")
        try:
            plain = ort.InferenceSession(str(directory / name), sess_options=options,
                                         providers=["CPUExecutionProvider"])
            _same_outputs(plain, directory / model)
        except Exception:
            for leftover in (model, data):
                (directory / leftover).unlink(missing_ok=True)
            continue
        out[name] = {"model": model, "data": data, "level": "extended",
                     "onnxruntime": ort.__version__}
    return out


def _same_outputs(plain, optimized: Path) -> None:
    """The saved graph, loaded as a query loads it, gives the plain model's vectors."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(optimized), sess_options=options,
                                   providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {}
    for arg in plain.get_inputs():
        shape = [d if isinstance(d, int) else (2 if i == 0 else 16)
                 for i, d in enumerate(arg.shape)]
        if "float" in arg.type:
            feeds[arg.name] = rng.standard_normal(shape).astype(np.float32)
        elif arg.name in ("input_ids", "text"):
            feeds[arg.name] = rng.integers(100, 1000, shape).astype(np.int64)
        else:  # attention mask, token types
            feeds[arg.name] = np.ones(shape, dtype=np.int64)
    want = plain.run(None, feeds)[0]
    got = session.run(None, feeds)[0]
    cos = (want * got).sum(1) / (np.linalg.norm(want, axis=1) * np.linalg.norm(got, axis=1))
    if want.shape != got.shape or not cos.min() >= 0.99999:
        raise ValueError(f"optimised graph differs (cosine {cos.min()})")


def _version() -> str:
    from .._version import __version__

    return __version__


def _check_disk(directory: Path, model, factor: float, min_free_bytes: int) -> None:
    """Skip the export (Unsupported) when it would leave the disk nearly full."""
    params = sum(p.numel() * 4 for p in model.parameters())  # fp32 bytes
    need = int(params * factor) + min_free_bytes
    free = shutil.disk_usage(directory).free
    if free < need:
        raise Unsupported(f"only {free >> 20} MiB free on the index's disk, the export needs "
                          f"about {need >> 20} MiB")


def _onnx_export(module, args: tuple, path: Path, inputs: list[str], output: str,
                 dynamic: dict[str, dict[int, str]]) -> None:
    import torch

    # Grad stays on: under no_grad nn.MultiheadAttention takes a fused fast path
    # (_native_multi_head_attention) that has no ONNX symbolic.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer chatter about Python control flow
        torch.onnx.export(module, args, str(path), input_names=inputs, output_names=[output],
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False,
                          do_constant_folding=True)


# -- sentence-transformers ---------------------------------------------------------------

TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _export_text(space: SpaceConfig, out: Path, int8: bool, min_free_bytes: int
                 ) -> dict[str, Any]:
    import torch

    from .text import SentenceTransformerEncoder

    enc = SentenceTransformerEncoder(space.model, device="cpu", **space.options)
    _same_identity(enc, space)
    st = enc.model.float().eval()
    _check_disk(out, st, 3.3 if int8 else 2.2, min_free_bytes)  # + optimised copy
    if getattr(st, "default_prompt_name", None):
        raise Unsupported("models with a default prompt are not exported")
    if getattr(st[0], "do_lower_case", False):
        raise Unsupported("models with do_lower_case are not exported")
    hf_tok = st.tokenizer
    backend = getattr(hf_tok, "backend_tokenizer", None)
    if backend is None:
        raise Unsupported("the model has no fast (tokenizers) tokenizer")
    sample = st.preprocess(["a sample sentence", "another, longer sample sentence here"])
    names = [k for k in TEXT_INPUTS if k in sample]
    extra = [k for k, v in sample.items() if isinstance(v, torch.Tensor) and k not in names]
    if "input_ids" not in names or "attention_mask" not in names or extra:
        raise Unsupported(f"unexpected model inputs {sorted(sample)}")

    class SentenceEmbedding(torch.nn.Module):
        """The whole module stack (transformer, pooling, normalisation) as the model defines it."""

        def __init__(self):
            super().__init__()
            self.st = st

        def forward(self, *tensors):
            features = dict(zip(names, tensors, strict=True))
            return self.st(features)["sentence_embedding"]

    dynamic = {n: {0: "batch", 1: "sequence"} for n in names}
    dynamic["embedding"] = {0: "batch"}
    _onnx_export(SentenceEmbedding().eval(), tuple(sample[n] for n in names), out / "text.onnx",
                 names, "embedding", dynamic)
    (out / "tokenizer.json").write_text(backend.to_str())
    if int8:
        quantize_int8(out / "text.onnx", out / "text.int8.onnx")
    return {"text": {
        "inputs": names,
        "max_seq_length": int(st.max_seq_length),
        "pad_id": int(hf_tok.pad_token_id),
        "pad_token": str(hf_tok.pad_token),
        "pad_type_id": int(getattr(hf_tok, "pad_token_type_id", 0) or 0),
    }}


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 quantisation of the weights (activations stay float, scaled per batch)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process goes to the root logger
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Per-channel MatMul weights only: per-tensor scales (the default) cost MiniLM
            # 0.05-0.08 cosine; per channel, under 0.012 (embeddings stay float).
            quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8,
                             per_channel=True, op_types_to_quantize=["MatMul"])
    finally:
        root.setLevel(level)


# -- open_clip ---------------------------------------------------------------------------

def _export_clip(space: SpaceConfig, out: Path, min_free_bytes: int) -> dict[str, Any]:
    import torch

    from .clip import OpenClipEncoder

    options = {k: v for k, v in space.options.items() if k not in ("device", "precision")}
    enc = OpenClipEncoder(space.model, device="cpu", precision="fp32", **options)
    _same_identity(enc, space)
    model = enc.model.float().eval()
    _check_disk(out, model, 2.2, min_free_bytes)  # + optimised copies
    cfg: dict[str, Any] = {"skipped": {}}

    text_reason = _clip_tokenizer_files(enc._tokenize, out, cfg)
    class Tower(torch.nn.Module):
        """One of the model's towers (encode_text or encode_image) as its own module."""

        def __init__(self, encode: str):
            super().__init__()
            self.model, self.encode = model, encode

        def forward(self, x):
            return getattr(self.model, self.encode)(x)

    if text_reason is None:
        tokens = enc._tokenize(["a photo of a cat", "a diagram"])
        _onnx_export(Tower("encode_text").eval(), (tokens,), out / "text.onnx", ["text"], "embedding",
                     {"text": {0: "batch"}, "embedding": {0: "batch"}})
    else:
        cfg["skipped"]["text"] = text_reason

    from .clip_preprocess import check_supported

    preprocess = _plain(getattr(model.visual, "preprocess_cfg", None) or {})
    image_reason = check_supported(preprocess) if preprocess else "no preprocess config"
    if image_reason is None:
        size = preprocess["size"]
        h, w = (size, size) if isinstance(size, int) else size
        _onnx_export(Tower("encode_image").eval(), (torch.randn(2, 3, h, w),), out / "image.onnx",
                     ["image"], "embedding", {"image": {0: "batch"}, "embedding": {0: "batch"}})
        cfg["preprocess"] = preprocess
    else:
        cfg["skipped"]["image"] = image_reason
    if text_reason and image_reason:
        raise Unsupported(f"neither CLIP tower can be exported ({text_reason}; {image_reason})")
    return {"clip": cfg}


def _clip_tokenizer_files(tok, out: Path, cfg: dict[str, Any]) -> str | None:
    """Save the merges of open_clip's SimpleTokenizer; why not when it is another kind."""
    from open_clip import tokenizer as oc_tok

    from .clip_tokenizer import build_vocab, write_merges

    if not isinstance(tok, oc_tok.SimpleTokenizer):
        return f"tokenizer {type(tok).__name__} is not supported"
    if tok.reduction_fn is not None or len(tok.all_special_ids) != 2:
        return "tokenizer options (reduction mask, extra special tokens) are not supported"
    clean = next((name for name in ("lower", "whitespace", "canonicalize")
                  if tok.clean_fn is oc_tok.get_clean_fn(name)), None)
    if clean is None:
        return "tokenizer cleaning function is not supported"
    merges = [m for m, _ in sorted(tok.bpe_ranks.items(), key=lambda kv: kv[1])]
    if build_vocab(merges) != tok.encoder:
        return "tokenizer vocabulary cannot be rebuilt from its merges"
    write_merges(out / "merges.txt.gz", merges)
    cfg.update(merges="merges.txt.gz", context_length=int(tok.context_length), clean=clean)
    return None


def _plain(obj: Any) -> Any:
    """JSON-ready copy (tuples -> lists)."""
    return json.loads(json.dumps(obj))


def _same_identity(enc, space: SpaceConfig) -> None:
    if canonical(enc.identity()) != canonical(space.identity):
        raise ConfigError(f"space '{space.name}': the model now loads as {enc.identity()}, "
                          f"not the {space.identity} the index was built with")


def export_index(index, *, force: bool = False, int8: bool | None = None,
                 spaces: list[str] | None = None) -> list[ExportResult]:
    """Export every space that lacks a current export (all of them with force). Never
    raises for one space: each result says exported / current / skipped / failed."""
    int8 = bool(index.config.onnx_int8) if int8 is None else int8
    results = []
    for name, space in index.config.spaces.items():
        if spaces and name not in spaces:
            continue
        want_int8 = int8 and space.encoder == "sentence-transformers"
        if space.encoder not in SUPPORTED:
            results.append(ExportResult(name, "skipped", f"no ONNX export for {space.encoder}"))
            continue
        if not force and export_state(index.path, space, int8=want_int8) is None:
            results.append(ExportResult(name, "current",
                                        path=str(export_dir(index.path, name))))
            continue
        try:
            results.append(export_space(index.path, space, int8=want_int8))
        except Unsupported as exc:
            results.append(ExportResult(name, "skipped", str(exc)))
        except Exception as exc:  # an export never fails the run that asked for it
            results.append(ExportResult(name, "failed", one_line(exc, 300)))
    return results



