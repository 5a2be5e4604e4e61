"""Notes vaults: links read and resolved, and what the grouped view does for a search.

    python benchmarks/bench_vault.py [--vault ../shared/data/notes-vault] [--work DIR]
                                     [--out results.json]

1. Links: notes, links and embeds parsed (extract/links.py), the share resolved to an
   item of the vault after indexing, the parse time per note.
2. Screenshot queries: for every screenshot a note embeds (the default index: tagger,
   MiniLM, RapidOCR), a query made of the screenshot's longest line of read words (three
   to eight of them). Flat: the rank at which both the screenshot and its note have
   appeared; grouped (`search_grouped`): whether the top card (and a top-3 card) is that
   note holding the screenshot, and the card's rank. The query comes from the index's own
   reading of the pixels: it measures what grouping does with a match, not OCR.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

from bench_common import SHARED, finish, machine  # first: offline settings

from anyfind import Index  # noqa: E402
from anyfind.extract.links import parse  # noqa: E402

WORD = re.compile(r"[A-Za-z][A-Za-z'-]{2,}")


def link_figures(vault: Path) -> dict:
    notes = sorted(vault.rglob("*.md"))
    started = time.perf_counter()
    parsed = [parse(p.read_text(errors="replace")) for p in notes]
    seconds = time.perf_counter() - started
    links = [link for note in parsed for link in note["links"]]
    return {"notes": len(notes), "links": sum(1 for x in links if x.kind == "link"),
            "embeds": sum(1 for x in links if x.kind == "embed"),
            "wikilinks": sum(1 for x in links if x.wiki),
            "parse_ms_per_note": round(1000 * seconds / max(1, len(notes)), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vault", type=Path, default=SHARED / "notes-vault")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="anyfind-bench-vault-"))
    result: dict = {"machine": machine(),
                    "links": link_figures(args.vault)}
    print(json.dumps(result["links"]), flush=True)
    with Index.open(work / "idx", transcriber=None) as index:
        started = time.perf_counter()
        report = index.add([args.vault])
        result["index"] = {"seconds": round(time.perf_counter() - started, 1),
                           "added": report.added, "failed": report.failed,
                           "skipped": report.skipped}
        store = index.opened.store
        ids = [row.id for s in store.sources() for row in store.items_of_source(s["id"]).values()]
        rows = store.relations_of(ids)
        result["links"]["resolved_share"] = round(
            sum(r["to_item"] is not None for r in rows) / max(1, len(rows)), 3)
        shots = {}
        for r in rows:
            if r["kind"] == "embed" and r["to_item"] and (r["to_path"] or "").endswith(".png"):
                shots.setdefault(r["to_item"], r["from_item"])
        flat_ranks, card_ranks, top1, top3, skipped = [], [], 0, 0, 0
        for shot, note in shots.items():
            lines = ((index.item(shot)["meta"].get("ocr") or {}).get("lines") or [])
            words = max((WORD.findall(line["text"]) for line in lines), key=len, default=[])
            if len(words) < 3:
                skipped += 1
                continue
            query = " ".join(words[:8])
            flat = [r.item_id for r in index.search(query, k=30, floor=False)]
            both = max(flat.index(x) + 1 if x in flat else 31 for x in (shot, note))
            flat_ranks.append(both)
            cards = index.search_grouped(query, k=10, floor=False)
            where = next((n for n, c in enumerate(cards, start=1) if c.note
                          and c.note["id"] == note and shot in {r.item_id for r in c.results}),
                         11)
            card_ranks.append(where)
            top1 += where == 1
            top3 += where <= 3
        n = max(1, len(card_ranks))
        result["screenshot_queries"] = {
            "queries": len(card_ranks), "screenshots_without_a_read_line": skipped,
            "grouped_top1_note_with_screenshot": round(top1 / n, 3),
            "grouped_top3_note_with_screenshot": round(top3 / n, 3),
            "grouped_median_card_rank": statistics.median(card_ranks) if card_ranks else None,
            "flat_median_rank_covering_both": statistics.median(flat_ranks)
            if flat_ranks else None,
            "flat_mean_rank_covering_both": round(statistics.mean(flat_ranks), 2)
            if flat_ranks else None}
    finish(result, args.out)


if __name__ == "__main__":
    main()
