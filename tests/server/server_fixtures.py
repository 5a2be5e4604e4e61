"""Helpers of the server tests: the fixture corpus, a loopback uvicorn, item ids."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from makers import (  # noqa: F401
    BUDGET,
    INTRO,
    LAUNCH,
    SPEECH_RATE,
    SPOKEN_QUERY,
    make_pdf,
    speak,
    write_flac,
)

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "images"
HAS_ESPEAK = shutil.which("espeak-ng") is not None
TOKEN = "test-token-0123456789"

RATE = SPEECH_RATE

NOTES = ("# Coffee notes\n\nA flat white has more milk foam than a cortado; both start from "
         "a double shot of espresso pulled for about twenty-eight seconds.")
PDF_PAGES = [
    "Quarterly report. Revenue grew by twelve percent compared with the previous quarter.",
    "Risks. The main risk is a shortage of semiconductor chips delaying our deliveries.",
]


def free_socket(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


def running(app, host: str = "127.0.0.1"):
    """A real uvicorn serving `app` on a free loopback port, in a thread; its base URL."""
    from anyfind.server.run import background

    return background(app, host)


def ids_by_name(client, headers=None) -> dict[str, int]:
    """Item ids of the corpus by file name, found through the API itself."""
    out: dict[str, int] = {}
    for q in ("coffee espresso", "cat", "rocket", "camera", "report revenue", "green tea",
              "marketing budget"):
        for r in client.get("/api/search", params={"q": q, "k": 20},
                            headers=headers).json()["results"]:
            out[Path(r["path"]).name] = r["item_id"]
    return out
