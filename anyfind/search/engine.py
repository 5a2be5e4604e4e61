"""Query execution: parse filters, search every signal, fuse, group, highlight.

A signal is one ranked list of (chunk id, score): one per embedding space the query
reaches (dense) plus the lexical index. Filters are resolved first to the set of allowed
chunk ids, which restricts every signal before its top-k is cut. Lists are reduced to
items (best chunk per item, or kept per chunk with `chunks=True`) and fused; a mode with
a single signal keeps that signal's own score (cosine, or BM25 for lexical).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import profile
from ..core.query_inputs import (
    image_tag_vector,
    load_query_image,
    read_query_image,
    transcribe_query,
)
from ..errors import QueryError
from .allowed import Allowed
from .context import add_context
from .embed_context import lifts
from .filters import Filters, parse_filters, parse_query
from .fusion import FUSIONS, auto_fusion, rrf, score_fusion
from .highlight import Highlighter
from .moments import TIMED, MomentFinder
from .relevance import Evidence, Judge
from .results import Result, Results, snippet
from .terms import MAX_QUERY_CHARS, has_words, query_terms

if TYPE_CHECKING:

    from ..core import OpenIndex

MODES = ("hybrid", "dense", "lexical")
MIN_DEPTH = 50
# Bounds a caller can ask for: a k or an offset past these is a mistake (FAISS would try to
# allocate k x 8 bytes per space: a SIGABRT, not an exception, at k = 10^9).
MAX_K = 10_000
MAX_OFFSET = 100_000

_executor: ThreadPoolExecutor | None = None
log = logging.getLogger("anyfind.search")
MOMENT_CHUNKS = 8  # an item's other matching chunks looked at for its moments


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="anyfind-search")
    return _executor


def _encode(enc, query: Any, modality: str) -> np.ndarray:
    """One query vector. Models load on their first call: when profiling, the query is
    encoded a second time so that `model` (load) and `encode` are told apart."""
    if not profile.enabled:
        return enc.encode_query([query], modality)[0]
    started = time.perf_counter()
    enc.encode_query([query], modality)
    first = time.perf_counter() - started
    started = time.perf_counter()
    vec = enc.encode_query([query], modality)[0]
    again = time.perf_counter() - started
    profile.add("model", max(0.0, first - again))
    profile.add("encode", again)
    return vec


def _quietly(fn, *args: Any) -> None:
    """A head start only: whatever fails here fails again, reported, where it is used."""
    try:
        fn(*args)
    except Exception:  # noqa: BLE001, S110
        pass


def _lexical(lex, terms: list[str], depth: int, allowed: Allowed | None) -> Signal:
    with profile.stage("lexical"):  # the backend that answers takes the filters its way
        return lex.search(terms, depth, allowed)


@dataclass
class Query:
    text: str | None = None
    image: Any = None  # path, URL or PIL image
    audio: Any = None  # path to a clip
    k: int = 10
    offset: int = 0
    mode: str = "hybrid"
    chunks: bool = False  # one result per matching chunk instead of per item
    min_score: float | None = None
    weights: dict[str, float] = field(default_factory=dict)  # by signal; "dense" = all spaces
    fusion: str = "auto"  # auto (by what the query reaches) | relevance | rrf | score
    filters: Filters | str | None = None  # besides those written in the text
    syntax: bool = True  # False: the text is taken literally, `key:value` is not a filter
    rerank: str | None = None  # a cross-encoder model
    rerank_depth: int = 0  # 0: rerank.RERANK_DEPTH
    terms: list[str] = field(default_factory=list)  # lexical terms (filled in by prepare)
    sources: list[str] | None = None  # only items of these sources (by name)
    audio_transcript: str | None = None  # what a spoken query was heard as
    image_text: str | None = None  # the words a query image shows (OCR), searched as words
    floor: bool = True  # hide results under the relevance floor (False: `--all`)
    prf: bool = False  # pseudo-relevance feedback: a second pass (search/feedback.py)
    embed_context: bool = True  # a note's passage speaks for the images it embeds


Signal = list[tuple[int, float]]  # (chunk id, score), best first


@dataclass
class _Pass:
    """One retrieval pass's inputs: a vector per space, the lexical terms (None: no
    lexical signal), how to judge results, and a lexical query already running."""

    vectors: dict[str, np.ndarray]
    terms: list[str] | None
    judge: Judge
    pending: Any = None
    specificity: Any = None  # search/specific.py, made when something is under the floor


@dataclass
class Ranked:
    fused: float  # what the ranking sorted by
    chunk_id: int  # the chunk shown
    raw: dict[str, float]  # each signal's own score (cosine, BM25)
    evidence: Evidence
    others: tuple[int, ...] = ()  # the item's other matching chunks, best first (moments)


def _interleaved(by_signal: dict[str, list[int]], shown: int) -> tuple[int, ...]:
    """An item's other matching chunks: each signal's first, then each one's second...
    (the lexical signal's best window is looked at even when dense ranks frames first)."""
    out: dict[int, None] = {}
    for rank in range(max(map(len, by_signal.values()), default=0)):
        for order in by_signal.values():
            if rank < len(order) and order[rank] != shown:
                out.setdefault(order[rank])
        if len(out) >= MOMENT_CHUNKS:
            break
    return tuple(out)


def readable(text: str) -> str:
    """A query as valid Unicode: bytes that were not UTF-8 (a shell passes them through as
    surrogates) become U+FFFD, so no tokenizer or database sees a lone surrogate."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:
            return text.encode("utf-8", "replace").decode("utf-8")


def check_page(k: Any, offset: Any) -> None:
    """k and offset as a caller may pass them: whole numbers within bounds."""
    for name, value, low, high in (("k", k, 0, MAX_K), ("offset", offset, 0, MAX_OFFSET)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise QueryError(f"{name} must be a whole number, not {value!r}")
        if not low <= value <= high:
            raise QueryError(f"{name} must be between {low} and {high} (got {value})")


def check_weights(weights: dict[str, Any] | None, spaces: list[str]) -> dict[str, float]:
    """Signal weights by name (lexical, dense, a space name), each a number >= 0."""
    known = ["lexical", "dense", *spaces]
    out: dict[str, float] = {}
    for name, value in (weights or {}).items():
        if name not in known:
            raise QueryError(f"unknown weight '{name}' (use: {', '.join(known)})")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise QueryError(f"weight {name}={value!r} is not a number") from None
        if not np.isfinite(number) or number < 0:
            raise QueryError(f"weight {name}={value!r} must be a number >= 0")
        out[name] = number
    return out


class Searcher:
    """Runs queries on an index. Reads go through `index.reader` (plain sqlite3 on a
    SQLite store); a query with filters uses the SQLAlchemy store, which builds their SQL."""

    def __init__(self, opened: OpenIndex):
        self.opened = opened

    @property
    def store(self):
        return self.opened.store

    @property
    def reader(self):
        return self.opened.reader

    # -- preparing the query -------------------------------------------------------------
    def prepare(self, q: Query) -> Query:
        """Validate, split filters out of the text, and find the lexical terms."""
        if q.mode not in MODES:
            raise QueryError(f"unknown mode '{q.mode}' (use one of: {', '.join(MODES)})")
        if q.fusion not in FUSIONS:
            raise QueryError(f"unknown fusion '{q.fusion}' (use one of: {', '.join(FUSIONS)})")
        check_page(q.k, q.offset)
        q.weights = check_weights(q.weights, list(self.opened.spaces))
        filters = parse_filters(q.filters) if isinstance(q.filters, str) else (q.filters or Filters())
        if q.sources:  # the same push-down as `source:a source:b` written in the query
            known = {src["name"] for src in self.reader.sources()}
            missing = [n for n in q.sources if n not in known]
            if missing:
                raise QueryError(f"no source named '{missing[0]}' (known: {', '.join(sorted(known))})")
            filters = filters + parse_filters(" ".join(f'source:"{n}"' for n in q.sources))
        if q.audio is not None and q.image is not None:
            raise QueryError("give an image or an audio clip, not both")
        if q.audio is not None and q.text is None:
            # A spoken query is transcribed and searched as text.
            q.text = q.audio_transcript = transcribe_query(self.opened, q.audio)
            if not has_words(q.text):
                raise QueryError("no speech was recognised in the audio clip")
        if q.text is not None:
            q.text = readable(q.text)
            if q.syntax:
                parsed = parse_query(q.text[:MAX_QUERY_CHARS])
                filters = filters + parsed.filters
                q.text = parsed.text or None
            else:
                q.text = " ".join(q.text[:MAX_QUERY_CHARS].split()) or None
            if q.text is not None and not has_words(q.text):
                if q.image is None and q.audio is None:
                    raise QueryError(f"nothing to search for in {q.text!r}: the query has no words")
                q.text = None
        q.filters = filters
        if q.text is None and q.image is None and q.audio is None:
            if filters:
                raise QueryError("filters only narrow a search: add words, an image or a clip")
            raise QueryError("empty query: type some words, or pass --image/--audio")
        q.terms = query_terms(q.text) if q.text else []
        if q.image is not None and q.text is None and self.opened.ocr is not None:
            # Decoded once here: the query vectors below reuse the picture.
            q.image = load_query_image(q.image, self.opened.config.max_image_pixels)
            q.image_text = read_query_image(self.opened, q.image)
            q.terms = query_terms(q.image_text) if q.image_text else []
        if q.mode == "lexical":
            if not q.terms:
                raise QueryError("lexical search needs words (an image or a clip has none)")
            if not self.opened.lexical.available:
                raise QueryError("lexical search is not available on "
                                 f"{self.opened.lexical.describe()}")
        if q.rerank and not q.text:
            raise QueryError("reranking needs a text query")
        return q

    # -- signals -------------------------------------------------------------------------
    def _query_vectors(self, q: Query) -> dict[str, np.ndarray]:
        """One query vector per space the query's modality reaches, encoded by the
        space's ONNX export when it is fresh (no torch), else by its torch encoder."""
        out: dict[str, np.ndarray] = {}
        with profile.stage("model"):
            encoders = {name: space.query_encoder for name, space in self.opened.spaces.items()}
            # Loading a model is mostly native work: the second space's loads on a thread
            # while the first space's loads and encodes here.
            modality = "text" if q.text is not None else "image"
            for enc in list(encoders.values())[1:]:
                warm = getattr(enc, "warm", None)  # ONNX encoders: sessions and tokenizers
                if warm is not None and modality in enc.modalities:
                    _pool().submit(_quietly, warm, modality)
        with profile.stage("image"):  # reading the query image (PIL's import included)
            image = load_query_image(q.image, self.opened.config.max_image_pixels) if q.image is not None else None
        for name, enc in encoders.items():
            if q.text is not None and "text" in enc.modalities:
                out[name] = _encode(enc, q.text, "text")
            elif image is not None and "image" in enc.modalities:
                out[name] = _encode(enc, image, "image")
            elif q.image_text and "text" in enc.modalities:  # a screenshot: its words
                out[name] = _encode(enc, q.image_text, "text")
            elif image is not None:  # a text-only space sees the image through its tags
                with profile.stage("encode"):
                    vec = image_tag_vector(self.opened, enc, image)
                if vec is not None:
                    out[name] = vec
        from ..encoders.query import notice_fallbacks

        notice_fallbacks(self.opened.path, self.opened.spaces)
        return out

    def extra_signals(self, q: Query, depth: int) -> dict[str, Signal]:
        """More signals to fuse, beyond the embedding spaces and the lexical index (a hook
        for subclasses; each is a ranked list of (chunk id, score))."""
        return {}

    def dense_signal(self, space: str, vec: np.ndarray, depth: int,
                     allowed: Allowed | None) -> Signal:
        vs = self.opened.vectors(space)
        restrict = allowed.for_vectors(vs) if allowed is not None else {}
        with profile.stage("vector"):
            scores, ids = vs.search(vec[None, :], depth, **restrict)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def _allowed(self, filters: Filters) -> Allowed | None:
        return Allowed(self.store, filters) if filters else None

    # -- search --------------------------------------------------------------------------
    def search(self, q: Query) -> Results:
        self.prepare(q)
        if q.k <= 0:
            return Results()
        want = q.k + q.offset
        if q.rerank:
            from .rerank import RERANK_DEPTH

            want = max(want, q.rerank_depth or RERANK_DEPTH)
        allowed = self._allowed(q.filters)
        lex = self.opened.lexical
        lexical = q.mode != "dense" and bool(q.terms) and lex.available
        depth = max(MIN_DEPTH, want * 5)
        # The first lexical query runs in a thread while the query is being encoded.
        pending = (_pool().submit(_lexical, lex, q.terms, depth, allowed)
                   if lexical else None)
        vectors = self._query_vectors(q) if q.mode != "lexical" else {}
        judge = self.judge(q, q.terms if lexical else None)
        floor = q.floor and q.mode != "lexical" and judge.floor_applies
        first = _Pass(vectors, q.terms if lexical else None, judge, pending)
        ranked, kept, signals = self._retrieve(q, first, want, depth, floor, allowed)
        if q.prf:
            again = self._feedback(q, first, kept, signals)
            ranked, kept, _ = self._retrieve(q, again, want, depth, floor, allowed)
            judge = again.judge
        hidden = len(ranked) - len(kept)
        # Rows (text, metadata) are read for the results shown only.
        if q.rerank:
            results = self._rerank(q, self._materialize(kept[:want], judge))
            results = results[q.offset : q.offset + q.k]
        else:
            results = self._materialize(kept[q.offset : q.offset + q.k], judge)
        if q.min_score is not None:
            results = [r for r in results if r.score >= q.min_score]
        with profile.stage("results"):
            self._finish(results, q, (again if q.prf else first).vectors)
        return Results(results, hidden=hidden)

    def _retrieve(self, q: Query, inputs: _Pass, want: int, depth: int, floor: bool,
                  allowed: Allowed | None
                  ) -> tuple[list[Ranked], list[Ranked], dict[str, Signal]]:
        """Every signal at `depth`, ranked; deeper while too few results pass."""
        lex, judge = self.opened.lexical, inputs.judge
        while True:
            signals = {name: self.dense_signal(name, vec, depth, allowed)
                       for name, vec in inputs.vectors.items()}
            if inputs.terms is not None:
                signals["lexical"] = (inputs.pending.result() if inputs.pending is not None
                                      else _lexical(lex, inputs.terms, depth, allowed))
                inputs.pending = None
            signals.update(self.extra_signals(q, depth))
            ranked = self._rank(signals, q, judge=judge, allowed=allowed,
                                context=q.embed_context and q.text is not None)
            kept = self._over_floor(q, inputs, ranked, want) if floor else ranked
            # Deeper only while some signal was cut at `depth` (it may hold more items),
            # and, under the floor, while what lies deeper could still pass it.
            if len(kept) >= want or not any(
                    len(sig) >= depth and (not floor or judge.may_pass(name, sig[-1][1]))
                    for name, sig in signals.items()):
                return ranked, kept, signals
            depth *= 4

    def _over_floor(self, q: Query, inputs: _Pass, ranked: list[Ranked], want: int
                    ) -> list[Ranked]:
        """The results shown: over the floor, or under it but related to the query's
        subject and not only to its form (search/specific.py), looked at for the first
        `4 x want` under it."""
        judge = inputs.judge
        shown = [judge.kept(r.evidence) for r in ranked]
        under = [r for r, ok in zip(ranked, shown, strict=True)
                 if not ok and r.evidence.dense_chunks][:4 * want]
        if under and q.text is not None:
            if inputs.specificity is None:
                inputs.specificity = self._specificity(q.text, inputs.vectors)
            by_space: dict[str, list[int]] = {}
            for r in under:
                for space, cid in r.evidence.dense_chunks.items():
                    by_space.setdefault(space, []).append(cid)
            with profile.stage("floor"):
                related = {space: inputs.specificity.specific(space, ids)
                           for space, ids in by_space.items()}
            for i, r in enumerate(ranked):
                if not shown[i] and any(cid in related.get(space, ())
                                        for space, cid in r.evidence.dense_chunks.items()):
                    shown[i] = True
        return [r for r, ok in zip(ranked, shown, strict=True) if ok]

    def _specificity(self, text: str, vectors: dict[str, np.ndarray]):
        from .specific import Specificity

        spaces = {n: v for n, v in vectors.items()
                  if "text" in self.opened.spaces[n].query_encoder.modalities}

        def encode(space: str, texts: list[str]) -> np.ndarray:  # threads of one query
            return self.opened.spaces[space].query_encoder.encode_query(texts, "text",
                                                                         as_one_query=True)

        return Specificity(text, spaces, encode, self.opened.chunk_vectors)

    def _feedback(self, q: Query, first: _Pass, kept: list[Ranked], signals: dict[str, Signal]
                  ) -> _Pass:
        """The second pass's query: Rocchio per space on the first pass's top results,
        RM3 on the lexical list's top chunks (search/feedback.py)."""
        from .feedback import RM3_DOCS, ROCCHIO_DOCS, rm3, rocchio

        with profile.stage("feedback"):
            top = [r.chunk_id for r in kept[:ROCCHIO_DOCS]]
            vectors = {}
            for name, vec in first.vectors.items():
                _, matrix = self.opened.chunk_vectors(name, top)
                vectors[name] = rocchio(vec, matrix)
            terms = first.terms
            if terms is not None and signals.get("lexical"):
                hits = signals["lexical"][:RM3_DOCS]
                texts = dict(self.reader.chunk_texts([cid for cid, _ in hits]))
                terms = rm3(terms, [texts.get(cid) or "" for cid, _ in hits],
                            [s for _, s in hits])
            judge = self.judge(q, terms)
            judge.floor_applies = first.judge.floor_applies
            return _Pass(vectors, terms, judge)

    def judge(self, q: Query, terms: list[str] | None) -> Judge:
        """Scores and floor for this query: the index's calibration, and the lexical
        reference of its terms on the backend that answers (None: no lexical signal)."""
        reference = self.opened.lexical.reference(terms) if terms else None
        # The calibration measured text queries: an image query's cosines are shown raw.
        calibration = self.opened.calibration if q.text is not None else None
        return Judge(calibration, reference, self.opened.spaces, len(terms or q.terms),
                     q.weights)

    def _finish(self, results: list[Result], q: Query,
                vectors: dict[str, np.ndarray] | None = None) -> None:
        highlighter = Highlighter(q.terms)
        try:
            self._moments(results, highlighter, q, vectors or {})
        except Exception:  # noqa: BLE001 (moments refine a hit; the hit stands without)
            log.warning("moments were not found", exc_info=True)
        with profile.stage("metadata"):
            add_context(results, self.reader)
        lines = [(r, line) for r in results for line in getattr(r, "_read_lines", ())]
        try:
            spans = highlighter.spans_of([r.text for r in results])
            line_spans = highlighter.spans_of([line["text"] for _, line in lines])
        finally:
            highlighter.close()
        for i, (r, found) in enumerate(zip(results, spans, strict=True), start=q.offset + 1):
            r.rank = i
            r.highlights = found
            text, marks = snippet(r.text or "", found)
            r.snippet, r.snippet_highlights = text, [list(m) for m in marks]
        for (r, line), found in zip(lines, line_spans, strict=True):
            if found:  # the lines of the image that hold query words, and where they are
                r.regions.append({**line, "highlights": found})
        for r in results:
            r.regions.sort(key=lambda line: -len(line["highlights"]))

    def _moments(self, results: list[Result], highlighter: Highlighter, q: Query,
                 vectors: dict[str, np.ndarray]) -> None:
        """Where in each recording or video the hit is (search/moments.py): its moments,
        and its start and end those of the best one."""
        timed = [r for r in results if getattr(r, "_timed", None)]
        if not timed:
            return
        with profile.stage("metadata"):
            rows = self.reader.chunk_rows([c for r in timed for c in r._timed[1]])
        def words(texts):  # distinct query words in each text (a repeated one counts once)
            return [len({text[a:b].lower() for a, b in spans})
                    for text, spans in zip(texts, highlighter.spans_of(texts), strict=True)]

        finder = MomentFinder(words, self._closeness(q, vectors))
        for r in timed:
            shown, others, meta = r._timed
            chunks = [shown] + [rows[c] for c in others if c in rows]
            r.moments = finder.moments(chunks, meta)
            if r.moments:
                r.start, r.end = r.moments[0]["start"], r.moments[0]["end"]

    def _closeness(self, q: Query, vectors: dict[str, np.ndarray]):
        """Texts -> cosine to the text query in a text space (None: no such space)."""
        name = next((n for n, s in self.opened.spaces.items()
                     if n in vectors and "text" in s.query_encoder.modalities), None)
        if name is None or q.text is None:
            return None
        enc, query = self.opened.spaces[name].query_encoder, vectors[name]

        def near(texts):
            return enc.encode_query(list(texts), "text") @ query

        return near

    def _rerank(self, q: Query, results: list[Result]) -> list[Result]:
        from .rerank import load_cross_encoder, rerank_scores

        model = load_cross_encoder(q.rerank, self.opened.device)
        scores = rerank_scores(model, q.text or "", [r.text for r in results])
        for r, s in zip(results, scores, strict=True):
            r.spaces["fused"] = round(r.score, 6)
            r.spaces["rerank"] = round(s, 6)
            r.score = s
        return sorted(results, key=lambda r: -r.score)

    # -- fusion --------------------------------------------------------------------------
    def _fuse(self, signals: dict[str, Signal], q: Query, fused_always: bool | None = None
              ) -> list[Result]:
        """Every fused result, with its row, scored by its fusion value: `similar` asks
        for an item's neighbours, which the query calibration does not describe."""
        judge = Judge(self.opened.calibration, None, self.opened.spaces)
        results = self._materialize(self._rank(signals, q, fused_always), judge)
        for r in results:
            r.score = r.fused if r.fused is not None else r.score
        return results

    def _materialize(self, ranked: list[Ranked], judge: Judge) -> list[Result]:
        with profile.stage("metadata"):
            rows = self.reader.chunk_rows([r.chunk_id for r in ranked])
        # A chunk deleted since it was ranked is left out.
        return [self._result(rows[r.chunk_id], r, judge) for r in ranked if r.chunk_id in rows]

    def _rank(self, signals: dict[str, Signal], q: Query, fused_always: bool | None = None,
              judge: Judge | None = None, allowed: Allowed | None = None,
              context: bool = False) -> list[Ranked]:
        """Fused results, best first: one per item (or chunk), knowing only which item
        each chunk belongs to (and its modality, for the calibration). With `context`,
        the images embedded in matching note passages take their evidence too
        (search/embed_context.py; the relevance fusion only)."""
        judge = judge or Judge(self.opened.calibration, None, self.opened.spaces)
        chunk_ids = {cid for sig in signals.values() for cid, _ in sig}
        with profile.stage("metadata"):
            facts = self.reader.chunk_facts(sorted(chunk_ids))
        key = (lambda cid: cid) if q.chunks else (lambda cid: facts[cid][0])

        # Per signal: the best chunk of each key, in rank order.
        ranked: dict[str, list[tuple[Any, float]]] = {}
        best: dict[Any, tuple[int, int]] = {}  # key -> (rank, chunk id)
        # key -> each signal's chunks of it, in that signal's order (moments look at them)
        matching: dict[Any, dict[str, list[int]]] = {}
        per_signal: dict[Any, dict[str, float]] = {}
        evidence: dict[Any, Evidence] = {}
        for name, sig in signals.items():
            order: list[tuple[Any, float]] = []
            for cid, score in sig:
                if cid not in facts:
                    continue  # a chunk deleted after the vector index was loaded
                kk = key(cid)
                matching.setdefault(kk, {}).setdefault(name, []).append(cid)
                if name in per_signal.setdefault(kk, {}):
                    continue
                per_signal[kk][name] = score
                ev = evidence.setdefault(kk, Evidence())
                ev.ranks[name] = len(order) + 1
                if name == "lexical":
                    ev.lexical = score
                elif name in self.opened.spaces:
                    ev.dense[name] = (score, facts[cid][1])
                    ev.dense_chunks[name] = cid
                if kk not in best or len(order) < best[kk][0]:
                    best[kk] = (len(order), cid)
                order.append((kk, score))
            ranked[name] = order
            if sig:
                judge.below[name] = sig[-1][1]

        # Hybrid always fuses (even when the lexical list came back empty), so that its
        # ranking keeps one rule; one dense space or lexical alone keeps its own order.
        if fused_always is None:
            fused_always = q.mode == "hybrid" and "lexical" in signals
        found: dict = {}
        if context and q.fusion in ("auto", "relevance") and (len(ranked) > 1 or fused_always):
            with profile.stage("metadata"):
                found = lifts(signals, facts, judge, self.reader, allowed)
        # `auto`: what the query reaches includes the images its note passages embed.
        fusion = ("relevance" if found else auto_fusion(signals, facts)) if q.fusion == "auto" \
            else q.fusion
        if len(ranked) == 1 and not fused_always:
            (order,) = ranked.values()
            fused = dict(order)
        elif fusion == "relevance":
            if found:
                for chunk, (item, value, passage) in found.items():
                    kk = chunk if q.chunks else item
                    ev = evidence.setdefault(kk, Evidence())
                    if ev.context is None or value > ev.context:
                        ev.context, ev.context_from = value, passage
                    best.setdefault(kk, (len(chunk_ids), chunk))
                    per_signal.setdefault(kk, {})
                    matching.setdefault(kk, {})
            fused = {kk: judge.rank_value(evidence[kk]) for kk in evidence if kk in best}
        elif fusion == "score":
            fused = score_fusion(ranked, q.weights)
        else:
            fused = rrf({n: [kk for kk, _ in o] for n, o in ranked.items()}, q.weights)
        ordered = sorted(fused.items(), key=lambda kv: -kv[1])  # stable: ties keep rank order
        return [Ranked(score, best[kk][1], per_signal[kk], evidence[kk],
                       _interleaved(matching[kk], best[kk][1]))
                for kk, score in ordered]

    @staticmethod
    def _result(row: dict[str, Any], ranked: Ranked, judge: Judge) -> Result:
        meta = row.get("meta") or {}
        result = Result(
            rank=0, score=round(judge.score(ranked.evidence), 6), item_id=row["item_id"],
            chunk_id=row["chunk_id"],
            uri=row["uri"], path=row["path"], modality=row["modality"],
            media_type=row["media_type"], text=row["text"] or "", source=row["source"],
            title=row["title"], page=row["page"], start=row["start_s"], end=row["end_s"],
            char_start=row["char_start"], char_end=row["char_end"],
            tags=[t["label"] if isinstance(t, dict) else str(t) for t in meta.get("tags", [])],
            width=meta.get("width"), height=meta.get("height"),
            spaces={k: round(float(v), 6) for k, v in ranked.raw.items()},
            signals=judge.details(ranked.evidence), fused=round(float(ranked.fused), 6),
            parent=({"id": row["parent_id"], "path": row.get("parent_path")}
                    if row.get("parent_id") is not None else None),
        )
        # The lines OCR read in an image: _finish keeps those holding query words (regions).
        result._read_lines = list((meta.get("ocr") or {}).get("lines") or [])
        if row["modality"] in TIMED:  # _finish finds its moments in these chunks
            result._timed = ({**row, "meta": None}, ranked.others[:MOMENT_CHUNKS], meta)
        return result
