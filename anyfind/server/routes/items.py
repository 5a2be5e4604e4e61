"""One item: metadata, original content (with Range), thumbnail, similar items."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from starlette.responses import FileResponse

from ..content import content_response
from ..deps import IndexDep
from ..schemas import ItemModel, SearchResponse
from ..security import mask_url

router = APIRouter(prefix="/api/items", tags=["items"])

ItemId = Annotated[int, Path(ge=1, le=2**62, description="an item id from a search result")]
HIDDEN = ("fingerprint", "content_hash", "source_id", "meta", "parent_id")


@router.get("/{item_id}", response_model=ItemModel, summary="Item metadata")
def item(index: IndexDep, item_id: ItemId,
         chunks: Annotated[bool, Query(description="include every passage")] = False
         ) -> dict[str, Any]:
    """Metadata, image tags, and the transcript of a recording ([start, end, text])."""
    row = index.item(item_id)
    if row is None:
        raise HTTPException(404, f"no item {item_id}")
    meta = dict(row.get("meta") or {})
    passages = row.pop("chunks")
    out = {k: v for k, v in row.items() if k not in HIDDEN}
    out.update(
        uri=mask_url(row["uri"]),
        tags=meta.pop("tags", []),
        transcript=meta.pop("transcript", []),
        meta=meta,
        chunk_count=len(passages),
        has_thumbnail=index.thumbnail(item_id) is not None,
    )
    if chunks:
        out["chunks"] = [{k: c[k] for k in ("id", "ordinal", "modality", "text", "page",
                                             "start_s", "end_s", "char_start", "char_end")}
                         for c in passages]
    return out


@router.get("/{item_id}/content", summary="Original content",
                  response_class=FileResponse,
                  responses={200: {"description": "the whole file"},
                             206: {"description": "the requested byte range(s)"},
                             416: {"description": "range not satisfiable"}})
def content(index: IndexDep, item_id: ItemId,
            download: Annotated[bool, Query(description="as an attachment")] = False
            ) -> FileResponse:
    """The original bytes with their content type; honours `Range: bytes=...`."""
    return content_response(index, item_id, download)


@router.head("/{item_id}/content", include_in_schema=False)
def content_head(index: IndexDep, item_id: ItemId, download: bool = False) -> FileResponse:
    return content_response(index, item_id, download)


@router.get("/{item_id}/thumbnail", summary="Thumbnail (JPEG)", response_class=FileResponse,
            responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "none"}})
def thumbnail(index: IndexDep, item_id: ItemId,
              frame: Annotated[int | None, Query(ge=0, le=2**31, description=(
                  "a video's kept frame (a moment's `frame`)"))] = None) -> FileResponse:
    path = index.thumbnail(item_id, frame)
    if path is None:
        raise HTTPException(404, f"no thumbnail for item {item_id}"
                            + (f" frame {frame}" if frame is not None else ""))
    # An item id always names the same content (a changed file becomes a new item).
    return FileResponse(path, media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=86400"})


@router.get("/{item_id}/related", summary="Related items")
def related(index: IndexDep, item_id: ItemId,
            k: Annotated[int, Query(ge=1, le=100)] = 10,
            unlinked: Annotated[bool, Query(description=(
                "only the similar items it does not link or embed already"))] = False
            ) -> dict[str, Any]:
    """What it links or embeds, what links or embeds it, and the most similar items, each
    with its reason ("embeds", "linked from", "similar 0.83")."""
    if index.item(item_id) is None:
        raise HTTPException(404, f"no item {item_id}")
    return {"item": item_id, "related": index.related(item_id, k=k, unlinked=unlinked)}


@router.get("/{item_id}/similar", response_model=SearchResponse, summary="Similar items")
def similar(index: IndexDep, item_id: ItemId,
            k: Annotated[int, Query(ge=1, le=100)] = 10,
            offset: Annotated[int, Query(ge=0, le=10_000)] = 0) -> dict[str, Any]:
    """Items nearest to this one, across modalities."""
    import time

    if index.item(item_id) is None:
        raise HTTPException(404, f"no item {item_id}")
    started = time.perf_counter()
    results = [r.to_dict() for r in index.similar(item_id, k=k, offset=offset)]
    return {"query": None, "filters": None, "mode": "similar", "k": k, "offset": offset,
            "count": len(results), "took_ms": round((time.perf_counter() - started) * 1000, 2),
            "results": results}
