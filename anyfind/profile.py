"""ANYFIND_PROFILE=1: where one CLI run spends its wall time, on stderr at exit.

    ANYFIND_PROFILE=1 anyfind search "query"      # one human line
    ANYFIND_PROFILE=json anyfind search "query"   # one JSON line: anyfind-profile {...}

Stages: interpreter (process start until the CLI module runs, from /proc), imports
(the CLI's own, then every module the cold search path needs, imported up front so
that the later stages hold only their own work), open (config), image (reading a
query image), model (loading the query encoders), encode, vector (FAISS file open,
catch-up check and search), lexical (FTS5, in a thread alongside encoding: not added
into `other`), metadata (opening the store reader, result rows), results (highlights),
output; other is the rest (argument parsing, fusion, exit). Profiling encodes each query twice, to tell the model load
from the encoding: its total holds one extra encode. Off, a stage costs one check.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator

ENV = "ANYFIND_PROFILE"
enabled = os.environ.get(ENV, "") not in ("", "0")

# What a cold search imports besides the CLI (imported up front when profiling).
COLD_MODULES = ("numpy", "sqlite3", "faiss", "anyfind.index", "anyfind.search.engine",
                "anyfind.store.reader", "anyfind.encoders.query")
ONNX_MODULES = ("onnxruntime", "tokenizers", "anyfind.encoders.onnx")

_stages: dict[str, float] = {}
_lock = threading.Lock()
_cli_loaded: float | None = None  # perf_counter when the CLI module started


def process_age() -> float | None:
    """Seconds since this process started (Linux), else None."""
    try:
        with open("/proc/self/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def add(name: str, seconds: float) -> None:
    with _lock:
        _stages[name] = _stages.get(name, 0.0) + seconds


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    if not enabled:
        yield
        return
    started = time.perf_counter()
    try:
        yield
    finally:
        add(name, time.perf_counter() - started)


def begin(cli_loaded: float) -> None:
    """Called by the CLI's main(): note the start-up, and import the cold path up front."""
    global _cli_loaded
    if not enabled:
        return
    _cli_loaded = cli_loaded
    now = time.perf_counter()
    age = process_age()
    if age is not None:
        add("interpreter", max(0.0, age - (now - cli_loaded)))
    add("imports", now - cli_loaded)
    from .encoders.query import onnx_disabled

    wanted = COLD_MODULES + (() if onnx_disabled() else ONNX_MODULES)
    with stage("imports"):
        for module in wanted:
            with contextlib.suppress(ImportError):
                importlib.import_module(module)


def report() -> None:
    if not enabled or _cli_loaded is None:
        return
    age = process_age()
    stages = {k: round(v, 4) for k, v in _stages.items()}
    total = age if age is not None else sum(stages.values())
    stages["other"] = round(max(0.0, total - sum(v for k, v in stages.items()
                                                if k != "lexical")), 4)  # lexical overlaps
    heavy = sorted(m for m in ("torch", "transformers", "sentence_transformers", "open_clip",
                               "sqlalchemy") if m in sys.modules)
    if os.environ.get(ENV) == "json":
        line = "anyfind-profile " + json.dumps({"total": round(total, 4), "stages": stages,
                                                 "heavy_modules": heavy})
    else:
        parts = " | ".join(f"{k} {v:.3f}" for k, v in stages.items())
        line = (f"anyfind profile: total {total:.3f} s | {parts} | heavy modules: "
                f"{', '.join(heavy) or 'none'}")
    print(line, file=sys.stderr, flush=True)
