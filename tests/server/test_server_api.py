"""The HTTP API through FastAPI's test client: search, items, thumbnails, status."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from anyfind import Index
from anyfind.search.results import Result
from tests.server.server_fixtures import HAS_ESPEAK, PHOTOS, ids_by_name

needs_audio = pytest.mark.skipif(not HAS_ESPEAK, reason="espeak-ng is not installed")


def names(body: dict) -> list[str]:
    return [Path(r["path"]).name for r in body["results"]]


def test_search_returns_the_search_json_fields_and_timing(client):
    resp = client.get("/api/search", params={"q": "espresso coffee", "k": 5})
    assert resp.status_code == 200
    body = resp.json()
    assert body["query"] == "espresso coffee" and body["k"] == 5 and body["mode"] == "hybrid"
    assert body["count"] == len(body["results"]) > 0 and body["took_ms"] > 0
    assert "search;dur=" in resp.headers["server-timing"]
    fields = {f.name for f in dataclasses.fields(Result)}
    for r in body["results"]:
        assert fields <= set(r)
    assert [r["rank"] for r in body["results"]] == list(range(1, body["count"] + 1))


def test_one_list_mixes_images_and_documents(client):
    body = client.get("/api/search", params={"q": "coffee", "k": 8}).json()
    by_name = {Path(r["path"]).name: r for r in body["results"]}
    assert by_name["coffee.jpg"]["modality"] == "image" and "espresso" in by_name["coffee.jpg"]["tags"]
    assert by_name["coffee.jpg"]["width"] and by_name["coffee.jpg"]["height"]
    assert by_name["coffee-notes.md"]["modality"] == "text"


def test_pdf_hits_carry_their_page(client):
    top = client.get("/api/search", params={"q": "semiconductor shortage", "k": 1}).json()
    assert names(top) == ["report.pdf"] and top["results"][0]["page"] == 2


def test_paging_with_offset(client):
    first = client.get("/api/search", params={"q": "coffee", "k": 2, "all": True}).json()
    second = client.get("/api/search", params={"q": "coffee", "k": 2, "offset": 2,
                                               "all": True}).json()
    assert [r["rank"] for r in second["results"]] == [3, 4]
    assert not set(names(first)) & set(names(second))


def test_invalid_parameters_are_422_and_bad_queries_400(client):
    assert client.get("/api/search").status_code == 422  # q is required
    assert client.get("/api/search", params={"q": "x", "k": 0}).status_code == 422
    assert client.get("/api/search", params={"q": "x", "k": 1000}).status_code == 422
    assert client.get("/api/search", params={"q": "x", "mode": "magic"}).status_code == 422
    resp = client.get("/api/search", params={"q": "   "})
    assert resp.status_code == 400 and "empty query" in resp.json()["detail"]


def test_filters_parameter_is_accepted(client):
    resp = client.get("/api/search", params={"q": "coffee", "filters": "modality:image"})
    assert resp.status_code == 200 and resp.json()["filters"] == "modality:image"


@pytest.mark.skipif(not hasattr(Index, "similar") or "filters" not in Index.search.__code__.co_varnames,
                    reason="needs the search-quality branch")
def test_filters_narrow_the_results(client):
    body = client.get("/api/search", params={"q": "coffee", "filters": "modality:image"}).json()
    assert body["results"] and {r["modality"] for r in body["results"]} == {"image"}


def test_item_metadata_and_tags(client):
    ids = ids_by_name(client)
    item = client.get(f"/api/items/{ids['coffee.jpg']}").json()
    assert item["id"] == ids["coffee.jpg"] and item["modality"] == "image"
    assert item["media_type"] == "image/jpeg" and item["has_thumbnail"] is True
    assert item["tags"][0]["label"] and 0 < item["tags"][0]["prob"] <= 1
    assert item["meta"]["width"] > 0 and "chunks" not in item or item["chunks"] is None
    assert "content_hash" not in item and "fingerprint" not in item
    pdf = client.get(f"/api/items/{ids['report.pdf']}", params={"chunks": True}).json()
    assert pdf["chunk_count"] >= 2 and {c["page"] for c in pdf["chunks"]} == {1, 2}


@needs_audio
def test_item_transcript(client):
    ids = ids_by_name(client)
    item = client.get(f"/api/items/{ids['meeting.flac']}").json()
    assert item["modality"] == "audio" and len(item["transcript"]) >= 3
    start, end, text = item["transcript"][1]
    assert start < end and "budget" in text.lower()


def test_unknown_items_are_404(client):
    for route in ("", "/content", "/thumbnail"):
        assert client.get(f"/api/items/999999{route}").status_code == 404


def test_thumbnail_is_a_jpeg(client):
    ids = ids_by_name(client)
    resp = client.get(f"/api/items/{ids['chelsea.jpg']}/thumbnail")
    assert resp.status_code == 200 and resp.headers["content-type"] == "image/jpeg"
    assert resp.content[:3] == b"\xff\xd8\xff"
    import io

    from PIL import Image

    assert max(Image.open(io.BytesIO(resp.content)).size) <= 256
    assert client.get(f"/api/items/{ids['report.pdf']}/thumbnail").status_code == 404


def test_content_is_the_original_with_its_type(client):
    ids = ids_by_name(client)
    resp = client.get(f"/api/items/{ids['rocket.jpg']}/content")
    assert resp.status_code == 200 and resp.headers["content-type"] == "image/jpeg"
    assert resp.content == (PHOTOS / "rocket.jpg").read_bytes()
    assert resp.headers["accept-ranges"] == "bytes"
    assert 'inline; filename="rocket.jpg"' in resp.headers["content-disposition"]
    pdf = client.get(f"/api/items/{ids['report.pdf']}/content", params={"download": True})
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF-")
    assert pdf.headers["content-disposition"].startswith("attachment")


def test_status_and_health(client):
    st = client.get("/api/status").json()
    assert st["items"] >= 7 and st["spaces"]["text"]["vectors"] > 0
    assert st["server"]["token"] is False and "space:text" in st["server"]["warmed"]
    assert client.get("/healthz").json() == {"status": "ok"}


def test_similar_route_exists(client):
    ids = ids_by_name(client)
    resp = client.get(f"/api/items/{ids['coffee.jpg']}/similar")
    assert resp.status_code == (200 if hasattr(Index, "similar") else 501)


@pytest.mark.skipif(not hasattr(Index, "similar"), reason="needs the search-quality branch")
def test_similar_items(client):
    ids = ids_by_name(client)
    body = client.get(f"/api/items/{ids['coffee.jpg']}/similar", params={"k": 3}).json()
    assert body["results"] and ids["coffee.jpg"] not in [r["item_id"] for r in body["results"]]


def test_search_by_example_image(client):
    with open(PHOTOS / "chelsea.jpg", "rb") as fh:
        resp = client.post("/api/search", files={"file": ("cat.jpg", fh, "image/jpeg")},
                           data={"k": "3"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["example"] == "image" and body["query"] is None
    assert names(body)[0] == "chelsea.jpg" and body["results"][0]["score"] > 0.99


@needs_audio
def test_search_by_spoken_clip(client, corpus):
    with open(corpus["query_wav"], "rb") as fh:
        resp = client.post("/api/search", files={"file": ("q.wav", fh, "audio/wav")})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    # The clip's words are ones Whisper tiny hears the same on any thread count; the hit
    # must be the sentence that says them, not an earlier one.
    heard = body["query"].lower()
    assert body["example"] == "audio" and ("launch" in heard or "friday" in heard), heard
    spoken = [r for r in body["results"] if r["modality"] == "audio"]
    top = spoken[0]
    assert Path(top["path"]).name == "meeting.flac"
    assert any(w in top["text"].lower() for w in ("launch", "friday", "coast")), top["text"]
    assert top["start"] > corpus["budget_start"] + 1  # the third sentence, not an earlier one


def test_openapi_docs(client):
    spec = client.get("/openapi.json").json()
    for path in ("/api/search", "/api/items/{item_id}", "/api/items/{item_id}/content",
                 "/api/items/{item_id}/thumbnail", "/api/items/{item_id}/similar",
                 "/api/status", "/healthz"):
        assert path in spec["paths"], path
    assert "post" in spec["paths"]["/api/search"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_a_video_hit_carries_its_moments_and_frame_thumbnails(client, corpus):
    body = client.get("/api/search", params={"q": "gradient clipping exploding updates"}).json()
    hit = next(r for r in body["results"] if r["path"].endswith("screencast.webm"))
    assert hit["modality"] == "video"
    moment = hit["moments"][0]
    assert moment["kind"] == "frame" and moment["start"] < corpus["video_slides"][0].end
    assert "Gradient Clipping" in moment["shown"]
    thumb = client.get(f"/api/items/{hit['item_id']}/thumbnail",
                       params={"frame": moment["frame"]})
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    missing = client.get(f"/api/items/{hit['item_id']}/thumbnail", params={"frame": 999})
    assert missing.status_code == 404


def test_an_unexpected_error_is_still_one_json_line(app, monkeypatch):
    """What no handler expects (a backend's own exception) answers JSON, as the README
    promises, with one line: not Starlette's plain-text 500 nor a traceback."""
    from fastapi.testclient import TestClient

    from anyfind.index import Index

    def boom(self, *args, **kwargs):
        raise OverflowError("Python int too large to convert to C long\n  (and more lines)")

    monkeypatch.setattr(Index, "search", boom)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/api/search", params={"q": "coffee"})
    assert r.status_code == 500
    assert r.json() == {"detail": "internal error: OverflowError: Python int too large to "
                                  "convert to C long (and more lines)"}
