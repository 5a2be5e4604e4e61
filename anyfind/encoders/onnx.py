"""Query encoders on onnxruntime: the exported text model and CLIP towers, without torch.

Importing and using this module loads numpy, onnxruntime, tokenizers, PIL (and ftfy/regex
for CLIP text) only, so a cold `anyfind search` skips the seconds torch and
sentence-transformers take to import. `load_query_encoder` refuses an export that does not
match the index's encoder identity or its checksums: the caller then falls back to torch.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .base import Encoder, l2_normalize
from .onnx_manifest import canonical, check_files, export_dir, read_manifest

TEXT_KINDS = ("sentence-transformers",)
DOCUMENT_BATCH = 8
CLIP_KINDS = ("open-clip",)


def load_query_encoder(index_dir: Path, space_name: str, identity: dict,
                       *, full_check: bool = False, one_shot: bool = False,
                       ) -> tuple[Encoder | None, str | None]:
    """The exported ONNX encoder for this space when it exists and matches `identity` (the
    encoder identity saved in the index config) and its checksum; else (None, one-line reason).

    full_check: hash every file even when its stat matches the last verification.
    one_shot: the process encodes a query or two and exits (a CLI search): its sessions skip
    onnxruntime's weight pre-packing, which makes the MiniLM session build ~50 ms shorter
    and each later run about twice as long (5 -> 10 ms); a server keeps the default."""
    return _load(index_dir, space_name, identity, int8=False, full_check=full_check,
                 one_shot=one_shot)


def load_document_encoder(index_dir: Path, space_name: str, identity: dict, *,
                          int8: bool = True) -> tuple[Encoder | None, str | None]:
    """This space's exported text model for document encoding: the int8-quantised one, or
    with int8=False the fp32 one (its optimised graph), on onnxruntime's default threads."""
    return _load(index_dir, space_name, identity, int8=int8, full_check=False,
                 documents=True)


def _load(index_dir: Path, space_name: str, identity: dict, *, int8: bool,
          full_check: bool, one_shot: bool = False, documents: bool = False,
          ) -> tuple[Encoder | None, str | None]:
    try:
        encoder, reason = _load_checked(index_dir, space_name, identity, int8=int8,
                                        full_check=full_check, documents=documents)
        if encoder is not None:
            encoder.prepack = not one_shot
        return encoder, reason
    except Exception as exc:  # a damaged export is a reason to use torch, never a crash
        text = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        return None, f"ONNX export of space '{space_name}' is unusable ({text})"


def _load_checked(index_dir: Path, space_name: str, identity: dict, *, int8: bool,
                  full_check: bool, documents: bool = False,
                  ) -> tuple[Encoder | None, str | None]:
    directory = export_dir(Path(index_dir), space_name)
    manifest, reason = read_manifest(directory)
    if manifest is None:
        return None, reason
    if canonical(manifest.get("identity")) != canonical(identity):
        return None, (f"ONNX export of space '{space_name}' was made for another model "
                      "(re-run `anyfind export`)")
    if int8 and "text.int8.onnx" not in manifest.get("files", {}):
        return None, f"ONNX export of space '{space_name}' has no int8 text model"
    try:
        import onnxruntime  # noqa: F401 - fail here, with a reason, not at the first query
    except ImportError:
        return None, "onnxruntime is not installed (pip install 'anyfind[onnx]')"
    reason = check_files(directory, manifest, full=full_check)
    if reason:
        return None, reason
    kind = manifest["identity"].get("kind")
    if kind in TEXT_KINDS:
        return OnnxTextEncoder(directory, manifest, int8=int8, documents=documents), None
    if kind in CLIP_KINDS and not (int8 or documents):
        return OnnxClipEncoder(directory, manifest), None
    return None, f"no ONNX runtime for {kind} encoders"


