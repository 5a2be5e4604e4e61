"""Audio through the whole engine: spoken recordings indexed, found by a paraphrase,
with a time range that contains the sentence; audio queries; transcripts and subtitles."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from makers import BUDGET, INTRO, LAUNCH, SPOKEN_QUERY, speak, write_flac

from anyfind import Index
from anyfind.cli import cli

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                reason="espeak-ng is not installed (apt-get install espeak-ng)")



@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("audio")
    parts = [speak(t, root / f"p{i}.wav") for i, t in enumerate((INTRO, BUDGET, LAUNCH))]
    rate = 22050  # espeak-ng's output rate
    gap = np.zeros(int(rate * 1.5), dtype=parts[0].dtype)
    meeting = np.concatenate([parts[0], gap, parts[1], gap, parts[2]])
    folder = root / "corpus"
    folder.mkdir()
    write_flac(meeting, rate, folder / "meeting.flac")
    (folder / "notes.md").write_text("# Garden notes\n\nWater the roses every evening in July.")
    budget_start = (len(parts[0]) + len(gap)) / rate
    budget_end = budget_start + len(parts[1]) / rate
    query = root / "query.wav"
    speak(SPOKEN_QUERY[0], query, words_per_minute=SPOKEN_QUERY[1])
    return {"folder": folder, "query": query, "budget": (budget_start, budget_end)}


@pytest.fixture(scope="module")
def audio_index(recordings, tmp_path_factory):
    idx = Index.open(tmp_path_factory.mktemp("idx") / "index")
    report = idx.add([recordings["folder"]])
    assert report.failed == 0 and report.added == 2
    yield idx
    idx.close()


def test_paraphrase_finds_the_recording_at_the_right_second(audio_index, recordings):
    hit = audio_index.search("spending reduction for advertising", k=1)[0]
    assert hit.modality == "audio" and hit.path.endswith("meeting.flac")
    start, end = recordings["budget"]
    # the passage's time range contains the spoken budget sentence
    assert hit.start <= start + 0.5 and hit.end >= end - 0.5
    assert "budget" in hit.text.lower()


def test_audio_query_is_transcribed_and_searched(audio_index, recordings):
    hit = audio_index.search(audio=recordings["query"], k=1)[0]
    assert hit.path.endswith("meeting.flac") and "friday" in hit.text.lower()


def test_transcript_and_subtitles(audio_index, recordings, tmp_path):
    item_id = audio_index.search("rocket launch", k=1)[0].item_id
    item = audio_index.item(item_id)
    assert item["meta"]["language"] == "en" and item["meta"]["duration"] > 5
    assert len(item["meta"]["transcript"]) >= 2
    runner = CliRunner()
    out = runner.invoke(cli, ["show", str(item_id), "--srt", "--index", str(audio_index.path)])
    assert out.exit_code == 0, out.output
    assert out.output.startswith("1\n00:00:") and "-->" in out.output
    human = runner.invoke(cli, ["search", "marketing budget", "-k", "1",
                                "--index", str(audio_index.path)])
    assert "[audio]" in human.output and "00:0" in human.output and "–" in human.output


def test_unchanged_and_copied_recordings_are_not_transcribed_again(audio_index, recordings):
    again = audio_index.add([recordings["folder"]])
    assert again.chunks == 0 and again.unchanged == 2
    shutil.copy(recordings["folder"] / "meeting.flac", recordings["folder"] / "copy.flac")
    copied = audio_index.add([recordings["folder"]])
    assert copied.copied == 1 and copied.chunks == 0
    hits = audio_index.search("marketing budget cut", k=2)
    assert sorted(Path(h.path).name for h in hits) == ["copy.flac", "meeting.flac"]
