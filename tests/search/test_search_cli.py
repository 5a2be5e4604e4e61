"""The search-related commands: search options, snippets in colour, similar, errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from anyfind import Index
from anyfind.cli import cli
from anyfind.search.results import snippet


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    root = tmp_path_factory.mktemp("docs")
    (root / "tomatoes.md").write_text(
        "# Growing tomatoes\n\nTomatoes need eight hours of sunlight. Water them deeply.")
    (root / "moon.txt").write_text("The Moon raises the ocean tides and drifts away slowly.")
    (root / "espresso.txt").write_text("Nine bars of pressure give an espresso its crema.")
    path = tmp_path_factory.mktemp("idx") / "idx"
    with Index.open(path) as idx:
        idx.add([root])
    return str(path), root


def run(*args: str, color: bool = False):
    return CliRunner().invoke(cli, list(args), color=color)


def test_search_json_has_highlights(indexed):
    path, _ = indexed
    out = run("search", "watering tomatoes", "-i", path, "--json", "-k", "1")
    assert out.exit_code == 0, out.output
    hit = json.loads(out.output.splitlines()[0])
    assert hit["path"].endswith("tomatoes.md") and hit["rank"] == 1
    assert {hit["text"][a:b] for a, b in hit["highlights"]} == {"tomatoes", "Tomatoes", "Water"}
    assert set(hit["spaces"]) == {"text", "lexical"}


def test_search_terminal_output_colours_terms(indexed):
    path, _ = indexed
    out = run("search", "moon tides", "-i", path, "-k", "1", color=True)
    assert out.exit_code == 0
    assert "\x1b[33m\x1b[1mMoon\x1b[0m" in out.output and "\x1b[1mtides\x1b[0m" in out.output
    plain = run("search", "moon tides", "-i", path, "-k", "1")
    assert "\x1b[" not in plain.output and "moon.txt" in plain.output


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_search_modes_filters_and_options(indexed, mode):
    path, _ = indexed
    out = run("search", "espresso crema ext:txt", "-i", path, "--mode", mode, "--json",
              "--fusion", "score", "--weights", "lexical=0.5,dense=1", "--chunks")
    assert out.exit_code == 0, out.output
    hits = [json.loads(line) for line in out.stdout.splitlines()]
    assert hits[0]["path"].endswith("espresso.txt")
    assert all(h["path"].endswith(".txt") for h in hits)


@pytest.mark.parametrize("args, message", [
    (["search", "moon size:big"], "bad filter size:big"),
    (["search", "?!"], "no words"),
    (["search", "moon", "--weights", "lexical"], "NAME=NUMBER"),
    (["similar", "424242"], "no item 424242"),
    (["similar", "/no/such/file.txt"], "no indexed item"),
])
def test_errors_are_messages_not_tracebacks(indexed, args, message):
    path, _ = indexed
    out = run(*args, "-i", path)
    assert out.exit_code != 0
    assert message in out.output and "Traceback" not in out.output


def test_bad_filter_message_points_at_the_token(indexed):
    path, _ = indexed
    out = run("search", "moon after:2024-99", "-i", path)
    lines = out.output.splitlines()
    assert lines[-2].strip() == "moon after:2024-99"
    assert lines[-1].index("^") == lines[-2].index("after:")


def test_similar_by_path_and_by_id(indexed):
    path, root = indexed
    by_path = run("similar", str(root / "moon.txt"), "-i", path, "--json")
    assert by_path.exit_code == 0, by_path.output
    hits = [json.loads(line) for line in by_path.stdout.splitlines()]
    assert len(hits) == 2 and not any(h["path"].endswith("moon.txt") for h in hits)
    moon_id = json.loads(run("search", "moon", "-i", path, "--json", "-k", "1").stdout)["item_id"]
    by_id = run("similar", str(moon_id), "-i", path, "--json", "-k", "1")
    assert json.loads(by_id.output)["item_id"] == hits[0]["item_id"]


def test_snippet_window_follows_the_first_highlight():
    text = "word " * 100 + "the needle is here " + "tail " * 100
    start = text.index("needle")
    shown, spans = snippet(text, [[start, start + 6]], width=80)
    assert shown.startswith("...") and shown.endswith("...")
    assert len(shown) <= 86
    (a, b), = spans
    assert shown[a:b] == "needle"
    short, spans = snippet("a  b\n\nneedle", [[6, 12]])
    assert short == "a b needle" and short[spans[0][0]:spans[0][1]] == "needle"
