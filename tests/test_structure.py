"""The site's shape: code lives in snippets/, every snippet is shown and tested."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pytest_codeblocks import extract_from_buffer

import pages

FAQ_PAGES = [p for p in pages.pages() if p.name != "index.md"]
SNIPPET_FILES = sorted(
    p for p in pages.SNIPPETS.rglob("*") if p.is_file() and "__pycache__" not in p.parts
)
SNIPPET_FOLDERS = sorted(
    {p.relative_to(pages.SNIPPETS).parts[0] for p in SNIPPET_FILES}
)


@pytest.mark.parametrize("page", pages.pages(), ids=lambda p: p.name)
def test_page_blocks_are_includes(page: Path) -> None:
    """No code is pasted into a page: a fenced block holds only --8<-- lines."""
    for block in extract_from_buffer(io.StringIO(page.read_text("utf-8"))):
        lines = [line for line in block.code.splitlines() if line.strip()]
        pasted = [line for line in lines if not pages.INCLUDE_LINE.match(line)]
        assert lines and not pasted, f"{page.name}:{block.lineno} pastes code: {pasted}"


@pytest.mark.parametrize("page", FAQ_PAGES, ids=lambda p: p.name)
def test_faq_page_includes_a_snippet(page: Path) -> None:
    assert pages.includes(page), f"{page.name} includes no snippet"


def test_every_snippet_is_on_a_page() -> None:
    included = {path for page in pages.pages() for path in pages.includes(page)}
    missing = [
        p.relative_to(pages.SNIPPETS).as_posix()
        for p in SNIPPET_FILES
        if p.relative_to(pages.SNIPPETS).as_posix() not in included
    ]
    assert not missing, f"snippets no page includes: {missing}"


@pytest.mark.parametrize("folder", SNIPPET_FOLDERS)
def test_one_name_for_page_snippets_and_tests(folder: str) -> None:
    """docs/<name>.md shows snippets/<name>/, tests/test_<name>.py tests it."""
    assert (pages.DOCS / f"{folder}.md").exists(), f"no page docs/{folder}.md"
    assert (pages.ROOT / "tests" / f"test_{folder}.py").exists(), (
        f"no tests/test_{folder}.py"
    )


def test_every_page_block_has_a_test() -> None:
    """The runner found blocks on every FAQ page (nothing silently uncollected)."""
    with_blocks = {block.page for block in pages.all_blocks()}
    assert {p.name for p in FAQ_PAGES} <= with_blocks
