"""Real test files made on the spot: PDFs (fpdf2), DOCX (python-docx), speech (espeak-ng,
decoded with PyAV) and FLAC. Shared by the suites; each imports what it needs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

# A spoken meeting in three sentences (the audio and server suites search inside it).
INTRO = "Welcome to the weekly team meeting."
BUDGET = "The marketing budget for next year will be cut by ten percent."
LAUNCH = "Our rocket launch is scheduled for Friday morning at the coast."
# A spoken query about the launch sentence. A whole sentence at a calm rate: Whisper tiny
# heard the three-word clip "rocket launch on Friday" differently per CPU thread count.
SPOKEN_QUERY = ("The launch is scheduled for Friday morning.", 120)
SPEECH_RATE = 22050  # espeak-ng's output sample rate


def make_pdf(path: Path, pages: list[str]) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


def make_docx(path: Path, title: str, paragraphs: list[str]) -> Path:
    import docx

    doc = docx.Document()
    doc.add_heading(title, level=1)
    for text in paragraphs:
        doc.add_paragraph(text)
    doc.save(str(path))
    return path


def speak(text: str, path: Path, words_per_minute: int = 130) -> np.ndarray:
    """Speak `text` into a WAV file with espeak-ng; returns its samples."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(words_per_minute), "-w", str(path),
                    text], check=True, capture_output=True)
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
