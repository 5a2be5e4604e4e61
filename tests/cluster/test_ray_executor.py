"""Indexing on a real Ray cluster on loopback (tests/support/ray_fixtures.py): the same items,
chunks and vectors as the local executor; incremental rules; a killed actor and a killed
driver lose and duplicate nothing; an unreachable cluster is one line."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from makers import speak
from postgres_fixtures import postgres_server, postgres_url  # noqa: F401 (fixtures, by name)

from anyfind import Index
from tests.conftest import write_corpus

pytestmark = pytest.mark.timeout(420)  # every Ray test has a hard limit
IMAGES = Path(__file__).parents[1] / "fixtures" / "images"
ANYFIND = [sys.executable, "-m", "anyfind"]
WORDS = ("river", "granite", "harvest", "lantern", "orbit", "ledger", "violin", "glacier",
         "pepper", "compiler", "meadow", "tunnel", "saddle", "beacon", "quartz", "ferry")


def long_text() -> str:
    """A document well over the text model's token budget (several chunks)."""
    rng = np.random.default_rng(7)
    sentences = [" ".join(rng.choice(WORDS, size=12)) + "." for _ in range(160)]
    return "\n\n".join(" ".join(sentences[i:i + 8]) for i in range(0, 160, 8))


def make_corpus(root: Path) -> Path:
    write_corpus(root)
    (root / "long").mkdir()
    (root / "long" / "essay.txt").write_text(long_text())
    (root / "photos").mkdir()
    for name in ("coffee.jpg", "rocket.jpg"):
        shutil.copy(IMAGES / name, root / "photos" / name)
    from ocr_fixtures import slide

    slide(root / "photos" / "slide.png", "Launch Window Planning",  # read by OCR
          ["fuel the second stage overnight", "weather briefing at dawn"])
    (root / "audio").mkdir()
    speak("The rocket launch is planned for Tuesday morning at nine.", root / "audio" / "memo.wav")
    (root / "broken").mkdir()
    (root / "broken" / "scan.pdf").write_bytes(b"%PDF-1.4\n" + os.urandom(3000))  # corrupt
    (root / "broken" / "empty.txt").write_bytes(b"")
    return root


def snapshot(path: Path) -> dict:
    """Items, chunks and vectors of a SQLite index, keyed by path (ids differ by run)."""
    con = sqlite3.connect(path / "meta.db")
    items = {r[0]: r[1:] for r in con.execute(
        "select id, path, status, modality, media_type, content_hash, title, error from items")}
    chunks = {r[0]: (items[r[1]][0],) + r[2:] for r in con.execute(
        "select id, item_id, ordinal, modality, text, char_start, char_end, start_s, end_s "
        "from chunks")}
    vectors = {(chunks[c][:2], space): np.frombuffer(blob, dtype=np.float32)
               for c, space, blob in con.execute("select chunk_id, space, vector from embeddings")}
    con.close()
    return {"items": sorted(items.values()), "chunks": sorted(chunks.values()),
            "vectors": vectors}


def part(snap: dict, folder: str) -> dict:
    """The items, chunks and vectors of a snapshot under `folder` (by path)."""
    return {"items": [i for i in snap["items"] if f"/{folder}/" in i[0]],
            "chunks": [c for c in snap["chunks"] if f"/{folder}/" in c[0]],
            "vectors": {k: v for k, v in snap["vectors"].items() if f"/{folder}/" in k[0][0]}}


def assert_same(a: dict, b: dict) -> None:
    assert a["items"] == b["items"]
    assert a["chunks"] == b["chunks"]
    assert a["vectors"].keys() == b["vectors"].keys()
    worst = min(float(a["vectors"][k] @ b["vectors"][k]) for k in a["vectors"])
    assert worst >= 0.9999, worst


@pytest.fixture(scope="module")
def corpus_root(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("ray-corpus"))


@pytest.fixture(scope="module")
def lecture_root(tmp_path_factory) -> Path:
    """A narrated two-slide lecture (only the first test indexes it: the others need no
    video, and CI time counts)."""
    from video_fixtures import Shown, lecture

    root = tmp_path_factory.mktemp("ray-videos") / "videos"
    root.mkdir()
    lecture(root / "lecture.mp4", [
        Shown("Booster Separation", ["the first stage falls away at minute two"],
              "Watch the booster separate and fall back to the ocean."),
        Shown("Orbit Insertion", ["the second stage burns for six minutes"],
              "Then the upper stage carries the payload into orbit.")], fps=5)
    return root