def _options(*, query: bool, optimized: bool, prepack: bool = True):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # no warnings on stderr in a CLI run
    if not prepack:  # one-shot process: see load_query_encoder
        options.add_session_config_entry("session.disable_prepacking", "1")
    if optimized:  # optimised at export time (export.optimize_models): nothing left to do
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if query:
        # A query is one short text or image: splitting its few matrix products over a
        # second thread gains little, and that thread's pool start and spin-waiting compete
        # with the rest of a cold search (FAISS, the store) on a 2-core machine. Measured
        # (docs/COLDSTART.md): session creation and encode both faster on one thread with
        # spinning off. Document encoding (batches) keeps onnxruntime's default threads.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def _session(directory: Path, name: str, manifest: dict[str, Any], *, query: bool,
             prepack: bool = True):
    """(session, file loaded) for model `name`: its export-time optimised graph (weights
    memory-mapped) when the manifest lists one and it loads, else the plain model,
    optimised now."""
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    opt = (manifest.get("optimized") or {}).get(name)
    files = manifest.get("files") or {}
    if isinstance(opt, dict) and opt.get("model") in files and opt.get("data") in files:
        try:
            return ort.InferenceSession(str(directory / opt["model"]), providers=providers,
                                        sess_options=_options(query=query, optimized=True,
                                                              prepack=prepack)
                                        ), opt["model"]
        except Exception:  # e.g. an older onnxruntime than the export's: the plain model
            pass
    return ort.InferenceSession(str(directory / name), providers=providers,
                                sess_options=_options(query=query, optimized=False,
                                                      prepack=prepack)), name


class _OnnxEncoder(Encoder):
    """Shared parts: identity and dim from the manifest, sessions created on first use."""

    def __init__(self, directory: Path, manifest: dict[str, Any], *, query: bool = True):
        self.directory = directory
        self.query = query  # query sessions run on one thread (see _options)
        self.prepack = True  # False: a one-shot process (see load_query_encoder)
        self.manifest = manifest
        self._identity = dict(manifest["identity"])
        self.kind = self._identity.get("kind", "onnx")  # type: ignore[misc]
        self._sessions: dict[str, Any] = {}
        self.loaded: dict[str, str] = {}  # model -> the file its session was built from
        self._lock = threading.Lock()  # sessions are built once, by one thread

    @property
    def dim(self) -> int:
        return int(self._identity["dim"])

    def identity(self) -> dict[str, Any]:
        return dict(self._identity)

    def session(self, name: str):
        with self._lock:
            if name not in self._sessions:
                self._sessions[name], self.loaded[name] = _session(
                    self.directory, name, self.manifest, query=self.query,
                    prepack=self.prepack)
            return self._sessions[name]

    def warm(self, modality: str = "text") -> None:
        """Build what the first query of this modality needs (its session, tokenizer or
        image transform) without running anything: a cold start can overlap it with other
        work on a thread, while another thread encodes."""
        raise NotImplementedError


