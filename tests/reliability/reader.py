"""A reader process for the concurrency tests (run as a script, not by pytest).

    python tests/reliability/reader.py INDEX STOP_FILE OUT_JSON

Opens INDEX, says "ready" on stdout once its model is loaded, then searches in a loop
until STOP_FILE exists, and writes what it saw to OUT_JSON: the number of searches,
every (item id, chunk id, text) returned, the item counts it observed, and errors."""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

QUERIES = ("river next to the harbour", "an old violin", "copper and marble", "the falcon")


def main() -> None:
    from anyfind import Index

    index_path, stop, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    seen: set[tuple[int, int, str]] = set()
    sizes: set[int] = set()
    errors: list[str] = []
    searches = 0
    with Index.open(index_path, create=False) as idx:
        idx.search("warm up", k=1)
        print("ready", flush=True)
        while not stop.exists():
            time.sleep(0.01)  # pacing: leave the writer some CPU
            try:
                for r in idx.search(QUERIES[searches % len(QUERIES)], k=5):
                    seen.add((r.item_id, r.chunk_id, r.text))
                sizes.add(len(idx.opened.vectors("text")))
            except Exception:
                errors.append(traceback.format_exc())
            searches += 1
    out.write_text(json.dumps({"searches": searches, "results": sorted(seen),
                               "sizes": sorted(sizes), "errors": errors}))


if __name__ == "__main__":
    main()
