"""Helpers of the server tests: the fixture corpus, a loopback uvicorn, item ids."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import numpy as np

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
