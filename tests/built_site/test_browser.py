"""The built site in a real Chromium: what a reader sees, copies and searches."""

from __future__ import annotations

import io
import json
import os
import re
from dataclasses import dataclass
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
    ("ContentTypeError", "content_type_error"),
    ("漏关的会话", "unclosed_session"),
    ("自定义错误页", "error_pages"),
    ("ServerDisconnectedError 重试", "server_disconnected"),
    ("真实 IP", "deployment"),
    ("CERTIFICATE_VERIFY_FAILED", "certificate_verify"),
    ("BadStatusLine", "https_server"),
    ("流式下载", "streaming_download"),
    ("上传大文件", "file_upload"),
    ("并发", "concurrency_limit"),
    ("LineTooLong", "line_too_long"),
    ("服务器发送事件", "server_sent_events"),
    ("attached to a different loop", "pytest_event_loop"),
    ("代理", "proxy"),
    ("多个端口", "app_runner"),
    ("心跳", "heartbeat"),
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
    """Load one page and record every request and console error it causes.

    The page's own resources load before the ``load`` event; what the theme's
    scripts fetch later (the search index) is the same on every page, so only
    the home page waits for the network to go quiet.
    """

    def __init__(self, tab: Page, source: Path) -> None:
        self.tab = tab
        self.source = source
        self.requests: list[str] = []
        self.errors: list[str] = []
        tab.on("request", lambda request: self.requests.append(request.url))
        tab.on(
            "console",
            lambda msg: self.errors.append(msg.text) if msg.type == "error" else None,
        )
        tab.on("pageerror", lambda exc: self.errors.append(str(exc)))
        path = url_path(source)
        self.wait = "networkidle" if path == "" else "load"
        # Returns once the answer has begun: the rest loads while Python goes on.
        self.response = tab.goto(path, wait_until="commit")

    def loaded(self) -> Visit:
        self.tab.wait_for_load_state(self.wait)
        self.tab.bring_to_front()  # the clipboard is the focused tab's
        return self


class Visits:
    """The visits of one reader, in the order of PAGES.

    While the checks of one page run, the next pages already load in tabs of
    their own: Chromium renders them on the other core. Measured on 2 cores,
    the whole module: 67.1 s loading each page when its checks begin, 50.7 s
    with one page ahead, 49.2 s with two, 50.3 s with four.
    """

    AHEAD = 2

    def __init__(self, context) -> None:
        self.context = context
        self.started: dict[Path, Visit] = {}

    def get(self, source: Path) -> Visit:
        at = PAGES.index(source)
        for page in PAGES[at : at + 1 + self.AHEAD]:
            if page not in self.started:
                self.started[page] = Visit(self.context.new_page(), page)
        return self.started[source].loaded()

    def done(self, source: Path) -> None:
        self.started.pop(source).tab.close()


@pytest.fixture(scope="module")
def reader(browser: Browser, site_server) -> Visits:
    """One reader's browser: pages share its cache, as they do for a real reader."""
    context = browser.new_context(viewport=DESKTOP, base_url=site_server.url)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    yield Visits(context)
    context.close()


@pytest.fixture(scope="module", params=PAGES, ids=lambda p: p.name)
def visit(request, reader: Visits) -> Visit:
    """One visit to each page, shared by every check of that page."""
    yield reader.get(request.param)
    reader.done(request.param)


def shown_blocks(page: Path) -> list[str]:
    """Each fenced block's text as the page shows it, output blocks included."""
    text = pages.expand(page).replace(EXPECTED_OUTPUT, "")
    return [block.code for block in extract_from_buffer(io.StringIO(text))]


def test_page_loads_only_from_the_site(visit, site_server):
    assert visit.response.status == 200
    foreign = [u for u in visit.requests if not u.startswith(site_server.url + "/")]
    foreign = [u for u in foreign if not u.startswith(("data:", "blob:"))]
    assert foreign == [], foreign
    assert visit.errors == [], visit.errors


# Clicks each block's copy button in the page itself (one round trip for the
# page, not three per block) and reads the clipboard until it holds what that
# block shows or a second has passed; returns what it read, block by block.
COPY_EVERY_BLOCK = """async (expected) => {
    const copied = [];
    const blocks = [...document.querySelectorAll("div.highlight")];
    for (const [number, block] of blocks.entries()) {
        const buttons = block.querySelectorAll('button[data-md-type="copy"]');
        if (buttons.length !== 1) { copied.push(null); continue; }
        if (number > 0) buttons[0].click();  // the first is clicked as a reader does
        const until = Date.now() + 1000;
        let text = await navigator.clipboard.readText();
        const want = (expected[number] ?? "").trimEnd();
        while (text.trimEnd() !== want && Date.now() < until) {
            await new Promise((done) => setTimeout(done, 20));
            text = await navigator.clipboard.readText();
        }
        copied.push(text);
    }
    return copied;
}"""


