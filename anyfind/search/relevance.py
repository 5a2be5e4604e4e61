"""A result's relevance: its signals turned into one score that means the same in every
query and index, the order that score gives, and the floor below which a result is not
shown.

- Dense: each space's cosine through that space's calibration for the chunk's
  modality (core/calibration.py), a logistic: 0.12 at the floor an unrelated chunk
  reaches about once in a thousand, 0.5 halfway to a passage that says what the query
  says.
- Lexical: BM25 against the query's own reference, the score of an average-length chunk
  holding each query term once (tantivy, FTS5 and PostgreSQL each compute theirs):
  s / (s + share x reference), 0.5 at a *lexical match*, a chunk that holds half the
  query's term weight, or three terms' worth of a long question (`share`). A chunk that
  shares one minor word of a question stays low.
- Together, the score shown: the union 1 - (1 - dense)(1 - lexical), the best space for
  dense. A mode with one kind of signal shows that one.
- The order (`fusion="relevance"`; the default `auto` uses it as soon as a query reaches
  more than written text, search/fusion.py): the best space's calibrated log-odds
  plus the lexical log-odds from a lexical match on (`Judge.rank_value`). Lexical
  evidence under a match adds nothing: with reciprocal rank fusion a clip that shares
  one word with a paraphrase got the lexical list's first rank, and hybrid lost to dense
  on speech and images (docs/SEARCH_QUALITY.md). The shown score follows the order but
  is not forced to be monotone in it.

The floor: a result with no lexical match whose cosine is under its space's floor in
every space is hidden; `Query.floor = False` (`--all`) shows it. The calibration is
measured with 2-8-word pseudo-queries, so the floor applies to text queries of up to
FLOOR_MAX_TERMS content words (what people type), not to long questions (a 50-word
question's relevant passages sit only a little above the corpus's background: on CISI a
floor cost recall) nor to image queries. An index with no calibration (made before it,
or empty) shows raw cosines clipped to [0, 1] and hides nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .fusion import weight_of

if TYPE_CHECKING:
    from ..core.calibration import Calibration

FLOOR_MAX_TERMS = 12
DENSE_FLOOR_LOGIT = -2.0  # Scale.logit at the floor


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


@dataclass
class Evidence:
    """What each signal said of one result (a key: an item or a chunk)."""

    dense: dict[str, tuple[float, str | None]] = field(default_factory=dict)  # space -> (cosine, modality)
    dense_chunks: dict[str, int] = field(default_factory=dict)  # space -> the chunk that cosine is of
    lexical: float | None = None  # raw BM25 / rank
    ranks: dict[str, int] = field(default_factory=dict)  # signal -> rank from 1
    # An embedded image's evidence from the note passage around its embed: log-odds added
    # to its own (search/embed_context.py), and that passage's chunk id.
    context: float | None = None
    context_from: int | None = None


class Judge:
    """Turns evidence into scores, an order and floor decisions for one query."""

    def __init__(self, calibration: Calibration | None, lexical_reference: float | None,
                 spaces: Mapping[str, object], terms: int = 0,
                 weights: Mapping[str, float] | None = None):
        self.calibration = calibration
        self.reference = lexical_reference
        self.spaces = spaces
        self.weights = dict(weights or {})
        # A lexical match holds half the query's term weight, or three terms' worth of a
        # long question (a 50-word question's relevant passages share a fraction of it).
        self.share = min(0.5, 3.0 / terms) if terms else 0.5
        # The calibration measured short text queries: the floor applies to those only.
        self.floor_applies = 0 < terms <= FLOOR_MAX_TERMS
        self.below: dict[str, float] = {}  # signal -> score of its last candidate

    # -- one signal ------------------------------------------------------------------------
    def _scale(self, space: str, modality: str | None):
        return self.calibration.scale(space, modality) if self.calibration else None

    def dense_logit(self, space: str, cosine: float, modality: str | None) -> float:
        scale = self._scale(space, modality)
        if scale is None:  # no calibration: the cosine itself, clipped, as a probability
            p = min(max(cosine, 1e-6), 1 - 1e-6)
            return math.log(p / (1 - p))
        return scale.logit(cosine)

    def dense(self, space: str, cosine: float, modality: str | None) -> float:
        return _sigmoid(self.dense_logit(space, cosine, modality))

    def lexical_logit(self, score: float | None) -> float | None:
        """log(s / (share x reference)): 0 at a lexical match."""
        if score is None or score <= 0:
            return None
        return math.log(score / ((self.reference or 1.0) * self.share))

    def lexical(self, score: float | None) -> float:
        """s / (s + share x reference): 0.5 at a lexical match."""
        x = self.lexical_logit(score)
        return 0.0 if x is None else _sigmoid(x)

    def floors(self, space: str) -> list[float]:
        """Every cosine under which this space hides a result (one per chunk modality)."""
        by = (self.calibration.spaces.get(space) or {}) if self.calibration else {}
        return [scale.hide_below for scale in by.values()]

    def over_floor(self, space: str, cosine: float, modality: str | None) -> bool:
        scale = self._scale(space, modality)
        if scale is None:  # no calibration: the clipped cosine's log-odds against -2
            return self.dense_logit(space, cosine, modality) >= DENSE_FLOOR_LOGIT
        return cosine >= scale.hide_below

    # -- a result --------------------------------------------------------------------------
    def rank_value(self, ev: Evidence) -> float:
        """What `fusion="relevance"` sorts by: the best space's calibrated log-odds (linear
        in its cosine, so strong hits stay apart) plus the lexical evidence from a lexical
        match on, log(s / (share x reference)) when positive: a chunk that shares a word or
        two of a paraphrase adds nothing, and cannot pass a better dense hit. Each signal
        weighted (Query.weights); a signal that did not return this result counts its last
        candidate's score."""
        dense = [(self.dense_logit(s, c, m), s) for s, (c, m) in ev.dense.items()]
        dense += [(self.dense_logit(s, c, None), s) for s, c in self.below.items()
                  if s not in ev.dense and s in self.spaces]
        dense = [(x, s) for x, s in dense if weight_of(s, self.weights) > 0]
        value = max((weight_of(s, self.weights) * x for x, s in dense), default=0.0)
        lex = self.lexical_logit(ev.lexical if ev.lexical is not None
                                 else self.below.get("lexical"))
        if lex is not None and self.reference is not None:
            value += weight_of("lexical", self.weights) * max(0.0, lex)
        if ev.context is not None:  # what its note says of it, added to its own evidence
            value += ev.context
        return value

    def score(self, ev: Evidence) -> float:
        """Calibrated relevance in [0, 1]: 1 - (1 - dense)(1 - lexical), the best space's
        score for dense (an index without calibration: the cosine, clipped)."""
        dense = max((self.dense(s, c, m) for s, (c, m) in ev.dense.items()), default=0.0)
        lexical = self.lexical(ev.lexical)
        own = 1.0 - (1.0 - dense) * (1.0 - lexical)
        return own if ev.context is None else max(own, _sigmoid(self.rank_value(ev)))

    def kept(self, ev: Evidence) -> bool:
        """Above the floor: a lexical match, a cosine over its space's floor, or a note
        passage over the floor that embeds it."""
        if ev.context is not None and self.rank_value(ev) >= DENSE_FLOOR_LOGIT:
            return True
        if ev.lexical is not None and self.lexical(ev.lexical) >= 0.5:
            return True
        if not ev.dense:
            return ev.lexical is not None  # lexical mode: every hit matched some word
        return any(self.over_floor(s, c, m) for s, (c, m) in ev.dense.items())

    def may_pass(self, name: str, last: float) -> bool:
        """Whether a candidate under this signal's last one could still pass the floor."""
        if name == "lexical":
            return self.lexical(last) >= 0.5
        floors = self.floors(name)
        return not floors or last >= min(floors)

    def details(self, ev: Evidence) -> dict[str, dict[str, float]]:
        """Per signal: its raw score, its calibrated value and its rank (for --json)."""
        out: dict[str, dict[str, float]] = {}
        for s, (c, m) in ev.dense.items():
            scale = self._scale(s, m)
            entry = {"cosine": round(c, 6), "score": round(self.dense(s, c, m), 6)}
            if scale is not None:
                entry["floor"] = round(scale.hide_below, 6)
            if s in ev.ranks:
                entry["rank"] = ev.ranks[s]
            out[s] = entry
        if ev.lexical is not None:
            entry = {"bm25": round(ev.lexical, 6), "score": round(self.lexical(ev.lexical), 6)}
            if "lexical" in ev.ranks:
                entry["rank"] = ev.ranks["lexical"]
            out["lexical"] = entry
        if ev.context is not None:
            out["context"] = {"log_odds": round(ev.context, 6), "from_chunk": ev.context_from}
        return out
