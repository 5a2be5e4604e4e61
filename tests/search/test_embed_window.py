"""The embedding window: text chunks of many files are sorted by length and encoded
together, then written in transactions of `batch_chunks` chunks. Sorting must never
move a vector onto another chunk."""

from __future__ import annotations

import random

import numpy as np
import pytest
from sqlalchemy import text as sql

from anyfind import Index


def _write_corpus(folder, n_files: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    words = ("harbour lighthouse tide ferry anchor compass glacier meadow orchard violin "
             "telescope comet bakery sourdough kiln pottery falcon tundra canyon lantern").split()
    for i in range(n_files):
        n = rng.choice((3, 8, 20, 60, 150))  # very different lengths, in no order
        body = " ".join(rng.choice(words) for _ in range(n)) + "."
        (folder / f"note-{i:03d}.txt").write_text(f"Note {i}. {body}\n")


def test_window_sorts_by_length_and_keeps_vectors_on_their_chunks(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _write_corpus(corpus, 40)
    with Index.open(tmp_path / "idx", batch_chunks=8, embed_window=1000) as index:
        enc = index.spaces["text"].document_encoder
        calls: list[list[str]] = []
        real = enc.encode_documents

        def recording(inputs, modality="text"):
            calls.append(list(inputs))
            return real(inputs, modality)

        enc.encode_documents = recording
        writes: list[int] = []
        real_write = index.store.write_items

        def counting(entries):
            writes.append(sum(len(chunks) for _, chunks, _, _ in entries))
            return real_write(entries)

        index.store.write_items = counting
        report = index.add([corpus])
        assert report.added == 40 and report.failed == 0

        # One window: every text went to the model longest first, across files.
        texts = [t for call in calls for t in call]
        assert len(texts) == report.chunks == 40
        lengths = [len(t) for t in texts]
        assert lengths == sorted(lengths, reverse=True)
        # ... and was written in several transactions of about batch_chunks chunks.
        assert len(writes) >= 40 // 8 and sum(writes) == 40
        assert all(n >= 8 for n in writes[:-1])

        # Each stored vector is the embedding of its own chunk's text.
        with index.store.engine.connect() as conn:
            rows = conn.execute(sql("SELECT id, text FROM chunks ORDER BY id")).all()
        ids, matrix = index.store.vectors("text", [cid for cid, _ in rows])
        assert list(ids) == [cid for cid, _ in rows]
        expected = real([t for _, t in rows])
        cosines = np.sum(matrix * expected, axis=1)
        assert cosines.min() > 0.999

        # A search for one note's exact text finds that note first.
        target = (corpus / "note-017.txt").read_text()
        assert index.search(target, k=1, mode="dense")[0].path.endswith("note-017.txt")


def test_small_window_embeds_in_several_calls(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _write_corpus(corpus, 30, seed=3)
    with Index.open(tmp_path / "idx", batch_chunks=4, embed_window=10) as index:
        enc = index.spaces["text"].document_encoder
        sizes: list[int] = []
        real = enc.encode_documents

        def recording(inputs, modality="text"):
            sizes.append(len(inputs))
            return real(inputs, modality)

        enc.encode_documents = recording
        report = index.add([corpus])
        assert report.added == 30 and report.chunks == 30
        # a window closes once it holds >= 10 text chunks: at least 3 windows for 30
        assert len(sizes) >= 3 and sum(sizes) == 30
        assert len(index.search("lighthouse comet", k=5)) == 5


@pytest.mark.parametrize("batch_chunks, cap", [(256, 32), (8, 8)])
def test_images_go_in_windows_of_their_own(tmp_path, batch_chunks, cap):
    """Images: windows of at most one model batch (fewer when the model would otherwise
    wait for decodes, never under 4 but the last); text files in the same folder wait for
    their own window."""
    from PIL import Image

    from tests.support.clip_fixtures import make_tiny_clip_checkpoint

    arch, ckpt = make_tiny_clip_checkpoint(tmp_path / "clip")
    config = tmp_path / "clip" / "configs" / f"{arch}.json"
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rng = np.random.default_rng(0)
    for i in range(30):
        pixels = rng.integers(0, 256, size=(40, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(corpus / f"img-{i:02d}.png")
    _write_corpus(corpus, 6, seed=5)
    with Index.open(tmp_path / "idx", tagger=False, clip_config=str(config),
                    clip_weights=str(ckpt), batch_chunks=batch_chunks) as index:
        calls: dict[str, list[tuple[str, int]]] = {}
        for name, space in index.spaces.items():
            enc = space.document_encoder
            real = enc.encode_documents

            def recording(inputs, modality="text", _real=real, _name=name):
                calls.setdefault(_name, []).append((modality, len(inputs)))
                return _real(inputs, modality)

            enc.encode_documents = recording
        report = index.add([corpus])
        assert report.added == 36 and report.failed == 0
        image_calls = [n for m, n in calls["vision"] if m == "image"]
        assert sum(image_calls) == 30 and len(image_calls) >= -(-30 // cap)
        assert all(4 <= n <= cap for n in image_calls[:-1]) and image_calls[-1] <= cap
        # The six notes went to the text space together, in one call, not cut by images.
        assert [n for m, n in calls["text"] if m == "text"] == [6]
        assert index.search(image=corpus / "img-07.png", k=1)[0].path.endswith("img-07.png")
