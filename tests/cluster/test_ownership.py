"""One owner per metadata store (store/ownership.py): a second index on the database of a
first is refused before it writes anything, an emptied or replaced store is said instead
of answered from, and a repair never deletes what the store cannot explain."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from postgres_fixtures import postgres_server, postgres_url  # noqa: F401 (fixtures, by name)

from anyfind import Index
from anyfind.errors import IndexDamaged

ROOT = Path(__file__).resolve().parents[2]


def notes(root: Path, words: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i, word in enumerate(words):
        (root / f"{word}.md").write_text(f"# {word}\n\nA note on the {word}, number {i}.")
    return root


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "anyfind", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=600)


def paths_found(index_dir: Path, query: str) -> set[str]:
    with Index.open(index_dir, create=False) as idx:
        return {Path(r.path).name for r in idx.search(query, k=10, floor=False)}


def test_a_second_index_on_the_same_database_is_refused_and_the_first_is_untouched(
        tmp_path, postgres_url):  # noqa: F811 (a fixture)
    first = notes(tmp_path / "first", ["lighthouse", "glacier", "harbour"])
    other = notes(tmp_path / "other", ["volcano", "desert"])
    with Index.open(tmp_path / "A", store_url=postgres_url, tagger=False,
                    transcriber=None) as a:
        a.add([first])
        before = {s["name"] for s in a.sources()}
    with pytest.raises(IndexDamaged, match="belongs to another index .*one index per database"):
        with Index.open(tmp_path / "B", store_url=postgres_url, tagger=False,
                        transcriber=None) as b:
            b.add([other])
    with Index.open(tmp_path / "A", create=False) as a:
        assert {s["name"] for s in a.sources()} == before
        assert a.check().ok
        found = {Path(r.path).name for r in a.search("glacier", k=3)}
        assert "glacier.md" in found and not found & {"volcano.md", "desert.md"}
    # the CLI says it in one line, naming the owner's folder, and exits non-zero
    done = cli("index", str(other), "--index", str(tmp_path / "C"), "--store-url", postgres_url)
    assert done.returncode != 0
    assert "belongs to another index" in done.stderr and str(tmp_path / "A") in done.stderr
    assert "Traceback" not in done.stderr


def test_an_emptied_meta_db_is_said_by_every_command_and_by_check(tmp_path):
    docs = notes(tmp_path / "docs", ["lighthouse", "glacier"])
    with Index.open(tmp_path / "idx", tagger=False, transcriber=None) as idx:
        idx.add([docs])
    (tmp_path / "idx" / "meta.db").write_bytes(b"")
    for args in (["search", "glacier"], ["status"], ["sync"]):
        done = cli(*args, "--index", str(tmp_path / "idx"))
        assert done.returncode != 0, (args, done.stdout)
        assert "emptied or replaced" in done.stderr and "Traceback" not in done.stderr
    done = cli("check", "--index", str(tmp_path / "idx"))
    assert done.returncode != 0 and "store-refused" in done.stdout
    with pytest.raises(IndexDamaged):
        paths_found(tmp_path / "idx", "glacier")


def test_a_meta_db_of_another_index_swapped_in_is_refused(tmp_path):
    for name, words in (("one", ["lighthouse"]), ("two", ["volcano"])):
        with Index.open(tmp_path / name, tagger=False, transcriber=None) as idx:
            idx.add([notes(tmp_path / f"docs-{name}", words)])
    (tmp_path / "one" / "meta.db").write_bytes((tmp_path / "two" / "meta.db").read_bytes())
    with pytest.raises(IndexDamaged, match="belongs to another index"):
        paths_found(tmp_path / "one", "volcano")  # the fast SQLite reader checks too


def test_an_index_written_before_owners_claims_its_store_and_keeps_working(tmp_path):
    docs = notes(tmp_path / "docs", ["lighthouse", "glacier"])
    with Index.open(tmp_path / "idx", tagger=False, transcriber=None) as idx:
        idx.add([docs])
    # as an older anyfind left it: no id in config.json, no owner in the store
    config = json.loads((tmp_path / "idx" / "config.json").read_text())
    del config["index_id"], config["store_claimed"]
    (tmp_path / "idx" / "config.json").write_text(json.dumps(config))
    db = sqlite3.connect(tmp_path / "idx" / "meta.db")
    db.execute("DELETE FROM meta WHERE key LIKE 'index_%'")
    db.commit()
    db.close()
    assert "glacier.md" in paths_found(tmp_path / "idx", "glacier")
    with Index.open(tmp_path / "idx", create=False) as idx:
        idx.sync()
    config = json.loads((tmp_path / "idx" / "config.json").read_text())
    assert config["index_id"] and config["store_claimed"]
    # a new index pointed at that (owner-less, holding) store would be refused
    db = sqlite3.connect(tmp_path / "idx" / "meta.db")
    db.execute("DELETE FROM meta WHERE key LIKE 'index_%'")
    db.commit()
    db.close()
    with pytest.raises(IndexDamaged, match="older anyfind"):
        with Index.open(tmp_path / "new", tagger=False, transcriber=None,
                        store_url=f"sqlite:///{tmp_path / 'idx' / 'meta.db'}") as new:
            new.sources()


def _milvus_index(tmp_path: Path, uri: str) -> np.ndarray:
    first = notes(tmp_path / "first", [f"topic{i}" for i in range(30)])
    with Index.open(tmp_path / "A", tagger=False, transcriber=None, vector_store=uri) as a:
        a.add([first])
        vs = a.opened.vector_store("text")
        return vs.fetch(np.sort(vs.ids()))[1]


def test_a_second_index_on_the_same_collection_is_refused_before_it_writes(tmp_path):
    pytest.importorskip("pymilvus")
    uri = f"milvus-lite://{tmp_path / 'milvus' / 'vectors.db'}"
    before = _milvus_index(tmp_path, uri)
    other = notes(tmp_path / "other", ["volcano", "desert", "canyon"])
    with pytest.raises(IndexDamaged, match="belongs to another index: give this index its own"):
        with Index.open(tmp_path / "B", tagger=False, transcriber=None, vector_store=uri) as b:
            b.add([other])
    with Index.open(tmp_path / "A", create=False) as a:
        vs = a.opened.vector_store("text")
        assert np.array_equal(vs.fetch(np.sort(vs.ids()))[1], before)  # nothing overwritten
        assert a.check().ok


def test_repair_never_empties_a_collection_the_store_cannot_explain(tmp_path):
    pytest.importorskip("pymilvus")
    uri = f"milvus-lite://{tmp_path / 'milvus' / 'vectors.db'}"
    _milvus_index(tmp_path, uri)
    db = sqlite3.connect(tmp_path / "A" / "meta.db")  # the store loses most of its rows
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("DELETE FROM items WHERE path NOT LIKE '%topic1.md'")
    db.commit()
    db.close()
    with Index.open(tmp_path / "A", create=False) as a:
        repaired = a.check(repair=True)
        assert "service-unexplained" in repaired.codes(), repaired.summary()
        assert not repaired.ok and "Nothing was deleted" in repaired.summary()
        assert len(a.opened.vector_store("text").ids()) == 30


def test_two_indexes_share_a_database_through_their_own_schemas(tmp_path, postgres_url):  # noqa: F811
    """docs/SCALE.md's way to share one database: a schema per index (search_path)."""
    import psycopg

    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA other")
    sep = "&" if "?" in postgres_url else "?"
    own = f"{postgres_url}{sep}options=-csearch_path%3Dother"
    with Index.open(tmp_path / "A", store_url=postgres_url, tagger=False,
                    transcriber=None) as a:
        a.add([notes(tmp_path / "first", ["lighthouse", "glacier"])])
    with Index.open(tmp_path / "B", store_url=own, tagger=False, transcriber=None) as b:
        b.add([notes(tmp_path / "other", ["volcano", "desert"])])
        assert {Path(r.path).name for r in b.search("volcano", k=5)} <= {"volcano.md",
                                                                          "desert.md"}
    assert paths_found(tmp_path / "A", "glacier") <= {"lighthouse.md", "glacier.md"}


