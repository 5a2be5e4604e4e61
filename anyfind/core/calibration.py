"""What a cosine means in each embedding space of this index: scores a user can read.

A raw cosine is not a relevance: all-MiniLM gives an unrelated paragraph 0.0-0.2 against
a short query but an unrelated photo's tag vector 0.2-0.4; a CLIP space has its own
scale again. So each space learns, from the index's own data, the similarity of a
query-like text to chunks it has nothing to do with, per chunk modality:

- pseudo-queries: short word windows (2-8 words) cut from a sample of the index's chunks
  (an image's tags are its words), encoded as queries. The sample is chosen by content (a
  hash of what each chunk is: modality, place in its item, length, opening words), not by
  chunk id, so two builds of one corpus that numbered its chunks otherwise (a Ray sync
  writes them as they come back) fit the same scales; an index past LIST_BELOW chunks
  probes random ids instead (it is never listed, so its sample still follows the ids);
- background: their cosines to sampled chunks of *other* items. Its centre and spread
  come from its lower half (median, and MAD below the median), so the related pairs
  that a sample of a real corpus always holds (two notes on coffee) fatten only the
  upper tail and do not move the estimate;
- positives: each pseudo-query's cosine to the chunk it was cut from, the level of
  "this passage says what the query says".

From these: `floor` = background centre + 3 spreads (an unrelated chunk reaches it about
once in a thousand; halfway to the positives when that is lower), and the calibrated score, a logistic that is 0.5 halfway between
the floor and the positives' median (or 4 spreads above the floor, whichever is further:
short pseudo-queries match long chunks less than real questions do) and 0.12 at the floor. It is monotone in the cosine,
in [0, 1], and means the same in every space and index. No labels are used: nothing here
is fitted on an evaluation set.

The fit is a cache in `calibration.json` of the index folder, refitted by a sync when the
number of chunks moved by 10 % or a space's model changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..fsutil import atomic_write_bytes
from ..store.reader import CONTENT_KEY_CHARS, content_key

log = logging.getLogger("anyfind.calibration")

FILE = "calibration.json"
VERSION = 1
SAMPLE_CHUNKS = 2_000  # chunks whose vectors form the background
PSEUDO_QUERIES = 256
FLOOR_SPREADS = 3.0
REFIT_CHANGE = 0.10  # refit when the chunk count moved by this fraction
MIN_PAIRS = 20
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


@dataclass(frozen=True)
class Scale:
    """One (space, chunk modality): the background of unrelated pairs and the level of
    related ones, as cosines."""

    centre: float  # median cosine of a pseudo-query to an unrelated chunk
    spread: float  # robust standard deviation of that background (from its lower half)
    related: float  # median cosine of a pseudo-query to its own chunk
    pairs: int  # background pairs measured
    # 3 spreads above the cosines of off-topic queries (data/background_queries.txt) to
    # these chunks: None in a fit made before it (`stale` refits those)
    off_topic: float | None = None

    @property
    def hide_below(self) -> float:
        """Under this cosine a result is hidden: under the floor AND where queries on
        subjects the collection is not about reach. In a collection on one subject (all
        photos of cats) the pseudo-queries' background is itself related and sits high;
        off-topic queries do not, so a true match is never hidden for resembling its
        neighbours."""
        return self.floor if self.off_topic is None else min(self.floor, self.off_topic)

    @property
    def floor(self) -> float:
        """3 spreads above the background, or halfway to `related` when that is lower: in
        a corpus on one subject (every abstract about libraries) unrelated chunks are
        still on topic, the background runs up to the related level, and a floor there
        would hide relevant results."""
        return min(self.centre + FLOOR_SPREADS * self.spread, (self.centre + self.related) / 2)

    def logit(self, cosine: float) -> float:
        """The calibrated score's log-odds: linear in the cosine, 0 halfway from the
        floor to `related`, -2 at the floor (a slope of 4 / width)."""
        width = max(self.related - self.floor, 4 * self.spread, 0.02)
        return (cosine - self.floor - width / 2) * 4.0 / width

    def score(self, cosine: float) -> float:
        """Calibrated relevance in [0, 1]: 0.12 at the floor, 0.5 halfway to `related`."""
        x = self.logit(cosine)
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))

    def z(self, cosine: float) -> float:
        """Spreads above the unrelated background: what fusion adds across spaces."""
        return (cosine - self.centre) / self.spread

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "floor": round(self.floor, 6),
                "hide_below": round(self.hide_below, 6)}


@dataclass
class Calibration:
    """Every space's scales, by chunk modality ("*": all modalities pooled)."""

    spaces: dict[str, dict[str, Scale]]
    models: dict[str, str]
    chunks: int  # how many chunks the index held when fitted

    def scale(self, space: str, modality: str | None) -> Scale | None:
        by = self.spaces.get(space) or {}
        return by.get(modality or "") or by.get("*")

    def to_json(self) -> dict[str, Any]:
        return {"version": VERSION, "chunks": self.chunks, "models": self.models,
                "spaces": {s: {m: asdict(v) for m, v in by.items()}
                           for s, by in self.spaces.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration | None:
        if not isinstance(data, dict) or data.get("version") != VERSION:
            return None
        try:
            spaces = {s: {m: Scale(**v) for m, v in by.items()}
                      for s, by in data["spaces"].items()}
            return cls(spaces, dict(data.get("models") or {}), int(data.get("chunks") or 0))
        except (KeyError, TypeError, ValueError):
            return None


# -- reading (searches) ---------------------------------------------------------------------
_cache: dict[Path, tuple[float, Calibration | None]] = {}
_cache_lock = threading.Lock()


def load(index_dir: Path) -> Calibration | None:
    """The index's calibration, None when it has none (an index made before it, or too
    small to measure); re-read when the file changes."""
    path = Path(index_dir) / FILE
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return None
    with _cache_lock:
        hit = _cache.get(path)
        if hit is not None and hit[0] == mtime:
            return hit[1]
    try:
        calib = Calibration.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        calib = None
    with _cache_lock:
        _cache[path] = (mtime, calib)
    return calib


@dataclass
class FitInputs:
    """What a fit reads, as plain inputs (the open index makes them: `fit_inputs()`)."""

    folder: Path  # where calibration.json is cached
    reader: Any  # the store's reads: chunk_stamp, chunk_ids, chunk_facts, chunk_rows
    spaces: dict[str, Any]  # name -> encoders.space.Space (modalities, model, query encoder)
    vectors: Callable[[str, list[int]], tuple[np.ndarray, np.ndarray]]  # (space, ids) -> (ids, matrix)
    shared: Any = None  # store/index_files.IndexFiles: the copy servers with only the config read


def stale(opened: FitInputs, chunks: int) -> bool:
    calib = load(opened.folder)
    if calib is None:
        return chunks > 0
    if any(scale.off_topic is None for by in calib.spaces.values() for scale in by.values()):
        return True  # fitted before the off-topic background
    if set(calib.models) != set(opened.spaces) or any(
            calib.models.get(n) != s.config.model for n, s in opened.spaces.items()):
        return True
    return abs(chunks - calib.chunks) > REFIT_CHANGE * max(calib.chunks, 1)


# -- fitting (syncs) ------------------------------------------------------------------------
def refresh(opened: FitInputs, force: bool = False) -> Calibration | None:
    """Refit when stale (or `force`); never fails a sync: a problem is logged and the
    old fit (or none) stays."""
    try:
        chunks = int(opened.reader.chunk_stamp()[1])
        if not force and not stale(opened, chunks):
            return load(opened.folder)
        calib = fit(opened, chunks)
        path = opened.folder / FILE
        content = json.dumps(calib.to_json(), indent=1).encode()
        atomic_write_bytes(path, content)
        if opened.shared is not None:  # for servers with only the config
            opened.shared.put(FILE, content)
        return calib
    except Exception as exc:  # noqa: BLE001 (scores fall back to raw cosines)
        log.warning("calibrating the scores failed: %s: %s", type(exc).__name__, exc)
        return load(opened.folder)


LIST_BELOW = 200_000  # chunks: their ids are listed (1.6 MB) and sampled; probed above


def sample_chunk_ids(reader, n: int, rng: np.random.Generator,
                     list_below: int = LIST_BELOW) -> np.ndarray:
    """Up to n distinct chunk ids, sorted: those whose content key hashes lowest, a
    sample as random as the hash and the same in every build of one corpus. A large
    index is never listed (10^9 ids are 8 GB): random ids up to the highest are probed
    in batches and the existing ones kept, each existing chunk as likely as any other
    (ids are never reused, so the gaps are deletions)."""
    top, count = reader.chunk_stamp()
    if count <= list_below:
        keys = dict(reader.chunk_content_keys())
        return np.sort(np.asarray(in_content_order(keys)[:n], dtype=np.int64))
    found: set[int] = set()
    for _ in range(20):  # each round expects to find what is missing
        need = n - len(found)
        if need <= 0:
            break
        size = min(int(need * top / max(count, 1) * 1.2) + 16, 1_000_000)
        probes = rng.integers(1, top + 1, size=size)
        found.update(reader.chunk_facts(np.unique(probes).tolist()))
    ids = np.asarray(sorted(found), dtype=np.int64)
    return np.sort(rng.choice(ids, n, replace=False)) if len(ids) > n else ids


def in_content_order(keys: dict[int, str]) -> list[int]:
    """Chunk ids ordered by a hash of their content key (ties, copies of one chunk, by
    the key, then the id): an order no build's numbering can change."""
    def rank(kv: tuple[int, str]) -> tuple[bytes, str, int]:
        return hashlib.blake2b(kv[1].encode(), digest_size=8).digest(), kv[1], kv[0]
    return [c for c, _ in sorted(keys.items(), key=rank)]


def row_key(row: dict[str, Any]) -> str:
    """A chunk row's content key, as the store's `chunk_content_keys` gives it."""
    text = row.get("text") or ""
    return content_key(row.get("chunk_modality"), row.get("ordinal"), len(text),
                       text[:CONTENT_KEY_CHARS])


def fit(opened: FitInputs, chunks: int, seed: int = 0) -> Calibration:
    rng = np.random.default_rng(seed)
    reader = opened.reader
    ids = sample_chunk_ids(reader, SAMPLE_CHUNKS, rng)
    rows = reader.chunk_rows(ids.tolist()) if len(ids) else {}
    # pseudo-queries are cut in content order too (rows come in id order)
    rows = {c: rows[c] for c in in_content_order({c: row_key(r) for c, r in rows.items()})}
    queries, origins = pseudo_queries(rows, rng)
    spaces: dict[str, dict[str, Scale]] = {}
    for name, space in opened.spaces.items():
        if not queries or "text" not in space.modalities:
            continue
        got, matrix = opened.vectors(name, ids.tolist())
        if not len(got):
            continue
        # the encoder searches use (the ONNX export when current: a sync need not load torch)
        qv = np.asarray(space.query_encoder.encode_query(queries, "text"), dtype=np.float32)
        off = np.asarray(space.query_encoder.encode_query(off_topic_queries(), "text"),
                         dtype=np.float32)
        spaces[name] = scales_of(qv, origins, got, matrix, rows, off)
    return Calibration(spaces, {n: s.config.model for n, s in opened.spaces.items()}, chunks)


def pseudo_queries(rows: dict[int, dict[str, Any]], rng: np.random.Generator
                   ) -> tuple[list[str], list[int]]:
    """Short word windows from sampled chunks, with the chunk each came from."""
    with_words = [(cid, _WORD.findall(r.get("text") or "")) for cid, r in rows.items()]
    with_words = [(cid, w) for cid, w in with_words if w]
    if not with_words:
        return [], []
    # Always PSEUDO_QUERIES (windows of other lengths and places when chunks are few): on
    # a small index fewer queries made the related level a coin toss (a 10-chunk vault's
    # text level moved 0.59-0.69 with the seed).
    picks = rng.choice(len(with_words), PSEUDO_QUERIES,
                       replace=len(with_words) < PSEUDO_QUERIES)
    queries, origins = [], []
    for i in picks:
        cid, words = with_words[int(i)]
        length = int(rng.integers(2, 9))
        start = int(rng.integers(0, max(1, len(words) - length + 1)))
        queries.append(" ".join(words[start:start + length]))
        origins.append(cid)
    return queries, origins


def off_topic_queries() -> list[str]:
    """Short queries on many subjects (data/background_queries.txt)."""
    text = (Path(__file__).parent / "data" / "background_queries.txt").read_text("utf-8")
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.startswith("#")]


def scales_of(qv: np.ndarray, origins: list[int], ids: np.ndarray, matrix: np.ndarray,
              rows: dict[int, dict[str, Any]], off: np.ndarray | None = None
              ) -> dict[str, Scale]:
    """Scales per chunk modality (and "*" pooled) from query vectors and chunk vectors;
    `off`: off-topic query vectors, their cosines the collection-independent background."""
    sims = qv @ matrix.T  # (queries, chunks)
    off_sims = off @ matrix.T if off is not None and len(off) else None
    item_of = np.asarray([rows[int(c)]["item_id"] if int(c) in rows else -1 for c in ids])
    modality_of = np.asarray([(rows.get(int(c)) or {}).get("chunk_modality") or "" for c in ids])
    query_item = np.asarray([rows[o]["item_id"] for o in origins])
    unrelated = query_item[:, None] != item_of[None, :]
    position = {int(c): j for j, c in enumerate(ids)}
    own = np.asarray([position.get(o, -1) for o in origins])
    own_modality = np.asarray([modality_of[j] if j >= 0 else "" for j in own])
    own_sims = np.asarray([sims[i, j] for i, j in enumerate(own) if j >= 0])
    out: dict[str, Scale] = {}
    for modality in [*sorted(set(modality_of.tolist())), "*"]:
        cols = np.ones(len(ids), bool) if modality == "*" else modality_of == modality
        background = sims[:, cols][unrelated[:, cols]]
        if len(background) < MIN_PAIRS:
            continue
        mine = (own_sims if modality == "*" else
                np.asarray([sims[i, j] for i, j in enumerate(own)
                            if j >= 0 and own_modality[i] == modality]))
        scale = robust_scale(background, mine)
        if scale is not None and off_sims is not None:
            scale = replace(scale, off_topic=off_topic_level(off_sims[:, cols].ravel()))
        if scale is not None:
            out[modality] = scale
    return out


def off_topic_level(sims: np.ndarray) -> float:
    """3 robust spreads above the centre of off-topic queries' cosines."""
    sims = sims[np.isfinite(sims)]
    centre = float(np.median(sims))
    lower = centre - sims[sims <= centre]
    spread = max(1.4826 * float(np.median(lower)) if len(lower) else 0.0, 0.01)
    return round(centre + FLOOR_SPREADS * spread, 6)


def robust_scale(background: np.ndarray, positives: np.ndarray) -> Scale | None:
    background = background[np.isfinite(background)]
    if len(background) < MIN_PAIRS:
        return None
    centre = float(np.median(background))
    lower = centre - background[background <= centre]
    spread = 1.4826 * float(np.median(lower)) if len(lower) else 0.0
    spread = max(spread, 0.01)
    floor = centre + FLOOR_SPREADS * spread
    related = float(np.median(positives)) if len(positives) >= 3 else floor + 4 * spread
    return Scale(round(centre, 6), round(spread, 6), round(max(related, centre + 0.02), 6),
                 int(len(background)))
