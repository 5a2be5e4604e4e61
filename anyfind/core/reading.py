"""Reading an index for people: one item with its family, an index's status."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import check_id
from ..secrets import mask_uri

if TYPE_CHECKING:
    from ..store.metadata import MetadataStore
    from .open_index import OpenIndex


def family_children(store: MetadataStore, item_id: int) -> list[dict[str, Any]]:
    """The items found inside this one, as shown by `anyfind show` and the API."""
    out = []
    for row in store.children_of(item_id):
        info = (row.get("meta") or {}).get("attachment") or {}
        out.append({"id": row["id"], "path": row["path"], "name": info.get("name"),
                    "modality": row["modality"], "media_type": row["media_type"],
                    "size": row["size"], "status": row["status"], "error": row["error"]})
    return out


def item_view(opened: OpenIndex, item_id: Any) -> dict[str, Any] | None:
    """An item's row with its passages (`chunks`), the item it was found inside
    (`parent`: id and path, or None) and the items found inside it (`children`)."""
    item_id = check_id(item_id)
    store = opened.store
    row = store.item(item_id)
    if row is not None:
        row["chunks"] = store.chunks_of_item(item_id)
        row["parent"] = store.parent_of(item_id)
        row["children"] = family_children(store, item_id)
    return row


def thumbnail_of(opened: OpenIndex, item_id: Any, frame: int | None = None):
    """The item's thumbnail (a video's: its first kept frame), or one frame's of a video."""
    row = opened.store.item(check_id(item_id))
    if not row or not row["content_hash"]:
        return None
    thumbnails = opened.thumbnails
    return thumbnails.get(row["content_hash"] if frame is None
                          else thumbnails.frame_key(row["content_hash"], frame))


def ocr_status(opened: OpenIndex) -> str:
    """Which engine reads the text in images here, as a person reads it."""
    from ..ocr import resolve

    try:
        name = resolve(opened.config.ocr)
    except Exception as exc:  # noqa: BLE001 (an engine named in the config, not installed)
        return f"{opened.config.ocr} (unavailable: {exc})"
    if name is None:
        return "off" if opened.config.ocr == "off" else "off (no engine installed)"
    return name if opened.config.ocr == name else f"{name} ({opened.config.ocr})"


def _engine_words(identity: dict[str, Any]) -> str:
    return " ".join(str(identity[k]) for k in ("engine", "version") if identity.get(k))


def ocr_change(opened: OpenIndex) -> str | None:
    """A sentence when the indexed pixels were read by another engine (or another
    version of it) than the one that reads here now; None when they agree."""
    read_with = opened.config.ocr_read_with
    if not read_with:
        return None
    try:
        engine = opened.ocr
        now = engine.identity() if engine is not None else None
    except Exception:  # noqa: BLE001 (ocr_status says why the engine cannot run)
        return None
    if now is None or now == read_with:
        return None
    return (f"the indexed images were read by {_engine_words(read_with)}; this machine reads "
            f"with {_engine_words(now)} (`anyfind reindex --ocr` reads them again)")


def status_of(opened: OpenIndex, sources: list[dict[str, Any]]) -> dict[str, Any]:
    store = opened.store
    counts = store.counts()
    size = sum(f.stat().st_size for f in opened.path.rglob("*") if f.is_file())
    precision = opened.config.document_precision
    if precision == "auto":
        from ..encoders.precision import explain_auto

        precision = f"auto: {explain_auto()}"
    return {
        "index": str(opened.path),
        "store": store.engine.url.render_as_string(hide_password=True),
        "vector_store": mask_uri(opened.config.vector_store),
        "executor": opened.config.executor,
        "document_precision": precision,
        "ocr": ocr_status(opened),
        "ocr_read_with": opened.config.ocr_read_with,
        "ocr_change": ocr_change(opened),
        "spaces": {n: {"encoder": s.config.encoder, "model": s.config.model,
                       "dim": s.config.dim, "vectors": counts["vectors"].get(n, 0),
                       "onnx_export": opened.export_status(s.config)}
                   for n, s in opened.spaces.items()},
        "sources": sources,
        "lexical": opened.lexical.describe(),
        "disk_bytes": size,
        **{k: v for k, v in counts.items() if k not in ("vectors", "sources")},
    }
