"""A result's relevance: its signals turned into one score that means the same in every
query and index, and the floor below which a result is not shown.

- Dense: each space's cosine through that space's calibration for the chunk's
  modality (core/calibration.py): 0.12 at the floor an unrelated chunk reaches about
  once in a thousand, 0.5 halfway to a passage that says what the query says.
- Lexical: BM25 saturated against the query's own reference, the score of an
  average-length chunk holding each query term once: s / (s + reference), so 0.5 is
  "every term once", 1/3 "half the query's term weight", and a chunk that shares one
  minor word of a long question stays low.
- Together: the probability-style union 1 - (1 - dense)(1 - lexical), the best space
  for dense. A mode with one kind of signal shows that one.

The floor: a result with no lexical match (half the query's term weight, or three terms'
worth of a long question) whose cosine is under its space's
floor in every space is hidden; `Query.floor = False` (`--all`) shows it. An index with
no calibration (made before it, or empty) shows raw cosines clipped to [0, 1] and
hides nothing. The calibration is measured with 2-8-word pseudo-queries, so the floor
applies to text queries of up to 12 content words (what people type), not to long
questions (a 50-word question's relevant passages sit only a little above the corpus's
background: on CISI a floor cost recall) nor to image queries.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.calibration import Calibration

FLOOR_MAX_TERMS = 12



def lexical_strength(score: float, reference: float | None) -> float:
    """BM25 (or the store's rank) saturated against the query's reference score."""
    if score <= 0:
        return 0.0
    if not reference or reference <= 0:
        return score / (score + 1.0)
    return score / (score + reference)


@dataclass
class Evidence:
    """What each signal said of one result (a key: an item or a chunk)."""

    dense: dict[str, tuple[float, str | None]] = field(default_factory=dict)  # space -> (cosine, modality)
    lexical: float | None = None  # raw BM25 / rank
    ranks: dict[str, int] = field(default_factory=dict)  # signal -> rank from 1


class Judge:
    """Turns evidence into scores and floor decisions for one query."""

    def __init__(self, calibration: Calibration | None, lexical_reference: float | None,
                 spaces: Mapping[str, object], terms: int = 0):
        self.calibration = calibration
        self.reference = lexical_reference
        self.spaces = spaces
        # A lexical match holds half the query's term weight, or three terms' worth of a
        # long question (a 50-word question's relevant passages share a fraction of it).
        share = min(0.5, 3.0 / terms) if terms else 0.5
        self.match = share / (1.0 + share)  # the same, on the s / (s + reference) scale
        self.below: dict[str, float] = {}  # space -> cosine under its last candidate
        # The calibration measured 2-8-word text queries: the floor applies to those (up to
        # FLOOR_MAX_TERMS content words), not to long questions nor to images, whose
        # cosines it did not measure.
        self.floor_applies = 0 < terms <= FLOOR_MAX_TERMS

    def dense(self, space: str, cosine: float, modality: str | None) -> float:
        scale = self.calibration.scale(space, modality) if self.calibration else None
        if scale is None:
            return min(1.0, max(0.0, cosine))
        return scale.score(cosine)

    def above_floor(self, space: str, cosine: float, modality: str | None) -> bool:
        scale = self.calibration.scale(space, modality) if self.calibration else None
        return scale is None or cosine >= scale.floor

    def floors(self, space: str) -> list[float]:
        """Every floor this space has (one per chunk modality)."""
        by = (self.calibration.spaces.get(space) or {}) if self.calibration else {}
        return [scale.floor for scale in by.values()]

    def lexical(self, score: float | None) -> float:
        return 0.0 if score is None else lexical_strength(score, self.reference)

    def score(self, ev: Evidence) -> float:
        d = max((self.dense(s, c, m) for s, (c, m) in ev.dense.items()), default=None)
        lex = self.lexical(ev.lexical) if ev.lexical is not None else None
        if d is None:
            return lex or 0.0
        if lex is None:
            return d
        return 1.0 - (1.0 - d) * (1.0 - lex)

    def rank_value(self, ev: Evidence) -> float:
        """What `fusion="relevance"` sorts by: the log-odds of the two kinds of evidence
        added, as independent evidence adds in naive Bayes: the best space's calibrated
        logit (linear in its cosine, so it never saturates among strong hits) and the
        lexical logit log(s / reference). A result a signal did not return counts as
        that signal's last candidate."""
        logits = [self.dense_logit(s, c, m) for s, (c, m) in ev.dense.items()]
        logits += [self.dense_logit(s, c, None) for s, c in self.below.items()
                   if s not in ev.dense and s in self.spaces]
        value = max(logits) if logits else 0.0
        if self.reference:
            lexical = ev.lexical if ev.lexical is not None else self.below.get("lexical")
            if lexical is not None and lexical > 0:
                value += math.log(lexical / self.reference)
        return value

    def dense_logit(self, space: str, cosine: float, modality: str | None) -> float:
        p = min(max(self.dense(space, cosine, modality), 1e-12), 1 - 1e-12)
        scale = self.calibration.scale(space, modality) if self.calibration else None
        if scale is None:
            return math.log(p / (1 - p))
        return scale.logit(cosine)

    def kept(self, ev: Evidence) -> bool:
        """Above the floor: a lexical match, or a cosine over its space's floor."""
        if ev.lexical is not None and self.lexical(ev.lexical) >= self.match:
            return True
        if not ev.dense:
            return ev.lexical is not None  # lexical mode: every hit matched some word
        return any(self.above_floor(s, c, m) for s, (c, m) in ev.dense.items())

    def details(self, ev: Evidence) -> dict[str, dict[str, float]]:
        """Per signal: its raw score, its calibrated value and its rank (for --json)."""
        out: dict[str, dict[str, float]] = {}
        for s, (c, m) in ev.dense.items():
            scale = self.calibration.scale(s, m) if self.calibration else None
            entry = {"cosine": round(c, 6), "score": round(self.dense(s, c, m), 6)}
            if scale is not None:
                entry["floor"] = round(scale.floor, 6)
            if s in ev.ranks:
                entry["rank"] = ev.ranks[s]
            out[s] = entry
        if ev.lexical is not None:
            entry = {"bm25": round(ev.lexical, 6), "score": round(self.lexical(ev.lexical), 6)}
            if "lexical" in ev.ranks:
                entry["rank"] = ev.ranks["lexical"]
            out["lexical"] = entry
        return out