# -- one writer per cluster index, whatever folder it writes through ---------------------
def _second_folder(first: Path, second: Path) -> Path:
    """Another folder of the same cluster index: a replica's or another machine's copy of
    the config (docs/SCALE.md)."""
    second.mkdir()
    for name in ("config.json", "secrets.json"):
        if (first / name).exists():
            (second / name).write_bytes((first / name).read_bytes())
    return second


def test_two_folders_of_one_postgres_index_never_write_at_once(tmp_path, postgres_url):  # noqa: F811
    from anyfind.errors import IndexLocked

    docs = notes(tmp_path / "docs", ["lighthouse", "glacier"])
    with Index.open(tmp_path / "A", store_url=postgres_url, tagger=False,
                    transcriber=None) as a:
        a.add([docs])
        other = _second_folder(tmp_path / "A", tmp_path / "A2")
        notes(docs, ["harbour"])
        with a.lock:  # the writer of folder A is at work
            done = cli("sync", "--index", str(other))
            assert done.returncode != 0
            assert "being written by another process" in done.stderr
            assert f"pid {__import__('os').getpid()}" in done.stderr  # the holder, named
            assert "Traceback" not in done.stderr and "IntegrityError" not in done.stderr
            with Index.open(other, create=False) as b, pytest.raises(IndexLocked):
                b.sync()
    # the lock went with its holder: the other folder writes now, and A sees it
    done = cli("sync", "--index", str(other))
    assert done.returncode == 0, done.stderr
    assert "harbour.md" in paths_found(tmp_path / "A", "harbour")


def test_two_folders_of_one_shared_sqlite_store_never_write_at_once(tmp_path):
    from anyfind.errors import IndexLocked

    shared = f"sqlite:///{tmp_path / 'shared' / 'meta.db'}"
    (tmp_path / "shared").mkdir()
    docs = notes(tmp_path / "docs", ["lighthouse", "glacier"])
    with Index.open(tmp_path / "A", store_url=shared, tagger=False, transcriber=None) as a:
        a.add([docs])
        other = _second_folder(tmp_path / "A", tmp_path / "A2")
        with a.lock, Index.open(other, create=False) as b:
            with pytest.raises(IndexLocked, match="another index folder"):
                b.sync()
    with Index.open(other, create=False) as b:
        b.sync()  # free again