class OnnxTextEncoder(_OnnxEncoder):
    """sentence-transformers model (transformer + its pooling + normalisation) in ONNX."""

    modalities = frozenset({"text"})

    def __init__(self, directory: Path, manifest: dict[str, Any], int8: bool = False,
                 batch_size: int | None = None, documents: bool = False):
        documents = documents or int8  # the int8 model is for documents only
        super().__init__(directory, manifest, query=not documents)
        self.text_cfg = manifest["text"]
        self.model_file = "text.int8.onnx" if int8 else "text.onnx"
        self.precision = "int8" if int8 else "onnx"
        # documents: small batches encode fastest on a CPU (benchmarks/bench_doc_encoding.py)
        self.batch_size = batch_size or (DOCUMENT_BATCH if documents else 64)
        self._chunk_tokenizer = None
        self._encode_tokenizer = None

    def max_tokens(self) -> int:
        return int(self.text_cfg["max_seq_length"])

    def _load_tokenizer(self):
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(self.directory / "tokenizer.json"))

    def tokenizer(self):
        """For chunking: no truncation, no padding (as the torch encoder gives it)."""
        if self._chunk_tokenizer is None:
            tok = self._load_tokenizer()
            tok.no_truncation()
            tok.no_padding()
            self._chunk_tokenizer = tok
        return self._chunk_tokenizer

    def warm(self, modality: str = "text") -> None:
        self.session(self.model_file)
        self._encoder_tokenizer()

    def _encoder_tokenizer(self):
        if self._encode_tokenizer is None:
            tok = self._load_tokenizer()
            cfg = self.text_cfg
            tok.enable_truncation(max_length=int(cfg["max_seq_length"]),
                                  strategy="longest_first")
            tok.enable_padding(pad_id=int(cfg["pad_id"]), pad_token=cfg["pad_token"],
                               pad_type_id=int(cfg.get("pad_type_id", 0)))
            self._encode_tokenizer = tok
        return self._encode_tokenizer

    def _features(self, texts: list[str]) -> dict[str, np.ndarray]:
        encodings = self._encoder_tokenizer().encode_batch(texts)
        fields = {"input_ids": "ids", "attention_mask": "attention_mask",
                  "token_type_ids": "type_ids"}
        return {name: np.asarray([getattr(e, fields[name]) for e in encodings], dtype=np.int64)
                for name in self.text_cfg["inputs"]}

    def _encode(self, inputs: Sequence[Any], modality: str, *, query: bool) -> np.ndarray:
        texts = [str(t) for t in inputs]
        out = self.session(self.model_file).run(None, self._features(texts))[0]
        return np.asarray(out, dtype=np.float32)

    def _run(self, inputs, modality, query):
        # Batches of similar lengths (as sentence-transformers sorts them): less padding.
        if modality not in self.modalities:
            raise ValueError(f"{self.kind} encoder does not accept {modality} input")
        if len(inputs) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        texts = [str(t) for t in inputs]
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i in range(0, len(texts), self.batch_size):
            idx = order[i: i + self.batch_size]
            out[idx] = self._encode([texts[j] for j in idx], modality, query=query)
        return l2_normalize(out)


class OnnxClipEncoder(_OnnxEncoder):
    """open_clip text and image towers in ONNX, open_clip's tokenizer and preprocessing."""

    def __init__(self, directory: Path, manifest: dict[str, Any], batch_size: int = 32):
        super().__init__(directory, manifest)
        self.clip_cfg = manifest["clip"]
        files = manifest["files"]
        self.modalities = frozenset(  # type: ignore[misc]
            m for m, f in (("text", "text.onnx"), ("image", "image.onnx")) if f in files)
        if not self.modalities:
            raise ValueError("the export holds neither tower")
        self.batch_size = batch_size
        self._tokenize = None
        self._preprocess = None

    def max_tokens(self) -> int:
        return int(self.clip_cfg["context_length"])

    def warm(self, modality: str = "text") -> None:
        if modality == "image":
            self.session("image.onnx")
            self._image_transform()
        else:
            self.session("text.onnx")
            self._tokenizer()  # ftfy and `regex` wait for a text that needs them

    def _tokenizer(self):
        if self._tokenize is None:
            from .clip_tokenizer import ClipTokenizer

            self._tokenize = ClipTokenizer(self.directory / self.clip_cfg["merges"],
                                           int(self.clip_cfg["context_length"]),
                                           self.clip_cfg.get("clean", "lower"))
        return self._tokenize

    def _image_transform(self):
        if self._preprocess is None:
            from .clip_preprocess import ClipPreprocess

            self._preprocess = ClipPreprocess(self.clip_cfg["preprocess"])
        return self._preprocess

    def _tokens(self, texts: list[str]) -> np.ndarray:
        return self._tokenizer()(texts)

    def _pixels(self, images) -> np.ndarray:
        return self._image_transform().batch(images)

    def _encode(self, inputs: Sequence[Any], modality: str, *, query: bool) -> np.ndarray:
        if modality == "image":
            out = self.session("image.onnx").run(None, {"image": self._pixels(inputs)})[0]
        else:
            tokens = self._tokens([str(t) for t in inputs])
            out = self.session("text.onnx").run(None, {"text": tokens})[0]
        return np.asarray(out, dtype=np.float32)
