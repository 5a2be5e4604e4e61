"""An image encoder installed as a plugin (a real distribution with an `anyfind.encoders`
entry point, made in a fixture) is used for what it declares, not for its name: its
images are indexed and found by a text query in its space, with no tagger and no CLIP."""

from __future__ import annotations

import sys
import textwrap

import pytest
from PIL import Image

from anyfind import Index
from anyfind.encoders import encoders

PLUGIN = '''
"""A tiny colour model: an image is its mean RGB, a text the colour words it names.
Both land in the same 3-d space, so "a red square" finds red pictures."""

import numpy as np

from anyfind.encoders.base import Encoder
from anyfind.encoders.imageprep import source_image

WORDS = {"red": 0, "green": 1, "blue": 2}


class ColourEncoder(Encoder):
    kind = "colour-mean"
    modalities = frozenset({"text", "image"})

    def __init__(self, model=None, device=None, **options):
        self.model = model

    @property
    def dim(self):
        return 3

    def identity(self):
        return {"kind": self.kind, "dim": 3}

    def _encode(self, inputs, modality, *, query):
        rows = []
        for x in inputs:
            if modality == "image":
                pixels = np.asarray(source_image(x).convert("RGB"), dtype=np.float32)
                rows.append(pixels.reshape(-1, 3).mean(axis=0) + 1e-3)
            else:
                v = np.full(3, 1e-3, np.float32)
                for word in str(x).lower().split():
                    if word.strip(".,") in WORDS:
                        v[WORDS[word.strip(".,")]] += 1.0
                rows.append(v)
        return np.stack(rows).astype(np.float32)
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """`anyfind-colour-plugin`, installed the way pip leaves a package: a module and a
    .dist-info folder whose entry_points.txt names it in the anyfind.encoders group."""
    site = tmp_path / "site"
    (site / "anyfind_colour_plugin").mkdir(parents=True)
    (site / "anyfind_colour_plugin" / "__init__.py").write_text(PLUGIN)
    info = site / "anyfind_colour_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: anyfind-colour-plugin\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""\
        [anyfind.encoders]
        colour-mean = anyfind_colour_plugin:ColourEncoder
        """))
    monkeypatch.syspath_prepend(str(site))
    encoders.rescan()
    yield "colour-mean"
    sys.modules.pop("anyfind_colour_plugin", None)
    encoders.rescan()


def test_a_plugin_image_encoder_indexes_and_finds_images(plugin, tmp_path):
    assert plugin in encoders.names()
    folder = tmp_path / "pictures"
    folder.mkdir()
    for name, rgb in (("tomato", (220, 20, 30)), ("lagoon", (10, 40, 230)),
                      ("meadow", (30, 200, 40))):
        Image.new("RGB", (48, 48), rgb).save(folder / f"{name}.png")
    (folder / "note.md").write_text("# Shopping\n\nBuy flour and eggs.")
    with Index.open(tmp_path / "idx", tagger=False, transcriber=None,
                    spaces={"colour": {"encoder": plugin}}) as idx:
        assert idx.opened.indexes_modality("image")  # by declared modalities: no tagger, no CLIP
        report = idx.add([folder])
        assert report.added == 4 and report.skipped == 0, report.errors
        hits = idx.search("something red modality:image", mode="dense", k=3)
        assert [h.path.rsplit("/", 1)[-1] for h in hits][0] == "tomato.png"
        assert hits[0].spaces["colour"] > 0.95  # the plugin's space answered
        top = idx.search("a blue one modality:image", mode="dense", k=1)[0]
        assert top.path.endswith("lagoon.png")
        assert idx.check().ok
