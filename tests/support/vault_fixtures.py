"""A small notes vault for tests: two notes linking each other with an alias and
headings, pasted slides rendered with text (one a standard image link with a URL-encoded
path), a link cycle, and a photo without words that only its note describes."""

from __future__ import annotations

from pathlib import Path

from ocr_fixtures import slide

DQN = """---
tags: [reinforcement-learning]
aliases: [DQN, Deep Q Network]
---
# Deep Q Learning

## Experience replay
Transitions go into a buffer and minibatches are drawn from it.
![[replay-slide.png|400]]

## Targets
See [[Target Networks|the target trick]] and [[Missing Note]]. #exam-topic
`[[Not A Link]]` and `#not-a-tag` stay code. Back up to [[#Experience replay]].
"""
TARGETS = """# Target networks
A frozen copy of the network gives stable targets. Back to [[DQN]].

![the slide](../images/target%20slide.png)
![[Target Networks]]
"""


def make_vault(root: Path) -> Path:
    (root / "notes").mkdir(parents=True)
    (root / "images").mkdir()
    (root / "notes" / "RL - Deep Q Learning.md").write_text(DQN)
    (root / "notes" / "Target Networks.md").write_text(TARGETS)
    (root / "notes" / "Loop A.md").write_text("Loop A points at [[Loop B]].")
    (root / "notes" / "Loop B.md").write_text("Loop B points back at [[Loop A]].")
    # A photo with no words in it: only the note says what it shows.
    (root / "notes" / "Sailing trip.md").write_text(
        "# Sailing trip\n\n## Day two\nWe watched the lighthouse keeper repaint the red "
        "tower at dawn.\n![[harbour.png]]\n\n## Day three\nRain all day, cards in the cabin.\n")
    photo(root / "images" / "harbour.png")
    slide(root / "images" / "replay-slide.png", "Experience Replay",
          ["transitions are stored in a buffer"])
    slide(root / "images" / "target slide.png", "Target Networks",
          ["a frozen copy gives stable targets"], seed=2, background=(120, 40, 40))
    return root


def photo(path: Path) -> None:
    """A picture without text: soft colour fields and blobs."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (320, 240), (70, 110, 160))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 150, 320, 240), fill=(40, 70, 110))
    draw.ellipse((200, 40, 260, 100), fill=(240, 200, 120))
    draw.polygon([(60, 150), (90, 60), (120, 150)], fill=(200, 40, 40))
    img.save(path)
