"""The web page in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright):
a typed query shows image and document cards, an audio result plays from its passage,
an image dropped on the page searches by example. Screenshots go to artifacts/."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from tests.server.server_fixtures import HAS_ESPEAK, PHOTOS, TOKEN, running

CHROMIUM = os.environ.get("ANYFIND_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
TIMEOUT_MS = 90_000  # bounded waits, generous for a busy 2-core machine
# Predicates are functions, never bare expressions: Playwright (>= 1.65) evaluates a bare
# expression with eval() inside the page, which the page's CSP (no 'unsafe-eval') refuses.
STATS_LOADED = "() => document.querySelector('#stats').textContent.includes('items')"

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"no chromium at {CHROMIUM} (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                  "--disable-gpu", "--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1200, "height": 900}, base_url=live_server)
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, errors


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def card_names(page) -> list[str]:
    return page.locator("#results .card .title").all_inner_texts()


def test_typed_query_shows_image_and_document_cards(page):
    page.goto("/")
    page.wait_for_function(STATS_LOADED)
    page.locator("#welcome h1").click()  # the box has focus on load: move it away first
    page.keyboard.press("/")  # focuses the search box
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("coffee")
    page.keyboard.press("Enter")
    page.wait_for_selector("#results .card.image")
    cards = page.locator("#results .card")
    modalities = set(cards.evaluate_all("cs => cs.map(c => c.dataset.modality)"))
    assert {"image", "text"} <= modalities
    image = page.locator(".card.image", has_text="coffee.jpg")
    # The thumbnail loads after the card appears: wait for it (bounded), not a snapshot.
    page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                           arg=image.locator("img").element_handle())
    assert page.locator(".card.text mark").count() >= 1  # the matched word is highlighted
    assert "q=coffee" in page.url
    # Keyboard: arrow down from the box to the first card, then to the next.
    page.locator("#q").focus()
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.classList.contains('card')")
    first = page.evaluate("document.activeElement.dataset.item")
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.dataset.item") != first
    assert shot(page, "server-page-coffee.png").stat().st_size > 10_000


def test_image_opens_full_size(page):
    page.goto("/?q=cat")
    page.locator(".card.image", has_text="chelsea.jpg").locator(".media").click()
    img = page.locator("#lightbox-img")
    img.wait_for()
    page.wait_for_function("() => document.querySelector('#lightbox-img').naturalWidth > 256")
    assert "/content" in img.get_attribute("src")
    page.keyboard.press("Escape")
    assert not page.locator("#lightbox").evaluate("d => d.open")


@pytest.mark.skipif(not HAS_ESPEAK, reason="espeak-ng is not installed")
def test_audio_plays_from_the_matched_passage(page, corpus):
    page.goto("/?q=marketing%20budget%20next%20year")
    audio_card = page.locator(".card.audio").first
    audio_card.wait_for()
    start = float(audio_card.locator("button.play").get_attribute("data-start"))
    assert start == pytest.approx(corpus["budget_start"], abs=1.5)  # the budget sentence
    audio_card.locator("button.play").click()
    player = audio_card.locator("audio")
    # Seeking needs Range requests: wait until the player is at the passage and playing.
    page.wait_for_function(
        "([a, s]) => a.currentTime >= s - 0.05 && a.readyState >= 1", arg=[player.element_handle(), start])
    current = player.evaluate("a => a.currentTime")
    assert current == pytest.approx(start, abs=1.0)
    page.wait_for_function("([a, s]) => !a.paused && a.currentTime > s + 0.1",
                           arg=[player.element_handle(), start])
    shot(page, "server-page-audio.png")


def test_a_video_moment_shows_its_frame_and_plays_from_it(page, corpus):
    page.goto("/?q=learning%20rate%20warmup%20small%20steps")
    card = page.locator(".card.video").first
    card.wait_for()
    warmup = corpus["video_slides"][1]
    moment = card.locator("button.moment").first
    start = float(moment.get_attribute("data-start"))
    assert warmup.start - 0.01 <= start < warmup.end
    assert "Learning Rate Warmup" in moment.inner_text()
    frame = card.locator(".media img")
    assert "/thumbnail?frame=" in frame.get_attribute("src")
    page.wait_for_function("i => i.complete && i.naturalWidth > 0", arg=frame.element_handle())
    moment.click()
    player = card.locator("video")
    page.wait_for_function("([v, s]) => v.readyState >= 1 && Math.abs(v.currentTime - s) < 1",
                           arg=[player.element_handle(), start])
    shot(page, "server-page-video.png")


def test_dropped_image_searches_by_example(page):
    page.goto("/")
    page.wait_for_function(STATS_LOADED)
    data = base64.b64encode((PHOTOS / "chelsea.jpg").read_bytes()).decode()
    page.evaluate(
        """(b64) => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], "my-cat.jpg", {type: "image/jpeg"}));
            for (const type of ["dragenter", "dragover", "drop"]) {
                document.body.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true}));
            }
        }""", data)
    page.wait_for_selector("#results .card")
    assert card_names(page)[0] == "chelsea.jpg"
    assert page.locator("#example-name").inner_text() == "my-cat.jpg"
    assert "Like my-cat.jpg" in page.locator("#heading-text").inner_text()
    assert page.locator("#dropzone").is_hidden()
    shot(page, "server-page-example.png")


def test_picked_file_searches_by_example(page):
    page.goto("/")
    page.locator("#file").set_input_files(str(PHOTOS / "rocket.jpg"))
    page.wait_for_selector("#results .card")
    assert card_names(page)[0] == "rocket.jpg"


def test_empty_state(page):
    page.goto("/?q=zzzqqqxxv&filters=modality:audio")
    page.wait_for_selector("#results .card, #results .empty")
    # The engine may still rank something; a query with no words at all must say so.
    page.goto("/")
    page.locator("#q").fill("   ")
    page.keyboard.press("Enter")
    assert page.locator("#welcome").is_visible()


def test_page_asks_for_the_token_and_uses_it(browser, index_path):
    from anyfind.server import create_app

    with running(create_app(index_path, token=TOKEN, warm=False)) as url:
        context = browser.new_context(base_url=url)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        page.goto("/?q=coffee")
        page.locator("#token-dialog[open]").wait_for()
        page.locator("#token-input").fill(TOKEN)
        page.locator("#token-dialog button[value=save]").click()
        page.wait_for_selector("#results .card.image")
        # Thumbnails load too: <img> cannot send the header, the session cookie does.
        page.wait_for_function(
            "() => [...document.querySelectorAll('.card.image img')]"
            ".some(i => i.complete && i.naturalWidth > 0)")
        assert page.evaluate("localStorage.getItem('anyfind.token')") == TOKEN
        context.close()


def test_scores_show_relevance_and_the_floor_can_be_lifted(page):
    """Each card shows its calibrated score as a bar and a word, the signals on hover; a
    search that hid weaker matches says so, and "Show all" brings them back."""
    page.goto("/?q=coffee")
    page.wait_for_selector("#results .card")
    badge = page.locator("#results .card .score").first
    title = badge.get_attribute("title")
    assert title.startswith("relevance ") and "text: " in title and "cosine" in title
    width = badge.locator(".fill").evaluate("f => parseFloat(f.style.width)")
    assert 0 < width <= 100
    assert float(badge.get_attribute("data-score")) == pytest.approx(width / 100, abs=0.01)
    floor = page.locator("#floor")
    floor.wait_for(state="visible")
    hidden = int(page.locator("#floor-text").inner_text().split()[0])
    shown = page.locator("#results .card").count()
    assert hidden >= 1
    page.locator("#floor-show").click()
    page.wait_for_function(f"() => document.querySelectorAll('#results .card').length > {shown}")
    assert not floor.is_visible()
    shot(page, "server-page-floor.png")


@pytest.fixture(scope="module")
def vault_server(tmp_path_factory) -> str:
    """A live server over a small notes vault (tests/support/vault_fixtures.py)."""
    pytest.importorskip("rapidocr_onnxruntime")
    from vault_fixtures import make_vault

    from anyfind import Index
    from anyfind.server import create_app

    root = tmp_path_factory.mktemp("page-vault")
    with Index.open(root / "idx", transcriber=None) as idx:
        assert idx.add([make_vault(root / "vault")]).failed == 0
    with running(create_app(root / "idx", warm=False)) as url:
        yield url


def test_the_page_groups_by_note_and_shows_what_relates(browser, vault_server):
    """The "By note" switch gives one card per note holding its matching screenshot (the
    note's passage shown with it); "Related" lists links both ways with their reasons, and
    "Only what it does not link already" leaves the similar ones."""
    context = browser.new_context(viewport={"width": 1200, "height": 900}, base_url=vault_server)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/?q=transitions+stored+in+a+buffer+experience+replay")
    # Never chosen on a vault: grouped; the user's choice is kept from then on.
    page.wait_for_selector("#results .group")
    assert page.locator("#group").is_checked()
    page.locator("#group").uncheck()
    page.wait_for_function("() => !document.querySelector('#results .group') && "
                           "document.querySelector('#results .card')")
    flat_cards = page.locator("#results .card").count()
    # A screenshot's card says where it sits: the note and heading, with the passage.
    shot_card = page.locator("#results .card.image", has_text="replay-slide.png").first
    assert "RL - Deep Q Learning.md › Experience replay" in shot_card.inner_text()
    page.locator("#group").check()
    page.wait_for_selector("#results .group")
    group = page.locator("#results .group").first
    assert "Deep Q Learning" in group.locator(".group-head").inner_text()
    names = group.locator(".card .title").all_inner_texts()
    assert "replay-slide.png" in names and len(names) >= 2  # the note and its screenshot
    assert page.locator("#results > .card, #results > .group").count() < flat_cards
    assert "group=1" in page.url  # a shared link keeps the view
    shot(page, "page-grouped.png")

    page.locator("#results .group .card.text").first.locator("button.related").click()
    page.wait_for_selector(".related-list")
    assert page.locator("#heading-text").inner_text().startswith("Related to ")
    rows = {r.locator(".reason").inner_text(): r.locator("a").inner_text()
            for r in page.locator(".related-row.linked").all()}
    assert rows.get("embeds") == "replay-slide.png"
    assert rows.get("links to") == "Target Networks.md"  # and back: listed once
    assert page.locator(".related-row.similar").count() >= 1
    shot(page, "page-related.png")
    page.locator("#unlinked").check()
    page.wait_for_function("() => document.querySelector('#unlinked')?.checked === true "
                           "&& !document.querySelector('.related-row.linked')")
    assert page.locator(".related-row.similar").count() >= 1
    context.close()
    assert not errors, errors