@pytest.fixture(scope="module")
def local_reference(corpus_root, tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("ray-local") / "idx"
    with Index.open(path) as idx:
        report = idx.add([corpus_root])
    assert report.failed == 1 and report.skipped == 1 and report.added >= 10
    return {**snapshot(path), "path": path}


def test_ray_gives_the_local_items_chunks_and_vectors(ray_cluster, ray_driver, corpus_root,
                                                      local_reference, lecture_root, tmp_path):
    path = tmp_path / "idx"
    with Index.open(path) as idx:
        idx.use_executor("ray", address=ray_cluster)
        idx.add([lecture_root])  # frames decoded by a read task, read by the OCR actors
        report = idx.add([corpus_root])
        assert report.executor == "ray" and report.workers >= 3 and report.nodes == 1
        assert "encoded by ray: " in report.summary()
        # how the workers encoded documents, as a local run says it (it was left out)
        assert report.precision.get("text") in ("fp32", "bf16", "fp16", "onnx", "int8")
        assert f"text {report.precision['text']}" in report.summary()
        errors = {Path(e["path"]).name: e["error"] for e in report.errors}
        assert set(errors) == {"scan.pdf"}  # per item, as locally (empty.txt: skipped)
        hits = idx.search("when is the rocket launch", k=3)
        assert hits and hits[0].path.endswith("memo.wav")  # transcribed by the Whisper actors
        rocket = next(r for r in idx.search("rocket", k=10, floor=False)
                      if r.path.endswith("rocket.jpg"))
        assert idx.thumbnail(rocket.item_id) is not None  # made on a worker, written here
        found = idx.search("fuel the second stage overnight", k=1, mode="lexical")
        assert found and found[0].path.endswith("slide.png")  # read on a worker
        assert found[0].regions and "second stage" in found[0].regions[0]["text"].lower()
        moment = idx.search("first stage falls away at minute two", k=1, mode="lexical")
        assert moment and moment[0].path.endswith("lecture.mp4")
        assert moment[0].moments and moment[0].moments[0]["start"] < 1.0  # the first slide
    with Index.open(tmp_path / "local-video") as local:
        local.add([lecture_root])
    ours = snapshot(path)
    assert_same(part(ours, "videos"), snapshot(tmp_path / "local-video"))
    assert_same(part(ours, corpus_root.name), local_reference)


def ray_actors() -> list[str]:
    """The process titles of the Ray actors alive on this machine ("ray::<class>"), idle
    workers left out."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            title = cmdline.read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if title.startswith("ray::") and not title.startswith("ray::IDLE"):
            found.append(title.split()[0])
    return sorted(found)


def actors_after_the_run(limit: float = 60.0) -> list[str]:
    """The actors left once the job's own have exited (they go asynchronously after the
    driver disconnects: polled, at most `limit` seconds)."""
    import time

    deadline = time.monotonic() + limit
    while True:
        left = ray_actors()
        if all(_ray_data_helper(t) for t in left) or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


# Ray Data's cluster-wide detached actors (its statistics, autoscaling, where actors run),
# one each per cluster, reused by every later run (docs/SCALE.md), and each node's agents.
HELPERS = ("_StatsActor", "_AutoscalingCoordinatorActor", "AutoscalingRequester",
           "ActorLocationTracker", "DashboardAgent", "RuntimeEnvAgent")


def _ray_data_helper(title: str) -> bool:
    return title.removeprefix("ray::") in HELPERS


def test_ray_incremental_rules_and_shipped_bytes(ray_cluster, ray_driver, corpus_root,
                                                 tmp_path, tmp_path_factory):
    root = tmp_path / "corpus"
    shutil.copytree(corpus_root, root)
    path = tmp_path / "idx"
    with Index.open(path) as idx:
        # The driver reads and ships every item's bytes, as for nodes without its files.
        idx.use_executor("ray", address=ray_cluster, shared_files=False)
        idx.add([root])
        import ray

        ray.shutdown()
        # The run's actors (readers, encoders) are gone with its driver; what stays is
        # Ray Data's own helpers, and a second run adds none (checked below).
        helpers = actors_after_the_run()
        assert all(_ray_data_helper(t) for t in helpers), helpers
        idx.use_executor("ray", address=ray_cluster, shared_files=False)  # a fresh one
        again = idx.add([root])  # nothing changed: no cluster is even contacted
        assert again.unchanged >= 12 and again.added == again.updated == 0
        assert not idx.opened.executor.connected and not ray.is_initialized()

        (root / "garden" / "tomatoes.md").rename(root / "garden" / "tomato-notes.md")
        shutil.copy(root / "astro" / "moon.txt", root / "astro" / "moon-copy.txt")
        (root / "code" / "fib.py").unlink()
        (root / "long" / "essay.txt").write_text(long_text() + "\n\nA new closing paragraph.")
        report = idx.add([root])
        assert (report.renamed, report.copied, report.removed, report.updated) == (1, 1, 1, 1)
        assert idx.check().ok
        ray.shutdown()
        assert actors_after_the_run() == helpers  # nothing accumulates run after run
    fresh = tmp_path_factory.mktemp("ray-fresh") / "idx"
    with Index.open(fresh) as idx:
        idx.add([root])
    assert_same(snapshot(path), snapshot(fresh))


# A worker killed while it reads runs in `make test-long` (~25 s of CI time): the one
# killed while it encodes holds more of the run in flight.
@pytest.mark.parametrize("point", ["ray.encode", pytest.param("ray.read", marks=pytest.mark.slow)])
def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(point, ray_cluster, ray_driver,
                                                              corpus_root, local_reference,
                                                              tmp_path, monkeypatch):
    marker = tmp_path / "killed"
    # The first encoder actor (or read task's worker) to take a batch is SIGKILLed; Ray
    # restarts it and runs the batch again (the env reaches the workers through the job's
    # runtime env).
    monkeypatch.setenv("ANYFIND_CRASH_AT", f"{point}:1")
    monkeypatch.setenv("ANYFIND_CRASH_ONCE", str(marker))
    path = tmp_path / "idx"
    with Index.open(path) as idx:
        idx.use_executor("ray", address=ray_cluster, model_batch=4)
        report = idx.add([corpus_root])
    assert marker.exists()  # the kill happened
    assert report.failed == 1
    assert_same(snapshot(path), local_reference)


QUERIES = ["when is the rocket launch", "tomatoes in the sun", "paid holiday", "espresso crema",
           "semiconductor shortage", "granite lantern orbit"]


def test_ray_into_postgresql_and_milvus(ray_cluster, ray_driver, corpus_root, local_reference,
                                        tmp_path, request):
    """The cluster-index pair: metadata in PostgreSQL, vectors in Milvus (Lite here), read
    and encoded on Ray: the same dense top-5 as the local SQLite + FAISS index."""
    pytest.importorskip("milvus_lite")
    url = request.getfixturevalue("postgres_url")
    with Index.open(tmp_path / "idx", store_url=url,
                    vector_store=f"milvus-lite:///{tmp_path}/vectors.db") as idx:
        idx.use_executor("ray", address=ray_cluster)
        report = idx.add([corpus_root])
        assert (report.failed, report.executor) == (1, "ray")
        with Index.open(local_reference["path"], create=False) as local:
            for q in QUERIES:
                got = [Path(r.path).name for r in idx.search(q, k=5, mode="dense", floor=False)]
                want = [Path(r.path).name for r in local.search(q, k=5, mode="dense",
                                                                 floor=False)]
                assert got == want, q
                # sampled by content, the calibration is the local one: the dense scores
                # shown are the same (Ray numbers chunks as they come back; sampled by id
                # they differed by 0.02 here; BM25 is Milvus's own, so dense alone)
                shown = {Path(r.path).name: r.score
                         for r in idx.search(q, k=5, mode="dense", floor=False)}
                for r in local.search(q, k=5, mode="dense", floor=False):
                    if Path(r.path).name in shown:
                        assert shown[Path(r.path).name] == pytest.approx(r.score, abs=5e-3), q
            ours, theirs = idx.opened.calibration, local.opened.calibration
            assert ours.spaces["text"].keys() == theirs.spaces["text"].keys()
            for modality, scale in theirs.spaces["text"].items():
                for field in ("centre", "spread", "related", "off_topic"):
                    assert getattr(ours.spaces["text"][modality], field) == pytest.approx(
                        getattr(scale, field), abs=3e-3), (modality, field)
        assert idx.check().ok


@pytest.mark.slow  # ~60 s: CI time (the local executor's kill-and-resume runs by default)
def test_a_driver_killed_mid_run_resumes_from_the_last_batch(ray_cluster, corpus_root,
                                                             local_reference, tmp_path):
    path = tmp_path / "idx"
    Index.open(path, batch_chunks=2).close()  # small write batches: several commits
    env = {**os.environ, "ANYFIND_CRASH_AT": "batch.committed:2"}
    cmd = ANYFIND + ["index", str(corpus_root), "--index", str(path), "-q",
                     "--ray-address", ray_cluster]
    killed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr[-2000:]
    con = sqlite3.connect(path / "meta.db")
    written = con.execute("select count(*) from items").fetchone()[0]
    con.close()
    assert 0 < written < 12
    done = subprocess.run(cmd + ["--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"executor": "ray"' in done.stdout
    # Ray's native lines (a core_worker E-line on every run) stay off the terminal
    assert "core_worker" not in done.stderr and "gcs_client" not in done.stderr, done.stderr
    assert_same(snapshot(path), local_reference)  # no item twice, none missing


def test_an_unreachable_cluster_is_one_line_and_writes_nothing(corpus, tmp_path):
    from milvus_fixtures import free_port

    path = tmp_path / "idx"
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    run = subprocess.run(ANYFIND + ["index", str(corpus), "--index", str(path), "-q",
                                    "--ray-address", address],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert lines == [f"Error: cannot reach the Ray cluster at {address}: Connection refused"]
    with Index.open(path) as idx:
        assert idx.status()["items"] == 0
        assert idx.config.executor == "ray"  # a new index keeps the executor it was made with
        idx.use_executor("local")
        assert idx.add([corpus]).added == 6  # later, in this process: all of it


@pytest.mark.slow  # ~20 s of CI time: Ray itself is tested on the loopback cluster above
def test_without_an_address_a_local_ray_runs_for_the_sync(ray_driver, tmp_path):
    """It also declares a GPU (a logical resource here: the models still run on the CPU),
    so the model pools ask for GPU shares, as on a GPU cluster, and are scheduled."""
    import ray

    root = tmp_path / "notes"
    root.mkdir()
    for i, text in enumerate(("Sourdough needs a long cold proof.", "Bicycle chains want oil.")):
        (root / f"n{i}.txt").write_text(text)
    with Index.open(tmp_path / "idx", tagger=False, transcriber=None) as idx:
        idx.use_executor("ray", num_cpus=2, num_gpus=1)
        report = idx.add([root])
        assert (report.added, report.executor, report.nodes, report.workers) == (2, "ray", 1, 1)
        assert ray.is_initialized() and ray.cluster_resources()["GPU"] == 1
        assert idx.search("sourdough proofing", k=1)[0].path.endswith("n0.txt")
    assert not ray.is_initialized()  # the Ray it started stops with the index


def test_a_worker_view_without_the_index_folder_removes_its_scratch_folder():
    """Workers on other machines get a scratch folder per run's view; it goes with the view
    (evicted, or the worker process ends), so long-lived workers do not fill /tmp."""
    import gc

    from anyfind.config import IndexConfig
    from anyfind.indexer.distributed import WorkerIndex, WorkerSpec

    view = WorkerIndex(WorkerSpec("k", IndexConfig(), None, None, None))
    scratch = view.path
    assert scratch.is_dir() and scratch.name.startswith("anyfind-worker-")
    del view
    gc.collect()
    assert not scratch.exists()


@pytest.mark.slow  # Ray's client retries an unauthenticated connection for ~20 s
@pytest.mark.parametrize("token", [None, "not-the-clusters-token"])
def test_a_missing_ray_token_is_said_as_such_in_one_line(token, ray_cluster, corpus, tmp_path):
    """Without the cluster's token (or with another) Ray printed twenty InvalidAuthToken
    lines, then "cannot reach the Ray cluster ... ConnectionError" (a network fault, it
    read): one sentence that names the token now."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    if token is not None:
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    run = subprocess.run(ANYFIND + ["index", str(corpus), "--index", str(tmp_path / "idx"),
                                    "-q", "--ray-address", ray_cluster],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 1
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    said = "no token" if token is None else "a wrong token"
    assert f"refused this process ({said})" in lines[0] and "RAY_AUTH_TOKEN" in lines[0]
