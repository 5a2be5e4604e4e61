"""The embed as evidence: what a note says around an embedded image speaks for the
image, as alt text and surrounding text do in web image search.

A text query's note passages that pass the floor lend part of their relevance to the
images embedded in them (the embed's offset lies in the passage's chunk): WEIGHT times
the passage's log-odds over the floor, added to the image's own log-odds, and the sum
must pass the floor. Evidence adds: an image its note describes and whose own pixels or
tags agree rises above the images that only agree; a photo whose pixels hold nothing the
query can match is found through a note that says exactly what the query says; and an
image whose own evidence is against the query stays under the images that match on their
own, when its note happens to match (a note about citation indexes, "a photo of a
ship": MiniLM finds the note close). A passage under the floor lends nothing.
benchmarks/bench_embed_context.py measures both sides.

Only the passages the query reached are looked at, so a filter that leaves notes out
(`type:image`) leaves their evidence out too; an image lifted this way still has to pass
the query's filters.
"""

from __future__ import annotations

import logging
from typing import Any

from .relevance import DENSE_FLOOR_LOGIT, Evidence, Judge

WEIGHT = 0.5  # of the passage's log-odds over the floor, lent to the image
PASSAGES = 100  # text chunks looked at per signal (its best)
log = logging.getLogger("anyfind.search")

Signal = list[tuple[int, float]]


def passages(signals: dict[str, Signal], facts: dict[int, tuple[int, str, str]],
             spaces: Any) -> dict[int, Evidence]:
    """Each passage of a text item (a note, not an image's read words) the signals
    reached (their first PASSAGES), with what each signal said of that chunk alone."""
    out: dict[int, Evidence] = {}
    for name, sig in signals.items():
        if name != "lexical" and name not in spaces:
            continue
        seen = 0
        for cid, score in sig:
            fact = facts.get(cid)
            if fact is None or fact[1] != "text" or fact[2] != "text":
                continue
            ev = out.setdefault(cid, Evidence())
            if name == "lexical":
                ev.lexical = score
            else:
                ev.dense[name] = (score, "text")
            seen += 1
            if seen == PASSAGES:
                break
    return out


def lifts(signals: dict[str, Signal], facts: dict[int, tuple[int, str, str]], judge: Judge,
          reader: Any, allowed: Any = None) -> dict[int, tuple[int, float, int]]:
    """image chunk id -> (image item id, log-odds lent, the passage's chunk id), for the
    images embedded in passages over the floor; the best passage for each."""
    reached = {cid: ev for cid, ev in passages(signals, facts, judge.spaces).items()
               if judge.kept(ev)}
    if not reached:
        return {}
    try:
        rows = reader.embeds_in(sorted(reached))
    except Exception:  # noqa: BLE001 (a store from before relations: results stand)
        log.debug("no embeds read", exc_info=True)
        return {}
    if allowed is not None and rows:
        import numpy as np

        ok = set(np.asarray(allowed.ids()).tolist())
        rows = [row for row in rows if row[2] in ok]
    out: dict[int, tuple[int, float, int]] = {}
    for passage, item, chunk in rows:
        value = WEIGHT * max(0.0, judge.rank_value(reached[passage]) - DENSE_FLOOR_LOGIT)
        if chunk not in out or value > out[chunk][1]:
            out[chunk] = (item, value, passage)
    return out
