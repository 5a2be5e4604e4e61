"""Many searches at once while `anyfind index` grows the same index in another process:
no errors, and every answer is a consistent view (only existing items, no duplicates,
never fewer items than the same client saw before); the server catches up unrestarted."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import httpx

from tests.server.server_fixtures import running

ROOT = Path(__file__).resolve().parents[2]
TOPICS = ["harbour", "lighthouse", "orchard", "glacier", "volcano", "library", "bakery", "comet"]
ROUNDS, PER_ROUND, READERS, MAX_REQUESTS = 2, 8, 4, 400


def write_docs(folder: Path, start: int, n: int) -> None:
    for i in range(start, start + n):
        topic = TOPICS[i % len(TOPICS)]
        (folder / f"note-{i:03d}.md").write_text(
            f"# Note {i}\n\nA short note about the {topic}. The {topic} was visited on day {i} "
            f"and everyone wrote about the {topic} in the travel journal.")


def test_searches_while_another_process_syncs(tmp_path):
    from anyfind import Index
    from anyfind.server import create_app

    folder = tmp_path / "notes"
    folder.mkdir()
    write_docs(folder, 0, PER_ROUND)
    index_path = tmp_path / "index"
    with Index.open(index_path, tagger=False, transcriber=None) as idx:
        assert idx.add([folder]).added == PER_ROUND
    total = PER_ROUND * (ROUNDS + 1)

    with running(create_app(index_path)) as url:
        done = threading.Event()
        failures: list[str] = []
        answered = [0] * READERS
        views: set[int] = set()  # item counts the readers saw

        def writer() -> None:
            try:
                for r in range(1, ROUNDS + 1):
                    write_docs(folder, r * PER_ROUND, PER_ROUND)
                    proc = subprocess.run(
                        [sys.executable, "-m", "anyfind", "index", str(folder), "--index",
                         str(index_path), "--quiet", "--json"],
                        cwd=ROOT, capture_output=True, text=True, timeout=300)
                    if proc.returncode != 0:
                        failures.append(f"index failed: {proc.stderr[-2000:]}")
                        return
            finally:
                done.set()

        def reader(n: int) -> None:
            seen = 0
            with httpx.Client(base_url=url, timeout=120) as c:
                for _ in range(MAX_REQUESTS):  # bounded even if the writer hangs
                    if done.is_set():
                        break
                    resp = c.get("/api/search", params={"q": TOPICS[n % len(TOPICS)], "k": 100,
                                                        "mode": "dense"})
                    if resp.status_code != 200:
                        failures.append(f"{resp.status_code}: {resp.text[:300]}")
                        return
                    results = resp.json()["results"]
                    ids = [r["item_id"] for r in results]
                    paths = [Path(r["path"]) for r in results]
                    if len(set(ids)) != len(ids):
                        failures.append(f"duplicate items in one answer: {ids}")
                    if not all(p.parent == folder and p.exists() for p in paths):
                        failures.append(f"unknown paths: {paths}")
                    if len(results) < seen:  # the index only grows: so must every view
                        failures.append(f"went back from {seen} to {len(results)} items")
                    seen = len(results)
                    views.add(seen)
                    answered[n] += 1

        threads = [threading.Thread(target=writer)]
        threads += [threading.Thread(target=reader, args=(n,)) for n in range(READERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        assert not any(t.is_alive() for t in threads)
        assert not failures, failures[:5]
        assert all(answered), answered  # every reader was served during the sync
        assert len(views) >= 2, views  # and saw the index change under it

        with httpx.Client(base_url=url, timeout=60) as c:
            final = c.get("/api/search", params={"q": "travel journal", "k": 100}).json()
            assert final["count"] == total  # caught up with the other process, no restart
            last = f"note-{total - 1:03d}.md"
            hit = c.get("/api/search", params={"q": f"Note {total - 1} {TOPICS[(total - 1) % 8]}",
                                               "k": total}).json()
            assert last in [Path(r["path"]).name for r in hit["results"]]
            assert c.get("/api/status").json()["items"] == total
