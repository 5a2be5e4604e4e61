"""The click CLI on real files and the real MiniLM model, plus start-up checks in subprocesses.

One index is built per module and shared by the read-only tests; the tests that change
an index build their own from the `corpus` fixture. The encoder is cached per process,
so the model loads once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from anyfind.cli import cli
from tests.conftest import write_corpus

REPO = Path(__file__).resolve().parent.parent
JSON_KEYS = {"rank", "score", "uri", "path", "modality", "text", "page", "start", "end",
             "item_id", "chunk_id"}


def run(*args: str, env: dict[str, str] | None = None, ok: bool = True) -> Result:
    result = CliRunner().invoke(cli, list(args), env=env)
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
        assert result.exception is None
    return result


def json_lines(result: Result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path, Result]:
    """(index path, corpus path, the index run): the sample corpus plus two bad files,
    indexed once."""
    base = tmp_path_factory.mktemp("cli")
    corpus = write_corpus(base / "corpus")
    (corpus / "bad").mkdir()
    (corpus / "bad" / "empty.txt").write_bytes(b"")
    (corpus / "bad" / "junk.txt").write_bytes(bytes(range(256)) * 8)
    idx = base / "idx"
    result = CliRunner().invoke(cli, ["index", str(corpus), "--index", str(idx), "-q"])
    assert result.exit_code == 0, result.output
    return idx, corpus, result


# -- index -----------------------------------------------------------------------------------


def test_index_prints_summary_into_default_index(anyfind_home, corpus):
    result = run("index", str(corpus), "-q")
    summary = result.stdout.strip().splitlines()[-1]
    for word in ("6 added", "0 updated", "0 unchanged", "0 removed", "0 failed", "chunks embedded"):
        assert word in summary
    assert (anyfind_home / "indexes" / "default" / "config.json").is_file()
    again = run("index", str(corpus), "-q", "--json")
    report = json.loads(again.stdout)
    assert (report["added"], report["unchanged"], report["chunks"]) == (0, 6, 0)


def test_index_reports_bad_files(built):
    idx, corpus, first = built
    assert "6 added" in first.stdout and "1 failed" in first.stdout
    assert "1 skipped" in first.stdout  # the empty file: nothing to index, not a failure
    assert "junk.txt" in first.stderr and "empty.txt" not in first.stderr
    # a failed item is not retried while it is unchanged
    again = run("index", str(corpus), "--index", str(idx), "-q")
    assert "8 unchanged" in again.stdout and "0 failed" in again.stdout


def test_index_missing_path_is_one_line_error(tmp_path):
    result = run("index", str(tmp_path / "nope"), "--index", str(tmp_path / "idx"), ok=False)
    assert result.exit_code != 0
    assert "no such file or folder" in result.output and "Traceback" not in result.output


# -- search ----------------------------------------------------------------------------------


def test_search_json_lines_have_the_keys(built):
    idx, corpus, _ = built
    result = run("search", "chip shortage delaying deliveries", "--index", str(idx), "--json",
                 "-k", "3")
    rows = json_lines(result)
    assert 1 <= len(rows) <= 3
    for row in rows:
        assert JSON_KEYS <= row.keys()
    top = rows[0]
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert top["path"] == str(corpus / "office" / "report.pdf")
    assert top["uri"].startswith("file://") and top["modality"] == "text"
    assert top["page"] == 2 and "semiconductor" in top["text"]
    assert top["start"] is None and top["end"] is None
    assert isinstance(top["item_id"], int) and isinstance(top["chunk_id"], int)
    assert 0 < top["score"] <= 1
    assert rows == sorted(rows, key=lambda r: -r["score"])


def test_search_human_output(built):
    idx, _, _ = built
    result = run("search", "semiconductor chips", "--index", str(idx), "-k", "2", "--all")
    lines = result.stdout.splitlines()
    head = lines[0]
    assert head.lstrip().startswith("1.")
    assert "report.pdf" in head and "p.2" in head and "[text]" in head
    score = head.split()[1]
    assert 0 < float(score) <= 1 and len(score.split(".")[1]) == 3
    assert "semiconductor" in lines[1]  # the snippet follows its head line
    assert any(line.lstrip().startswith("2.") for line in lines)


def test_search_paging_and_min_score(built):
    idx, _, _ = built
    everything = json_lines(run("search", "holiday", "--index", str(idx), "--json", "-k", "4",
                                "--all"))
    page2 = json_lines(run("search", "holiday", "--index", str(idx), "--json", "-k", "2",
                           "--offset", "2", "--all"))
    assert [r["item_id"] for r in page2] == [r["item_id"] for r in everything[2:4]]
    assert [r["rank"] for r in page2] == [3, 4]
    cut = everything[1]["score"]
    kept = json_lines(run("search", "holiday", "--index", str(idx), "--json", "-k", "4",
                          "--min-score", str(cut), "--all"))
    assert kept and all(r["score"] >= cut for r in kept)


def test_search_errors_are_one_line(built, tmp_path):
    idx, _, _ = built
    missing = run("search", "anything", "--index", str(tmp_path / "no-such-index"), ok=False)
    assert missing.exit_code != 0 and "Traceback" not in missing.output
    assert missing.output.strip().count("\n") == 0 and "no index at" in missing.output
    blank = run("search", "   ", "--index", str(idx), ok=False)
    assert blank.exit_code != 0 and blank.output.strip().count("\n") == 0
    assert "empty query" in blank.output
    nothing = run("search", "--index", str(idx), ok=False)
    assert nothing.exit_code == 2  # usage error


# -- status, show ------------------------------------------------------------------------------


def test_status_json_and_errors(built):
    idx, corpus, _ = built
    st = json.loads(run("status", "--index", str(idx), "--json").stdout)
    assert st["index"] == str(idx)
    assert (st["items"], st["ok"], st["errors"], st["skipped"]) == (8, 6, 1, 1)
    assert st["chunks"] == st["spaces"]["text"]["vectors"] > 0
    assert st["spaces"]["text"]["dim"] == 384
    (source,) = st["sources"]
    assert source["uri"] == str(corpus) and source["items"] == 8
    assert "error_items" not in st

    st = json.loads(run("status", "--index", str(idx), "--json", "--errors").stdout)
    errors = {Path(e["path"]).name: e["error"] for e in st["error_items"]}
    assert set(errors) == {"junk.txt"}

    human = run("status", "--index", str(idx), "--errors").stdout
    assert "items    8 (6 ok, 1 errors, 1 skipped)" in human
    assert f"error    {corpus / 'bad' / 'junk.txt'}:" in human
    assert "384-d" in human


def test_show_item(built):
    idx, corpus, _ = built
    (hit,) = json_lines(run("search", "quarterly revenue", "--index", str(idx), "--json", "-k", "1"))
    human = run("show", str(hit["item_id"]), "--index", str(idx)).stdout
    assert str(corpus / "office" / "report.pdf") in human
    assert "p.1" in human and "p.2" in human and "semiconductor" in human
    item = json.loads(run("show", str(hit["item_id"]), "--index", str(idx), "--json").stdout)
    assert item["id"] == hit["item_id"] and [c["page"] for c in item["chunks"]] == [1, 2]
    missing = run("show", "999999", "--index", str(idx), ok=False)
    assert missing.exit_code != 0 and "no item 999999" in missing.output


# -- choosing the index ----------------------------------------------------------------------


def test_index_from_env_and_by_name(built, anyfind_home, corpus):
    idx, _, _ = built
    st = json.loads(run("status", "--json", env={"ANYFIND_INDEX": str(idx)}).stdout)
    assert st["index"] == str(idx)
    # --index beats the environment
    other = run("status", "--json", "--index", str(anyfind_home / "missing"),
                env={"ANYFIND_INDEX": str(idx)}, ok=False)
    assert other.exit_code != 0 and "no index at" in other.output
    # a name lives under ANYFIND_HOME/indexes
    run("index", str(corpus / "astro"), "--index", "notes", "-q")
    st = json.loads(run("status", "--json", env={"ANYFIND_INDEX": "notes"}).stdout)
    assert st["index"] == str(anyfind_home / "indexes" / "notes") and st["items"] == 1
    bad = run("status", "--index", "bad name!", ok=False)
    assert bad.exit_code != 0 and "invalid index name" in bad.output


# -- remove, reindex -------------------------------------------------------------------------


def test_remove_then_reindex(tmp_path, corpus):
    idx = str(tmp_path / "idx")
    run("index", str(corpus), "--index", idx, "-q")
    result = run("remove", str(corpus / "office"), "--index", idx)
    assert result.stdout.strip() == "removed 2 items"
    hits = json_lines(run("search", "semiconductor", "--index", idx, "--json", "--all"))
    assert hits and not [h for h in hits if "office" in h["path"]]
    assert run("remove", str(corpus / "nothing-here"), "--index", idx).stdout.strip() == (
        "removed 0 items")

    before = json.loads(run("status", "--index", idx, "--json").stdout)
    report = json.loads(run("reindex", "--index", idx, "-q", "--json").stdout)
    assert report["added"] + report["updated"] == 6 and report["failed"] == 0 and report["chunks"] > 0
    after = json.loads(run("status", "--index", idx, "--json").stdout)
    assert after["items"] == 6 > before["items"]  # reindex re-reads the whole source
    assert after["chunks"] == after["spaces"]["text"]["vectors"]
    (top,) = json_lines(run("search", "semiconductor chips", "--index", idx, "--json", "-k", "1"))
    assert top["path"].endswith("report.pdf")


def test_non_utf8_file_name_does_not_abort_the_run(tmp_path):
    folder = tmp_path / "names"
    folder.mkdir()
    (folder / "fine.txt").write_text("The lighthouse keeper logs every passing ship.")
    with open(os.fsencode(folder) + b"/caf\xe9.txt", "wb") as fh:
        fh.write(b"Coffee notes from an old Latin-1 file system.")
    result = run("index", str(folder), "--index", str(tmp_path / "idx"), "-q", ok=False)
    assert result.exit_code == 0, result.output
    assert "1 added" in result.stdout or "2 added" in result.stdout


# -- start-up (subprocesses) ------------------------------------------------------------------


def _python(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_heavy_modules_are_not_imported_by_the_cli():
    code = ("import anyfind.cli, sys; print(sorted(m for m in ('torch', 'sentence_transformers', "
            "'faiss', 'sqlalchemy', 'transformers') if m in sys.modules))")
    proc = _python("-c", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_python_m_anyfind_help():
    proc = _python("-m", "anyfind", "--help")
    assert proc.returncode == 0, proc.stderr
    for command in ("index", "search", "status", "remove", "reindex", "show"):
        assert command in proc.stdout


def test_missing_index_error_from_a_real_process(tmp_path):
    proc = _python("-m", "anyfind", "search", "hello", "--index", str(tmp_path / "none"))
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("Error: no index at")
