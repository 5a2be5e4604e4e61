"""GET /api/search (text, with the filter syntax) and POST /api/search (by example)."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, HTTPException, Query, Response, UploadFile

from ..deps import IndexDep, SettingsDep
from ..schemas import SearchResponse
from ..uploads import decode_image, read_upload, spooled

router = APIRouter(prefix="/api", tags=["search"])

Mode = Literal["hybrid", "dense", "lexical"]
K = Annotated[int, Query(ge=1, le=100, description="number of results")]
Offset = Annotated[int, Query(ge=0, le=10_000, description="skip this many (paging)")]
Filters = Annotated[str | None, Query(
    max_length=1000, description="filter expression, e.g. `modality:image ext:pdf after:2024-01-01`")]


All = Annotated[bool, Query(alias="all", description="also the matches under the "
                                                    "relevance floor")]


def run_search(index: Any, text: str | None, *, filters: str | None = None,
               literal: bool = False, **kwargs: Any) -> tuple[list[dict[str, Any]], int]:
    """The library's search, as JSON-ready dicts, and how many the floor hid."""
    results = index.search(text, filters=filters, syntax=not literal, **kwargs)
    return [r.to_dict() for r in results], getattr(results, "hidden", 0)


def _timed(response: Response, started: float) -> float:
    took = round((time.perf_counter() - started) * 1000, 2)
    response.headers["Server-Timing"] = f"search;dur={took}"
    return took


@router.get("/search", response_model=SearchResponse, summary="Search by text")
def search(
    index: IndexDep,
    response: Response,
    q: Annotated[str, Query(min_length=1, max_length=2000,
                            description="words, optionally with filters (`ext:pdf`)")],
    k: K = 10,
    offset: Offset = 0,
    mode: Mode = "hybrid",
    filters: Filters = None,
    chunks: Annotated[bool, Query(description="one result per passage, not per item")] = False,
    show_all: All = False,
    group: Annotated[bool, Query(description=(
        "also `groups`: one card per note with its matching passages and the matching "
        "items it embeds or links (notes vaults); `results` holds their members"))] = False,
) -> dict[str, Any]:
    """Ranked results across every modality and source: the `search --json` fields."""
    from ...search.context import GROUP_DEPTH, grouped

    started = time.perf_counter()
    found = index.search(q, filters=filters, syntax=True, k=k * GROUP_DEPTH if group else k,
                         offset=offset, mode=mode, chunks=chunks, floor=not show_all)
    hidden = getattr(found, "hidden", 0)
    cards = grouped(found, k) if group else None
    members = [r for card in cards for r in card.results] if cards is not None else found
    out = {"query": q, "filters": filters, "mode": mode, "k": k, "offset": offset,
           "count": len(members), "took_ms": _timed(response, started),
           "index": str(index.path), "hidden": hidden,
           "results": [r.to_dict() for r in members]}
    if cards is not None:
        out["groups"] = [{"note": c.note, "score": c.score,
                          "members": [r.item_id for r in c.results]} for c in cards]
    return out


@router.post("/search", response_model=SearchResponse, summary="Search by example")
def search_by_example(
    index: IndexDep,
    settings: SettingsDep,
    response: Response,
    file: Annotated[UploadFile, File(description="an image (JPEG, PNG, WebP, GIF...) or an "
                                                 "audio clip (WAV, FLAC, MP3, OGG, M4A...)")],
    k: Annotated[int, Form(ge=1, le=100)] = 10,
    offset: Annotated[int, Form(ge=0, le=10_000)] = 0,
    mode: Annotated[Mode, Form()] = "hybrid",
    filters: Annotated[str | None, Form(max_length=1000)] = None,
    show_all: Annotated[bool, Form(alias="all")] = False,
) -> dict[str, Any]:
    """Query by example: an image is searched in the image spaces, an audio clip is
    transcribed and its words searched (the transcript comes back as `query`).
    413 over the size limit, 415 for anything but an image or audio."""
    started = time.perf_counter()
    upload = read_upload(file, settings.max_upload_bytes)
    text = None
    if upload.modality == "image":
        image = decode_image(upload, index)
        results, hidden = run_search(index, None, image=image, filters=filters, k=k,
                                     offset=offset, mode=mode, floor=not show_all)
    else:
        with spooled(upload) as path:
            try:
                text = index.transcribe_query(path).strip()
            except Exception as exc:  # the message names our temp file: name the upload
                detail = str(exc).replace(str(path), upload.name).replace(path.name,
                                                                          upload.name)
                detail = " ".join(detail.split())[:300]
                raise HTTPException(422, f"cannot read the audio clip {upload.name}: "
                                         f"{detail or type(exc).__name__}") from exc
        results, hidden = [], 0
        if text:
            results, hidden = run_search(index, text, filters=filters, literal=True, k=k,
                                         offset=offset, mode=mode, floor=not show_all)
    return {"query": text, "filters": filters, "mode": mode, "k": k, "offset": offset,
            "example": upload.modality, "count": len(results),
            "took_ms": _timed(response, started), "index": str(index.path),
            "hidden": hidden, "results": results}
