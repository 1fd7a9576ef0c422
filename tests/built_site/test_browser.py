"""The built site in a real Chromium: what a reader sees, copies and searches."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from pytest_codeblocks import extract_from_buffer

import pages

# Flags for Chromium as root on a machine whose only network is loopback.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
MOBILE = {"width": 390, "height": 844}
EXPECTED_OUTPUT = "<!--pytest-codeblocks:expected-output-->"

PAGES = pages.pages()
FAQ_PAGES = [page for page in PAGES if page.name != "index.md"]

# What a reader would type, and the page that must come first.
SEARCHES = [
    ("数据库", "db_connection"),
    ("关闭 WebSocket", "websocket_close"),
    ("压缩", "gzip_compression"),
    ("蓝图", "nested_apps"),
    ("测试", "external_service"),
    ("前缀", "prefix_route"),
]


def url_path(page: Path) -> str:
    return "" if page.name == "index.md" else f"{page.stem}/"


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Browser:
    """Headless Debian Chromium driven by Playwright."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, site_server) -> Page:
    """A fresh browser tab that may use the clipboard."""
    context = browser.new_context(viewport=DESKTOP, base_url=site_server.url)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    tab = context.new_page()
    yield tab
    context.close()


class Visit:
    """Load one page and record every request and console error it causes."""

    def __init__(self, tab: Page, path: str) -> None:
        self.requests: list[str] = []
        self.errors: list[str] = []
        tab.on("request", lambda request: self.requests.append(request.url))
        tab.on(
            "console",
            lambda msg: self.errors.append(msg.text) if msg.type == "error" else None,
        )
        tab.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.response = tab.goto(path, wait_until="networkidle")


def shown_blocks(page: Path) -> list[str]:
    """Each fenced block's text as the page shows it, output blocks included."""
    text = pages.expand(page).replace(EXPECTED_OUTPUT, "")
    return [block.code for block in extract_from_buffer(io.StringIO(text))]


@pytest.mark.parametrize("source", PAGES, ids=lambda p: p.name)
def test_page_loads_only_from_the_site(page, site_server, source):
    visit = Visit(page, url_path(source))
    assert visit.response.status == 200
    foreign = [u for u in visit.requests if not u.startswith(site_server.url + "/")]
    foreign = [u for u in foreign if not u.startswith(("data:", "blob:"))]
    assert foreign == [], foreign
    assert visit.errors == [], visit.errors


@pytest.mark.parametrize("source", PAGES, ids=lambda p: p.name)
def test_copy_button_copies_the_snippet(page, source):
    Visit(page, url_path(source))
    expected = shown_blocks(source)
    blocks = page.locator("div.highlight")
    assert blocks.count() == len(expected)
    for number, text in enumerate(expected):
        block = blocks.nth(number)
        button = block.locator('button[data-md-type="copy"]')
        assert button.count() == 1, f"block {number + 1} has no copy button"
        block.hover()
        button.click()
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied.rstrip("\n") == text.rstrip("\n"), f"block {number + 1}"


@pytest.mark.parametrize("source", PAGES, ids=lambda p: p.name)
def test_links_resolve(page, site_server, source):
    Visit(page, url_path(source))
    base = page.url
    hrefs = page.eval_on_selector_all(
        ".md-nav a[href], .md-content a[href]",
        "els => els.map(e => e.getAttribute('href'))",
    )
    assert hrefs
    internal = {
        urljoin(base, href).split("#")[0]
        for href in hrefs
        if urlparse(urljoin(base, href)).netloc == urlparse(site_server.url).netloc
    }
    broken = {u: page.request.get(u).status for u in internal}
    assert all(status == 200 for status in broken.values()), broken


@pytest.mark.parametrize("source", FAQ_PAGES, ids=lambda p: p.name)
def test_page_says_what_it_was_verified_with(page, source):
    record_path = pages.ROOT / os.environ.get(
        "FAQ_VERIFIED_RECORD", ".nox/verified.json"
    )
    record = json.loads(record_path.read_text("utf-8"))
    Visit(page, url_path(source))
    note = page.locator(".admonition.success").first.inner_text()
    assert f"aiohttp {record['aiohttp']}" in note, note
    assert f"Python {record['python']}" in note, note


@pytest.mark.parametrize(("query", "expected"), SEARCHES)
def test_search_finds_the_right_page_first(page, query, expected):
    Visit(page, "")
    box = page.locator("input.md-search__input")
    box.focus()
    status = page.locator(".md-search-result__meta")
    expect(status).to_have_text("键入以开始搜索")  # the search worker is ready
    box.fill(query)
    box.press("End")  # Material searches on key events, not on `input`
    first = page.locator("li.md-search-result__item > a.md-search-result__link").first
    first.wait_for()
    results = page.locator(".md-search-result__list").inner_text()
    assert f"/{expected}/" in first.get_attribute("href"), results


@pytest.mark.parametrize("viewport", [DESKTOP, MOBILE], ids=["desktop", "mobile"])
@pytest.mark.parametrize("path", ["", "websocket_pubsub/"], ids=["home", "recipe"])
def test_screenshot(browser, site_server, pytestconfig, path, viewport):
    folder = Path(pytestconfig.getoption("--screenshots") or "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=viewport, base_url=site_server.url)
    tab = context.new_page()
    tab.goto(path, wait_until="networkidle")
    name = f"{(path.strip('/') or 'index')}-{viewport['width']}.png"
    tab.screenshot(path=folder / name, full_page=False)
    context.close()
    assert (folder / name).stat().st_size > 10_000
