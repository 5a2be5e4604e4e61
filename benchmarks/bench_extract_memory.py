"""Peak memory and time of each extractor on adversarial inputs, one fresh process each.

    .venv/bin/python benchmarks/bench_extract_memory.py [--out benchmarks/results/bench_extract_memory.json]

Every input is made here (tests/reliability/hostile.py and badinputs.py build them): tag-dense
HTML, deeply nested HTML, zip bombs in PPTX / EPUB / DOCX, a member-count bomb, a CSV
with a 225 KB field, a 20 MB text of one word. For each: the growth of the process's peak
RSS while `extract()` runs (ru_maxrss after minus before, the parser already imported),
the wall time, and the outcome (characters extracted, or the one-line error).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "support"), str(ROOT / "tests" / "reliability"), str(ROOT / "benchmarks")]

PROBE = r"""
import json, resource, sys, time
from pathlib import Path
from anyfind.connectors.base import Blob
from anyfind.extract import extract
from anyfind.errors import ExtractionError
path = Path(sys.argv[1])
try:  # import the parsers first: their import is not what is measured
    extract(Blob.from_bytes(b"<p>warm</p>", path="w.html"))
except ExtractionError:
    pass
data = path.read_bytes()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    out = {"chars": len(extract(Blob.from_bytes(data, path=path.name)).text)}
except ExtractionError as exc:
    out = {"error": str(exc)[:120]}
out["seconds"] = round(time.perf_counter() - start, 2)
out["peak_growth_mb"] = round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024, 1)
print(json.dumps(out))
"""


def inputs(folder: Path) -> dict[str, Path]:
    from badinputs import docx_bomb
    from hostile import epub_bomb, pptx_bomb, spread_bomb, tag_dense_html

    made = {}

    def put(name: str, data: bytes) -> None:
        made[name] = folder / name
        made[name].write_bytes(data)

    put("tag-dense-10mb.html", tag_dense_html(10))
    put("tag-dense-20mb.html", tag_dense_html(20))
    put("div-dense-10mb.html", tag_dense_html(10, "div"))
    put("nested-200k.html", b"<html><body>" + b"<div>" * 200_000 + b"deep" + b"</div>" * 200_000
        + b"</body></html>")
    field = ("word " * 45_000).encode()  # 225 KB of words in one quoted field
    put("long-field.csv", b'id,notes\n1,"' + field + b'"\n')
    put("one-word-20mb.txt", b"a" * (20 << 20))
    for name, make in (("bomb.pptx", pptx_bomb), ("bomb.epub", epub_bomb),
                       ("spread.pptx", spread_bomb), ("bomb.docx", docx_bomb)):
        make(folder / name)
        made[name] = folder / name
    return made


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="write the figures to this JSON file")
    args = ap.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory(prefix="anyfind-bench-extract-") as tmp:
        for name, path in inputs(Path(tmp)).items():
            proc = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True,
                                  text=True, timeout=900, cwd=ROOT)
            result = (json.loads(proc.stdout) if proc.returncode == 0
                      else {"crash": proc.stderr[-200:]})
            result["input_mb"] = round(path.stat().st_size / 2**20, 2)
            rows[name] = result
            print(f"{name:22} {json.dumps(result)}", flush=True)
    from bench_core import cpu_name

    report = {"machine": f"{cpu_name()}, {os.cpu_count()} cores, "
                         f"Python {platform.python_version()}", "results": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
