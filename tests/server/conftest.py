"""Server fixtures: one real index (photos, documents, a spoken recording) built once,
apps over it, and a real uvicorn on a free loopback port."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "images"
HAS_ESPEAK = shutil.which("espeak-ng") is not None
TOKEN = "test-token-0123456789"

INTRO = "Welcome to the weekly team meeting."
BUDGET = "The marketing budget for next year will be cut by ten percent."
LAUNCH = "Our rocket launch is scheduled for Friday morning at the coast."
RATE = 22050  # espeak-ng's output rate

NOTES = ("# Coffee notes\n\nA flat white has more milk foam than a cortado; both start from "
         "a double shot of espresso pulled for about twenty-eight seconds.")
PDF_PAGES = [
    "Quarterly report. Revenue grew by twelve percent compared with the previous quarter.",
    "Risks. The main risk is a shortage of semiconductor chips delaying our deliveries.",
]


def speak(text: str, path: Path) -> np.ndarray:
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "130", "-w", str(path), text], check=True)
    import av

    with av.open(str(path)) as c:
        return np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])


def write_flac(samples: np.ndarray, rate: int, path: Path) -> None:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("flac", rate=rate)
        s.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1).astype(np.int16),
                                           format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in s.encode(frame):
            c.mux(packet)
        for packet in s.encode(None):
            c.mux(packet)


def make_pdf(path: Path, pages: list[str]) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> dict:
    """Photos, a Markdown note, a 2-page PDF, an HTML page with a script, and (with
    espeak-ng) a spoken meeting whose budget sentence starts a few seconds in."""
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
    if HAS_ESPEAK:
        parts = [speak(t, root / f"p{i}.wav") for i, t in enumerate((INTRO, BUDGET, LAUNCH))]
        gap = np.zeros(int(RATE * 1.5), dtype=parts[0].dtype)
        write_flac(np.concatenate([parts[0], gap, parts[1], gap, parts[2]]), RATE,
                   folder / "meeting.flac")
        info["budget_start"] = (len(parts[0]) + len(gap)) / RATE
        speak("rocket launch on Friday", root / "query.wav")
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


def free_socket(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


def running(app, host: str = "127.0.0.1"):
    """A real uvicorn serving `app` on a free loopback port, in a thread; its base URL."""
    from anyfind.server.run import background

    return background(app, host)


@pytest.fixture(scope="session")
def live_server(app) -> Iterator[str]:
    with running(app) as url:
        yield url


def ids_by_name(client, headers=None) -> dict[str, int]:
    """Item ids of the corpus by file name, found through the API itself."""
    out: dict[str, int] = {}
    for q in ("coffee espresso", "cat", "rocket", "camera", "report revenue", "green tea",
              "marketing budget"):
        for r in client.get("/api/search", params={"q": q, "k": 20},
                            headers=headers).json()["results"]:
            out[Path(r["path"]).name] = r["item_id"]
    return out
