"""Response models: what /docs shows. Results keep every `search --json` field, and
fields a newer engine adds pass through (extra="allow")."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ResultModel(BaseModel):
    model_config = ConfigDict(extra="allow")

    rank: int
    score: float
    item_id: int
    chunk_id: int
    uri: str
    path: str
    modality: str | None
    media_type: str | None
    text: str = Field(description="the matching passage (an image's tags)")
    source: str | None = None
    title: str | None = None
    page: int | None = Field(None, description="PDF page of the passage")
    start: float | None = Field(None, description="seconds into a recording")
    end: float | None = None
    char_start: int | None = None
    char_end: int | None = None
    highlights: list[list[int]] = Field(default_factory=list,
                                        description="[start, end) character spans in text")
    tags: list[str] = Field(default_factory=list)
    width: int | None = None
    height: int | None = None
    spaces: dict[str, float] = Field(default_factory=dict, description="each signal's raw score")
    parent: dict[str, Any] | None = Field(
        None, description="for an attachment: the item it is inside ({id, path})")
    signals: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="per signal: cosine or bm25, its calibrated score, "
                                          "the space's floor, its rank")
    fused: float | None = Field(None, description="the fusion value the ranking sorted by")
    regions: list[dict[str, Any]] = Field(
        default_factory=list, description="lines read in the image (OCR) that hold query "
        "words: text, box [x0, y0, x1, y1] as fractions of the image, conf, highlights")
    snippet: str = Field("", description="the best-matching passage of text, ~240 characters")
    linked_from: list[dict[str, Any]] = Field(
        default_factory=list, description=(
            "the notes that embed or link this item (vaults): id, path, title, kind "
            "(embed | link), heading, passage around the embed"))
    embeds: list[dict[str, Any]] = Field(
        default_factory=list, description=(
            "for a note, the items it embeds: id, path, heading, matches (also a result)"))
    moments: list[dict[str, Any]] = Field(
        default_factory=list, description=(
            "in a recording or a video, where it matches, best first: start, end (s), kind "
            "(speech | frame), said, shown (a frame's read words), frame (its thumbnail: "
            "/api/items/{id}/thumbnail?frame=N)"))
    snippet_highlights: list[list[int]] = Field(
        default_factory=list, description="[start, end) spans in snippet")


class SearchResponse(BaseModel):
    query: str | None = Field(description="the text searched (an audio clip's transcript)")
    filters: str | None = None
    mode: str
    k: int
    offset: int
    count: int
    took_ms: float = Field(description="server time for the whole search")
    example: str | None = Field(None, description="image or audio for a query by example")
    index: str | None = Field(None, description="the index searched (its directory), so that "
                                                "`anyfind search --server` can check it")
    hidden: int = Field(0, description="weaker matches under the relevance floor, not shown "
                                       "(all=true shows them)")
    results: list[ResultModel]
    groups: list[dict[str, Any]] | None = Field(None, description=(
        "with group=true: cards, best first: note {id, path, title} (null: an item no note "
        "holds), score, members (item ids of `results`)"))


class ItemModel(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int
    uri: str
    path: str
    source: str | None
    modality: str | None
    media_type: str | None
    size: int | None
    mtime: float | None
    status: str
    error: str | None
    title: str | None
    indexed_at: float | None
    tags: list[dict[str, Any]] = Field(default_factory=list, description="label and probability")
    transcript: list[list[Any]] = Field(default_factory=list, description="[start, end, text]")
    meta: dict[str, Any] = Field(default_factory=dict)
    chunk_count: int
    chunks: list[dict[str, Any]] | None = None
    has_thumbnail: bool
    parent: dict[str, Any] | None = Field(
        None, description="the item this one was found inside ({id, path}), e.g. its e-mail")
    children: list[dict[str, Any]] = Field(
        default_factory=list, description="items found inside this one (attachments)")


class Health(BaseModel):
    status: str
