"""Videos: what is shown (kept frames, read by OCR) and what is said, found as moments.

Real videos made here (tests/support/video_fixtures.py: PIL slides, espeak-ng narration, H.264 +
AAC or VP8 muxed by PyAV), indexed through the real pipeline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from ocr_fixtures import slide
from video_fixtures import Shown, lecture, sideways

from anyfind import Index
from anyfind.cli import cli

pytest.importorskip("av")
pytest.importorskip("rapidocr_onnxruntime")
if shutil.which("espeak-ng") is None:
    pytest.skip("espeak-ng is not installed", allow_module_level=True)

DECK = [
    Shown("Q-Loss and the TD Error", ["the loss is the temporal difference error"],
          "Today we look at how the value network is trained."),
    Shown("Experience Replay", ["transitions are stored in a buffer"],
          "Old experience is kept in memory and sampled again at random."),
    Shown("Target Networks", ["a frozen copy gives stable targets"],
          "Bananas are yellow and monkeys like to eat them for breakfast."),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("videos")
    lecture(root / "lecture.mp4", DECK, fps=5)
    silent = [Shown("Gradient Clipping", ["keeps exploding updates bounded"], ""),
              Shown("Learning Rate Warmup", ["small steps during the first epochs"], "")]
    lecture(root / "silent.webm", silent, fps=5, codec="libvpx", sound=False, min_seconds=4)
    (root / "notes.md").write_text("Reinforcement learning reading list for the course.")
    return root


@pytest.fixture(scope="module")
def index(folder, tmp_path_factory):
    idx = Index.open(tmp_path_factory.mktemp("video-idx") / "idx")
    report = idx.add([folder])
    assert report.failed == 0, report.errors
    yield idx
    idx.close()


def moment_of(idx, query=None, **kw) -> tuple[str, dict]:
    hit = idx.search(query, k=1, **kw)[0]
    return Path(hit.path).name, (hit.moments[0] if hit.moments else {})


def inside(moment: dict, shown: Shown) -> bool:
    """The moment starts while `shown` is on screen (one sample of slack) and is short."""
    return (shown.start - 0.01 <= moment["start"] < shown.end + 1.0
            and moment["end"] - moment["start"] <= 30.0)


@pytest.mark.parametrize("query, n", [("temporal difference error", 0),
                                      ("transitions stored in a buffer", 1),
                                      ("frozen copy stable targets", 2)])
def test_a_slide_is_found_by_its_words_at_the_second_it_is_shown(index, query, n):
    name, moment = moment_of(index, query)
    assert name == "lecture.mp4"
    assert moment["kind"] == "frame" and inside(moment, DECK[n]), (moment, DECK[n])
    assert DECK[n].title.lower() in moment["shown"].lower()


@pytest.mark.parametrize("query, n", [("bananas monkeys breakfast", 2),
                                      ("old experience kept in memory", 1)])
def test_a_spoken_phrase_is_found_at_the_second_it_is_said(index, query, n):
    name, moment = moment_of(index, query)
    assert name == "lecture.mp4"
    assert inside(moment, DECK[n]), (moment, DECK[n])
    assert query.split()[-1] in moment["said"].lower()


def test_a_screenshot_of_a_slide_finds_the_moment_it_is_shown(index, tmp_path):
    shot = slide(tmp_path / "shot.png", DECK[1].title, DECK[1].bullets, size=(1024, 576),
                 seed=7)
    name, moment = moment_of(index, image=str(shot))
    assert name == "lecture.mp4" and inside(moment, DECK[1]), moment


def test_a_video_without_sound_is_its_frames(index, folder):
    name, moment = moment_of(index, "learning rate warmup small steps")
    assert name == "silent.webm" and moment["kind"] == "frame" and moment["start"] >= 3.0
    (item_id,) = index.item_ids_at([str(folder / "silent.webm")])
    item = index.item(item_id)
    assert item["modality"] == "video" and "transcript" not in item["meta"]
    assert [f["why"] for f in item["meta"]["frames"]] == ["first", "still"]


def test_frames_are_kept_per_slide_and_show_lists_them(index, folder):
    (item_id,) = index.item_ids_at([str(folder / "lecture.mp4")])
    frames = index.item(item_id)["meta"]["frames"]
    assert len(frames) == len(DECK)
    for frame, shown in zip(frames, DECK, strict=True):
        assert abs(frame["start"] - shown.start) <= 1.01, (frame, shown)
        assert shown.title.lower() in " ".join(
            line["text"] for line in frame["ocr"]["lines"]).lower()
        assert index.opened.thumbnails.get(f"{index.item(item_id)['content_hash']}-"
                                           f"{frame['ordinal']}") is not None
    shown = CliRunner().invoke(cli, ["show", str(item_id), "--index", str(index.path)])
    assert shown.exit_code == 0, shown.output
    assert "00:00" in shown.output and "Experience Replay" in shown.output


def test_the_cli_prints_moments_and_json_carries_them(index):
    out = CliRunner().invoke(cli, ["search", "transitions stored in a buffer", "--index",
                                   str(index.path), "-k", "1"])
    assert out.exit_code == 0, out.output
    assert 'slide: "Experience Replay' in out.output and "said:" in out.output
    data = CliRunner().invoke(cli, ["search", "transitions stored in a buffer", "--index",
                                    str(index.path), "-k", "1", "--json"])
    moment = json.loads(data.output.splitlines()[0])["moments"][0]  # a result a line
    assert {"start", "end", "kind", "said", "shown", "frame"} <= set(moment)


def test_subtitles_beside_a_video_are_its_transcript(tmp_path, folder):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(folder / "silent.webm", docs / "talk.webm")
    (docs / "talk.en.srt").write_text(
        "1\n00:00:00,500 --> 00:00:03,000\nWelcome to the course on optimisation.\n\n"
        "2\n00:00:04,200 --> 00:00:07,500\nThe zebra crossing example comes next.\n")
    with Index.open(tmp_path / "idx", tagger=False) as idx:
        report = idx.add([docs])
        assert report.added == 1 and report.failed == 0  # the .srt is not an item
        name, moment = moment_of(idx, "zebra crossing example")
        assert name == "talk.webm" and moment["start"] == pytest.approx(4.2, abs=0.01)
        (item_id,) = idx.item_ids_at([str(docs / "talk.webm")])
        assert idx.item(item_id)["meta"]["transcript_from"] == "subtitles: talk.en.srt"
        # Editing the subtitles reads the video again.
        (docs / "talk.en.srt").write_text(
            "1\n00:00:01,000 --> 00:00:03,000\nA lecture about giraffes.\n")
        again = idx.sync()
        assert again.updated == 1
        assert moment_of(idx, "giraffes")[0] == "talk.webm"
    # The page plays it: its fingerprint holds the subtitles' too, the file is unchanged.
    from fastapi.testclient import TestClient

    from anyfind.server import create_app

    with TestClient(create_app(tmp_path / "idx", warm=False)) as client:
        (item_id,) = Index.open(tmp_path / "idx", create=False).item_ids_at(
            [str(docs / "talk.webm")])
        r = client.get(f"/api/items/{item_id}/content")
        assert r.status_code == 200, r.text
        assert r.content == (docs / "talk.webm").read_bytes()


def test_a_moved_video_is_not_decoded_again(tmp_path, folder):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(folder / "silent.webm", docs / "a.webm")
    with Index.open(tmp_path / "idx", tagger=False, transcriber=None) as idx:
        idx.add([docs])
        (docs / "a.webm").rename(docs / "b.webm")
        report = idx.sync()
        assert report.renamed == 1 and report.chunks == 0
        assert moment_of(idx, "gradient clipping")[0] == "b.webm"


def test_an_audio_file_has_moments_too(tmp_path):
    import numpy as np
    from makers import write_flac
    from video_fixtures import narration

    parts = ["The first topic is the history of printing presses in Europe.",
             "Now a completely different matter: volcanoes erupt when pressure builds."]
    pause = np.zeros(16_000 * 3, np.float32)
    said = [narration(p) for p in parts]
    samples = np.concatenate([said[0], pause, said[1]])
    docs = tmp_path / "docs"
    docs.mkdir()
    write_flac((samples * 32767).astype(np.int16), 16_000, docs / "talk.flac")
    second = (len(said[0]) + len(pause)) / 16_000
    with Index.open(tmp_path / "idx", tagger=False) as idx:
        idx.add([docs])
        hit = idx.search("volcanoes erupt pressure", k=1)[0]
        assert hit.moments and hit.moments[0]["kind"] == "speech"
        assert hit.start >= second - 1.0, (hit.start, second)
        assert "pressure builds" in hit.moments[0]["said"].lower()


def test_bad_videos_cost_an_error_or_part_of_the_picture_and_the_run_goes_on(tmp_path, folder):
    import av
    import numpy as np
    from PIL import Image

    docs = tmp_path / "bad"
    docs.mkdir()
    # 8K frames: downscaled in the decoder, the kept picture never full size.
    with av.open(str(docs / "huge.mp4"), "w") as out:
        stream = out.add_stream("libx264", rate=1)
        stream.width, stream.height, stream.pix_fmt = 7680, 4320, "yuv420p"
        big = Image.new("RGB", (7680, 4320), (30, 90, 160))
        for n in range(2):
            frame = av.VideoFrame.from_image(big)
            frame.pts = n
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    # Sound only, in an MP4.
    lecture(docs / "sound-only.mp4", [Shown("unused", [], "The ferry leaves at noon.")],
            fps=5)
    with av.open(str(docs / "sound-only.mp4")) as src, \
            av.open(str(docs / "voice.mp4"), "w") as out:
        audio = out.add_stream_from_template(src.streams.audio[0])
        for packet in src.demux(src.streams.audio[0]):
            if packet.dts is not None:
                packet.stream = audio
                out.mux(packet)
    (docs / "sound-only.mp4").unlink()
    # Corrupt packets in the middle of the picture: what came before is indexed.
    data = bytearray((folder / "lecture.mp4").read_bytes())
    rng = np.random.default_rng(0)
    middle = slice(len(data) // 2, len(data) // 2 + len(data) // 5)
    data[middle] = rng.integers(0, 256, middle.stop - middle.start, dtype=np.uint8).tobytes()
    (docs / "damaged.mp4").write_bytes(bytes(data))
    (docs / "truncated.mp4").write_bytes((folder / "lecture.mp4").read_bytes()[:2000])
    (docs / "notes.md").write_text("A folder of videos that went wrong.")
    with Index.open(tmp_path / "idx", tagger=False) as idx:
        report = idx.add([docs])
        errors: dict[str, list[str]] = {}
        for e in report.errors:
            errors.setdefault(Path(e["path"]).name, []).append(e["error"])
        assert set(errors) == {"truncated.mp4", "damaged.mp4"}, errors
        assert report.failed == 1, errors  # the truncated one; the damaged one is partly read
        assert all(e.startswith("partly read: ") and "corrupt" in e for e in errors["damaged.mp4"])
        (damaged,) = idx.item_ids_at([str(docs / "damaged.mp4")])
        frames = idx.item(damaged)["meta"]["frames"]
        assert 1 <= len(frames) < len(DECK) and frames[-1]["end"] < DECK[-1].end
        (huge,) = idx.item_ids_at([str(docs / "huge.mp4")])
        item = idx.item(huge)
        assert item["status"] == "ok" and len(item["meta"]["frames"]) == 1
        assert item["meta"]["video"]["width"] == 7680
        from PIL import Image as PILImage

        thumb = idx.thumbnail(huge, item["meta"]["frames"][0]["ordinal"])
        assert max(PILImage.open(thumb).size) <= 256
        assert moment_of(idx, "when does the ferry leave")[0] == "voice.mp4"
        # What decoded before the damage is searchable.
        hits = [Path(r.path).name for r in idx.search("temporal difference error", k=3)]
        assert "damaged.mp4" in hits


def test_a_header_that_lies_about_its_duration_changes_nothing(tmp_path, folder):
    """A Matroska file claiming ten hours for a few seconds: the frames' spans end where
    the picture does, and the run does not wait for the claimed hours."""
    import struct

    import av

    docs = tmp_path / "docs"
    docs.mkdir()
    liar = docs / "liar.mkv"
    with av.open(str(folder / "lecture.mp4")) as src, \
            av.open(str(liar), "w", format="matroska") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    data = bytearray(liar.read_bytes())
    at = data.find(b"\x44\x89")  # Segment Info > Duration, an EBML float
    width = data[at + 2] & 0x7F
    fmt = ">d" if width == 8 else ">f"
    (real,) = struct.unpack_from(fmt, data, at + 3)
    struct.pack_into(fmt, data, at + 3, real * 4000)
    liar.write_bytes(bytes(data))
    with av.open(str(liar)) as c:
        assert c.duration / 1e6 > 3600  # the lie is what a reader sees
    with Index.open(tmp_path / "idx", tagger=False) as idx:
        report = idx.add([docs])
        assert report.failed == 0, report.errors
        (item_id,) = idx.item_ids_at([str(liar)])
        frames = idx.item(item_id)["meta"]["frames"]
        assert len(frames) == len(DECK) and frames[-1]["end"] <= DECK[-1].end + 1.5
        name, moment = moment_of(idx, "frozen copy stable targets")
        assert name == "liar.mkv" and moment["end"] <= DECK[-1].end + 1.5


def test_frame_selection_keeps_stills_skips_repeats_and_thins_past_its_cap():
    import av
    import numpy as np

    from anyfind.extract.video_frames import select

    rng = np.random.default_rng(1)
    stills = [av.VideoFrame.from_ndarray(rng.integers(0, 255, (72, 128, 3), dtype=np.uint8),
                                         format="rgb24") for _ in range(12)]
    samples = [(float(t), stills[t // 3]) for t in range(36)]  # each still shown 3 s
    kept = select(iter(samples), 36.0)
    assert [f.start for f in kept] == [0.0] + [3.0 * n for n in range(1, 12)]
    assert [f.why for f in kept] == ["first"] + ["cut"] * 11  # noise: all of it changes
    assert all(a.end == b.start for a, b in zip(kept, kept[1:], strict=False))
    thinned = select(iter(samples), 36.0, max_frames=4)
    assert len(thinned) <= 4 and thinned[0].start == 0.0
    assert all(b.start - a.start >= 6.0 for a, b in zip(thinned, thinned[1:], strict=False))


def test_on_ray_a_cpu_task_decodes_the_frames_and_the_model_actors_finish(folder, index):
    """The distributed stages in one process: a read task (no OCR, no transcriber there)
    decodes the picture and chooses the frames, which travel with the deferred item; an
    OCR actor reads them; the transcriber's actor builds the item without decoding the
    picture again. Chunks, frames and what was read equal the local reading's."""
    import pickle

    from anyfind.connectors.base import Blob
    from anyfind.indexer.prepare import TRANSCRIBER, Preparer

    data = (folder / "lecture.mp4").read_bytes()
    blob = Blob.from_bytes(data, path="lecture.mp4")
    task = Preparer(index.opened, defer_audio=True, defer_pixels=True)
    item = task.prepare(blob, blob.ref, None, None)
    assert (item.status, item.waits_for) == ("deferred", TRANSCRIBER)
    frames = pickle.loads(pickle.dumps(item.frames))  # what Ray ships between stages
    assert len(frames.frames) == len(DECK) and not frames.read
    frames.read_with(index.opened.ocr)  # the OCR actor
    assert frames.read

    def no_decoding(*args, **kwargs):
        raise AssertionError("the picture was decoded again")

    import anyfind.extract.video as video

    actor = Preparer(index.opened)
    saved, video.read_frames = video.read_frames, no_decoding
    try:
        staged = actor.prepare(Blob.from_bytes(data, path="lecture.mp4"), blob.ref, None, None,
                               frames=frames)
    finally:
        video.read_frames = saved
    local = Preparer(index.opened).prepare(Blob.from_bytes(data, path="lecture.mp4"), blob.ref,
                                           None, None)
    assert staged.status == local.status == "ok"
    assert [(c.text, c.start_s, c.end_s, c.modality) for c in staged.chunks] == [
        (c.text, c.start_s, c.end_s, c.modality) for c in local.chunks]
    assert staged.meta["frames"] == local.meta["frames"]


def test_a_video_filmed_sideways_is_read_upright(tmp_path):
    """A phone held sideways stores the picture turned and says so in the track header
    (the display matrix): frames are turned upright before anything reads them."""
    folder = tmp_path / "phone"
    folder.mkdir()
    slide(tmp_path / "board.png", "Quarterly Harvest Figures", ["apples up twelve percent"],
          size=(960, 540))
    sideways(folder / "board.mp4", tmp_path / "board.png")
    with Index.open(tmp_path / "idx", transcriber=None) as idx:
        report = idx.add([folder])
        assert report.failed == 0, report.errors
        (hit,) = idx.search("quarterly harvest figures", k=1, mode="lexical")
        assert hit.path.endswith("board.mp4") and hit.moments
        assert "apples up twelve percent" in (hit.moments[0].get("shown") or "").lower()
