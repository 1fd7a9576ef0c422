"""Two builds of the site say the same: MkDocs' (``--site``) and Zensical's
(``--other-site``), page by page.

Every page is in both; each page's article body is the same once the
differences declared in NORMALISE are taken out; every code block's text (what
its copy button copies) is the same.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from test_browser import shown_blocks, url_path

import pages

ARTICLE = re.compile(r"<article[^>]*>(.*?)</article>", re.S)
CODE = re.compile(r"<pre[^>]*><span></span><code[^>]*>(.*?)</code></pre>", re.S)
# What differs by design between the two builders' article bodies, and nothing else.
NORMALISE = [
    (re.compile(r'<a id="__skip" tabindex="-1">\s*</a>'), ""),  # Zensical's skip link
    (re.compile(r">\s+<"), "><"),  # white space between tags
    (re.compile(r"\s+"), " "),
]


@pytest.fixture(scope="session")
def other_site(pytestconfig) -> Path:
    """The site the other builder wrote."""
    path = Path(pytestconfig.getoption("--other-site")).resolve()
    assert (path / "index.html").exists(), f"no built site in {path}"
    return path


def article(site: Path, page: Path) -> str:
    text = (site / url_path(page) / "index.html").read_text("utf-8")
    found = ARTICLE.search(text)
    assert found, f"{page.name}: no <article> in {site}"
    return found.group(1)


def normalise(body: str) -> str:
    for pattern, replacement in NORMALISE:
        body = pattern.sub(replacement, body)
    return body.strip()


def code_texts(body: str) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", "", code)) for code in CODE.findall(body)]


@pytest.mark.parametrize("page", pages.pages(), ids=lambda p: p.name)
def test_same_article(site_dir: Path, other_site: Path, page: Path) -> None:
    ours, theirs = article(site_dir, page), article(other_site, page)
    assert code_texts(ours) == code_texts(theirs)
    assert len(code_texts(ours)) == len(shown_blocks(page)), "a block is missing"
    assert normalise(ours) == normalise(theirs)


def test_no_page_only_in_one_build(site_dir: Path, other_site: Path) -> None:
    def built(site: Path) -> set[str]:
        return {p.parent.relative_to(site).as_posix() for p in site.rglob("index.html")}

    assert built(site_dir) == built(other_site)


def test_normalising_keeps_a_real_difference() -> None:
    """NORMALISE takes out layout, not content: a changed word still differs."""
    one = '<a id="__skip" tabindex="-1"></a>\n<p>服务器回 404</p>'
    assert normalise(one) == normalise("<p>服务器回 404</p>")
    assert normalise(one) != normalise("<p>服务器回 403</p>")