def test_copy_button_copies_the_snippet(visit):
    page = visit.tab
    expected = shown_blocks(visit.source)
    blocks = page.locator("div.highlight")
    assert blocks.count() == len(expected)
    if expected:  # a reader can reach the first button: hover, then a real click
        blocks.first.hover()
        blocks.first.locator('button[data-md-type="copy"]').click()
    copied = page.evaluate(COPY_EVERY_BLOCK, expected)
    for number, (text, shown) in enumerate(zip(copied, expected, strict=True)):
        assert text is not None, f"block {number + 1} has not one copy button"
        assert text.rstrip("\n") == shown.rstrip("\n"), f"block {number + 1}"


# Each address is fetched once, whichever page links to it first.
STATUS: dict[str, int] = {}


def test_links_resolve(visit, site_server):
    page = visit.tab
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
    for url in internal - STATUS.keys():
        STATUS[url] = page.request.get(url).status
    broken = {url: STATUS[url] for url in internal if STATUS[url] != 200}
    assert not broken, broken


def test_page_says_what_it_was_verified_with(visit):
    """Each FAQ page names the versions its tests ran with; the home page does not."""
    record_path = pages.ROOT / os.environ.get(
        "FAQ_VERIFIED_RECORD", ".nox/verified.json"
    )
    if not record_path.is_file():
        pytest.fail(
            f"no {record_path}: a full, passing `nox -s tests` writes it; run that",
            pytrace=False,
        )
    record = json.loads(record_path.read_text("utf-8"))
    notes = visit.tab.locator(".admonition.success")
    if visit.source.name == "index.md":
        assert notes.count() == 0, notes.all_inner_texts()
        return
    note = notes.first.inner_text()
    assert f"aiohttp {record['aiohttp']}" in note, note
    assert f"Python {record['python']}" in note, note


@dataclass
class SearchUI:
    """Where a theme's search box and its results are: the one part of the page
    that differs by design between Material for MkDocs and Zensical."""

    open: str | None  # what to click to open the search dialog
    box: str
    ready: tuple[str, str] | None  # an element and its text once search can run
    first_result: str
    results: str


SEARCH_UI = {
    # Material for MkDocs writes search/search_index.json; the box is in the page.
    "search/search_index.json": SearchUI(
        open=None,
        box="input.md-search__input",
        ready=(".md-search-result__meta", "键入以开始搜索"),
        first_result="li.md-search-result__item > a.md-search-result__link",
        results=".md-search-result__list",
    ),
    # Zensical writes search.json; its dialog lives in a shadow root, which
    # Playwright's CSS selectors enter.
    "search.json": SearchUI(
        open=".md-search__button",
        box="input[role=combobox]",
        ready=None,
        first_result="ol[role=listbox] > li > a",
        results="ol[role=listbox]",
    ),
}


@pytest.fixture(scope="module")
def search_box(browser: Browser, site_server, site_dir):
    """The home page's search box, ready to search; one tab for all queries."""
    found = [ui for index, ui in SEARCH_UI.items() if (site_dir / index).exists()]
    assert len(found) == 1, f"no known search index in {site_dir}"
    ui = found[0]
    context = browser.new_context(viewport=DESKTOP, base_url=site_server.url)
    tab = context.new_page()
    tab.goto("", wait_until="load")
    if ui.open:
        tab.click(ui.open)
    box = tab.locator(ui.box)
    box.focus()
    if ui.ready:
        expect(tab.locator(ui.ready[0])).to_have_text(ui.ready[1])
    yield tab, box, ui
    context.close()


@pytest.mark.parametrize(("query", "expected"), SEARCHES)
def test_search_finds_the_right_page_first(search_box, query, expected):
    tab, box, ui = search_box
    box.fill(query)
    box.press("End")  # Material searches on key events, not on `input`
    first = tab.locator(ui.first_result).first
    # The results of this query, not of the one before: its first link has moved.
    expect(first).to_have_attribute("href", re.compile(f"/{expected}/"))
    results = tab.locator(ui.results).inner_text()
    assert f"/{expected}/" in first.get_attribute("href"), results


@pytest.mark.parametrize("viewport", [DESKTOP, MOBILE], ids=["desktop", "mobile"])
@pytest.mark.parametrize("path", ["", "websocket_pubsub/"], ids=["home", "recipe"])
def test_screenshot(browser, site_server, pytestconfig, path, viewport):
    folder = Path(pytestconfig.getoption("--screenshots") or "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=viewport, base_url=site_server.url)
    tab = context.new_page()
    tab.goto(path, wait_until="load")
    name = f"{(path.strip('/') or 'index')}-{viewport['width']}.png"
    tab.screenshot(path=folder / name, full_page=False)
    context.close()
    assert (folder / name).stat().st_size > 10_000