def test_a_missing_postgres_database_is_one_line(tmp_path, postgres_url):  # noqa: F811
    missing = postgres_url.replace("/t", "/nosuchdb_t", 1)
    docs = notes(tmp_path / "docs", ["lighthouse"])
    done = cli("index", str(docs), "--index", str(tmp_path / "X"), "--store-url", missing)
    assert done.returncode != 0
    assert "cannot use the metadata database" in done.stderr and "does not exist" in done.stderr
    assert "Traceback" not in done.stderr


# -- changing a service: a failed first run, a moved database, new credentials ------------
def test_a_first_run_on_a_missing_database_is_corrected_by_the_next(tmp_path, postgres_url):  # noqa: F811
    docs = notes(tmp_path / "docs", ["lighthouse", "glacier"])
    wrong = postgres_url.replace("/t", "/nosuchdb_t", 1)
    done = cli("index", str(docs), "--index", str(tmp_path / "X"), "--store-url", wrong)
    assert done.returncode != 0 and "does not exist" in done.stderr
    # the corrected URL on the next run is used (the first claimed nothing), not ignored
    done = cli("index", str(docs), "--index", str(tmp_path / "X"), "--store-url", postgres_url)
    assert done.returncode == 0, done.stderr
    assert "glacier.md" in paths_found(tmp_path / "X", "glacier")
    # once the index holds data there, another URL is refused with the way to change it
    other = postgres_url.replace("/t", "/elsewhere_t", 1)
    done = cli("index", str(docs), "--index", str(tmp_path / "X"), "--store-url", other)
    assert done.returncode != 0 and "anyfind config set store-url" in done.stderr
    assert "Traceback" not in done.stderr


def test_config_set_checks_the_new_database_and_says_what_changed(tmp_path, postgres_url,  # noqa: F811
                                                                   postgres_server):  # noqa: F811
    psycopg, sock = postgres_server
    docs = notes(tmp_path / "docs", ["lighthouse", "glacier"])
    with Index.open(tmp_path / "A", store_url=postgres_url, tagger=False,
                    transcriber=None) as a:
        a.add([docs])
    # the same database under another URL (a moved server, new connection settings)
    moved = f"{postgres_url}&application_name=anyfind-moved"
    done = cli("config", "set", "store-url", moved, "--index", str(tmp_path / "A"))
    assert done.returncode == 0, done.stderr
    assert "store-url:" in done.stdout and "->" in done.stdout
    assert json.loads((tmp_path / "A" / "config.json").read_text())["store_url"] == moved
    assert "glacier.md" in paths_found(tmp_path / "A", "glacier")
    # an empty database would lose the index: refused, nothing changed
    empty = f"e{__import__('time').time_ns()}"
    with psycopg.connect(host=str(sock), user="anyfind", dbname="postgres",
                         autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {empty}")
    done = cli("config", "set", "store-url", f"postgresql+psycopg://anyfind@/{empty}?host={sock}",
               "--index", str(tmp_path / "A"))
    assert done.returncode != 0 and "holds no anyfind index" in done.stderr
    assert json.loads((tmp_path / "A" / "config.json").read_text())["store_url"] == moved
    shown = cli("config", "show", "--index", str(tmp_path / "A"), "--json")
    assert json.loads(shown.stdout)["store-url"] == moved
    # the URL kept stopped working (a database renamed, a password rotated): set mends it
    config = json.loads((tmp_path / "A" / "config.json").read_text())
    config["store_url"] = postgres_url.replace("/t", "/gone_t", 1)
    (tmp_path / "A" / "config.json").write_text(json.dumps(config))
    done = cli("config", "set", "store-url", postgres_url, "--index", str(tmp_path / "A"))
    assert done.returncode == 0, done.stderr
    assert "glacier.md" in paths_found(tmp_path / "A", "glacier")


def test_config_set_persists_the_ray_address_and_refuses_an_empty_vector_store(tmp_path):
    from anyfind.cli import SERVICE_KEYS
    from anyfind.core.services import KEYS

    assert KEYS == SERVICE_KEYS  # one list of what `config set` changes
    shared = tmp_path / "shared"
    shared.mkdir()
    docs = notes(tmp_path / "docs", ["lighthouse"])
    with Index.open(tmp_path / "A", store_url=f"sqlite:///{shared / 'meta.db'}",
                    tagger=False, transcriber=None) as a:
        a.add([docs])
    done = cli("config", "set", "ray-address", "ray://head:10001", "--index", str(tmp_path / "A"))
    assert done.returncode == 0 and "ray-address: (none) -> ray://head:10001" in done.stdout
    done = cli("config", "set", "vector-store", "milvus-lite:///x.db", "--index",
               str(tmp_path / "A"))
    assert done.returncode != 0 and "would start empty" in done.stderr
