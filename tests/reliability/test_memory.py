"""Bounded memory: batches shrink when memory runs out, huge texts are chunked in windows."""

from __future__ import annotations

import tracemalloc
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from anyfind.encoders.base import Encoder
from anyfind.extract.base import Section
from anyfind.extract.chunking import Chunker, windows


class SmallMemoryEncoder(Encoder):
    """A real encoder of text lengths that cannot hold more than `room` inputs at once."""

    kind = "small-memory"

    def __init__(self, room: int, error: BaseException, batch_size: int = 64):
        self.room, self.error, self.batch_size = room, error, batch_size
        self.calls: list[int] = []

    @property
    def dim(self) -> int:
        return 3

    def identity(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def _encode(self, inputs: Sequence[str], modality: str, *, query: bool) -> np.ndarray:
        self.calls.append(len(inputs))
        if len(inputs) > self.room:
            raise self.error
        return np.array([[len(t), 1.0, t.count("a")] for t in inputs], dtype=np.float32)


TEXTS = [f"text {'a' * i} number {i}" for i in range(50)]


@pytest.mark.parametrize("error", [MemoryError(), RuntimeError("CUDA out of memory. Tried"),
                                   RuntimeError("DefaultCPUAllocator: can't allocate memory")])
def test_batches_halve_until_they_fit(error):
    enc = SmallMemoryEncoder(room=5, error=error)
    got = enc.encode_documents(TEXTS)
    assert enc.batch_size == 4  # 64 -> 32 -> 16 -> 8 -> 4, and it stays there
    want = SmallMemoryEncoder(room=100, error=error, batch_size=1).encode_documents(TEXTS)
    np.testing.assert_allclose(got, want)
    enc.calls.clear()
    enc.encode_query(TEXTS[:10])
    assert max(enc.calls) == 4  # the next call starts small


def test_other_errors_and_batches_of_one_still_fail():
    with pytest.raises(RuntimeError, match="shape"):
        SmallMemoryEncoder(room=5, error=RuntimeError("bad shape")).encode_documents(TEXTS)
    with pytest.raises(MemoryError):
        SmallMemoryEncoder(room=0, error=MemoryError()).encode_documents(TEXTS)


def test_windows_cover_the_text_and_cut_at_breaks():
    text = "".join(f"Sentence {i} is here. " + ("\n\n" if i % 50 == 49 else "")
                   for i in range(20_000))
    spans = list(windows(text, 10_000))
    assert "".join(piece for _, piece in spans) == text
    assert all(len(piece) <= 10_000 for _, piece in spans)
    assert all(text[start : start + len(piece)] == piece for start, piece in spans)
    assert all(piece.endswith("\n\n") for _, piece in spans[:-1])  # paragraph ends
    assert list(windows("short", 10)) == [(0, "short")]
    assert [len(p) for _, p in windows("x" * 25, 10)] == [10, 10, 5]  # nowhere to cut


@pytest.fixture(scope="module")
def chunker() -> Chunker:
    from anyfind.encoders.text import SentenceTransformerEncoder

    return Chunker(SentenceTransformerEncoder("all-MiniLM-L6-v2").tokenizer(), 256)


def test_huge_text_is_chunked_in_bounded_memory(chunker, monkeypatch):
    rng = np.random.default_rng(0)
    words = np.array("orchard lantern quarry meadow violin copper falcon beacon".split())
    sentences = [" ".join(rng.choice(words, 12)).capitalize() + "." for _ in range(15_000)]
    text = " ".join(sentences)  # ~1.2 MB, ~210k tokens

    def peak(window: int) -> tuple[int, list]:
        import anyfind.extract.chunking as chunking

        monkeypatch.setattr(chunking, "WINDOW_CHARS", window)
        monkeypatch.setattr(chunking.windows, "__defaults__", (window,))
        tracemalloc.start()
        chunks = chunker.chunk_sections([Section(text)])
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top, chunks

    windowed, chunks = peak(250_000)
    whole, _ = peak(len(text) + 1)
    assert windowed < 0.6 * whole, (windowed, whole)
    assert all(text[c.char_start : c.char_end] == c.text for c in chunks)
    covered = sum(len(c.text) for c in chunks)
    assert covered >= len(text) * 0.95
