"""Shared fixtures: a temporary home for every test, and real documents built on disk."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Fixture modules (tests/support/) are imported by name, from any folder of tests.
sys.path.insert(0, str(Path(__file__).parent / "support"))

import pytest  # noqa: E402
from makers import make_docx, make_pdf  # noqa: E402
from milvus_fixtures import milvus_process, milvus_server  # noqa: E402, F401 (one for the session)
from ray_fixtures import ray_cluster, ray_driver  # noqa: E402, F401 (fixtures for every module)

# Nothing may reach a model hub from the tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# `anyfind index` exports the encoders to ONNX (seconds of torch tracing): off for every
# test, module fixtures included; the tests about it turn it on for their own runs.
os.environ["ANYFIND_ONNX_EXPORT"] = "off"
os.environ.pop("ANYFIND_ONNX_INT8", None)


@pytest.fixture(autouse=True)
def anyfind_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "anyfind-home"
    monkeypatch.setenv("ANYFIND_HOME", str(home))
    monkeypatch.delenv("ANYFIND_INDEX", raising=False)
    return home


DOCS = {
    "garden/tomatoes.md": (
        "# Growing tomatoes\n\nTomatoes need at least eight hours of direct sunlight a day. "
        "Water them deeply twice a week at the base of the plant, never on the leaves, "
        "to prevent blight.\n\nPinch out the side shoots of cordon varieties so the plant "
        "puts its energy into fruit."
    ),
    "astro/moon.txt": (
        "The Moon is slowly drifting away from the Earth, about 3.8 centimetres every year. "
        "Its gravity raises the ocean tides. The same face always points towards us because "
        "the Moon is tidally locked."
    ),
    "web/espresso.html": (
        "<html><head><title>Espresso</title><script>var x=1;</script></head><body>"
        "<nav>Home | Shop</nav><h1>Pulling an espresso shot</h1><p>Grind finely and tamp "
        "evenly. Nine bars of pressure push hot water through the puck in about "
        "twenty-eight seconds, giving a small cup with a layer of crema.</p></body></html>"
    ),
    "code/fib.py": (
        '"""Fibonacci numbers with memoisation."""\n\nfrom functools import cache\n\n\n'
        "@cache\ndef fib(n):\n    \"\"\"Return the n-th Fibonacci number recursively.\"\"\"\n"
        "    return n if n < 2 else fib(n - 1) + fib(n - 2)\n"
    ),
}

PDF_PAGES = [
    "Quarterly report. Revenue grew by twelve percent compared with the previous quarter.",
    "Risks. The main risk is a shortage of semiconductor chips delaying our deliveries.",
]

DOCX_PARAGRAPHS = [
    "Every employee receives twenty-five days of paid holiday each year.",
    "Unused holiday can be carried over until the end of March.",
]


@pytest.fixture(scope="module")
def corpus_index(tmp_path_factory):
    """An index of write_corpus's documents, shared by the tests of one module."""
    from anyfind import Index

    root = write_corpus(tmp_path_factory.mktemp("corpus"))
    idx = Index.open(tmp_path_factory.mktemp("idx") / "idx")
    idx.add([root])
    yield idx
    idx.close()


@pytest.fixture
def corpus(tmp_path) -> Path:
    """A folder of real documents: Markdown, text, HTML, code, a 2-page PDF and a DOCX."""
    return write_corpus(tmp_path / "corpus")


def write_corpus(root: Path) -> Path:
    """DOCS as files under `root`, plus office/report.pdf and office/handbook.docx."""
    for rel, text in DOCS.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    (root / "office").mkdir()
    make_pdf(root / "office" / "report.pdf", PDF_PAGES)
    make_docx(root / "office" / "handbook.docx", "Staff handbook", DOCX_PARAGRAPHS)
    return root
