"""Server fixtures: one real index (photos, documents, a spoken recording) built once,
apps over it, and a real uvicorn on a free loopback port."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")

from tests.server.server_fixtures import (  # noqa: E402
    BUDGET,
    HAS_ESPEAK,
    INTRO,
    LAUNCH,
    NOTES,
    PDF_PAGES,
    PHOTOS,
    RATE,
    SPOKEN_QUERY,
    TOKEN,
    make_pdf,
    running,
    speak,
    write_flac,
)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> dict:
    """Photos, a Markdown note, a 2-page PDF, an HTML page with a script, a silent
    screencast of two slides, and (with espeak-ng) a spoken meeting whose budget sentence
    starts a few seconds in."""
    root = tmp_path_factory.mktemp("server-corpus")
    folder = root / "corpus"
    folder.mkdir()
    for p in PHOTOS.glob("*.jpg"):
        shutil.copy(p, folder / p.name)
    (folder / "coffee-notes.md").write_text(NOTES)
    make_pdf(folder / "report.pdf", PDF_PAGES)
    (folder / "page.html").write_text(
        "<html><head><title>Tea</title><script>alert(1)</script></head><body><p>Green tea "
        "is steeped at eighty degrees for two minutes.</p></body></html>")
    info: dict = {"folder": folder, "root": root}
    from video_fixtures import Shown, lecture

    # A silent two-slide screencast (VP8, which Chromium plays): found as moments.
    info["video_slides"] = lecture(folder / "screencast.webm", [
        Shown("Gradient Clipping", ["keeps exploding updates bounded"], ""),
        Shown("Learning Rate Warmup", ["small steps during the first epochs"], "")],
        fps=5, codec="libvpx", sound=False, min_seconds=4)
    if HAS_ESPEAK:
        parts = [speak(t, root / f"p{i}.wav") for i, t in enumerate((INTRO, BUDGET, LAUNCH))]
        gap = np.zeros(int(RATE * 1.5), dtype=parts[0].dtype)
        write_flac(np.concatenate([parts[0], gap, parts[1], gap, parts[2]]), RATE,
                   folder / "meeting.flac")
        info["budget_start"] = (len(parts[0]) + len(gap)) / RATE
        speak(SPOKEN_QUERY[0], root / "query.wav", words_per_minute=SPOKEN_QUERY[1])
        info["query_wav"] = root / "query.wav"
    return info


@pytest.fixture(scope="session")
def index_path(corpus, tmp_path_factory) -> Path:
    from anyfind import Index

    path = tmp_path_factory.mktemp("server-index") / "index"
    # Small windows: each spoken sentence becomes its own passage, with its own start.
    with Index.open(path, chunk_tokens=16) as idx:
        report = idx.add([corpus["folder"]])
    assert report.failed == 0, report.errors
    return path


@pytest.fixture(scope="session")
def app(index_path):
    from anyfind.server import create_app

    return create_app(index_path)


@pytest.fixture(scope="session")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="session")
def secured_client(index_path):
    from fastapi.testclient import TestClient

    from anyfind.server import create_app

    with TestClient(create_app(index_path, token=TOKEN, max_upload_bytes=1024 * 1024,
                               warm=False)) as c:
        yield c


@pytest.fixture(scope="session")
def live_server(app) -> Iterator[str]:
    with running(app) as url:
        yield url
