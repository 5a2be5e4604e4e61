"""Notes vaults: links, embeds, aliases and tags read from the notes, stored as relations
(resolved the way Obsidian resolves them), and shown with every result: a screenshot hit
says which note embeds it and where, a note hit lists what it embeds that also matches."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from postgres_fixtures import postgres_server, postgres_url  # noqa: F401 (fixtures, by name)
from vault_fixtures import DQN, TARGETS, make_vault

from anyfind import Index
from anyfind.cli import cli
from anyfind.extract.links import MAX_LINKS, parse

pytest.importorskip("rapidocr_onnxruntime")

@pytest.fixture(scope="module")
def vault(tmp_path_factory) -> Path:
    return make_vault(tmp_path_factory.mktemp("vault"))


@pytest.fixture(scope="module")
def index(vault, tmp_path_factory):
    idx = Index.open(tmp_path_factory.mktemp("vault-idx") / "idx", transcriber=None)
    report = idx.add([vault])
    assert report.failed == 0, report.errors
    yield idx
    idx.close()


def hit(idx, query: str, name: str):
    return next(r for r in idx.search(query, k=10) if Path(r.path).name == name)


def test_links_embeds_tags_and_aliases_are_read_outside_code():
    note = parse(DQN)
    found = {(link.target, link.kind, link.heading) for link in note["links"]}
    assert found == {("replay-slide.png", "embed", "Experience replay"),
                     ("Target Networks", "link", "Targets"), ("Missing Note", "link", "Targets")}
    assert note["tags"] == ["reinforcement-learning", "exam-topic"]
    assert note["aliases"] == ["DQN", "Deep Q Network"]
    embed = next(link for link in note["links"] if link.kind == "embed")
    assert DQN[embed.offset:].startswith("![[replay-slide.png|400]]") and embed.alias == ""
    standard = parse(TARGETS)["links"]
    assert ("../images/target slide.png", "embed", False) in {
        (link.target, link.kind, link.wiki) for link in standard}


def test_a_screenshot_hit_says_which_note_embeds_it_and_where(index):
    r = hit(index, "transitions stored in a buffer", "replay-slide.png")
    (note,) = r.linked_from
    assert Path(note["path"]).name == "RL - Deep Q Learning.md"
    assert note["kind"] == "embed" and note["heading"] == "Experience replay"
    assert "minibatches are drawn" in note["passage"]
    out = CliRunner().invoke(cli, ["search", "transitions stored in a buffer", "--index",
                                   str(index.path)])
    assert "in: " in out.output and "RL - Deep Q Learning.md > Experience replay" in out.output


def test_a_standard_image_link_and_an_alias_resolve(index):
    r = hit(index, "frozen copy stable targets", "target slide.png")
    assert [Path(n["path"]).name for n in r.linked_from] == ["Target Networks.md"]
    note = hit(index, "deep q learning experience replay", "RL - Deep Q Learning.md")
    linkers = {Path(n["path"]).name: n["kind"] for n in note.linked_from}
    assert linkers == {"Target Networks.md": "link"}  # [[DQN]]: the note's alias


def test_a_note_hit_lists_its_embedded_screenshots_that_also_match(index):
    note = hit(index, "frozen copy stable targets", "Target Networks.md")
    embedded = {Path(e["path"]).name: e["matches"] for e in note.embeds}
    assert embedded == {"target slide.png": True}  # its self-embed is not listed


def test_the_note_around_an_embedded_photo_speaks_for_it(index):
    query = "lighthouse keeper repaint the tower"
    found = {Path(r.path).name: r for r in index.search(query, k=10)}
    photo_hit = found["harbour.png"]
    assert "context" in photo_hit.signals  # found through its note, not its pixels
    assert photo_hit.score < found["Sailing trip.md"].score  # ranked under the passage
    assert [Path(n["path"]).name for n in photo_hit.linked_from] == ["Sailing trip.md"]
    plain = {Path(r.path).name for r in index.search(query, k=10, embed_context=False)}
    assert "harbour.png" not in plain  # its pixels alone do not reach the query
    # Another passage of the same note (a different chunk of text) lends nothing... only
    # when the embed sits in it; and a query unrelated to the note lifts nothing.
    other = {Path(r.path).name for r in index.search("frozen copy stable targets", k=10)}
    assert "harbour.png" not in other


def test_link_cycles_and_a_self_embed_cost_nothing_more(index):
    loop = hit(index, "loop points back", "Loop A.md")
    assert [Path(n["path"]).name for n in loop.linked_from] == ["Loop B.md"]


def test_renames_keep_relations_and_a_deleted_target_unresolves(tmp_path):
    vault = make_vault(tmp_path / "vault")
    with Index.open(tmp_path / "idx", transcriber=None, tagger=False) as idx:
        idx.add([vault])
        (vault / "images" / "replay-slide.png").rename(vault / "images" / "renamed.png")
        report = idx.sync()
        assert report.renamed == 1
        r = hit(idx, "transitions stored in a buffer", "renamed.png")
        assert [Path(n["path"]).name for n in r.linked_from] == ["RL - Deep Q Learning.md"]
        (vault / "notes" / "Target Networks.md").unlink()
        idx.sync()
        note = hit(idx, "deep q learning experience replay", "RL - Deep Q Learning.md")
        assert note.linked_from == []
        # The note it linked to comes back: the link resolves again.
        (vault / "notes" / "Target Networks.md").write_text(TARGETS)
        idx.sync()
        target = hit(idx, "frozen copy stable targets", "Target Networks.md")
        assert [Path(n["path"]).name for n in target.linked_from] == ["RL - Deep Q Learning.md"]
        # A copy of a note (same bytes: its chunks are copied, no model) links what it
        # says, resolved from its own folder.
        (vault / "archive").mkdir()
        shutil.copy(vault / "notes" / "Target Networks.md", vault / "archive" / "Targets copy.md")
        idx.sync()
        shot = hit(idx, "frozen copy stable targets", "target slide.png")
        assert sorted(Path(n["path"]).name for n in shot.linked_from) == [
            "Target Networks.md", "Targets copy.md"]


def test_hostile_links_are_bounded_and_never_leave_the_source(tmp_path):
    vault = tmp_path / "vault"
    (vault / "notes").mkdir(parents=True)
    secret = tmp_path / "secret.md"
    secret.write_text("a secret outside the vault")
    many = " ".join(f"[[n{i}]]" for i in range(100_000))
    (vault / "notes" / "many.md").write_text("A note of links. " + many[:80_000])
    (vault / "notes" / "escape.md").write_text(
        "Out: [s](../../secret.md) and [[../../secret]] and ![[%2e%2e/%2e%2e/secret.md]] "
        "and [[\u202enote]].")
    started = time.perf_counter()
    assert len(parse("A note of links. " + many)["links"]) == MAX_LINKS
    assert time.perf_counter() - started < 30
    with Index.open(tmp_path / "idx", transcriber=None, tagger=False) as idx:
        report = idx.add([vault])
        assert report.failed == 0, report.errors
        escape = hit(idx, "out and secret", "escape.md")
        assert escape.embeds == []
        rows = idx.opened.store.relations_of([escape.item_id])
        assert rows and all(row["to_item"] is None for row in rows)


def test_relations_on_postgresql(postgres_url, tmp_path):  # noqa: F811 (a fixture)
    vault = make_vault(tmp_path / "vault")
    with Index.open(tmp_path / "idx", store_url=postgres_url, transcriber=None,
                    tagger=False) as idx:
        idx.add([vault])
        r = hit(idx, "transitions stored in a buffer", "replay-slide.png")
        assert [n["heading"] for n in r.linked_from] == ["Experience replay"]
        lifted = {Path(x.path).name: x for x in idx.search(
            "lighthouse keeper repaint the tower", k=10, floor=False)}["harbour.png"]
        assert "context" in lifted.signals  # no tagger here: its note's evidence only
        query = "network buffer targets transitions"
        assert {Path(x.path).name for x in idx.search(
            query, k=10, floor=False, filters="tag:reinforcement-learning")} == {
            "RL - Deep Q Learning.md"}
        assert {Path(x.path).name for x in idx.search(
            query, k=10, floor=False, filters='in:"RL - Deep Q Learning"')} == {
            "replay-slide.png"}
        shutil.rmtree(vault / "images")
        idx.sync()
        note = hit(idx, "deep q learning experience replay", "RL - Deep Q Learning.md")
        assert note.embeds == []


def test_the_grouped_view_gives_one_card_per_note(index):
    cards = index.search_grouped("transitions stored in a buffer experience replay", k=5)
    first = cards[0]
    assert Path(first.note["path"]).name == "RL - Deep Q Learning.md"
    members = {Path(r.path).name for r in first.results}
    assert {"replay-slide.png", "RL - Deep Q Learning.md"} <= members
    everything = [Path(r.path).name for c in cards for r in c.results]
    assert len(everything) == len(set(everything))  # each result in one card
    out = CliRunner().invoke(cli, ["search", "transitions stored in a buffer", "--group",
                                   "--index", str(index.path)])
    assert out.exit_code == 0, out.output
    head = out.output.splitlines()[0]
    assert head.endswith("RL - Deep Q Learning.md") and "replay-slide.png" in out.output


def test_the_api_groups_on_request(index):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from anyfind.server import create_app

    with TestClient(create_app(index.path)) as client:
        body = client.get("/api/search", params={"q": "frozen copy stable targets",
                                                 "group": "true"}).json()
        note = next(r["item_id"] for r in body["results"]
                    if r["path"].endswith("Target Networks.md"))
        related = client.get(f"/api/items/{note}/related", params={"unlinked": "true"}).json()
        assert related["related"] and all(r["reason"].startswith("similar ")
                                          for r in related["related"])
        assert client.get("/api/items/999999/related").status_code == 404
    card = body["groups"][0]
    assert Path(card["note"]["path"]).name == "Target Networks.md"
    by_id = {r["item_id"]: r for r in body["results"]}
    assert {Path(by_id[i]["path"]).name for i in card["members"]} >= {"target slide.png"}
    image = next(r for r in body["results"] if r["path"].endswith("target slide.png"))
    assert image["linked_from"][0]["kind"] == "embed"


def test_related_lists_links_both_ways_then_similar_items_with_reasons(index, vault):
    (note,) = index.item_ids_at([str(vault / "notes" / "RL - Deep Q Learning.md")])
    found = index.related(note, k=3)
    reasons = {Path(r["path"]).name: r["reason"] for r in found}
    assert reasons["replay-slide.png"] == "embeds"
    assert reasons["Target Networks.md"] in ("links to", "linked from")
    assert "Missing Note" not in " ".join(reasons)  # unresolved: nowhere to point
    linked = [r for r in found if r["score"] is None]
    similar = [r for r in found if r["score"] is not None]
    assert found[:len(linked)] == linked and similar  # links first, then similar items
    assert all(r["reason"].startswith("similar ") for r in similar)
    unlinked = index.related(note, k=3, unlinked=True)
    assert unlinked and not {r["id"] for r in unlinked} & {r["id"] for r in linked}
    out = CliRunner().invoke(cli, ["related", str(vault / "notes" / "RL - Deep Q Learning.md"),
                                   "--index", str(index.path)])
    assert out.exit_code == 0, out.output
    assert "embeds" in out.output and "replay-slide.png" in out.output


def names(results) -> set[str]:
    return {Path(r.path).name for r in results}


def test_vault_filters_tag_linked_and_in(index):
    query = "network buffer targets transitions"
    assert names(index.search(query, k=10, floor=False, filters="tag:reinforcement-learning")
                 ) == {"RL - Deep Q Learning.md"}
    assert names(index.search(query, k=10, floor=False, filters="tag:#exam-topic")
                 ) == {"RL - Deep Q Learning.md"}
    assert names(index.search(query, k=10, floor=False,
                              filters='in:"RL - Deep Q Learning"')) == {"replay-slide.png"}
    # Links both ways, embeds included: the note linking it, the slide it embeds.
    assert names(index.search(query, k=10, floor=False, filters='linked:"Target Networks"')
                 ) == {"RL - Deep Q Learning.md", "target slide.png"}
    assert "target slide.png" not in names(index.search(
        "frozen copy stable targets", k=10, floor=False, filters='-in:"Target Networks"'))
    both = index.search(query, k=10, floor=False, filters='in:"Target Networks" modality:image')
    assert names(both) == {"target slide.png"}


def test_a_query_that_reaches_only_notes_still_finds_what_they_embed(tmp_path):
    """The default fusion ranks written text by rank fusion, but a query whose notes
    embed a photo reaches that photo: the calibrated order, with the notes' evidence."""
    vault = make_vault(tmp_path / "vault")
    for n in range(12):  # the first ten of every signal are notes
        (vault / "notes" / f"Lighthouse log {n}.md").write_text(
            f"Day {n}: the lighthouse keeper painted part {n} of the tower red.")
    with Index.open(tmp_path / "idx", transcriber=None, tagger=False) as idx:
        idx.add([vault])
        query = "lighthouse keeper repaint the red tower"
        names = [Path(r.path).name for r in idx.search(query, k=20, floor=False)]
        assert "harbour.png" in names
        off = [Path(r.path).name for r in idx.search(query, k=20, floor=False,
                                                      embed_context=False)]
        assert "harbour.png" not in off
