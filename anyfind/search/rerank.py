"""Optional second stage: a cross-encoder reads (query, passage) pairs and re-orders the
top results. Any sentence-transformers CrossEncoder works: a local folder or a hub name
(downloaded once on a connected machine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError, require

RERANK_DEPTH = 50  # candidates read by the cross-encoder (at least k + offset)

_models: dict[tuple[str, str | None], Any] = {}


def load_cross_encoder(name: str, device: str | None = None):
    key = (name, device)
    if key not in _models:
        st = require("sentence_transformers", "text")
        from ..encoders.base import resolve_device
        from ..encoders.text import _quiet_transformers

        _quiet_transformers()
        path = Path(name).expanduser()
        target = str(path.resolve()) if path.exists() else name
        try:
            _models[key] = st.CrossEncoder(target, device=resolve_device(device))
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cross-encoder '{name}' could not be loaded ({' '.join(str(exc).split())[:200]}); "
                "pass a local folder, or connect once to download a hub model") from exc
    return _models[key]


def rerank_scores(model, query: str, passages: list[str]) -> list[float]:
    if not passages:
        return []
    scores = model.predict([(query, p) for p in passages], show_progress_bar=False)
    return [float(s) for s in scores]
