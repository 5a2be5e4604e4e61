"""Whether a result under the floor is related to what the query is about, or only to how
it is said: the floor's second opinion.

The floor (search/relevance.py) is one cosine per space and chunk modality, measured on
the index's own background. A query's *form* moves every cosine: "a photo of a truck"
against the tags of a truck photo ("moving van, trailer truck") reaches 0.30 where the
image floor is 0.31, and the floor hid half the trucks of a photo folder (issue 26). A
fixed level cannot know the form; the query can. So for a result under the floor the
query is compared with itself said about other subjects: its subject words (what is
left when stop words and form words such as "photo", "picture", "notes" are set aside)
replaced by random words from many subjects, everything else kept ("a photo of a
violin", "a photo of a mortgage"). Those null queries' cosines to the result are what
its form alone reaches, *for that result* (a hub that is near every query is near them
too). A result whose cosine stands Z of their standard deviations above their mean is
related to the subject and is shown; one the null queries reach as well is hidden.

Only a query with a form word gets this second opinion: one said plainly ("lunar orbit
receding") is what the calibration's off-topic queries already model, and the floor
alone decides (a null of random words found a revenue report "specific" to the Moon).
This only ever shows more than the floor alone (a result over the floor stays shown),
costs one batch of NULLS short queries per space when something is under the floor,
and reads the vectors of the candidates under it. No labels: nothing is fitted on an
evaluation set. Z = 2: an unrelated result passes about once in forty tests, and at most
4 x k results under the floor are tested (the floor's own level stays once in a thousand).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np

from .terms import STOP_WORDS

NULLS = 32  # null queries per query: a stable mean and spread, one encoder batch
Z = 2.0
_TOKEN = re.compile(r"\S+")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)

# Words that say what kind of thing is wanted, not what it is about: kept in the null
# queries, so the form is compared with itself. A query without one is all subject: the
# calibration's off-topic queries (subjects said plainly) are its null already, and the
# floor alone decides.
FORM_ONLY = frozenset("""
photo photos photograph photographs picture pictures pic pics image images
snapshot snapshots screenshot screenshots scan scans scanned video videos clip clips
recording recordings footage audio podcast lecture lectures slide
slides document documents doc docs file files note notes page pages article articles
paper papers text report reports email emails mail message messages letter letters
show find search looking look something thing things stuff kind sort type
""".split())  # not "shot", "film", "sound", "talk": as often what a query is about
FORM_WORDS = FORM_ONLY | STOP_WORDS


@lru_cache(maxsize=1)
def subject_words() -> tuple[str, ...]:
    """Words from many unrelated subjects (the off-topic queries of the calibration)."""
    text = (Path(__file__).resolve().parents[1] / "core" / "data" /
            "background_queries.txt").read_text("utf-8")
    found = {w.lower() for line in text.splitlines() if not line.startswith("#")
             for w in _WORD.findall(line)}
    return tuple(sorted(w for w in found if len(w) > 3 and w not in FORM_WORDS))


def null_queries(text: str, n: int = NULLS) -> list[str]:
    """The query said about n other subjects: each subject word replaced by a random
    word, the rest as typed ([] when it has no form word or no subject word: the floor
    alone decides)."""
    tokens = _TOKEN.findall(text)
    if not any(w in FORM_ONLY for w in _WORD.findall(text.lower())):
        return []
    subject = [i for i, t in enumerate(tokens)
               if (w := _WORD.findall(t.lower())) and not all(x in FORM_WORDS for x in w)]
    words = subject_words()
    if not subject or len(words) < len(subject):
        return []
    # Seeded by the query: the same query hides the same results every time.
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        picks = rng.choice(len(words), len(subject), replace=False)
        said = list(tokens)
        for i, p in zip(subject, picks, strict=True):
            said[i] = words[int(p)]
        out.append(" ".join(said))
    return out


class Specificity:
    """For one text query: which chunks under the floor are related to its subject, per
    space. `encode(space, texts)` -> query vectors; `vectors(space, ids)` -> (ids,
    matrix) of chunk vectors."""

    def __init__(self, text: str, query: dict[str, np.ndarray],
                 encode: Callable[[str, list[str]], np.ndarray],
                 vectors: Callable[[str, list[int]], tuple[np.ndarray, np.ndarray]]):
        self.nulls = null_queries(text)
        self.query, self.encode, self.vectors = query, encode, vectors
        self._null_vectors: dict[str, np.ndarray] = {}
        self._known: dict[tuple[str, int], bool] = {}

    def specific(self, space: str, chunk_ids: Iterable[int]) -> set[int]:
        """The chunks among these that stand Z spreads above the null queries' cosines."""
        ids = sorted({int(c) for c in chunk_ids})
        if not self.nulls or space not in self.query or not ids:
            return set()
        todo = [c for c in ids if (space, c) not in self._known]
        if todo:
            nulls = self._null_vectors.get(space)
            if nulls is None:
                nulls = self._null_vectors[space] = np.asarray(
                    self.encode(space, self.nulls), dtype=np.float32)
            got, matrix = self.vectors(space, todo)
            if len(got):
                own = matrix @ np.asarray(self.query[space], dtype=np.float32).ravel()
                null = matrix @ nulls.T  # (chunks, nulls)
                centre, spread = null.mean(axis=1), null.std(axis=1, ddof=1)
                stands = own >= centre + Z * np.maximum(spread, 1e-3)
                for cid, ok in zip(got.tolist(), stands.tolist(), strict=True):
                    self._known[(space, int(cid))] = bool(ok)
            for c in todo:
                self._known.setdefault((space, c), False)
        return {c for c in ids if self._known[(space, c)]}
